//! `ami run`: run a planning agent for some episodes.
//!
//! Every run goes through the agent-file machinery: `ami run FILE` loads
//! FILE, `ami run --task X --planner Y` the standard graph generated for
//! them, and `ami run` alone the embedded default
//! (`agents/examples/pendulum.toml`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ami_agents::agent::{Agent, PlannerKind};
use ami_agents::config::{load_file, load_str, task_agent_toml, DEFAULT_AGENT};
use ami_agents::tasks::TaskKind;
use ami_core::config::AgentGraph;
use ami_core::graph::ExecutorKind;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::Interrupted;

/// Arguments of `ami run`.
#[derive(clap::Args, Debug, Default)]
pub struct RunArgs {
    /// Agent file (TOML) to run; without it, the standard agent for
    /// `--task`/`--planner` (default: Pendulum with CEM).
    #[arg(value_name = "FILE", conflicts_with_all = ["task", "planner"])]
    pub file: Option<PathBuf>,
    /// Built-in task: pendulum, cartpole or pointmass.
    #[arg(long)]
    pub task: Option<TaskKind>,
    /// Mode-2 planner: cem or mppi.
    #[arg(long)]
    pub planner: Option<PlannerKind>,
    /// Number of episodes (default: the file's, else 10).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub episodes: Option<u64>,
    /// Seed of the first episode; episodes use seeds S..S+N-1 (default: the
    /// file's, else 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Executor: sequential or parallel (default: the file's, else
    /// sequential). Both give the same actions, bit for bit.
    #[arg(long)]
    pub executor: Option<ExecutorKind>,
    /// Print one JSON object with the results on stdout's last line.
    #[arg(long)]
    pub json: bool,
    /// Plugin libraries and plugin tasks.
    #[command(flatten)]
    pub plugins: super::plugin::PluginArgs,
}

/// Loads the agent file the arguments name (validation problems come back
/// as [`ami_core::CoreError::Graph`]).
fn load(args: &RunArgs) -> anyhow::Result<(AgentGraph, String)> {
    if let Some(path) = &args.file {
        let g = load_file(path).with_context(|| format!("{} is not a valid agent file", path.display()))?;
        return Ok((g, path.display().to_string()));
    }
    if args.task.is_none() && args.planner.is_none() {
        return Ok((load_str(DEFAULT_AGENT, "<default: agents/examples/pendulum.toml>")?, "default".into()));
    }
    let (task, planner) = (args.task.unwrap_or(TaskKind::Pendulum), args.planner.unwrap_or(PlannerKind::Cem));
    let text = task_agent_toml(task, planner);
    Ok((load_str(&text, &format!("<{task}-{planner}>"))?, format!("--task {task} --planner {planner}")))
}

/// Runs the agent and prints the returns.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let (graph, source) = match super::plugin::load_for_run(&args)? {
        Some(loaded) => loaded,
        None => load(&args)?,
    };
    let task = graph.task.name.clone();
    let planner =
        graph.actors.first().and_then(|a| graph.config.nodes.iter().find(|n| &n.name == a)).map(|n| n.implementation.clone()).unwrap_or_else(|| "none".into());
    let name = graph.config.name.clone().unwrap_or_else(|| source.clone());
    let mut seeds = graph.config.seeds.clone();
    if args.seed.is_some() || args.episodes.is_some() {
        let first = args.seed.unwrap_or_else(|| seeds.first().copied().unwrap_or(0));
        let n = args.episodes.unwrap_or(seeds.len() as u64);
        seeds = (0..n).map(|i| first.wrapping_add(i)).collect();
    }
    let kind = args.executor.unwrap_or(graph.config.executor);
    let mut agent = Agent::from_agent_graph(graph, kind).context("building the agent")?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Ctrl-C: finish the current tick, call every node's finish (memory
        // saves), join the executor's threads, exit non-zero.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    agent.set_interrupt(stop.clone());
    let episodes = seeds.len() as u64;
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new(episodes) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} episodes  {msg}").expect("valid template"));
    let seed_range = match (seeds.first(), seeds.last()) {
        (Some(a), Some(b)) => format!("{a}..{b}"),
        _ => "none".into(),
    };
    println!("ami run: agent {name}, task {task}, planner {planner}, executor {kind}, {episodes} episode(s), seeds {seed_range}");
    let mut returns = Vec::new();
    let mut plan_ms = Vec::new();
    for &seed in &seeds {
        let r = agent.run_episode(seed, |t| bar.set_message(format!("seed {seed}, step {t}")));
        if stop.load(Ordering::SeqCst) {
            bar.finish_and_clear();
            drop(agent);
            return Err(anyhow::Error::new(Interrupted).context(format!("episode with seed {seed}")));
        }
        let r = super::plugin::explain(r).with_context(|| format!("episode with seed {seed}"))?;
        bar.inc(1);
        bar.suspend(|| println!("episode seed {:>3}: return {:>10.3}  steps {:>4}  plan {:.2} ms/step", seed, r.episode_return, r.steps, r.mean_plan_ms));
        returns.push(r.episode_return);
        plan_ms.push(r.mean_plan_ms);
    }
    bar.finish_and_clear();
    let mean = returns.iter().sum::<f64>() / returns.len().max(1) as f64;
    let mean_ms = plan_ms.iter().sum::<f64>() / plan_ms.len().max(1) as f64;
    println!("mean return over {} episode(s): {mean:.3}  (mean plan time {mean_ms:.2} ms)", returns.len());
    if args.json {
        let out = serde_json::json!({
            "agent": name,
            "task": task,
            "planner": planner,
            "executor": kind.to_string(),
            "episodes": episodes,
            "seeds": seeds,
            "returns": returns,
            "mean_return": mean,
            "mean_plan_ms": mean_ms,
        });
        println!("{out}");
    }
    Ok(())
}
