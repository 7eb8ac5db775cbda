//! ami-core's built-in implementations: identity perception, the schedule
//! and waypoint configurators, the CEM and MPPI planning actors, the task
//! cost and the ring memory.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ndarray::ArrayView1;
use serde::Deserialize;

use super::params::{ParamSpec, ParamType, ParamValue, Params};
use super::registry::{BuildContext, Built, Implementation, ModuleKind, Registry, TaskResources};
use crate::error::{CoreError, Result};
use crate::graph::{shared_cost, ActorNode, ConfiguratorNode, CostNode, MemoryNode, PerceptionNode, PortType};
use crate::graph::{Node, NodePorts};
use crate::modules::{Configurator, IdentityPerception, Modulation, RingMemory, ScheduleConfigurator};
use crate::planner::{Budget, Cem, CemConfig, Mppi, MppiConfig, Planner, PlanningActor};

fn ports_of(node: &dyn Node) -> NodePorts {
    node.ports()
}

/// One timed event of the `schedule` configurator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Event {
    tick: u64,
    #[serde(default)]
    goal: Option<Vec<f32>>,
    #[serde(default)]
    clear_goal: bool,
    #[serde(default)]
    weights: BTreeMap<String, f32>,
    #[serde(default)]
    iterations: Option<usize>,
    #[serde(default)]
    deadline_ms: Option<f64>,
    #[serde(default)]
    horizon: Option<usize>,
}

fn check_goal(task: &TaskResources, g: &[f32], field: &str) -> Result<()> {
    let dim = task.model.state_dim();
    if g.len() != dim {
        return Err(CoreError::config(field, format!("the goal must have {dim} entries (the state width), got {}", g.len())));
    }
    Ok(())
}

fn schedule_events(task: &TaskResources, params: &Params) -> Result<Vec<(u64, Modulation)>> {
    let mut out = Vec::new();
    let goal = params.f32_list_opt("goal")?.or_else(|| task.goal.clone());
    if let Some(g) = goal {
        check_goal(task, &g, "goal")?;
        out.push((0, Modulation::Goal(Some(g))));
    }
    let events: Vec<Event> = params.deserialize("events")?.unwrap_or_default();
    let terms: Vec<String> = (task.cost)().term_names().iter().map(|s| s.to_string()).collect();
    for (k, e) in events.iter().enumerate() {
        let bad = |m: String| CoreError::config("events", format!("event {k} (tick {}): {m}", e.tick));
        if let Some(g) = &e.goal {
            check_goal(task, g, "events").map_err(|err| bad(err.to_string()))?;
            if g.iter().any(|x| !x.is_finite()) {
                return Err(bad("the goal must be finite".into()));
            }
            out.push((e.tick, Modulation::Goal(Some(g.clone()))));
        }
        if e.clear_goal {
            out.push((e.tick, Modulation::Goal(None)));
        }
        for (term, &w) in &e.weights {
            if !terms.contains(term) {
                return Err(bad(format!("unknown cost term `{term}` (the task's terms: {})", terms.join(", "))));
            }
            if !w.is_finite() {
                return Err(bad(format!("weight of `{term}` must be finite")));
            }
            out.push((e.tick, Modulation::CostWeight { term: term.clone(), weight: w }));
        }
        match (e.iterations, e.deadline_ms) {
            (Some(0), _) => return Err(bad("iterations must be at least 1".into())),
            (Some(it), d) => {
                let deadline = match d {
                    Some(ms) if ms > 0.0 && ms.is_finite() && ms < 1e9 => Some(Duration::from_secs_f64(ms / 1e3)),
                    Some(ms) => return Err(bad(format!("deadline_ms must be positive and finite, got {ms}"))),
                    None => None,
                };
                out.push((e.tick, Modulation::Budget(Budget { iterations: it, deadline })));
            }
            (None, Some(_)) => return Err(bad("a budget change needs `iterations` (and optionally `deadline_ms`)".into())),
            (None, None) => {}
        }
        match e.horizon {
            Some(0) => return Err(bad("horizon must be at least 1".into())),
            Some(h) if h > 10_000 => return Err(bad(format!("horizon must be at most 10000, got {h}"))),
            Some(h) => out.push((e.tick, Modulation::Horizon(h))),
            None => {}
        }
    }
    Ok(out)
}

/// A slow, high-level configurator: every call it sets the goal to a
/// waypoint at most `step` away from the current state on its first `dims`
/// coordinates, on the way to the final goal (the remaining coordinates are
/// the final goal's). Run it every n ticks (in the background) above a fast
/// planning actor.
#[derive(Debug, Clone)]
pub struct WaypointConfigurator {
    goal: Vec<f32>,
    step: f32,
    dims: usize,
}

impl WaypointConfigurator {
    /// Waypoints towards `goal`, at most `step` apart on the first `dims`
    /// coordinates.
    pub fn new(goal: Vec<f32>, step: f32, dims: usize) -> Self {
        Self { goal, step, dims }
    }
}

impl Configurator for WaypointConfigurator {
    fn configure(&mut self, _tick: u64, state: ArrayView1<'_, f32>) -> Vec<Modulation> {
        let d = self.dims.min(state.len()).min(self.goal.len());
        let dist = (0..d).map(|i| (self.goal[i] - state[i]).powi(2)).sum::<f32>().sqrt();
        let scale = if dist > self.step { self.step / dist } else { 1.0 };
        let mut w = self.goal.clone();
        for i in 0..d {
            w[i] = state[i] + (self.goal[i] - state[i]) * scale;
        }
        vec![Modulation::Goal(Some(w))]
    }
}

fn int(v: usize) -> ParamValue {
    ParamValue::Int(v as i64)
}

fn float(v: f32) -> ParamValue {
    ParamValue::Float(f64::from(v))
}

fn cem_params() -> Vec<ParamSpec> {
    let d = CemConfig::default();
    vec![
        ParamSpec::new("horizon", ParamType::int(1, 1000), "planning horizon in steps").default(int(d.horizon)),
        ParamSpec::new("samples", ParamType::int(1, 65_536), "action sequences sampled per iteration").default(int(d.samples)),
        ParamSpec::new("iterations", ParamType::int(1, 1000), "iterations per planning call").default(int(d.iterations)),
        ParamSpec::new("elites", ParamType::int(1, 65_536), "lowest-energy samples the distribution is refit on (<= samples)").default(int(d.elites)),
        ParamSpec::new("init_std", ParamType::float(0.0, 1e6), "initial standard deviation, in action units").default(float(d.init_std)),
        ParamSpec::new("min_std", ParamType::float(0.0, 1e6), "floor on the refit standard deviation").default(float(d.min_std)),
        ParamSpec::new("momentum", ParamType::float(0.0, 0.999), "smoothing of the refit").default(float(d.momentum)),
        ParamSpec::new("warm_start", ParamType::Bool, "start from the previous plan shifted by one step").default(ParamValue::Bool(d.warm_start)),
        ParamSpec::new("return_best", ParamType::Bool, "return the best sample seen instead of the final mean").default(ParamValue::Bool(d.return_best)),
        ParamSpec::new("deadline_ms", ParamType::float(1e-3, 1e9), "wall-clock deadline per planning call (ms)"),
    ]
}

fn mppi_params() -> Vec<ParamSpec> {
    let d = MppiConfig::default();
    vec![
        ParamSpec::new("horizon", ParamType::int(1, 1000), "planning horizon in steps").default(int(d.horizon)),
        ParamSpec::new("samples", ParamType::int(1, 65_536), "action sequences sampled per iteration").default(int(d.samples)),
        ParamSpec::new("iterations", ParamType::int(1, 1000), "iterations per planning call").default(int(d.iterations)),
        ParamSpec::new("temperature", ParamType::float(1e-9, 1e9), "temperature lambda of the softmax weights").default(float(d.temperature)),
        ParamSpec::new("noise_std", ParamType::float(0.0, 1e6), "standard deviation of the sampling noise").default(float(d.noise_std)),
        ParamSpec::new("warm_start", ParamType::Bool, "start from the previous plan shifted by one step").default(ParamValue::Bool(d.warm_start)),
        ParamSpec::new("deadline_ms", ParamType::float(1e-3, 1e9), "wall-clock deadline per planning call (ms)"),
    ]
}

fn actor_node(ctx: &BuildContext<'_>, planner: Box<dyn Planner>) -> Result<Built> {
    let task = ctx.task()?;
    let actor = PlanningActor::new(planner, task.model.clone());
    Ok(Built::node(ActorNode::new(Box::new(actor), shared_cost((task.cost)()))))
}

/// Registers ami-core's built-ins.
pub(crate) fn register(r: &mut Registry) {
    let cost = || shared_cost(crate::modules::Cost::new());
    let perception_ports = ports_of(&PerceptionNode::new(Arc::new(IdentityPerception::new(1))));
    let configurator_ports = ports_of(&ConfiguratorNode::new(Box::new(ScheduleConfigurator::default())));
    let actor_ports = NodePorts::new()
        .input("state", PortType::State, true)
        .input("modulation", PortType::Modulation, false)
        .input("done", PortType::Done, false)
        .output("action", PortType::Action)
        .output("plan_ms", PortType::Scalar);
    let cost_ports = ports_of(&CostNode::new(cost()));
    let memory_ports = NodePorts::new()
        .input("state", PortType::State, true)
        .input("prev_state", PortType::State, false)
        .input("prev_action", PortType::Action, false)
        .input("cost", PortType::Cost, false);

    let all = [
        Implementation::new(ModuleKind::Perception, "identity", "the observation is the state", perception_ports, vec![], |ctx, _| {
            Ok(Built::node(PerceptionNode::new(Arc::new(IdentityPerception::new(ctx.task()?.obs_dim)))))
        }),
        Implementation::new(
            ModuleKind::Configurator,
            "schedule",
            "emits the goal at tick 0 and timed modulations (goal, cost weights, planner budget, horizon)",
            configurator_ports.clone(),
            vec![
                ParamSpec::new("goal", ParamType::FloatList { min_len: 1, max_len: 4096 }, "goal set at tick 0 (default: the task's goal, if any)"),
                ParamSpec::new(
                    "events",
                    ParamType::Structured { what: "an array of tables {tick, goal?, clear_goal?, weights?, iterations?, deadline_ms?, horizon?}".into() },
                    "timed modulations",
                ),
            ],
            |ctx, params| {
                let events = schedule_events(ctx.task()?, params)?;
                Ok(Built::node(ConfiguratorNode::new(Box::new(ScheduleConfigurator::new(events)))))
            },
        ),
        Implementation::new(
            ModuleKind::Configurator,
            "waypoints",
            "sets the goal to a waypoint at most `step` from the state on the way to the final goal (a slow, high-level node)",
            configurator_ports,
            vec![
                ParamSpec::new("goal", ParamType::FloatList { min_len: 1, max_len: 4096 }, "final goal (default: the task's goal)"),
                ParamSpec::new("step", ParamType::float(1e-6, 1e6), "largest distance of a waypoint from the state").default(ParamValue::Float(0.5)),
                ParamSpec::new("dims", ParamType::int(1, 4096), "leading state coordinates that are positions").default(ParamValue::Int(2)),
            ],
            |ctx, params| {
                let task = ctx.task()?;
                let goal =
                    params.f32_list_opt("goal")?.or_else(|| task.goal.clone()).ok_or_else(|| CoreError::config("goal", "the task has no goal: set `goal`"))?;
                check_goal(task, &goal, "goal")?;
                let step = params.f32("step")?;
                Ok(Built::node(ConfiguratorNode::new(Box::new(WaypointConfigurator::new(goal, step, params.usize("dims")?)))))
            },
        ),
        Implementation::new(ModuleKind::Actor, "cem", "Mode-2 planning with the cross-entropy method", actor_ports.clone(), cem_params(), |ctx, p| {
            let cfg = CemConfig {
                horizon: p.usize("horizon")?,
                samples: p.usize("samples")?,
                iterations: p.usize("iterations")?,
                elites: p.usize("elites")?,
                init_std: p.f32("init_std")?,
                min_std: p.f32("min_std")?,
                momentum: p.f32("momentum")?,
                warm_start: p.bool("warm_start")?,
                return_best: p.bool("return_best")?,
                deadline_ms: p.f64_opt("deadline_ms")?,
            };
            actor_node(ctx, Box::new(Cem::new(cfg, ctx.task()?.bounds.clone())?))
        }),
        Implementation::new(ModuleKind::Actor, "mppi", "Mode-2 planning with model-predictive path integral control", actor_ports, mppi_params(), |ctx, p| {
            let cfg = MppiConfig {
                horizon: p.usize("horizon")?,
                samples: p.usize("samples")?,
                iterations: p.usize("iterations")?,
                temperature: p.f32("temperature")?,
                noise_std: p.f32("noise_std")?,
                warm_start: p.bool("warm_start")?,
                deadline_ms: p.f64_opt("deadline_ms")?,
            };
            actor_node(ctx, Box::new(Mppi::new(cfg, ctx.task()?.bounds.clone())?))
        }),
        Implementation::new(ModuleKind::Cost, "task", "the task's intrinsic cost of each observed transition", cost_ports, vec![], |ctx, _| {
            Ok(Built::node(CostNode::new(shared_cost((ctx.task()?.cost)()))))
        }),
        Implementation::new(
            ModuleKind::Memory,
            "ring",
            "a bounded ring of observed transitions, saved at the end of each episode if `save_path` is set",
            memory_ports,
            vec![
                ParamSpec::new("capacity", ParamType::int(1, 1_000_000), "transitions kept").default(ParamValue::Int(10_000)),
                ParamSpec::new("save_path", ParamType::string(), "file the memory is saved to when a run finishes"),
            ],
            |ctx, p| {
                let task = ctx.task()?;
                let mem = RingMemory::new(task.model.state_dim(), task.action_dim, p.usize("capacity")?)?;
                let save = p.str_opt("save_path")?.map(PathBuf::from);
                if save.as_ref().is_some_and(|s| s.as_os_str().is_empty()) {
                    return Err(CoreError::config("save_path", "must not be empty"));
                }
                Ok(Built::node(MemoryNode::new(Box::new(mem), save)))
            },
        ),
    ];
    for imp in all {
        // Built-in names are distinct by construction.
        let _ = r.register(imp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn waypoints_step_towards_the_goal() {
        let mut w = WaypointConfigurator::new(vec![3.0, 4.0, 0.0, 0.0], 1.0, 2);
        let m = w.configure(0, array![0.0, 0.0, 5.0, 5.0].view());
        assert_eq!(m, vec![Modulation::Goal(Some(vec![0.6, 0.8, 0.0, 0.0]))]);
        let m = w.configure(0, array![2.9, 4.0, 0.0, 0.0].view());
        assert_eq!(m, vec![Modulation::Goal(Some(vec![3.0, 4.0, 0.0, 0.0]))]);
    }

    #[test]
    fn builtin_schemas_have_defaults_that_validate() {
        let r = Registry::with_core_builtins();
        for imp in r.iter() {
            for p in &imp.params {
                if let Some(d) = &p.default {
                    assert!(Params::validate(std::slice::from_ref(p), &[(p.name.clone(), d.clone())]).is_ok(), "{}/{}: {}", imp.kind, imp.name, p.name);
                }
            }
        }
    }
}
