//! `ami run`: run a planning agent for some episodes.
//!
//! Every run goes through one path, [`ami_agents::load`]: `ami run FILE`
//! loads FILE, `ami run --task X --planner Y` the standard agent generated
//! for them, `--plugin-task` the standard agent on a plugin's environment,
//! and `ami run` alone the embedded default (`agents/examples/pendulum.toml`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ami_agents::tasks::TaskKind;
use ami_agents::{Agent, AgentSource, Loaded};
use ami_graph::ExecutorKind;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::Interrupted;

/// Arguments of `ami run`.
#[derive(clap::Args, Debug, Default)]
pub struct RunArgs {
    /// Agent file (TOML) to run; without it, the standard agent for
    /// `--task`/`--planner` (default: Pendulum with CEM).
    #[arg(value_name = "FILE", conflicts_with_all = ["task", "planner", "env"])]
    pub file: Option<PathBuf>,
    /// Built-in task: pendulum, cartpole or pointmass.
    #[arg(long, conflicts_with = "env")]
    pub task: Option<TaskKind>,
    /// A Gymnasium environment, `gym:ID` (Pendulum-v1, CartPole-v1),
    /// run in a Python child process and planned with the built-in task
    /// of the same dynamics.
    #[arg(long, value_name = "gym:ID", value_parser = gym_env_id)]
    pub env: Option<String>,
    /// The Python interpreter with gymnasium (default: $AMI_PYTHON, else
    /// python3).
    #[arg(long, requires = "env")]
    pub python: Option<PathBuf>,
    /// Mode-2 planner: a registered planner (cem, mppi, gd for continuous
    /// actions; cem-discrete, beam for discrete ones).
    #[arg(long, value_parser = planner_name)]
    pub planner: Option<String>,
    /// Number of episodes (default: the file's, else 10; at most a
    /// million, as in a file).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
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
    /// Write each episode's path (the first two coordinates of every
    /// observation), the `level` nodes' subgoals and, for a maze, the maze
    /// to this JSON file, for `ami plot`.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Evaluation episodes (no training, no recording, no exploration)
    /// after learning (default: the file's `eval_episodes`, else none; at
    /// most a million).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub eval_episodes: Option<u64>,
    /// Seed of the first evaluation episode (default: the file's
    /// `eval_seed`, else 100).
    #[arg(long)]
    pub eval_seed: Option<u64>,
    /// Evaluate after every N learning episodes as well as at the end
    /// (default: the file's `eval_every`, else only at the end).
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Run this many copies of the agent (each with its own environment:
    /// a Python process for `gym:`) on separate threads, the episodes
    /// shared out among them. Each episode's result depends only on its
    /// seed, so the returns are those of one copy; agents that learn (or
    /// save their memory) run with one copy.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub envs: u64,
    /// Plugin libraries and plugin tasks.
    #[command(flatten)]
    pub plugins: super::plugin::PluginArgs,
}

/// A planner name `--planner` accepts: one the registry has.
fn planner_name(s: &str) -> Result<String, String> {
    let r = ami_agents::registry();
    if r.planners().iter().any(|p| p == s) {
        Ok(s.to_string())
    } else {
        Err(format!("unknown planner `{s}` (registered: {})", r.planners().join(", ")))
    }
}

/// A `--env` value: `gym:ID`; returns the id.
fn gym_env_id(s: &str) -> Result<String, String> {
    match s.strip_prefix("gym:") {
        Some(id) if !id.is_empty() => Ok(id.to_string()),
        _ => Err(format!("`{s}` is not gym:ID (for instance gym:Pendulum-v1; `ami envs` lists the ids)")),
    }
}

/// Where the arguments say the agent comes from.
pub fn source(args: &RunArgs) -> AgentSource {
    if let Some(path) = &args.file {
        return AgentSource::File(path.clone());
    }
    if let Some(id) = &args.env {
        return AgentSource::Gym {
            id: id.clone(),
            planner: args.planner.clone().unwrap_or_else(|| ami_agents::gym_default_planner(id).into()),
            python: args.python.clone(),
        };
    }
    if let Some(env) = &args.plugins.plugin_task {
        let planner = match (&args.plugins.plugin_planner, &args.planner) {
            (Some(p), _) => format!("plugin:{}", p.strip_prefix("plugin:").unwrap_or(p)),
            (None, Some(p)) => p.clone(),
            (None, None) => "cem".into(),
        };
        return AgentSource::PluginTask { env: env.clone(), planner };
    }
    if args.task.is_none() && args.planner.is_none() {
        return AgentSource::Default;
    }
    AgentSource::Task { task: args.task.unwrap_or(TaskKind::Pendulum), planner: args.planner.clone().unwrap_or_else(|| "cem".into()) }
}

/// Loads the agent the arguments name, with its plugins.
pub fn load(args: &RunArgs) -> anyhow::Result<Loaded> {
    let src = source(args);
    let opts = args.plugins.libs.load_options()?;
    ami_agents::load(&src, &opts).with_context(|| format!("{} is not a valid agent", src.describe()))
}

/// Runs the agent and prints the returns.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let Loaded { graph, source, host } = load(&args)?;
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
    let mut eval_seeds = graph.config.eval_seeds.clone();
    if args.eval_episodes.is_some() || args.eval_seed.is_some() {
        let first = args.eval_seed.unwrap_or_else(|| eval_seeds.first().copied().unwrap_or(100));
        let n = args.eval_episodes.unwrap_or(eval_seeds.len() as u64);
        eval_seeds = (0..n).map(|i| first.wrapping_add(i)).collect();
    }
    let eval_every = args.eval_every.unwrap_or(graph.config.eval_every);
    let explore_episodes = graph
        .actors
        .first()
        .and_then(|a| graph.config.nodes.iter().find(|n| &n.name == a))
        .and_then(|n| n.params.iter().find(|p| p.name == "explore_episodes"))
        .and_then(|p| p.value.as_f64())
        .unwrap_or(0.0) as usize;
    let saving = graph.config.nodes.iter().find(|n| n.kind == "memory" && n.params.iter().any(|p| p.name == "save_path")).map(|n| n.name.clone());
    let teaching = graph.config.nodes.iter().flat_map(|n| &n.params).any(|p| p.name == "teacher_episodes" && p.value.as_f64().is_some_and(|v| v > 0.0));
    let mut agent = Agent::from_agent_graph(graph, kind).context("building the agent")?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Ctrl-C: finish the current tick, call every node's finish (memory
        // saves), join the executor's threads, exit non-zero.
        let _ = ctrlc::set_handler(move || {
            stop.store(true, Ordering::SeqCst);
            // Long planning calls end after their current iteration.
            ami_core::request_interrupt();
        });
    }
    agent.set_interrupt(stop.clone());
    let learning = !agent.handles().trainers.is_empty();
    let copies = args.envs as usize;
    if copies > 1 {
        if learning {
            let trainers: Vec<&String> = agent.handles().trainers.keys().collect();
            return Err(super::BadInput(format!(
                "--envs {copies} runs {copies} copies of the agent on separate episodes, but `{name}` learns (trainer nodes {trainers:?}): each of its episodes depends on the ones before, so it runs with one copy"
            ))
            .into());
        }
        if args.trace.is_some() {
            return Err(super::BadInput(format!("--trace records one agent's episodes; run it without --envs {copies}")).into());
        }
        if let Some(m) = saving {
            return Err(super::BadInput(format!(
                "--envs {copies}: memory node `{m}` saves to a file, which {copies} copies would overwrite; drop its save_path or run one copy"
            ))
            .into());
        }
        // Per-agent episode counts (exploration, teaching) and periodic
        // evaluation would differ between copies and one agent.
        if explore_episodes > 0 || teaching || eval_every > 0 {
            return Err(super::BadInput(format!(
                "--envs {copies}: `{name}` counts its episodes (explore_episodes, teacher_episodes or eval_every), so copies would not act as one agent does; run one copy"
            ))
            .into());
        }
    }
    let episodes = seeds.len() as u64;
    let evals = if eval_seeds.is_empty() {
        0
    } else if eval_every > 0 {
        episodes.div_ceil(eval_every) * eval_seeds.len() as u64
    } else {
        eval_seeds.len() as u64
    };
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new(episodes + evals) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} episodes  {msg}").expect("valid template"));
    let seed_range = match (seeds.first(), seeds.last()) {
        (Some(a), Some(b)) => format!("{a}..{b}"),
        _ => "none".into(),
    };
    println!("ami run: agent {name}, task {task}, planner {planner}, executor {kind}, {episodes} episode(s), seeds {seed_range}");
    let mut returns = Vec::new();
    let mut outcomes = Outcomes::default();
    let mut plan_ms = Vec::new();
    let mut curve = Vec::new();
    let mut eval_runs = Vec::new();
    let mut experience = 0usize;
    let mut modes = ModeCounts::default();
    let mut trace_episodes = Vec::new();
    if copies > 1 {
        drop(agent);
        let ran = run_copies(&args, copies, kind, [&seeds, &eval_seeds], &stop, &bar);
        bar.finish_and_clear();
        let [results, evals] = ran?;
        for (seed, r) in seeds.iter().zip(&results) {
            println!("episode seed {seed:>3}: return {:>10.3}  steps {:>4}  plan {:.2} ms/step{}", r.episode_return, r.steps, r.mean_plan_ms, mode_note(r));
            modes.add(r);
            outcomes.add(r);
            returns.push(r.episode_return);
            plan_ms.push(r.mean_plan_ms);
        }
        if !evals.is_empty() {
            evals.iter().zip(&eval_seeds).for_each(|(r, &seed)| println!("{}", eval_line(seed, r)));
            let (line, json) = eval_summary(seeds.len(), &eval_seeds, &evals);
            println!("{line}");
            eval_runs.push(json);
        }
    } else {
        let env_name = agent.environment().to_string();
        let traces = std::cell::RefCell::new(Vec::new());
        let run_one = |agent: &mut Agent, seed: u64, what: &str| -> anyhow::Result<ami_agents::EpisodeResult> {
            let mut path: Vec<[f32; 2]> = Vec::new();
            // The true state where the environment offers one (a task seen
            // as images), else the observation.
            let diagnostics = agent.executor().output_index(&env_name, "diagnostics");
            let observation = agent.executor().output_index(&env_name, "observation");
            let goal_port = agent.executor().output_index(&env_name, "goal");
            // The perception's state (a task seen as images: the latent
            // path, decoded by a probe when the trace is written).
            let state_port = agent.executor().node_names().iter().filter(|n| **n != env_name).find_map(|n| agent.executor().output_index(n, "state"));
            let mut latent: Vec<Vec<f32>> = Vec::new();
            let mut images: Option<(Vec<f32>, Vec<f32>)> = None;
            let mut goal: Option<Vec<f32>> = None;
            let mut diag_goal: Option<Vec<f32>> = None;
            let tracing = args.trace.is_some();
            let r = agent.run_episode_with(seed, |t, exec| {
                bar.set_message(format!("{what} seed {seed}, step {t}"));
                if tracing {
                    let at = |port: Option<(usize, usize)>| port.and_then(|(n, p)| exec.output_at(n, p)).and_then(|v| v.as_vector());
                    if let Some(v) = at(diagnostics).or_else(|| at(observation)) {
                        path.push([v[0], v.get(1).copied().unwrap_or(0.0)]);
                        if let (Some(_), Some(z)) = (at(diagnostics), at(state_port)) {
                            latent.push(z.to_vec());
                        }
                        if v.len() == 4 && diag_goal.is_none() && at(diagnostics).is_some() {
                            diag_goal = Some(vec![v[2], v[3]]);
                        }
                    }
                }
                let at_diag = |exec: &dyn ami_graph::Executor| diagnostics.and_then(|(n, p)| exec.output_at(n, p)).and_then(|v| v.as_vector()).map(|_| ());
                if let (true, 1, Some((n, p))) = (tracing, t, goal_port) {
                    for m in exec.output_at(n, p).and_then(|v| v.as_modulations()).unwrap_or_default() {
                        if let ami_core::Modulation::Goal(Some(g)) = m {
                            goal = Some(g.clone());
                            if let (Some(_), Some(obs)) = (at_diag(exec), observation.and_then(|(n, p)| exec.output_at(n, p)).and_then(|v| v.as_vector())) {
                                if obs.len() == g.len() {
                                    images = Some((obs.to_vec(), g.clone()));
                                }
                            }
                        }
                    }
                }
            });
            if tracing && r.is_ok() {
                let levels: serde_json::Map<String, serde_json::Value> = agent
                    .handles()
                    .levels
                    .iter()
                    .map(|(name, h)| {
                        let st = h.stats();
                        (name.clone(), serde_json::json!({ "subgoals": st.subgoals, "avoided": st.avoided }))
                    })
                    .collect();
                let success = r.as_ref().ok().and_then(|r| r.success);
                // A goal given as an image is drawn where the simulator has it.
                let goal = diag_goal.take().or(goal.take());
                let mut episode = serde_json::json!({ "seed": seed, "phase": what, "success": success, "goal": goal, "path": path, "levels": levels });
                if latent.len() == path.len() && !latent.is_empty() {
                    episode["latent"] = serde_json::json!(latent);
                }
                if let Some((obs, goal_image)) = images.take() {
                    episode["walls"] = serde_json::json!(image_walls(&obs, &goal_image));
                }
                traces.borrow_mut().push(episode);
            }
            if stop.load(Ordering::SeqCst) {
                bar.finish_and_clear();
                return Err(anyhow::Error::new(Interrupted).context(format!("episode with seed {seed}")));
            }
            let r = explain(r, host.as_ref()).with_context(|| format!("episode with seed {seed}"))?;
            bar.inc(1);
            Ok(r)
        };
        let evaluate = |agent: &mut Agent, after: usize| -> anyhow::Result<serde_json::Value> {
            agent.set_evaluating(true);
            let mut results = Vec::new();
            for &seed in &eval_seeds {
                let r = run_one(agent, seed, "eval")?;
                bar.suspend(|| println!("{}", eval_line(seed, &r)));
                results.push(r);
            }
            agent.set_evaluating(false);
            let (line, json) = eval_summary(after, &eval_seeds, &results);
            bar.suspend(|| println!("{line}"));
            Ok(json)
        };
        for (i, &seed) in seeds.iter().enumerate() {
            let r = run_one(&mut agent, seed, "episode")?;
            let phase = if i < explore_episodes { "explore" } else { "plan" };
            let records = agent.handles().trainers.values().next().map(|t| t.records()).unwrap_or_default();
            let fit = records.iter().find(|rec| rec.episode == i && rec.tick == 0).cloned();
            let during = records.iter().filter(|rec| rec.episode == i && rec.tick > 0).count();
            let during_note = if during > 0 { format!(" +{during} fit(s) during the episode") } else { String::new() };
            let model = match &fit {
                Some(f) => format!(
                    "  model loss {:.4} val {} ({} epochs, {:.0} ms{}){during_note}",
                    f.report.train_loss,
                    f.report.val_loss.map_or("-".into(), |v| format!("{v:.4}")),
                    f.report.epochs,
                    f.report.ms,
                    f.report.rejected.as_ref().map_or(String::new(), |m| format!("; {m}"))
                ),
                None => during_note,
            };
            experience += r.steps;
            let tag = if learning { format!(" [{phase}]") } else { String::new() };
            bar.suspend(|| {
                println!(
                    "episode seed {:>3}{tag}: return {:>10.3}  steps {:>4}  plan {:.2} ms/step{}{model}",
                    seed,
                    r.episode_return,
                    r.steps,
                    r.mean_plan_ms,
                    mode_note(&r)
                )
            });
            modes.add(&r);
            outcomes.add(&r);
            returns.push(r.episode_return);
            plan_ms.push(r.mean_plan_ms);
            curve.push(serde_json::json!({
                "episode": i, "seed": seed, "phase": phase, "return": r.episode_return, "steps": r.steps, "experience": experience,
                "model_loss": fit.as_ref().map(|f| f.report.train_loss), "val_loss": fit.as_ref().and_then(|f| f.report.val_loss),
                "val_mse": fit.as_ref().and_then(|f| f.report.val_mse), "train_ms": fit.as_ref().map(|f| f.report.ms),
                "fits_during": during, "reactive": r.reactive.0, "planned": r.planned.0, "explored": r.explored.0,
            }));
            let last = i + 1 == seeds.len();
            let periodic = eval_every > 0 && (i as u64 + 1).is_multiple_of(eval_every);
            if !eval_seeds.is_empty() && (periodic || last) {
                eval_runs.push(evaluate(&mut agent, i + 1)?);
            }
        }
        // Memories are saved once, when the run ends.
        agent.finish().context("ending the run")?;
        trace_episodes = traces.into_inner();
    }
    bar.finish_and_clear();
    if let Some(path) = &args.trace {
        write_trace(path, &task, trace_episodes)?;
    }
    let mean = returns.iter().sum::<f64>() / returns.len().max(1) as f64;
    let mean_ms = plan_ms.iter().sum::<f64>() / plan_ms.len().max(1) as f64;
    println!("mean return over {} episode(s): {mean:.3}  (mean plan time {mean_ms:.2} ms){}", returns.len(), outcomes.note());
    if args.json {
        let mut out = serde_json::json!({
            "agent": name,
            "task": task,
            "planner": planner,
            "executor": kind.to_string(),
            "episodes": episodes,
            "seeds": seeds,
            "returns": returns,
            "mean_return": mean,
            "mean_plan_ms": mean_ms,
            "modes": modes.json(),
        });
        outcomes.write(&mut out);
        if copies > 1 {
            out["copies"] = serde_json::json!(copies);
        }
        if learning {
            out["learning"] = serde_json::json!({ "episodes": curve });
        }
        match eval_runs.len() {
            0 => {}
            1 => out["eval"] = eval_runs.pop().expect("one"),
            _ => out["eval"] = serde_json::Value::Array(eval_runs),
        }
        println!("{out}");
    }
    Ok(())
}

/// Runs the seeds of `phases` (learning episodes, then evaluation
/// episodes) on `copies` copies of the agent, one thread each (each copy
/// loaded there, with its own environment, once for both phases), the
/// next seed going to the first copy that is free; the results in seed
/// order.
fn run_copies(
    args: &RunArgs,
    copies: usize,
    kind: ExecutorKind,
    phases: [&[u64]; 2],
    stop: &Arc<AtomicBool>,
    bar: &ProgressBar,
) -> anyhow::Result<[Vec<ami_agents::EpisodeResult>; 2]> {
    let workers = copies.min(phases.iter().map(|p| p.len()).max().unwrap_or(0)).max(1);
    let next = [std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0)];
    // A copy that fails stops the others before their next episode.
    let failed = AtomicBool::new(false);
    let between = std::sync::Barrier::new(workers);
    let results = std::sync::Mutex::new([vec![None; phases[0].len()], vec![None; phases[1].len()]]);
    let fail = |e: anyhow::Error| {
        failed.store(true, Ordering::SeqCst);
        e
    };
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<()> {
                    let built = load(args)
                        .and_then(|Loaded { graph, host, .. }| Ok((Agent::from_agent_graph(graph, kind).context("building a copy of the agent")?, host)));
                    let mut built = built.map_err(fail);
                    let mut outcome = Ok(());
                    for (phase, seeds) in phases.iter().enumerate() {
                        // Every copy reaches the barrier, whatever happened
                        // to it, so none waits for ever.
                        if phase == 1 {
                            between.wait();
                        }
                        let (Ok((agent, host)), Ok(())) = (built.as_mut(), &outcome) else { continue };
                        agent.set_interrupt(stop.clone());
                        agent.set_evaluating(phase == 1);
                        loop {
                            let i = next[phase].fetch_add(1, Ordering::SeqCst);
                            if i >= seeds.len() || stop.load(Ordering::SeqCst) || failed.load(Ordering::SeqCst) {
                                break;
                            }
                            let r = agent.run_episode(seeds[i], |_| {});
                            if stop.load(Ordering::SeqCst) {
                                outcome = Err(anyhow::Error::new(Interrupted).context(format!("episode with seed {}", seeds[i])));
                                break;
                            }
                            match explain(r, host.as_ref()).with_context(|| format!("episode with seed {}", seeds[i])) {
                                Ok(r) => {
                                    bar.inc(1);
                                    results.lock().unwrap_or_else(|p| p.into_inner())[phase][i] = Some(r);
                                }
                                Err(e) => {
                                    outcome = Err(fail(e));
                                    break;
                                }
                            }
                        }
                    }
                    // Each copy's memories are saved once, when it is done.
                    if let (Ok((agent, _)), Ok(())) = (built.as_mut(), &outcome) {
                        outcome = agent.finish().context("ending the run");
                    }
                    built.map(|_| ()).and(outcome)
                })
            })
            .collect();
        let mut first: Option<anyhow::Error> = None;
        for h in handles {
            if let Err(e) = h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a copy of the agent panicked"))) {
                failed.store(true, Ordering::SeqCst);
                // An error beats the interruption it caused elsewhere.
                if first.as_ref().is_none_or(|f| f.downcast_ref::<Interrupted>().is_some()) {
                    first = Some(e);
                }
            }
        }
        if stop.load(Ordering::SeqCst) && first.is_none() {
            return Err(anyhow::Error::new(Interrupted));
        }
        first.map_or(Ok(()), Err)
    })?;
    let [a, b] = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let done = |v: Vec<Option<ami_agents::EpisodeResult>>| v.into_iter().collect::<Option<Vec<_>>>().context("a copy stopped before every seed ran");
    Ok([done(a)?, done(b)?])
}

/// The walls of a task seen as square grayscale images, as maze rows
/// (`#` a wall pixel, `.` free; the top row first): the pixels drawn at the
/// wall's grey (0.5) in both the first observation and the goal image (the
/// agent's dot, drawn over the wall, is in only one of them). `None` when
/// the images are not square.
fn image_walls(obs: &[f32], goal: &[f32]) -> Option<Vec<String>> {
    let side = (obs.len() as f64).sqrt().round() as usize;
    if side * side != obs.len() || side < 2 || goal.len() != obs.len() {
        return None;
    }
    let wall = |v: f32| (v - 0.5).abs() < 0.05;
    Some((0..side).map(|r| (0..side).map(|c| if wall(obs[r * side + c]) && wall(goal[r * side + c]) { '#' } else { '.' }).collect()).collect())
}

/// Writes `ami run --trace`: the task, its maze (a maze task's rows, or an
/// image task's walls with `scale` the image side), and the episodes; with
/// latent paths (a task seen as images), each one decoded by a linear probe
/// fitted on all of the trace's (latent, true position) pairs.
fn write_trace(path: &std::path::Path, task: &str, mut episodes: Vec<serde_json::Value>) -> anyhow::Result<()> {
    let maze = task.strip_prefix("maze:").and_then(|m| {
        ami_agents::tasks::maze::Maze::builtin(m).or_else(|| std::fs::read_to_string(m).ok().and_then(|t| ami_agents::tasks::maze::Maze::parse(&t, m).ok()))
    });
    let mut rows = maze.map(|m| m.text_rows());
    let mut scale = 1.0;
    if rows.is_none() {
        if let Some(walls) = episodes.iter().find_map(|e| serde_json::from_value::<Vec<String>>(e.get("walls")?.clone()).ok()) {
            scale = walls.len() as f64;
            rows = Some(walls);
        }
    }
    let probe_r2 = decode_latents(&mut episodes);
    for e in &mut episodes {
        if let Some(m) = e.as_object_mut() {
            m.remove("walls");
            m.remove("latent");
        }
    }
    let out = serde_json::json!({
        "trace": 1,
        "task": task,
        "maze": rows,
        "scale": scale,
        "probe_r2": probe_r2,
        "episodes": episodes,
    });
    ami_core::fsio::write_atomic(path, serde_json::to_string(&out)?.as_bytes()).context("cannot write the trace")?;
    println!("trace written to {}", path.display());
    Ok(())
}

/// Fits a linear probe from the episodes' latents to their true positions
/// (all steps of all episodes), writes each episode's decoded path as
/// `decoded`, and returns the probe's R^2 on those frames (`None` without
/// latents). The probe is fitted once.
fn decode_latents(episodes: &mut [serde_json::Value]) -> Option<Vec<f64>> {
    let rows = |e: &serde_json::Value, key: &str| serde_json::from_value::<Vec<Vec<f32>>>(e.get(key)?.clone()).ok();
    let mut z = Vec::new();
    let mut y = Vec::new();
    for e in episodes.iter() {
        if let (Some(l), Some(p)) = (rows(e, "latent"), rows(e, "path")) {
            z.extend(l);
            y.extend(p);
        }
    }
    let d = z.first()?.len();
    if z.len() < d + 2 || z.iter().any(|r| r.len() != d) {
        return None;
    }
    let zm = ndarray::Array2::from_shape_vec((z.len(), d), z.concat()).ok()?;
    let ym = ndarray::Array2::from_shape_vec((y.len(), 2), y.iter().flat_map(|p| [p[0], p.get(1).copied().unwrap_or(0.0)]).collect()).ok()?;
    let probe = ami_learn::LinearProbe::fit(zm.view(), ym.view(), 1e-3).ok()?;
    for e in episodes.iter_mut() {
        if let Some(l) = rows(e, "latent") {
            let lm = ndarray::Array2::from_shape_vec((l.len(), d), l.concat()).ok()?;
            let decoded: Vec<[f32; 2]> = probe.predict(lm.view()).rows().into_iter().map(|r| [r[0], r[1]]).collect();
            e["decoded"] = serde_json::json!(decoded);
        }
    }
    probe.r2(zm.view(), ym.view()).ok()
}

/// One evaluation episode's line.
fn eval_line(seed: u64, r: &ami_agents::EpisodeResult) -> String {
    format!("  eval seed {:>3}: return {:>10.3}  steps {:>4}  plan {:.2} ms/step{}", seed, r.episode_return, r.steps, r.mean_plan_ms, mode_note(r))
}

/// An evaluation's summary line and its `--json` object.
fn eval_summary(after: usize, seeds: &[u64], results: &[ami_agents::EpisodeResult]) -> (String, serde_json::Value) {
    let mut modes = ModeCounts::default();
    results.iter().for_each(|r| modes.add(r));
    let rets: Vec<f64> = results.iter().map(|r| r.episode_return).collect();
    let mean = rets.iter().sum::<f64>() / rets.len().max(1) as f64;
    let mut outcomes = Outcomes::default();
    results.iter().for_each(|r| outcomes.add(r));
    let line = format!("evaluation after {after} episode(s): mean return {mean:.3} over {} seed(s){}{}", rets.len(), modes.note(), outcomes.note());
    let mut json = serde_json::json!({ "after_episode": after, "seeds": seeds, "returns": rets, "mean_return": mean, "modes": modes.json() });
    outcomes.write(&mut json);
    (line, json)
}

/// Per episode: whether it succeeded (tasks with a success criterion) and
/// its world-model evaluations per decision.
#[derive(Debug, Default, Clone)]
struct Outcomes {
    success: Vec<Option<bool>>,
    evaluations: Vec<f64>,
    /// Where the non-finite values the actor's planning skipped came from.
    non_finite: ami_core::modules::NonFiniteTally,
}

impl Outcomes {
    fn add(&mut self, r: &ami_agents::EpisodeResult) {
        self.success.push(r.success);
        self.evaluations.push(r.evaluations_per_decision());
        self.non_finite.merge(&r.non_finite);
    }
    /// The success rate, when every episode has a success criterion.
    fn rate(&self) -> Option<f64> {
        let known: Option<Vec<bool>> = self.success.iter().copied().collect();
        known.filter(|k| !k.is_empty()).map(|k| k.iter().filter(|&&b| b).count() as f64 / k.len() as f64)
    }
    fn mean_evaluations(&self) -> f64 {
        self.evaluations.iter().sum::<f64>() / self.evaluations.len().max(1) as f64
    }
    /// `; success N/M (P%)` and the evaluations per decision.
    fn note(&self) -> String {
        let mut note = String::new();
        if let Some(rate) = self.rate() {
            let n = self.success.iter().filter(|s| **s == Some(true)).count();
            note += &format!("; success {n}/{} ({:.0}%)", self.success.len(), 100.0 * rate);
        }
        if self.mean_evaluations() > 0.0 {
            note += &format!("; {:.0} world-model evaluations per decision", self.mean_evaluations());
        }
        if !self.non_finite.is_empty() {
            note += &format!("; samples skipped for non-finite energy from {}", self.non_finite.describe());
        }
        note
    }
    fn write(&self, out: &mut serde_json::Value) {
        out["success"] = serde_json::json!(self.success);
        out["success_rate"] = serde_json::json!(self.rate());
        out["evaluations_per_decision"] = serde_json::json!(self.evaluations);
        out["mean_evaluations_per_decision"] = serde_json::json!(self.mean_evaluations());
        // Rows of each module's output that were non-finite while planning.
        let counts: serde_json::Map<String, serde_json::Value> = self.non_finite.modules.iter().map(|(m, n)| (m.clone(), serde_json::json!(n))).collect();
        out["non_finite"] = serde_json::Value::Object(counts);
    }
}

/// How many decisions each mode made, and their total wall time.
#[derive(Debug, Default, Clone, Copy)]
struct ModeCounts {
    reactive: (u64, f64),
    planned: (u64, f64),
    explored: u64,
}

impl ModeCounts {
    fn add(&mut self, r: &ami_agents::EpisodeResult) {
        self.reactive.0 += r.reactive.0;
        self.reactive.1 += r.reactive.1 * r.reactive.0 as f64;
        self.planned.0 += r.planned.0;
        self.planned.1 += r.planned.1 * r.planned.0 as f64;
        self.explored += r.explored.0;
    }
    fn mean(x: (u64, f64)) -> f64 {
        if x.0 == 0 {
            0.0
        } else {
            x.1 / x.0 as f64
        }
    }
    /// ` (Mode-1 ..% of decisions ...)` when a policy acted at all.
    fn note(&self) -> String {
        let all = self.reactive.0 + self.planned.0;
        if self.reactive.0 == 0 || all == 0 {
            return String::new();
        }
        format!(
            "; Mode-1 {:.1}% of {all} decisions ({:.3} ms each), Mode-2 {:.1}% ({:.2} ms each)",
            100.0 * self.reactive.0 as f64 / all as f64,
            Self::mean(self.reactive),
            100.0 * self.planned.0 as f64 / all as f64,
            Self::mean(self.planned)
        )
    }
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "reactive": self.reactive.0, "planned": self.planned.0, "explored": self.explored,
            "reactive_ms": Self::mean(self.reactive), "planned_ms": Self::mean(self.planned),
        })
    }
}

/// `  Mode-1 N / Mode-2 M` for an episode in which a policy acted, and
/// `  explored K` for one with exploration actions.
fn mode_note(r: &ami_agents::EpisodeResult) -> String {
    let mut note = String::new();
    if let Some(ok) = r.success {
        note += if ok { "  success" } else { "  failure" };
    }
    if r.reactive.0 > 0 {
        note += &format!("  Mode-1 {} / Mode-2 {}", r.reactive.0, r.planned.0);
    }
    if r.explored.0 > 0 {
        note += &format!("  explored {}", r.explored.0);
    }
    note
}

/// Adds what plugins reported (module panics) to an episode's result: a
/// panic a module contract could only signal with NaN becomes an error
/// naming the plugin and module.
fn explain<T>(r: ami_core::Result<T>, host: Option<&ami_plugin_host::PluginHost>) -> anyhow::Result<T> {
    let log = host.map(|h| h.poison_reports()).unwrap_or_default();
    match r {
        Ok(v) if log.is_empty() => Ok(v),
        Ok(_) => anyhow::bail!("{}", log.join("\n")),
        Err(e) if log.is_empty() => Err(e.into()),
        Err(e) => Err(anyhow::Error::new(e).context(log.join("\n"))),
    }
}
