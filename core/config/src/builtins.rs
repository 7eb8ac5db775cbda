//! The composition layer's built-in implementations: identity perception,
//! the schedule and waypoint configurators, a planning actor for every
//! planner declaration (and the one check that a planner fits its model and
//! cost), the task cost, the ring memory, the `task` and `mlp` world models,
//! the `quadratic` critic, the `linear` policy and its Mode-1 actor.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ndarray::ArrayView1;
use serde::Deserialize;

use ami_core::{
    ActMode, Budget, Configurator, CoreError, IdentityPerception, Modulation, ParamSpec, ParamType, ParamValue, Params, Result, RingMemory,
    ScheduleConfigurator,
};
use ami_core::{
    Cost, Critic, CriticHandle, Handle, LinearPolicy, Planner, Policy, PolicyActor, PolicyHandle, QuadraticCritic, Shared, SharedCritic, WorldModel,
};
use ami_planners::{MlpWorldModel, PlannerDecl, PlanningActor};

use crate::nodes::{ActorNode, ConfiguratorNode, CostNode, HandleNode, MemoryNode, ModelNode, PerceptionNode};
use crate::registry::{BuildContext, Built, Implementation, ModuleKind, Registry, TaskResources};

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
    /// Mode-1 / Mode-2: `plan`, `policy`, `label` or `switch` (with
    /// `switch_margin`, `switch_tolerance`, `max_policy_ticks`).
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    switch_margin: Option<f32>,
    #[serde(default)]
    switch_tolerance: Option<f32>,
    #[serde(default)]
    max_policy_ticks: Option<usize>,
}

/// A configurator's goal must fit what the task's cost compares goals with
/// (the same check `AgentBuilder` makes), or, when no term reads a goal,
/// have the state's width.
fn check_goal(task: &TaskResources, g: &[f32], field: &str) -> Result<()> {
    let cost = task.cost_or_empty();
    if cost.intrinsic_terms().any(|(_, t, _)| t.goal_dim().is_some()) {
        return cost.check_goal(g.len()).map_err(|e| match e {
            CoreError::Config { reason, .. } => CoreError::config(field, reason),
            other => other,
        });
    }
    let dim = task.state_dim();
    if g.len() != dim {
        return Err(CoreError::config(field, format!("the goal must have {dim} entries (the state width), got {}", g.len())));
    }
    Ok(())
}

/// The most iterations (and the longest horizon) a schedule event may set:
/// the built-in planners' bound.
const MAX_EVENT_ITERATIONS: usize = 1000;

fn schedule_events(task: &TaskResources, params: &Params) -> Result<Vec<(u64, Modulation)>> {
    let mut out = Vec::new();
    let goal = params.f32_list_opt("goal")?.or_else(|| task.goal.clone());
    if let Some(g) = goal {
        check_goal(task, &g, "goal")?;
        out.push((0, Modulation::Goal(Some(g))));
    }
    let events: Vec<Event> = params.deserialize("events")?.unwrap_or_default();
    let terms: Vec<String> = task.cost_or_empty().term_names().iter().map(|s| s.to_string()).collect();
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
            // The planners' own bound: a larger budget would be refused (or
            // plan for hours) when the event fires, not now.
            (Some(it), _) if it > MAX_EVENT_ITERATIONS => {
                return Err(bad(format!("iterations {it} is more than the {MAX_EVENT_ITERATIONS} a planner runs per call")))
            }
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
        if let Some(name) = &e.mode {
            let m = match name.as_str() {
                "plan" => Modulation::Mode(ActMode::Plan),
                "policy" => Modulation::Mode(ActMode::Policy),
                "label" => Modulation::Mode(ActMode::Label),
                // Unset fields keep the actor's own switch rule.
                "switch" => {
                    let rule = ActMode::Switch {
                        margin: e.switch_margin.unwrap_or(0.0),
                        tolerance: e.switch_tolerance.unwrap_or(0.0),
                        max_policy_ticks: e.max_policy_ticks.unwrap_or(0),
                    };
                    rule.validate().map_err(|err| bad(err.to_string()))?;
                    Modulation::Switch { margin: e.switch_margin, tolerance: e.switch_tolerance, max_policy_ticks: e.max_policy_ticks }
                }
                other => return Err(bad(format!("`{other}` is not a mode (plan, policy, label or switch)"))),
            };
            if name != "switch" && (e.switch_margin.is_some() || e.switch_tolerance.is_some() || e.max_policy_ticks.is_some()) {
                return Err(bad("the switch rule's fields need `mode = \"switch\"`".into()));
            }
            out.push((e.tick, m));
        } else if e.switch_margin.is_some() || e.switch_tolerance.is_some() || e.max_policy_ticks.is_some() {
            return Err(bad("the switch rule's fields need `mode = \"switch\"`".into()));
        }
        match e.horizon {
            Some(0) => return Err(bad("horizon must be at least 1".into())),
            Some(h) if h > MAX_EVENT_ITERATIONS => return Err(bad(format!("horizon must be at most {MAX_EVENT_ITERATIONS} (the planners' bound), got {h}"))),
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

/// Checks that a planner fits the world model and cost it will plan with,
/// so a mismatch is refused when the agent is built, not at tick 0: the
/// model's action width against the environment's, and, for a planner
/// that needs gradients, a differentiable model and a cost whose weighted
/// terms and critics all have gradients. `AgentBuilder` and every planning actor of an
/// agent file use this one check.
pub fn check_planner_fits(planner: &dyn Planner, model: &dyn WorldModel, cost: &Cost, action_dim: usize) -> Result<()> {
    if model.action_dim() != action_dim || planner.action_dim() != action_dim {
        return Err(CoreError::config(
            "model",
            format!("widths disagree: environment actions {action_dim}, world model actions {}, planner actions {}", model.action_dim(), planner.action_dim()),
        ));
    }
    // A learned model of a planning level (its step many ticks or part of
    // the state) cannot stand for one tick of the agent.
    if let Some(c) = model.as_any().and_then(|a| a.downcast_ref::<ami_learn::LearnedModel>()).and_then(|l| l.chunking()) {
        return Err(CoreError::config(
            "model",
            format!(
                "the learned world model's step is {} ticks over state coordinates {:?}: a planning level's model (`dims`, `step_ticks`), not an actor's; give the actor a model of one tick of the whole state",
                c.ticks, c.dims
            ),
        ));
    }
    if planner.needs_gradients() {
        let name = planner.name();
        if model.differentiable().is_none() {
            return Err(CoreError::config(
                "model",
                format!(
                    "planner `{name}` needs gradients and the world model has none (WorldModel::differentiable is None); use a sampling planner (cem, mppi)"
                ),
            ));
        }
        if let Some(term) = cost.intrinsic_terms().find(|(_, t, w)| *w != 0.0 && t.differentiable().is_none()).map(|(n, _, _)| n.to_string()) {
            return Err(CoreError::config(
                "cost",
                format!("planner `{name}` needs gradients and cost term `{term}` has none (IntrinsicCost::differentiable is None); use a sampling planner (cem, mppi)"),
            ));
        }
        if cost.has_terminal() && !cost.is_differentiable() {
            return Err(CoreError::config(
                "critic",
                format!("planner `{name}` needs gradients and the critic has none (Critic::has_gradient is false, as for `quadratic`); use a `learned` critic, or a sampling planner (cem, mppi)"),
            ));
        }
    }
    Ok(())
}

/// The `subgoal_weight` parameter of the costs that can read subgoals.
fn subgoal_weight_param() -> ParamSpec {
    ParamSpec::new(
        "subgoal_weight",
        ParamType::float(0.0, 1e9),
        "adds a `subgoal` term (squared distance to the subgoal a `level` node sets on the `subgoal` port) with this weight",
    )
}

/// Adds the `subgoal` term if `subgoal_weight` is set.
fn add_subgoal_term(cost: &mut Cost, p: &Params, state_dim: usize) -> Result<()> {
    if let Some(w) = p.f64_opt("subgoal_weight")? {
        cost.add_intrinsic(Arc::new(ami_core::SubgoalDistance::new(state_dim)), w as f32).map_err(|e| CoreError::config("subgoal_weight", e.to_string()))?;
    }
    Ok(())
}

/// Sets the weights of the `weights` table (`{TERM = weight}`) on `cost`;
/// an unknown term or a weight that is not a finite number is refused,
/// naming it.
fn apply_weights(cost: &mut ami_core::Cost, p: &Params) -> Result<()> {
    let Some(table) = p.get("weights") else { return Ok(()) };
    let ParamValue::Table(t) = table else {
        return Err(CoreError::config("weights", format!("must be a table {{TERM = weight}}, got {}", table.type_name())));
    };
    for (term, v) in t {
        let field = format!("weights.{term}");
        let w = match v {
            ParamValue::Float(x) => *x,
            ParamValue::Int(x) => *x as f64,
            other => return Err(CoreError::config(field, format!("must be a number, got {}", other.type_name()))),
        };
        if !(w.is_finite() && w.abs() <= f64::from(f32::MAX)) {
            return Err(CoreError::config(field, format!("must be a finite number, got {w}")));
        }
        cost.set_weight(term, w as f32).map_err(|e| CoreError::config(field, e.to_string()))?;
    }
    Ok(())
}

/// The parameters every planning actor takes besides its planner's own.
pub fn planning_actor_params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new("model", ParamType::node("world_model"), "world_model node to plan with (default: the task's true dynamics)"),
        ParamSpec::new("cost", ParamType::node("cost"), "cost node whose (shared) cost to plan under (default: a copy of the task's cost)"),
        ParamSpec::new("critic", ParamType::node("critic"), "critic node added to the actor's cost as the terminal value of every rollout"),
        ParamSpec::new("critic_weight", ParamType::float(0.0, 1e9), "weight of the critic term").default(ParamValue::Float(1.0)),
    ]
    .into_iter()
    .chain(crate::learn::exploration_params())
    .chain(crate::distill::policy_use_params())
    .collect()
}

/// Builds a planning actor node around `planner`: the world model named by
/// `model` (default: the task's true dynamics), the cost named by `cost`
/// (default: its own copy of the task's cost), the critic named by
/// `critic` as terminal value, all checked by [`check_planner_fits`].
pub fn planning_actor(ctx: &BuildContext<'_>, p: &Params, planner: Box<dyn Planner>) -> Result<Built> {
    let task = ctx.task()?;
    let model = ctx.world_model(p, "model")?;
    let critic = ctx.critic(p, "critic")?;
    if critic.is_some() && p.get("cost").is_some() {
        return Err(CoreError::config(
            "critic",
            "a critic is added to the actor's own cost; with `cost = \"NODE\"` the cost is shared with that node (and its other users): add the critic there, or drop `cost`",
        ));
    }
    let cost = ctx.cost(p, "cost")?;
    if let Some(critic) = critic {
        let name = p.str_opt("critic")?.unwrap_or("critic").to_string();
        cost.write().add_critic(Box::new(SharedCritic::new(name, critic)), p.f32("critic_weight")?)?;
    }
    check_planner_fits(planner.as_ref(), model.get().as_ref(), &cost.read(), task.action_dim)?;
    let state_dim = model.get().state_dim();
    // The state the actor is fed is what perception makes: a model of
    // another width would fail at tick 0.
    if let Some(w) = task.perceived_dim.filter(|&w| w != state_dim) {
        return Err(CoreError::config("model", format!("the world model's states have width {state_dim}, but perception gives the actor states of width {w}")));
    }
    let mut actor = PlanningActor::with_handle(planner, model);
    if let Some((policy, how)) = crate::distill::policy_use(ctx, p, state_dim)? {
        actor = actor.with_policy(policy, how, ctx.phase.clone())?;
    }
    let actor = crate::learn::ExploringActor::wrap(Box::new(actor), task.space.clone(), p, ctx.phase)?;
    Ok(Built::node(ActorNode::new(actor, cost)))
}

/// The actor implementation of a planner declaration: its schema plus
/// [`planning_actor_params`], built by [`planning_actor`].
pub fn planner_actor(decl: PlannerDecl) -> Implementation {
    let mut params = (decl.schema)();
    params.extend(planning_actor_params());
    Implementation::new(ModuleKind::Actor, decl.name, decl.summary, ActorNode::ports(), params, move |ctx, p| {
        let planner = (decl.build)(p, &ctx.task()?.space, None)?;
        planning_actor(ctx, p, planner)
    })
}

fn memory_params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new("capacity", ParamType::int(1, 1_000_000), "transitions kept").default(ParamValue::Int(10_000)),
        ParamSpec::new("save_path", ParamType::string(), "file the memory is saved to when a run finishes (relative to the agent file)"),
        ParamSpec::new("load_path", ParamType::string(), "start with the transitions of this saved memory file (resume learning; relative to the agent file)"),
    ]
}

/// Registers the built-ins of the composition layer: `identity`
/// perception, `schedule` and `waypoints` configurators, the `task` cost,
/// `ring` memory, `task` and `mlp` world models, the `quadratic` critic,
/// the `linear` policy and its `policy` actor, and an actor for every
/// planner in [`ami_planners::decl::builtin`].
pub fn register(r: &mut Registry) {
    let all = [
        Implementation::new(ModuleKind::Perception, "identity", "the observation is the state", PerceptionNode::ports(), vec![], |ctx, _| {
            let obs = ctx.task()?.obs_dim;
            Ok(Built { perceived_dim: Some(obs), ..Built::node(PerceptionNode::new(Arc::new(IdentityPerception::new(obs)))) })
        }),
        Implementation::new(
            ModuleKind::Configurator,
            "schedule",
            "emits the goal at tick 0 and timed modulations (goal, cost weights, planner budget, horizon, Mode-1 / Mode-2 mode)",
            ConfiguratorNode::ports(),
            vec![
                ParamSpec::new("goal", ParamType::FloatList { min_len: 1, max_len: 4096 }, "goal set at tick 0 (default: the task's goal, if any)"),
                ParamSpec::new(
                    "events",
                    ParamType::Structured { what: "an array of tables {tick, goal?, clear_goal?, weights?, iterations?, deadline_ms?, horizon?, mode?, switch_margin?, switch_tolerance?, max_policy_ticks?}".into() },
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
            ConfiguratorNode::ports(),
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
        Implementation::new(
            ModuleKind::Cost,
            "task",
            "the task's intrinsic cost of each observed transition (actors may plan under it: `cost = \"NODE\"`)",
            CostNode::ports(),
            vec![
                ParamSpec::new("weights", ParamType::Structured { what: "a table {TERM = weight}".into() }, "weights of the task's terms (default: the task's; a configurator may change them)"),
                subgoal_weight_param(),
            ],
            |ctx, p| {
                let task = ctx.task()?;
                let mut cost = task.new_cost()?;
                apply_weights(&mut cost, p)?;
                add_subgoal_term(&mut cost, p, task.state_dim())?;
                let cost = Shared::of(cost);
                Ok(Built { cost: Some(cost.clone()), ..Built::node(CostNode::new(cost)) })
            },
        ),
        Implementation::new(
            ModuleKind::Cost,
            "quadratic",
            "a fixed quadratic cost sum_i q_i (s'_i - g_i)^2 + sum_j r_j a_j^2 (for environments without a cost of their own; plans on the fused kernels)",
            CostNode::ports(),
            vec![
                ParamSpec::new("state_weights", ParamType::FloatList { min_len: 1, max_len: 4096 }, "q_i, one per state coordinate (or `state_weight`)"),
                ParamSpec::new("state_weight", ParamType::float(0.0, 1e12), "q for every state coordinate (a distance in a learned embedding, whose width the file need not spell out)"),
                ParamSpec::new("action_weights", ParamType::FloatList { min_len: 1, max_len: 4096 }, "r_j, one per action coordinate (default: none)"),
                ParamSpec::new("goal", ParamType::FloatList { min_len: 1, max_len: 4096 }, "g, one per state coordinate (default: the task's goal, else zero; a configurator's goal replaces it)"),
                subgoal_weight_param(),
            ],
            |ctx, p| {
                let task = ctx.task()?;
                let q = match (p.f32_list_opt("state_weights")?, p.f64_opt("state_weight")?) {
                    (Some(q), None) => q,
                    (None, Some(w)) => vec![w as f32; task.state_dim()],
                    (Some(_), Some(_)) => return Err(CoreError::config("state_weight", "give `state_weights` or `state_weight`, not both")),
                    (None, None) => return Err(CoreError::config("state_weights", "is required (one weight per state coordinate), or `state_weight` for all")),
                };
                let r = p.f32_list_opt("action_weights")?.unwrap_or_default();
                let goal = p.f32_list_opt("goal")?;
                let width = |field: &str, v: &[f32], want: usize, what: &str| -> Result<()> {
                    if v.len() != want {
                        return Err(CoreError::config(field, format!("needs {want} entries ({what}), got {}", v.len())));
                    }
                    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                        return Err(CoreError::config(format!("{field}[{i}]"), format!("must be finite, got {}", v[i])));
                    }
                    // A negative weight makes the cost unbounded below:
                    // planners would chase it.
                    if let Some(i) = v.iter().position(|&x| x < 0.0).filter(|_| field != "goal") {
                        return Err(CoreError::config(format!("{field}[{i}]"), format!("must be at least 0, got {}", v[i])));
                    }
                    Ok(())
                };
                width("state_weights", &q, task.state_dim(), "the state width")?;
                if !r.is_empty() {
                    width("action_weights", &r, task.action_dim, "the action width")?;
                }
                if let Some(g) = &goal {
                    width("goal", g, task.state_dim(), "the state width")?;
                }
                let mut c = Cost::new();
                c.add_intrinsic(Arc::new(ami_core::QuadraticCost::new("quadratic", q, r)), 1.0)?;
                c.set_goal(goal.or_else(|| task.goal.clone()).map(ndarray::Array1::from));
                add_subgoal_term(&mut c, p, task.state_dim())?;
                let cost = Shared::of(c);
                Ok(Built { cost: Some(cost.clone()), ..Built::node(CostNode::new(cost)) })
            },
        ),
        Implementation::new(
            ModuleKind::Memory,
            "ring",
            "a bounded ring of observed transitions, saved once when the run ends (or an episode fails or is interrupted) if `save_path` is set",
            MemoryNode::ports(),
            memory_params(),
            |ctx, p| {
                let task = ctx.task()?;
                let mut mem = RingMemory::new(task.state_dim(), task.action_dim, p.usize("capacity")?)?;
                if let Some(path) = p.str_opt("load_path")? {
                    let path = ctx.path(path);
                    let saved = RingMemory::load(&path).map_err(|e| CoreError::config("load_path", e.to_string()))?;
                    use ami_core::ShortTermMemory;
                    if (saved.state_dim(), saved.action_dim()) != (mem.state_dim(), mem.action_dim()) {
                        return Err(CoreError::config(
                            "load_path",
                            format!(
                                "{}: transitions of states {} and actions {} wide, the agent's are {} and {}",
                                path.display(),
                                saved.state_dim(),
                                saved.action_dim(),
                                mem.state_dim(),
                                mem.action_dim()
                            ),
                        ));
                    }
                    for i in 0..saved.len() {
                        let t = saved.get(i).expect("index below len");
                        mem.push(&ami_core::TransitionRef {
                            t: t.t,
                            state: ndarray::ArrayView1::from(&t.state[..]),
                            action: ndarray::ArrayView1::from(&t.action[..]),
                            cost: t.cost,
                            next_state: ndarray::ArrayView1::from(&t.next_state[..]),
                            imagined: t.imagined,
                            terminated: t.terminated,
                        })?;
                    }
                }
                let save = p.str_opt("save_path")?.map(|s| ctx.path(s));
                if save.as_ref().is_some_and(|s| s.as_os_str().is_empty()) {
                    return Err(CoreError::config("save_path", "must not be empty"));
                }
                // Refused now, not after the first episode's work is done.
                if let Some(s) = &save {
                    if s.is_dir() {
                        return Err(CoreError::config("save_path", format!("{} is a directory: name a file", s.display())));
                    }
                    let dir = s.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
                    if !dir.is_dir() {
                        return Err(CoreError::config("save_path", format!("{}: the folder {} does not exist", s.display(), dir.display())));
                    }
                }
                let memory = ami_core::MemoryHandle::new(Box::new(mem));
                Ok(Built { memory: Some(memory.clone()), ..Built::node(MemoryNode::shared(memory, save).with_phase(ctx.phase.clone())) })
            },
        ),
        Implementation::new(
            ModuleKind::Critic,
            "quadratic",
            "a fixed critic V(s) = sum_i w_i (s_i - g_i)^2 towards the goal: the terminal value a short horizon plans with",
            HandleNode::<dyn Critic>::ports_for("critic"),
            vec![ParamSpec::new("weights", ParamType::FloatList { min_len: 1, max_len: 4096 }, "per-state-coordinate weights w_i").required()],
            |ctx, p| {
                let weights = p.f32_list_opt("weights")?.unwrap_or_default();
                if let Some(task) = ctx.task {
                    let sd = task.state_dim();
                    if weights.len() != sd {
                        return Err(CoreError::config("weights", format!("needs {sd} entries (the state width), got {}", weights.len())));
                    }
                }
                let critic: CriticHandle = Handle::new(Arc::new(QuadraticCritic::new(ctx.node, weights)));
                Ok(Built { critic: Some(critic.clone()), ..Built::node(HandleNode::new(critic, "critic")) })
            },
        ),
        Implementation::new(
            ModuleKind::Policy,
            "linear",
            "a Mode-1 linear policy a = clip(K (s - reference), low, high)",
            HandleNode::<dyn Policy>::ports_for("policy"),
            vec![
                ParamSpec::new("gain", ParamType::Structured { what: "an array of rows, [action_dim][state_dim] numbers".into() }, "the gain matrix K")
                    .required(),
                ParamSpec::new("reference", ParamType::FloatList { min_len: 1, max_len: 4096 }, "the state the policy regulates to (default: zeros)"),
                ParamSpec::new("low", ParamType::float(-1e9, 1e9), "lowest action").default(ParamValue::Float(-1.0)),
                ParamSpec::new("high", ParamType::float(-1e9, 1e9), "highest action").default(ParamValue::Float(1.0)),
            ],
            |ctx, p| {
                let rows: Vec<Vec<f32>> = p.deserialize("gain")?.unwrap_or_default();
                let (a, sd) = (rows.len(), rows.first().map_or(0, Vec::len));
                if a == 0 || sd == 0 || rows.iter().any(|r| r.len() != sd) {
                    return Err(CoreError::config("gain", "must be a non-empty array of equally long rows of numbers"));
                }
                if let Some(task) = ctx.task {
                    if a != task.action_dim {
                        return Err(CoreError::config("gain", format!("has {a} rows, the environment's actions {} entries", task.action_dim)));
                    }
                }
                let gain = ndarray::Array2::from_shape_vec((a, sd), rows.concat()).map_err(|e| CoreError::config("gain", e.to_string()))?;
                let reference = ndarray::Array1::from(p.f32_list_opt("reference")?.unwrap_or_else(|| vec![0.0; sd]));
                let (low, high) = (p.f32("low")?, p.f32("high")?);
                if low > high {
                    return Err(CoreError::config("low", format!("must be <= high ({high}), got {low}")));
                }
                let policy: PolicyHandle = Handle::new(Arc::new(LinearPolicy::new(gain, reference, low, high)?));
                Ok(Built { policy: Some(policy.clone()), ..Built::node(HandleNode::new(policy, "policy")) })
            },
        ),
        Implementation::new(
            ModuleKind::Actor,
            "policy",
            "Mode-1: acts with the policy node named by `policy`, no planning",
            ActorNode::ports(),
            vec![ParamSpec::new("policy", ParamType::node("policy"), "the policy node to act with").required()],
            |ctx, p| {
                let task = ctx.task()?;
                let policy = ctx.policy(p, "policy")?;
                if policy.get().action_dim() != task.action_dim {
                    return Err(CoreError::config(
                        "policy",
                        format!("acts with width {}, the environment takes {}", policy.get().action_dim(), task.action_dim),
                    ));
                }
                Ok(Built::node(ActorNode::new(Box::new(PolicyActor::new(crate::distill::on_space(policy, &task.space))), Shared::of(task.cost_or_empty()))))
            },
        ),
        Implementation::new(ModuleKind::WorldModel, "task", "the environment's true dynamics", ModelNode::ports_for("model"), vec![], |ctx, _| {
            let model = ctx.task()?.model()?.clone();
            Ok(Built { model: Some(model.clone()), ..Built::node(ModelNode::new(model, "model")) })
        }),
        Implementation::new(
            ModuleKind::WorldModel,
            "mlp",
            "a residual MLP s' = s + f(s, a) from safetensors (PyTorch Linear layout: W1 b1 W2 b2 ...), rolled out on the fused SIMD kernels",
            ModelNode::ports_for("model"),
            vec![ParamSpec::new("path", ParamType::string(), "the safetensors file (relative to the agent file)").required()],
            |ctx, p| {
                let path = ctx.path(p.str_opt("path")?.unwrap_or_default());
                let mlp = MlpWorldModel::load(&path).map_err(|e| CoreError::config("path", e.to_string()))?;
                if let Some(task) = ctx.task {
                    if mlp.action_dim() != task.action_dim {
                        return Err(CoreError::config(
                            "path",
                            format!(
                                "{}: the model takes actions of width {}, the environment's are of width {}",
                                path.display(),
                                mlp.action_dim(),
                                task.action_dim
                            ),
                        ));
                    }
                }
                let model = ami_core::ModelHandle::of(mlp);
                Ok(Built { model: Some(model.clone()), ..Built::node(ModelNode::new(model, "model")) })
            },
        ),
    ];
    for imp in all.into_iter().chain([
        crate::learn::learned_model(),
        crate::jepa::jepa_perception(),
        crate::jepa::jepa_model(),
        crate::learn::world_model_trainer(),
        crate::learn::learned_critic(),
        crate::learn::critic_trainer(),
        crate::distill::learned_policy(),
        crate::distill::policy_trainer(),
    ]) {
        // Built-in names are distinct by construction.
        let _ = r.register(imp);
    }
    for decl in ami_planners::decl::builtin() {
        let _ = r.register_planner(decl);
    }
}

impl Registry {
    /// A registry holding the built-in modules of the composition layer
    /// ([`register`]: perception, configurators, memory, the
    /// task cost, world models, and an actor for every planner of
    /// `ami-planners`). Environments come from the crate that defines
    /// them (ami-agents adds its tasks).
    pub fn with_core_builtins() -> Self {
        let mut r = Self::new();
        r.add(register);
        r
    }
    /// Adds a planner: an `actor` implementation of the same name that
    /// plans with it (see [`planner_actor`]), listed by
    /// [`Registry::planners`].
    /// It also gets a `level` implementation of the same name (see
    /// [`crate::level::planner_level`]).
    pub fn register_planner(&mut self, decl: ami_planners::PlannerDecl) -> Result<()> {
        self.register(planner_actor(decl))?;
        self.register(crate::level::planner_level(decl))?;
        self.planners.push(decl.name.to_string());
        Ok(())
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
