//! The example agent files: each validates, runs, and returns exactly what
//! the code-built agent returns for the same seed; the sequential and
//! parallel executors give bit-identical actions on every example.

use std::path::{Path, PathBuf};

use ami_agents::agent::{build_agent, build_agent_with, default_cem, Agent, PlannerKind};
use ami_agents::config::{load_file, load_str, task_agent_toml, DEFAULT_AGENT};
use ami_agents::tasks::TaskKind;
use ami_core::graph::{executor, ExecutorKind, Value};
use ami_core::{Cem, Mppi, Planner};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../agents/examples").join(name)
}

fn code_built(task: TaskKind, planner: PlannerKind) -> Agent {
    let spec = task.spec();
    let bounds = spec.env.action_bounds();
    let p: Box<dyn Planner> = match planner {
        PlannerKind::Cem => Box::new(Cem::new(default_cem(task), bounds).unwrap()),
        PlannerKind::Mppi => Box::new(Mppi::new(ami_agents::agent::default_mppi(task), bounds).unwrap()),
    };
    build_agent_with(spec.env, spec.model, spec.cost, spec.goal, p).unwrap()
}

#[test]
fn example_files_return_what_the_code_built_agents_return() {
    for (file, task) in [("pendulum.toml", TaskKind::Pendulum), ("cartpole.toml", TaskKind::CartPole), ("pointmass.toml", TaskKind::PointMass)] {
        let g = load_file(&example(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(g.task.name, task.name());
        let seed = g.config.seeds[0];
        let mut from_file = Agent::from_agent_graph(g, ExecutorKind::Sequential).unwrap();
        let mut in_code = code_built(task, PlannerKind::Cem);
        let a = from_file.run_episode(seed, |_| {}).unwrap();
        let b = in_code.run_episode(seed, |_| {}).unwrap();
        assert_eq!(a.episode_return.to_bits(), b.episode_return.to_bits(), "{file}: {} vs {}", a.episode_return, b.episode_return);
        assert_eq!(a.steps, b.steps, "{file}");
        assert_eq!(from_file.memory_len(), in_code.memory_len(), "{file}");
    }
}

#[test]
fn generated_task_files_match_the_code_built_agents() {
    // `ami run --task X --planner Y` goes through the same machinery.
    let mut a = build_agent(TaskKind::PointMass, PlannerKind::Mppi).unwrap();
    let mut b = code_built(TaskKind::PointMass, PlannerKind::Mppi);
    let (ra, rb) = (a.run_episode(4, |_| {}).unwrap(), b.run_episode(4, |_| {}).unwrap());
    assert_eq!(ra.episode_return.to_bits(), rb.episode_return.to_bits());
    // The default agent is the pendulum example, embedded.
    assert_eq!(DEFAULT_AGENT, std::fs::read_to_string(example("pendulum.toml")).unwrap());
    assert!(load_str(&task_agent_toml(TaskKind::CartPole, PlannerKind::Cem), "x.toml").is_ok());
}

/// The action bits of every tick, up to `max_ticks` or the episode's end.
fn actions(file: &str, kind: ExecutorKind, seed: u64, max_ticks: u64) -> Vec<Vec<u32>> {
    let g = load_file(&example(file)).unwrap();
    let env = g.environment.clone();
    let actor = g.actors[0].clone();
    let mut exec = executor(g.graph, kind);
    exec.reset(seed).unwrap();
    let mut out = Vec::new();
    for _ in 0..max_ticks {
        exec.tick().unwrap();
        let a = exec.output(&actor, "action").and_then(Value::as_vector).map(|v| v.iter().map(|x| x.to_bits()).collect()).unwrap_or_default();
        out.push(a);
        if exec.output(&env, "done").and_then(Value::as_flag) == Some(true) {
            break;
        }
    }
    exec.finish().unwrap();
    out
}

#[test]
fn sequential_and_parallel_executors_give_bit_identical_actions() {
    let mut files: Vec<String> =
        std::fs::read_dir(example("")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.ends_with(".toml")).collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    for file in &files {
        // Whole episodes of the point-mass examples (100 steps); the first
        // 40 ticks of the longer ones keep the test fast.
        let ticks = if file.starts_with("pendulum") || file.starts_with("cartpole") { 40 } else { 1000 };
        let seq = actions(file, ExecutorKind::Sequential, 1, ticks);
        let par = actions(file, ExecutorKind::Parallel, 1, ticks);
        assert!(seq.len() > 1 && seq.iter().skip(1).all(|a| !a.is_empty()), "{file}");
        assert_eq!(seq, par, "{file}: the executors disagree");
    }
}
