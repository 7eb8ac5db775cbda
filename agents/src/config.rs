//! Agent files for the built-in tasks: the registry with ami-core's
//! built-ins plus the built-in environments, the embedded default agent
//! file, and agent files generated for `--task X --planner Y`.
//!
//! ```
//! use ami_agents::config::{load_str, DEFAULT_AGENT};
//!
//! let agent = load_str(DEFAULT_AGENT, "pendulum.toml").unwrap();
//! assert_eq!(agent.environment, "env");
//! assert_eq!(agent.config.seeds, (0..10).collect::<Vec<u64>>());
//! ```

use std::path::Path;
use std::sync::Arc;

use ami_core::config::{AgentGraph, Built, Implementation, ModuleKind, ParamSpec, ParamType, Registry, TaskResources};
use ami_core::graph::{Node, NodePorts, PortType};
use ami_core::{CemConfig, MppiConfig};

use crate::agent::{default_cem, default_mppi, EnvNode, PlannerKind};
use crate::tasks::{pointmass, PointMass, TaskKind};

/// The default agent (`ami run` without a file): Pendulum swing-up with CEM.
pub const DEFAULT_AGENT: &str = include_str!("../examples/pendulum.toml");

/// The ports of every built-in environment node.
pub fn environment_ports() -> NodePorts {
    NodePorts::new()
        .input("action", PortType::Action, false)
        .output("observation", PortType::Observation)
        .output("reward", PortType::Reward)
        .output("done", PortType::Done)
}

fn task_resources(kind: TaskKind, goal: Option<[f32; 2]>) -> (EnvNode, TaskResources) {
    let mut spec = kind.spec();
    let mut goal_state = spec.goal.clone();
    if let (Some(g), TaskKind::PointMass) = (goal, kind) {
        let env = PointMass::new().with_goal(g);
        goal_state = Some(env.goal_state().to_vec());
        spec.env = Box::new(env);
    }
    let cost_goal = goal_state.clone();
    let cost: Arc<dyn Fn() -> ami_core::Cost + Send + Sync> = Arc::new(move || {
        let mut c = match kind {
            TaskKind::PointMass => pointmass::cost(),
            k => k.spec().cost,
        };
        c.set_goal(cost_goal.clone().map(ndarray::Array1::from));
        c
    });
    let res = TaskResources {
        name: kind.name().to_string(),
        obs_dim: spec.env.obs_dim(),
        action_dim: spec.env.action_dim(),
        bounds: spec.env.action_bounds(),
        model: spec.model,
        cost,
        goal: goal_state,
    };
    (EnvNode::new(spec.env), res)
}

/// Adds the built-in environments (`pendulum`, `cartpole`, `pointmass`) to
/// `registry`.
pub fn register_environments(registry: &mut Registry) -> ami_core::Result<()> {
    for kind in TaskKind::ALL {
        let params = match kind {
            TaskKind::PointMass => {
                vec![ParamSpec::new("goal", ParamType::FloatList { min_len: 2, max_len: 2 }, "goal position [x, y] (default [1, 1])")]
            }
            _ => Vec::new(),
        };
        let summary = match kind {
            TaskKind::Pendulum => "Gymnasium Pendulum-v1 (swing-up), 200 steps",
            TaskKind::CartPole => "CartPole-v1 dynamics with a continuous force, 500 steps",
            TaskKind::PointMass => "a damped 2-D point mass driven to a goal",
        };
        registry.register(Implementation::new(ModuleKind::Environment, kind.name(), summary, environment_ports(), params, move |_, p| {
            let goal = p.f32_list_opt("goal")?.map(|g| [g[0], g[1]]);
            let (node, task) = task_resources(kind, goal);
            Ok(Built { node: Box::new(node) as Box<dyn Node>, task: Some(task) })
        }))?;
    }
    Ok(())
}

/// The registry agent files are checked against: ami-core's built-ins and
/// the built-in environments. (The plugin host adds plugin modules to it
/// with [`Registry::register_plugin_module`].)
pub fn registry() -> Registry {
    let mut r = Registry::with_core_builtins();
    // The environment names are distinct from one another and from the core's.
    let _ = register_environments(&mut r);
    r
}

/// Loads and validates an agent file against [`registry`].
pub fn load_file(path: &Path) -> ami_core::Result<AgentGraph> {
    ami_core::config::load_file(path, &registry())
}

/// Validates agent file text against [`registry`]; `file` names it in
/// problem locations.
pub fn load_str(text: &str, file: &str) -> ami_core::Result<AgentGraph> {
    ami_core::config::load_str(text, file, &registry())
}

fn cem_toml(c: &CemConfig) -> String {
    let mut s = format!(
        "horizon = {}\nsamples = {}\niterations = {}\nelites = {}\ninit_std = {:?}\nmin_std = {:?}\nmomentum = {:?}\nwarm_start = {}\nreturn_best = {}\n",
        c.horizon, c.samples, c.iterations, c.elites, c.init_std, c.min_std, c.momentum, c.warm_start, c.return_best
    );
    if let Some(d) = c.deadline_ms {
        s.push_str(&format!("deadline_ms = {d:?}\n"));
    }
    s
}

fn mppi_toml(c: &MppiConfig) -> String {
    let mut s = format!(
        "horizon = {}\nsamples = {}\niterations = {}\ntemperature = {:?}\nnoise_std = {:?}\nwarm_start = {}\n",
        c.horizon, c.samples, c.iterations, c.temperature, c.noise_std, c.warm_start
    );
    if let Some(d) = c.deadline_ms {
        s.push_str(&format!("deadline_ms = {d:?}\n"));
    }
    s
}

/// The standard agent graph (the same as `agents/examples/<task>.toml`) for
/// `task` with `planner` and the task's default planner settings, as agent
/// file text. `ami run --task X --planner Y` runs this file.
pub fn task_agent_toml(task: TaskKind, planner: PlannerKind) -> String {
    let params = match planner {
        PlannerKind::Cem => cem_toml(&default_cem(task)),
        PlannerKind::Mppi => mppi_toml(&default_mppi(task)),
    };
    format!(
        r#"[agent]
name = "{task}-{planner}"
seed = 0
episodes = 10

[[nodes]]
name = "env"
kind = "environment"
implementation = "{task}"

[[nodes]]
name = "perception"
kind = "perception"
implementation = "identity"

[[nodes]]
name = "configurator"
kind = "configurator"
implementation = "schedule"

[[nodes]]
name = "actor"
kind = "actor"
implementation = "{planner}"
[nodes.params]
{params}
[[nodes]]
name = "cost"
kind = "cost"
implementation = "task"

[[nodes]]
name = "memory"
kind = "memory"
implementation = "ring"
params = {{ capacity = 10000 }}

{edges}"#,
        edges = STANDARD_EDGES
    )
}

/// The edges of the standard agent graph, in agent-file form.
pub const STANDARD_EDGES: &str = r#"[[edges]]
from = "env.observation"
to = "perception.observation"

[[edges]]
from = "perception.state"
to = ["actor.state", "configurator.state", "cost.state", "memory.state"]

[[edges]]
from = "configurator.modulation"
to = ["actor.modulation", "cost.modulation"]

[[edges]]
from = "env.done"
to = "actor.done"

[[edges]]
from = "cost.cost"
to = "memory.cost"

[[edges]]
from = "actor.action"
to = ["env.action", "cost.prev_action", "memory.prev_action"]
delayed = true

[[edges]]
from = "perception.state"
to = ["cost.prev_state", "memory.prev_state"]
delayed = true
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_validate_for_every_task_and_planner() {
        for task in TaskKind::ALL {
            for planner in [PlannerKind::Cem, PlannerKind::Mppi] {
                let text = task_agent_toml(task, planner);
                let a = load_str(&text, "generated.toml").unwrap_or_else(|e| panic!("{task}/{planner}: {e}\n{text}"));
                assert_eq!(a.environment, "env");
                assert_eq!(a.actors, ["actor"]);
            }
        }
    }

    #[test]
    fn the_default_agent_is_the_generated_pendulum_cem_graph() {
        let a = load_str(DEFAULT_AGENT, "pendulum.toml").unwrap();
        let b = load_str(&task_agent_toml(TaskKind::Pendulum, PlannerKind::Cem), "generated.toml").unwrap();
        assert_eq!(a.graph.to_dot(), b.graph.to_dot());
        let params = |g: &AgentGraph| {
            g.config.nodes.iter().map(|n| (n.name.clone(), n.params.iter().map(|p| (p.name.clone(), p.value.clone())).collect::<Vec<_>>())).collect::<Vec<_>>()
        };
        let (mut pa, mut pb) = (params(&a), params(&b));
        for p in pa.iter_mut().chain(pb.iter_mut()) {
            p.1.sort_by(|x, y| x.0.cmp(&y.0));
        }
        assert_eq!(pa, pb);
    }
}
