//! `ami run`: run a planning agent for some episodes.

use std::io::IsTerminal;

use ami_agents::agent::{build_agent, PlannerKind};
use ami_agents::tasks::TaskKind;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `ami run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Built-in task: pendulum, cartpole or pointmass.
    #[arg(long, default_value = "pendulum")]
    pub task: TaskKind,
    /// Mode-2 planner: cem or mppi.
    #[arg(long, default_value = "cem")]
    pub planner: PlannerKind,
    /// Number of episodes.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub episodes: u64,
    /// Seed of the first episode; episodes use seeds S..S+N-1.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object with the results on stdout's last line.
    #[arg(long)]
    pub json: bool,
}

/// Runs the agent and prints the returns.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut agent = build_agent(args.task, args.planner).context("building the agent")?;
    let seeds: Vec<u64> = (0..args.episodes).map(|i| args.seed + i).collect();
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new(args.episodes) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} episodes  {msg}").expect("valid template"));
    println!("ami run: task {}, planner {}, {} episode(s), seeds {}..{}", args.task, args.planner, args.episodes, args.seed, args.seed + args.episodes - 1);
    let mut returns = Vec::new();
    let mut plan_ms = Vec::new();
    for &seed in &seeds {
        let r = agent.run_episode(seed, |t| bar.set_message(format!("seed {seed}, step {t}"))).with_context(|| format!("episode with seed {seed}"))?;
        bar.inc(1);
        bar.suspend(|| println!("episode seed {:>3}: return {:>10.3}  steps {:>4}  plan {:.2} ms/step", seed, r.episode_return, r.steps, r.mean_plan_ms));
        returns.push(r.episode_return);
        plan_ms.push(r.mean_plan_ms);
    }
    bar.finish_and_clear();
    let mean = returns.iter().sum::<f64>() / returns.len() as f64;
    let mean_ms = plan_ms.iter().sum::<f64>() / plan_ms.len() as f64;
    println!("mean return over {} episode(s): {mean:.3}  (mean plan time {mean_ms:.2} ms)", returns.len());
    if args.json {
        let out = serde_json::json!({
            "task": args.task.to_string(),
            "planner": args.planner.to_string(),
            "episodes": args.episodes,
            "seeds": seeds,
            "returns": returns,
            "mean_return": mean,
            "mean_plan_ms": mean_ms,
        });
        println!("{out}");
    }
    Ok(())
}
