//! The `ami` command-line tool. Each subcommand lives in `cli/<name>.rs`.

mod cli;

use cli::run::RunArgs;

use std::process::ExitCode;

use ami_agents::agent::PlannerKind;
use ami_agents::tasks::TaskKind;
use clap::{Parser, Subcommand};

/// ami: agents that plan with learned world models.
#[derive(Parser, Debug)]
#[command(name = "ami", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a planning agent on a built-in task (default: Pendulum swing-up
    /// with CEM, 10 episodes, seeds 0..9).
    Run(RunArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Run(args)) => cli::run::run(args),
        None => cli::run::run(RunArgs { task: TaskKind::Pendulum, planner: PlannerKind::Cem, episodes: 10, seed: 0, json: false }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
