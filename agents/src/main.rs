//! The `ami` command-line tool. Each subcommand lives in `cli/<name>.rs`.
#![forbid(unsafe_code)]

mod cli;

use cli::check::CheckArgs;
use cli::graph::GraphArgs;
use cli::run::RunArgs;

use std::process::ExitCode;

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
    /// Run a planning agent: an agent file, or the standard agent on a
    /// built-in task (default: Pendulum swing-up with CEM, 10 episodes,
    /// seeds 0..9).
    Run(RunArgs),
    /// Validate an agent file without running it (exit code 2 if invalid).
    Check(CheckArgs),
    /// Show an agent file's graph: run order by level, or Graphviz DOT.
    Graph(GraphArgs),
    /// List every implementation agent files can name, with its
    /// parameters (--markdown: the table of docs/agent-files.md).
    List(cli::list::ListArgs),
    /// Time a planner on a workload file against the peers' procedure
    /// (one JSON line with --json).
    Bench(cli::bench::BenchArgs),
    /// Record random-exploration trajectories of the rendered wall task
    /// (64x64 images, actions, true positions) to a dataset file,
    /// resumable.
    Collect(cli::collect::CollectArgs),
    /// Fit a world model offline from a saved memory file and write its
    /// weights (safetensors) for agent files to load.
    Train(cli::train::TrainArgs),
    /// Draw a run's learning curve (return per episode, evaluations, model
    /// losses) from `ami run --json` output, as PNG or SVG; several runs
    /// overlay.
    Plot(cli::plot::PlotArgs),
    /// List the Gymnasium environments the interpreter has (ids, spaces,
    /// step limits) for `ami run --env gym:ID`.
    Envs(cli::envs::EnvsArgs),
    /// Plugins: `inspect` a library (declaration, ABI, modules with ports and
    /// parameters), or create a `new` plugin crate from the template.
    Plugin(cli::plugin::PluginCommand),
}

/// Whether a panic is `println!` finding stdout closed (`ami run | head -1`).
fn is_broken_pipe(payload: &(dyn std::any::Any + Send)) -> bool {
    let message = payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied());
    message.is_some_and(|m| m.starts_with("failed printing to stdout") && m.contains("Broken pipe"))
}

fn main() -> ExitCode {
    // A child the plugin host started to try a library before loading it.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = ami_plugin_host::probe_child::main_if_asked(&args) {
        return ExitCode::from(u8::try_from(code).unwrap_or(2));
    }
    // A closed stdout ends ami quietly, as it ends any Unix filter: no
    // panic message, the exit status of a SIGPIPE (141), destructors run
    // (Python children of the Gymnasium bridge are stopped).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_broken_pipe(info.payload()) {
            default_hook(info);
        }
    }));
    match std::panic::catch_unwind(run) {
        Ok(code) => code,
        Err(payload) => {
            if is_broken_pipe(&*payload) {
                ExitCode::from(141)
            } else {
                std::panic::resume_unwind(payload)
            }
        }
    }
}

fn run() -> ExitCode {
    let cli = Cli::parse();
    // Library warnings (a plugin built with panic = "abort", planning that
    // skipped non-finite samples, ...) go to stderr; AMI_LOG=info|debug
    // shows more, AMI_LOG=error less.
    let filter = tracing_subscriber::EnvFilter::try_from_env("AMI_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
    let result = match cli.command {
        Some(Command::Run(args)) => cli::run::run(args),
        Some(Command::Check(args)) => cli::check::run(args),
        Some(Command::Graph(args)) => cli::graph::run(args),
        Some(Command::Bench(args)) if args.train => cli::bench_train::run(&args),
        Some(Command::Bench(args)) if args.env.is_some() => cli::envs::bench(&args),
        Some(Command::Bench(args)) => cli::bench::run(args),
        Some(Command::List(args)) => cli::list::run(args),
        Some(Command::Train(args)) => cli::train::run(args),
        Some(Command::Collect(args)) => cli::collect::run(args),
        Some(Command::Plot(args)) => cli::plot::run(args),
        Some(Command::Envs(args)) => cli::envs::run(args),
        Some(Command::Plugin(args)) => cli::plugin::run(args),
        None => cli::run::run(RunArgs::default()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", cli::describe(&e));
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
