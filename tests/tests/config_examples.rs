//! The example agent files: each validates, runs, and returns exactly what
//! the same agent composed in code returns for the same seed; the
//! sequential and parallel executors give bit-identical actions on every
//! example.

use std::path::{Path, PathBuf};

use ami_agents::tasks::TaskKind;
use ami_agents::{build_agent, load_file, load_str, registry, task_agent_toml, Agent, AgentBuilder, DEFAULT_AGENT};
use ami_core::Params;
use ami_graph::{executor, ExecutorKind, Value};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../agents/examples").join(name)
}

/// The standard agent for `task` composed in code: the task's parts, the
/// planner's declaration with the task's defaults.
fn code_built(task: TaskKind, planner: &str) -> Agent {
    let spec = task.spec();
    let decl = ami_planners::decl::find(planner).unwrap();
    let p = decl.build_with(&task.planner_defaults(planner), &spec.env.action_space(), None).unwrap();
    let mut b = AgentBuilder::boxed(spec.env).model_handle(ami_core::ModelHandle::new(spec.model)).cost(spec.cost).boxed_planner(p);
    if let Some(g) = spec.goal {
        b = b.goal(g);
    }
    b.build().unwrap()
}

#[test]
fn example_files_return_what_the_code_built_agents_return() {
    for (file, task) in [("pendulum.toml", TaskKind::Pendulum), ("cartpole.toml", TaskKind::CartPole), ("pointmass.toml", TaskKind::PointMass)] {
        let g = load_file(&example(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(g.task.name, task.name());
        let seed = g.config.seeds[0];
        let mut from_file = Agent::from_agent_graph(g, ExecutorKind::Sequential).unwrap();
        let mut in_code = code_built(task, "cem");
        let a = from_file.run_episode(seed, |_| {}).unwrap();
        let b = in_code.run_episode(seed, |_| {}).unwrap();
        assert_eq!(a.episode_return.to_bits(), b.episode_return.to_bits(), "{file}: {} vs {}", a.episode_return, b.episode_return);
        assert_eq!(a.steps, b.steps, "{file}");
        let len = |a: &Agent| a.memory().map(|m| m.lock().len());
        assert_eq!(len(&from_file), len(&in_code), "{file}");
        assert_eq!(len(&from_file), Some(a.steps), "{file}: one transition per step");
    }
}

#[test]
fn generated_task_files_match_the_code_built_agents() {
    // `ami run --task X --planner Y` goes through the same machinery.
    for planner in ["mppi", "gd"] {
        let mut a = build_agent(TaskKind::PointMass, planner).unwrap();
        let mut b = code_built(TaskKind::PointMass, planner);
        let (ra, rb) = (a.run_episode(4, |_| {}).unwrap(), b.run_episode(4, |_| {}).unwrap());
        assert_eq!(ra.episode_return.to_bits(), rb.episode_return.to_bits(), "{planner}");
    }
    // The default agent is the pendulum example, embedded, and the same
    // agent as the one generated for --task pendulum --planner cem.
    assert_eq!(DEFAULT_AGENT, std::fs::read_to_string(example("pendulum.toml")).unwrap());
    let generated = load_str(&task_agent_toml(TaskKind::Pendulum, "cem", &registry()).unwrap(), "generated.toml").unwrap();
    let default = load_str(DEFAULT_AGENT, "pendulum.toml").unwrap();
    assert_eq!(default.graph.to_dot(), generated.graph.to_dot());
    let params = |g: &ami_config::AgentGraph| -> Vec<(String, Params)> {
        let r = registry();
        g.config
            .nodes
            .iter()
            .map(|n| {
                let imp = r.of_kind(n.kind.parse().unwrap()).find(|i| i.name == n.implementation).unwrap();
                let given: Vec<_> = n.params.iter().map(|p| (p.name.clone(), p.value.clone())).collect();
                (n.name.clone(), Params::validate(&imp.params, &given).unwrap())
            })
            .collect()
    };
    assert_eq!(params(&default), params(&generated));
    let err = task_agent_toml(TaskKind::CartPole, "nope", &registry()).unwrap_err().to_string();
    assert!(err.contains("unknown planner `nope` (registered: cem, mppi, gd, cem-discrete, beam)"), "{err}");
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
    assert!(files.len() >= 6, "{files:?}");
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

#[test]
fn a_quadratic_cost_node_is_planned_under_and_checks_its_widths() {
    // pendulum.toml with its task cost replaced by a quadratic one towards
    // upright (cos 1, sin 0, at rest) that the actor plans under.
    let text = std::fs::read_to_string(example("pendulum.toml")).unwrap();
    let with = |params: &str| {
        text.replace("implementation = \"task\"\n", &format!("implementation = \"quadratic\"\nparams = {{ {params} }}\n"))
            .replace("[nodes.params]\n", "[nodes.params]\ncost = \"cost\"\n")
    };
    let good = with("state_weights = [1.0, 1.0, 0.1], action_weights = [0.001], goal = [1.0, 0.0, 0.0]");
    let graph = load_str(&good, "quadratic.toml").unwrap_or_else(|e| panic!("{e}\n{good}"));
    let mut agent = Agent::from_agent_graph(graph, ExecutorKind::Sequential).unwrap();
    let r = agent.run_episode(0, |_| {}).unwrap().episode_return;
    assert!(r > -400.0, "the pendulum swings up under the quadratic cost: return {r}");
    for (params, needle) in [
        ("state_weights = [1.0, 1.0]", "parameter `state_weights`: needs 3 entries (the state width), got 2"),
        ("state_weights = [1.0, 1.0, 0.1], action_weights = [0.1, 0.1]", "needs 1 entries (the action width), got 2"),
        ("state_weights = [1.0, 1.0, 0.1], goal = [1.0]", "parameter `goal`: needs 3 entries (the state width), got 1"),
    ] {
        let err = load_str(&with(params), "quadratic.toml").unwrap_err().to_string();
        assert!(err.contains("node `cost`") && err.contains(needle), "{params}: {err}");
    }
}
