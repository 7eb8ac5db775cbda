//! Adding a planner is one new file (`new_planner/shooting.rs`) and one
//! registration line; the agent-file loader then builds it, checks its
//! parameters against its declared schema, and runs it.

#[path = "new_planner/shooting.rs"]
mod shooting;

use ami_agents::tasks::TaskKind;
use ami_agents::{registry, task_agent_toml, Agent};
use ami_graph::ExecutorKind;

#[test]
fn a_planner_in_one_file_runs_from_an_agent_file() {
    let mut reg = registry();
    reg.register_planner(shooting::Shooting::declaration()).unwrap(); // the one line
    assert!(reg.planners().iter().any(|p| p == "shooting"));
    // The standard agent with the new planner, written like any other.
    let text = task_agent_toml(TaskKind::PointMass, "shooting", &reg)
        .unwrap()
        .replace("implementation = \"shooting\"\n", "implementation = \"shooting\"\n[nodes.params]\nhorizon = 15\nsamples = 400\n");
    let graph = ami_config::load_str(&text, "shooting.toml", &reg).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut agent = Agent::from_agent_graph(graph, ExecutorKind::Sequential).unwrap();
    let r = agent.run_episode(2, |_| {}).unwrap();
    // It plans: the point mass ends near the goal (1, 1) from a random start.
    let obs = agent.executor().output("env", "observation").unwrap().as_vector().unwrap().to_owned();
    let d = ((obs[0] - 1.0).powi(2) + (obs[1] - 1.0).powi(2)).sqrt();
    assert!(d < 0.3, "final distance {d}, return {}", r.episode_return);
    // Its schema is checked like the built-ins' (range and unknown names, with the line).
    let bad = text.replace("samples = 400", "samples = 0\nbogus = 1");
    let err = ami_config::load_str(&bad, "shooting.toml", &reg).unwrap_err().to_string();
    assert!(err.contains("parameter `samples`: must be in 1..=65536, got 0"), "{err}");
    assert!(err.contains("unknown parameter `bogus` for actor `shooting` (parameters: horizon, samples, model, cost, critic, critic_weight, explore_episodes, explore, explore_noise, explore_hold, policy, mode, eval_mode, teacher_episodes, propose, switch_margin, switch_tolerance, max_policy_ticks)"), "{err}");
    // Without the registration line the name is unknown, and the message
    // lists what is registered.
    let err = ami_config::load_str(&text, "shooting.toml", &registry()).unwrap_err().to_string();
    assert!(err.contains("unknown actor implementation `shooting` (registered: beam, cem, cem-discrete, gd, mppi"), "{err}");
}
