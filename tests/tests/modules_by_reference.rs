//! World models, costs, critics and policies as modules an agent file
//! selects and other nodes refer to by name; new versions of a shared
//! module published while the agent runs.

use std::path::Path;
use std::sync::Arc;

use ami_agents::{load_str, Agent, AgentBuilder, DEFAULT_AGENT};
use ami_core::{ModelHandle, ProblemKind};
use ami_graph::ExecutorKind;

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../agents/examples")
}

/// The point-mass example with extra nodes and actor parameters.
fn pointmass_with(extra_nodes: &str, actor: &str) -> String {
    let base = std::fs::read_to_string(examples().join("pointmass.toml")).unwrap();
    let base = base.replace("implementation = \"cem\"\n[nodes.params]\n", &format!("implementation = \"cem\"\n[nodes.params]\n{actor}\n"));
    base.replacen("[[edges]]", &format!("{extra_nodes}\n[[edges]]"), 1)
}

fn final_distance(text: &str, seed: u64) -> f32 {
    let g = load_str(text, "agent.toml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut agent = Agent::from_agent_graph(g, ExecutorKind::Sequential).unwrap();
    agent.run_episode(seed, |_| {}).unwrap();
    let obs = agent.executor().output("env", "observation").unwrap().as_vector().unwrap().to_owned();
    ((obs[0] - 1.0).powi(2) + (obs[1] - 1.0).powi(2)).sqrt()
}

const TRUE_MODEL: &str = "[[nodes]]\nname = \"dynamics\"\nkind = \"world_model\"\nimplementation = \"task\"\n";

#[test]
fn a_planner_plans_through_the_world_model_node_it_names() {
    let text = pointmass_with(TRUE_MODEL, "model = \"dynamics\"");
    let g = load_str(&text, "agent.toml").unwrap();
    assert!(g.models.contains_key("dynamics"));
    // The reference is an edge of the graph, drawn dotted.
    assert!(
        g.graph.to_dot().contains("\"dynamics\":\"o_model\" -> \"actor\":\"i_model\" [style=dotted, arrowhead=odot, label=\"uses\"]"),
        "{}",
        g.graph.to_dot()
    );
    // Naming the task's true model explicitly is the same agent as the default.
    let plain = std::fs::read_to_string(examples().join("pointmass.toml")).unwrap();
    assert_eq!(final_distance(&text, 3).to_bits(), final_distance(&plain, 3).to_bits());
    // The workload example: an `mlp` world model from safetensors.
    let g = ami_agents::load_file(&examples().join("workload.toml")).unwrap();
    let mut agent = Agent::from_agent_graph(g, ExecutorKind::Sequential).unwrap();
    let r = agent.run_episode(0, |_| {}).unwrap();
    assert_eq!(r.steps, 50);
    let plan = agent.handles().actor.as_ref().unwrap().stats().last_plan.unwrap();
    assert_eq!(plan.actions.dim(), (16, 2));
}

#[test]
fn references_to_missing_or_wrong_nodes_are_problems_with_their_line() {
    let text = pointmass_with(TRUE_MODEL, "model = \"dynamix\"");
    let err = load_str(&text, "agent.toml").unwrap_err();
    let problems = err.problems().unwrap();
    let p = problems.iter().find(|p| p.kind == ProblemKind::UnknownReference).unwrap_or_else(|| panic!("{err}"));
    assert_eq!(p.node.as_deref(), Some("actor"));
    assert_eq!(p.port.as_deref(), Some("model"));
    assert!(p.to_string().contains("parameter `model`: no world_model node named `dynamix` (world_model nodes: dynamics)"), "{p}");
    let line = text.lines().position(|l| l.starts_with("model = ")).unwrap() + 1;
    assert_eq!(p.location.as_ref().and_then(|l| l.line), Some(line));
    // A bad reference is reported even when another parameter is refused too.
    let err = load_str(&pointmass_with(TRUE_MODEL, "model = \"dynamix\"").replace("samples = 128", "samples = 0"), "agent.toml").unwrap_err().to_string();
    assert!(err.contains("no world_model node named `dynamix`") && err.contains("parameter `samples`: must be in 1..=65536, got 0"), "{err}");
    // A reference to a node of another kind.
    let err = load_str(&pointmass_with("", "model = \"memory\""), "agent.toml").unwrap_err().to_string();
    assert!(err.contains("parameter `model`: node `memory` is a memory node, not a world_model node"), "{err}");
}

#[test]
fn a_planner_may_share_a_cost_node_and_is_ordered_after_it() {
    let text = pointmass_with("", "cost = \"cost\"");
    let g = load_str(&text, "agent.toml").unwrap();
    assert!(g.graph.to_dot().contains("\"cost\":\"o_shared\" -> \"actor\":\"i_cost\" [style=dotted"), "{}", g.graph.to_dot());
    let levels = g.graph.levels();
    let level = |n: &str| levels.iter().position(|l| l.contains(&n)).unwrap();
    assert!(level("cost") < level("actor"), "{levels:?}");
    // Sharing the task cost plans exactly as the actor's own copy does.
    let plain = std::fs::read_to_string(examples().join("pointmass.toml")).unwrap();
    assert_eq!(final_distance(&text, 2).to_bits(), final_distance(&plain, 2).to_bits());
    // A critic goes on the actor's own cost, never on a shared one.
    let critic = "[[nodes]]\nname = \"value\"\nkind = \"critic\"\nimplementation = \"quadratic\"\nparams = { weights = [1.0, 1.0, 0.1, 0.1] }\n";
    let err = load_str(&pointmass_with(critic, "cost = \"cost\"\ncritic = \"value\""), "agent.toml").unwrap_err().to_string();
    assert!(err.contains("a critic is added to the actor's own cost"), "{err}");
}

#[test]
fn a_critic_node_is_the_terminal_cost_of_a_short_horizon() {
    let critic = "[[nodes]]\nname = \"value\"\nkind = \"critic\"\nimplementation = \"quadratic\"\nparams = { weights = [5.0, 5.0, 0.5, 0.5] }\n";
    let short = |extra: &str, actor: &str| pointmass_with(extra, &format!("{actor}\n")).replace("horizon = 20", "horizon = 2");
    let with_critic = short(critic, "critic = \"value\"");
    let g = load_str(&with_critic, "agent.toml").unwrap();
    assert!(g.graph.to_dot().contains("\"value\":\"o_critic\" -> \"actor\":\"i_critic\""));
    // Over a 2-step horizon the goal barely registers; the critic's value of
    // the final state pulls the plan towards it.
    let (d_critic, d_plain): (f32, f32) =
        (0..3).map(|s| (final_distance(&with_critic, s), final_distance(&short("", ""), s))).fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!(d_critic < 0.8 * d_plain, "with critic {d_critic}, without {d_plain}");
    // The critic's width is checked against the state's.
    let bad = with_critic.replace("weights = [5.0, 5.0, 0.5, 0.5]", "weights = [5.0, 5.0]");
    let err = load_str(&bad, "agent.toml").unwrap_err().to_string();
    assert!(err.contains("parameter `weights`: needs 4 entries (the state width), got 2"), "{err}");
}

#[test]
fn a_policy_node_acts_alone_in_mode_1() {
    let text = DEFAULT_AGENT
        .replace("implementation = \"pendulum\"", "implementation = \"pointmass\"")
        .replace(
            "[[nodes]]\nname = \"actor\"\nkind = \"actor\"\nimplementation = \"cem\"\n[nodes.params]\n",
            "[[nodes]]\nname = \"pd\"\nkind = \"policy\"\nimplementation = \"linear\"\nparams = { gain = [[-2.0, 0.0, -1.5, 0.0], [0.0, -2.0, 0.0, -1.5]], reference = [1.0, 1.0, 0.0, 0.0] }\n\n[[nodes]]\nname = \"actor\"\nkind = \"actor\"\nimplementation = \"policy\"\n[nodes.params]\npolicy = \"pd\"\n[nodes.unused]\n",
        );
    // Drop the planner's parameters that followed (they belong to cem).
    let text: String = {
        let mut out = Vec::new();
        let mut skip = false;
        for l in text.lines() {
            if l == "[nodes.unused]" {
                skip = true;
                continue;
            }
            if skip && (l.is_empty() || l.starts_with('[')) {
                skip = false;
            }
            if !skip {
                out.push(l);
            }
        }
        out.join("\n")
    };
    assert!(final_distance(&text, 5) < 0.1, "{text}");
}

#[test]
fn new_model_weights_published_while_running_are_planned_with() {
    use ami_agents::tasks::{PointMass, PointMassModel};
    use ami_core::Bounds;
    // A model that ignores actions: the planner learns nothing from it.
    let dead = ami_core::LinearModel::new(ndarray::Array2::eye(4), ndarray::Array2::zeros((4, 2))).unwrap();
    let handle = ModelHandle::of(dead);
    let cem =
        ami_planners::Cem::new(ami_planners::CemConfig { horizon: 15, samples: 128, iterations: 3, ..Default::default() }, Bounds::symmetric(2, 1.0)).unwrap();
    let env = PointMass::new();
    let goal = env.goal_state().to_vec();
    let mut agent = AgentBuilder::new(env).model_handle(handle.clone()).cost(ami_agents::tasks::pointmass::cost()).goal(goal).planner(cem).build().unwrap();
    let blind = agent.run_episode(1, |_| {}).unwrap().episode_return;
    // Publish the true dynamics between episodes: the same agent now plans.
    assert_eq!(handle.publish_model(Arc::new(PointMassModel)).unwrap(), 1);
    assert_eq!(agent.handles().model.as_ref().unwrap().get().state_dim(), 4);
    let sighted = agent.run_episode(1, |_| {}).unwrap().episode_return;
    assert!(sighted > blind + 10.0, "blind {blind}, sighted {sighted}");
    // The world-model node reports the version on its reference port.
    assert_eq!(agent.executor().output("world_model", "model").and_then(|v| v.as_scalar()), Some(1.0));
}
