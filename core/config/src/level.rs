//! Hierarchical planning [paper §4.6-4.7]: a `level` node plans at a
//! coarser time scale in an abstract state and hands the first state(s) of
//! its plan down as the subgoal of the level below.
//!
//! Level k keeps some coordinates of the agent's state (`dims`: its
//! abstract state is a projection), plans with its own world model (one
//! step of it stands for `step_ticks` ticks; its actions are
//! abstract, e.g. a target displacement) under a cost that is the distance
//! to its own target (the level above's subgoal, or the task's goal), with
//! any planner, every `period` ticks. Its plan's state after
//! `subgoal_step` steps, written into a vector of the state's width with
//! NaN in the coordinates it leaves free, goes out on `subgoal`: a cost
//! node's (or actor's, or lower level's) `subgoal` port sets it on the
//! cost below, where [`SubgoalDistance`] terms measure the distance of the
//! predicted states to it.
//!
//! Bottom-up feedback: the level below reports on `progress` how far it is
//! from the subgoal it holds, how long it has held it and which subgoal
//! that is. With `feedback = "replan"` the level plans again as soon as its
//! subgoal is reached (within `reached`) or proves unreachable (no
//! progress for `patience` ticks) instead of waiting for its period; with
//! `feedback = "refine"` it also remembers each unreachable subgoal for the
//! rest of the episode and plans around it (a bump of `avoid_weight` and
//! width `avoid_radius` in its cost): what the level below achieved
//! corrects the model of the level above. `feedback = "off"` is plain
//! top-down planning.
//!
//! A level is a graph node like any other: give it a `rate` to check less
//! often than every tick, and `background = true` to run it on its own
//! thread in the parallel executor (its subgoal then reaches the level
//! below `rate` ticks later, in both executors alike). Levels stack: a
//! level's `subgoal` input takes the level above's `subgoal`, and its
//! `progress` output reports to it.

use std::sync::{Arc, Mutex};

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use ami_core::{
    ActionSpace, Bounds, CoreError, Cost, CostContext, DifferentiableCost, IntrinsicCost, MemoryHandle, ModelHandle, Modulation, ParamSpec, ParamType,
    ParamValue, Params, PlanRequest, Planner, Result, SubgoalDistance,
};
use ami_graph::{Inputs, Node, NodePorts, Outputs, PortType, TickContext};
use ami_learn::{Support, SupportCost};
use ami_planners::PlannerDecl;

use crate::nodes::{coordinates, fingerprint, same_bits, write_progress};
use crate::registry::{BuildContext, Built, Implementation, ModuleKind};

/// How a level uses the progress the level below reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    /// Plain top-down: plan every `period` ticks, whatever happens below.
    Off,
    /// Plan again early when the subgoal is reached or proves unreachable.
    Replan,
    /// As `Replan`, and plan around each unreachable subgoal for the rest
    /// of the episode.
    Refine,
}

impl Feedback {
    /// From its name in agent files.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "off" => Ok(Feedback::Off),
            "replan" => Ok(Feedback::Replan),
            "refine" => Ok(Feedback::Refine),
            _ => Err(CoreError::config("feedback", format!("`{s}` is not one of: off, replan, refine"))),
        }
    }
}

/// A level's settings besides its planner's.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelSettings {
    /// The coordinates of the agent's state the level keeps (its abstract
    /// state, in this order).
    pub dims: Vec<usize>,
    /// The width of the agent's state (of the subgoals it writes).
    pub state_dim: usize,
    /// Ticks one step of the level's world model stands for.
    pub step_ticks: u64,
    /// The coordinates of the agent's state that hold the level's target
    /// (one per kept coordinate: a goal the observation carries, as
    /// Gymnasium-Robotics' `desired_goal`), instead of the task's goal.
    pub goal_dims: Option<Vec<usize>>,
    /// Ticks between two plans (at most; feedback may plan sooner).
    pub period: u64,
    /// Which state of the plan becomes the subgoal (1: the first predicted).
    pub subgoal_step: usize,
    /// What the level does with the progress reported from below.
    pub feedback: Feedback,
    /// Distance (in the abstract state) within which a subgoal is reached.
    pub reached: f32,
    /// Ticks in which the distance to a subgoal must fall by
    /// `min_progress`, or the subgoal is unreachable.
    pub patience: u64,
    /// Least decrease of the distance in `patience` ticks that counts as
    /// progress.
    pub min_progress: f32,
    /// Width of the bump an unreachable subgoal leaves in the cost.
    pub avoid_radius: f32,
    /// Height of that bump, per plan step.
    pub avoid_weight: f32,
}

impl LevelSettings {
    /// Checks the settings; errors name the parameter.
    pub fn validate(&self) -> Result<()> {
        if self.dims.is_empty() {
            return Err(CoreError::config("dims", "keep at least one state coordinate"));
        }
        if let Some(&d) = self.dims.iter().find(|&&d| d >= self.state_dim) {
            return Err(CoreError::config("dims", format!("coordinate {d} is outside the state (width {})", self.state_dim)));
        }
        let mut sorted = self.dims.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(CoreError::config("dims", format!("{:?} names a coordinate twice", self.dims)));
        }
        if let Some(g) = &self.goal_dims {
            if g.len() != self.dims.len() {
                return Err(CoreError::config(
                    "goal_dims",
                    format!("names {} coordinates, and the level keeps {} (dims {:?})", g.len(), self.dims.len(), self.dims),
                ));
            }
            if let Some(&d) = g.iter().find(|&&d| d >= self.state_dim) {
                return Err(CoreError::config("goal_dims", format!("coordinate {d} is outside the state (width {})", self.state_dim)));
            }
        }
        for (field, v) in
            [("reached", self.reached), ("avoid_radius", self.avoid_radius), ("avoid_weight", self.avoid_weight), ("min_progress", self.min_progress)]
        {
            if !(v.is_finite() && v >= 0.0) {
                return Err(CoreError::config(field, format!("must be finite and at least 0, got {v}")));
            }
        }
        if self.avoid_radius == 0.0 && self.feedback == Feedback::Refine {
            return Err(CoreError::config("avoid_radius", "must be above 0 with feedback = \"refine\""));
        }
        Ok(())
    }
}

/// What a level did, readable from outside the graph through a
/// [`LevelHandle`] (cumulative since the agent was built, except
/// `subgoals`, `avoided` and `support_cells`: the current episode's).
#[derive(Debug, Clone, Default)]
pub struct LevelStats {
    /// Plans made.
    pub plans: u64,
    /// Plans made early because the subgoal was reached.
    pub reached: u64,
    /// Subgoals the level below could not reach (each planned again).
    pub unreachable: u64,
    /// World-model evaluations (one abstract state stepped once) of all
    /// plans.
    pub evaluations: u64,
    /// The subgoals of this episode, in the abstract state, with the tick
    /// each was planned at.
    pub subgoals: Vec<(u64, Vec<f32>)>,
    /// The points planned around this episode (unreachable subgoals).
    pub avoided: Vec<Vec<f32>>,
    /// Cells of the level's support this episode (0 without one).
    pub support_cells: usize,
}

/// A handle on a level node's [`LevelStats`] (cloning shares it).
#[derive(Debug, Clone, Default)]
pub struct LevelHandle(Arc<Mutex<LevelStats>>);

impl LevelHandle {
    /// A copy of the statistics now.
    pub fn stats(&self) -> LevelStats {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    fn update(&self, f: impl FnOnce(&mut LevelStats)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// `weight * sum_p (1 - d_p^2 / r^2)^2` over the points `p` within `r`,
/// where `d_p` is the distance from `p` to the segment from `s` to `s'`:
/// bumps at the points a level was told it cannot get through, so its
/// plans go round them. The segment, not only the state reached, is
/// priced, so a coarse step cannot jump over a bump; a bump is zero beyond
/// its radius, so it never pushes a plan away from a goal elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct AvoidCost {
    points: Vec<Vec<f32>>,
    radius: f32,
}

impl AvoidCost {
    /// Bumps of width `radius` at `points`.
    pub fn new(points: Vec<Vec<f32>>, radius: f32) -> Self {
        Self { points, radius }
    }
    /// The closest point's parameter `t` in `[0, 1]` on the segment from
    /// `a` to `b`, and its squared distance to `p`.
    fn closest(a: ArrayView1<'_, f32>, b: ArrayView1<'_, f32>, p: &[f32]) -> (f32, f32) {
        let (mut ab, mut ap) = (0.0f32, 0.0f32);
        for ((&x, &y), &q) in a.iter().zip(b.iter()).zip(p) {
            ab += (y - x) * (y - x);
            ap += (q - x) * (y - x);
        }
        let t = if ab > 0.0 { (ap / ab).clamp(0.0, 1.0) } else { 0.0 };
        let d2 = a.iter().zip(b.iter()).zip(p).map(|((&x, &y), &q)| (x + t * (y - x) - q).powi(2)).sum();
        (t, d2)
    }
}

impl IntrinsicCost for AvoidCost {
    fn name(&self) -> &str {
        "avoid"
    }
    fn add_cost(
        &self,
        _ctx: &CostContext<'_>,
        weight: f32,
        states: ArrayView2<'_, f32>,
        _actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        mut out: ArrayViewMut1<'_, f32>,
    ) -> Result<()> {
        let k = 1.0 / (self.radius * self.radius);
        for ((o, a), b) in out.iter_mut().zip(states.rows()).zip(next_states.rows()) {
            *o += weight * self.points.iter().map(|p| (1.0 - Self::closest(a, b, p).1 * k).max(0.0).powi(2)).sum::<f32>();
        }
        Ok(())
    }
    fn differentiable(&self) -> Option<&dyn DifferentiableCost> {
        Some(self)
    }
}

/// The gradient at the closest point (the envelope theorem: the minimum
/// over `t` moves with the segment, its `t` held).
impl DifferentiableCost for AvoidCost {
    fn add_gradient(
        &self,
        _ctx: &CostContext<'_>,
        weight: f32,
        states: ArrayView2<'_, f32>,
        _actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        mut grad_states: ArrayViewMut2<'_, f32>,
        _grad_actions: ArrayViewMut2<'_, f32>,
        mut grad_next: ArrayViewMut2<'_, f32>,
    ) {
        let k = 1.0 / (self.radius * self.radius);
        for (r, (a, b)) in states.rows().into_iter().zip(next_states.rows()).enumerate() {
            for p in &self.points {
                let (t, d2) = Self::closest(a, b, p);
                let u = 1.0 - d2 * k;
                if u <= 0.0 {
                    continue;
                }
                // d/dc of w (1 - k |c - p|^2)^2 = -4 k w (1 - k |c - p|^2) (c - p).
                let g = -4.0 * k * weight * u;
                for i in 0..a.len() {
                    let c = a[i] + t * (b[i] - a[i]) - p[i];
                    grad_states[[r, i]] += g * c * (1.0 - t);
                    grad_next[[r, i]] += g * c * t;
                }
            }
        }
    }
}

/// Where a level stands on the subgoal it handed down.
#[derive(Debug, Clone, Default)]
struct Tracking {
    /// The subgoal progress is measured on (abstract state).
    anchor: Option<Array1<f32>>,
    /// Its distance when the current window began, and that tick.
    start: f32,
    since: u64,
}

/// A planning level as a graph node: `state` (the agent's), `goal` (the
/// configurator's modulations: the task's goal), `subgoal` (the level
/// above's, if any), `progress` (the level below's report, through a
/// delayed edge), `model` (its world model) -> `subgoal` (for the level
/// below) and `progress` (its own report to the level above).
pub struct LevelNode {
    planner: Box<dyn Planner>,
    model: ModelHandle,
    settings: LevelSettings,
    cost: Cost,
    /// The task's goal, in the agent's state (as the configurator set it).
    goal: Option<Array1<f32>>,
    initial_goal: Option<Array1<f32>>,
    /// The level's target in its abstract state (NaN: free).
    target: Option<Array1<f32>>,
    target_since: u64,
    /// The current subgoal: abstract, and as written for the level below.
    subgoal: Option<Array1<f32>>,
    out: Array1<f32>,
    last_plan: Option<u64>,
    tracking: Tracking,
    avoided: Vec<Vec<f32>>,
    /// Where the experience is (see [`LevelNode::with_support`]).
    support: Option<SupportSource>,
    progress: Array1<f32>,
    handle: LevelHandle,
}

/// The memory a level learns its support from, and how.
struct SupportSource {
    memory: MemoryHandle,
    cell: f32,
    weight: f32,
    current: Option<Arc<Support>>,
    /// The memory's length and newest transition when `current` was read.
    read_at: (usize, Option<u64>),
}

impl LevelNode {
    /// A level planning with `planner` through `model` (whose state is the
    /// `dims` of the agent's state), towards `goal` (in the agent's state)
    /// until a configurator or the level above says otherwise.
    pub fn new(planner: Box<dyn Planner>, model: ModelHandle, settings: LevelSettings, goal: Option<Vec<f32>>) -> Result<Self> {
        settings.validate()?;
        let m = model.get();
        if m.state_dim() != settings.dims.len() {
            return Err(CoreError::config(
                "model",
                format!(
                    "the level keeps {} state coordinates (dims {:?}) and its world model's state has {}",
                    settings.dims.len(),
                    settings.dims,
                    m.state_dim()
                ),
            ));
        }
        if m.action_dim() != planner.action_dim() {
            return Err(CoreError::config(
                "model",
                format!("the world model's actions have {} entries and the planner's {}", m.action_dim(), planner.action_dim()),
            ));
        }
        // A learned model says what its step is (one tick of the whole
        // state unless it names `dims` and `step_ticks`); it must be the
        // level's.
        if let Some(l) = m.as_any().and_then(|a| a.downcast_ref::<ami_learn::LearnedModel>()) {
            let c = l.chunking().cloned().unwrap_or_else(|| ami_learn::Chunking::identity(settings.state_dim));
            if c.dims != settings.dims || c.ticks as u64 != settings.step_ticks {
                return Err(CoreError::config(
                    "model",
                    format!(
                        "the learned world model's step is {} ticks over coordinates {:?}, and the level's {} ticks over {:?}: set the same `dims` and `step_ticks` on both",
                        c.ticks, c.dims, settings.step_ticks, settings.dims
                    ),
                ));
            }
        }
        if let Some(g) = &goal {
            check_goal(g, &settings)?;
        }
        let cost = level_cost(settings.dims.len(), &[], &settings)?;
        // The level's own cost terms all have gradients; its model must too
        // for a gradient planner.
        if planner.needs_gradients() && m.differentiable().is_none() {
            return Err(CoreError::config(
                "model",
                format!("planner `{}` needs gradients and the level's world model has none; use a sampling planner (cem, mppi)", planner.name()),
            ));
        }
        drop(m);
        let initial_goal = goal.map(Array1::from);
        let out = Array1::from_elem(settings.state_dim, f32::NAN);
        Ok(Self {
            planner,
            model,
            settings,
            cost,
            goal: initial_goal.clone(),
            initial_goal,
            target: None,
            target_since: 0,
            subgoal: None,
            out,
            last_plan: None,
            tracking: Tracking::default(),
            avoided: Vec::new(),
            support: None,
            progress: Array1::zeros(0),
            handle: LevelHandle::default(),
        })
    }
    /// Plans only where the experience is: at every episode start the
    /// level reads the cells of side `cell` that the memory's states
    /// visited (in its abstract state, [`Support::from_memory`]), and each
    /// planned step costs `weight` times the fraction of it outside them
    /// ([`SupportCost`]). For a learned model, which is wrong where it had
    /// no data (through walls, say). The term has no gradient: sampling
    /// planners only.
    pub fn with_support(mut self, memory: MemoryHandle, cell: f32, weight: f32) -> Result<Self> {
        if self.planner.needs_gradients() {
            return Err(CoreError::config(
                "support",
                format!(
                    "planner `{}` follows gradients and the support cost has none; use a sampling planner (cem, mppi; cem-discrete, beam over `actions`)",
                    self.planner.name()
                ),
            ));
        }
        if !(cell.is_finite() && cell > 0.0) {
            return Err(CoreError::config("support_cell", format!("must be finite and above 0, got {cell}")));
        }
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(CoreError::config("support_weight", format!("must be finite and at least 0, got {weight}")));
        }
        let width = memory.lock().state_dim();
        if width != self.settings.state_dim {
            return Err(CoreError::config(
                "support",
                format!("the memory records states {width} wide, and the level reads states {} wide", self.settings.state_dim),
            ));
        }
        // Weight 0 is no support at all.
        if weight > 0.0 {
            self.support = Some(SupportSource { memory, cell, weight, current: None, read_at: (0, None) });
        }
        Ok(self)
    }
    /// The visited cells the level plans within this episode, if it has a
    /// support.
    pub fn support(&self) -> Option<Arc<Support>> {
        self.support.as_ref().and_then(|s| s.current.clone())
    }
    /// The level's cost: towards its target, round the places it was told
    /// it cannot get through, within its support.
    fn build_cost(&self) -> Result<Cost> {
        let mut cost = level_cost(self.settings.dims.len(), &self.avoided, &self.settings)?;
        if let Some(SupportSource { current: Some(sup), weight, .. }) = &self.support {
            cost.add_intrinsic(Arc::new(SupportCost::new(sup.clone())), *weight)?;
        }
        Ok(cost)
    }
    /// The ports of every level node.
    pub fn ports() -> NodePorts {
        NodePorts::new()
            .input("state", PortType::State, true)
            .input("goal", PortType::Modulation, false)
            .input("subgoal", PortType::Subgoal, false)
            .input("progress", PortType::Progress, false)
            .input("model", PortType::Model, false)
            .output("subgoal", PortType::Subgoal)
            .output("progress", PortType::Progress)
    }
    /// A handle on the level's statistics.
    pub fn handle(&self) -> LevelHandle {
        self.handle.clone()
    }
    /// The level's settings.
    pub fn settings(&self) -> &LevelSettings {
        &self.settings
    }

    fn abstract_state(&self, s: ArrayView1<'_, f32>) -> Array1<f32> {
        self.settings.dims.iter().map(|&d| s[d]).collect()
    }

    /// Plans from `z` and returns the subgoal (abstract state).
    fn plan(&mut self, z: &Array1<f32>) -> Result<Array1<f32>> {
        let model = self.model.get();
        let plan = self.planner.plan(&PlanRequest::new(model.as_ref(), &self.cost, z.view()))?;
        // The state after `subgoal_step` steps, or the first later one
        // that has moved; a plan that never moves means the target is
        // within the level's resolution: it is handed down itself.
        let steps = self.settings.subgoal_step.min(plan.actions.nrows()).max(1);
        let mut s = Array2::from_shape_fn((1, z.len()), |(_, j)| z[j]);
        let mut next = Array2::zeros((1, z.len()));
        let mut sub = None;
        for t in 0..plan.actions.nrows() {
            let a = plan.actions.row(t).insert_axis(ndarray::Axis(0));
            model.predict(s.view(), a, next.view_mut())?;
            std::mem::swap(&mut s, &mut next);
            if t + 1 >= steps && !same_bits(s.row(0), z.view()) {
                sub = Some(s.row(0).to_owned());
                break;
            }
        }
        let sub = sub.unwrap_or_else(|| match &self.target {
            Some(t) => t.iter().zip(z).map(|(&t, &v)| if t.is_nan() { v } else { t }).collect(),
            None => z.clone(),
        });
        if sub.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::module("level", format!("the world model predicted a non-finite subgoal {sub} from {z}")));
        }
        let evaluations = plan.model_steps();
        self.handle.update(|st| {
            st.plans += 1;
            st.evaluations += evaluations;
        });
        Ok(sub)
    }

    /// Reads the level below's report: `Some((distance, ticks spent))`
    /// when it is about the current subgoal.
    fn report(&self, progress: Option<ArrayView1<'_, f32>>) -> Option<(f32, f32)> {
        let p = progress.filter(|p| p.len() >= 2)?;
        same_bits(p.slice_axis(ndarray::Axis(0), ndarray::Slice::from(2..)), self.out.view()).then(|| (p[0].max(0.0).sqrt(), p[1]))
    }
}

/// The task's goal must cover the coordinates a level keeps.
fn check_goal(g: &[f32], s: &LevelSettings) -> Result<()> {
    if g.len() != s.state_dim {
        return Err(CoreError::config("goal", format!("the goal has {} entries, and the level reads goals of the state's width {}", g.len(), s.state_dim)));
    }
    Ok(())
}

/// A level's cost: the distance to its target, and a bump at each avoided
/// point.
fn level_cost(width: usize, avoided: &[Vec<f32>], s: &LevelSettings) -> Result<Cost> {
    let mut cost = Cost::new();
    cost.add_intrinsic(Arc::new(SubgoalDistance::weighted("target", vec![1.0; width])), 1.0)?;
    if !avoided.is_empty() {
        cost.add_intrinsic(Arc::new(AvoidCost::new(avoided.to_vec(), s.avoid_radius)), s.avoid_weight)?;
    }
    Ok(cost)
}

impl Node for LevelNode {
    fn ports(&self) -> NodePorts {
        Self::ports()
    }
    /// Starts an episode: the task's goal as built, no plan, no subgoal,
    /// nothing avoided, the planner reset with the episode's seed.
    fn reset(&mut self, seed: u64) -> Result<()> {
        self.planner.reset(seed);
        self.goal = self.initial_goal.clone();
        self.target = None;
        self.subgoal = None;
        self.out.fill(f32::NAN);
        self.last_plan = None;
        self.tracking = Tracking::default();
        let mut rebuild = !self.avoided.is_empty();
        self.avoided.clear();
        if let Some(src) = self.support.as_mut() {
            // Read again only when the memory has changed (as trainers do).
            let mem = src.memory.lock();
            let read_at = (mem.len(), mem.len().checked_sub(1).and_then(|i| mem.get(i)).map(|t| fingerprint(&t)));
            if src.current.is_none() || read_at != src.read_at {
                let sup = Support::from_memory(&**mem, &self.settings.dims, src.cell)?;
                src.current = Some(Arc::new(sup));
                src.read_at = read_at;
                rebuild = true;
            }
            drop(mem);
            let cells = src.current.as_ref().map_or(0, |s| s.visited());
            self.handle.update(|st| st.support_cells = cells);
        }
        if rebuild {
            self.cost = self.build_cost()?;
        }
        self.handle.update(|st| {
            st.subgoals.clear();
            st.avoided.clear();
        });
        Ok(())
    }

    fn tick(&mut self, ctx: &TickContext, inputs: &Inputs<'_>, outputs: &mut Outputs<'_>) -> Result<()> {
        let s = inputs.vector(0)?;
        if s.len() != self.settings.state_dim {
            return Err(CoreError::shape("level: state", format!("length {}", self.settings.state_dim), format!("length {}", s.len())));
        }
        for m in inputs.modulations(1)? {
            if let Modulation::Goal(g) = m {
                if let Some(g) = g {
                    check_goal(g, &self.settings)?;
                }
                self.goal = g.clone().map(Array1::from);
            }
        }
        // The target: the level above's subgoal, else the task's goal, in
        // the abstract state.
        let above = inputs.vector_opt(2)?;
        if let Some(a) = above {
            if a.len() != self.settings.state_dim {
                return Err(CoreError::shape(
                    "level: subgoal from the level above",
                    format!("length {}", self.settings.state_dim),
                    format!("length {}", a.len()),
                ));
            }
        }
        let target = match (&above, &self.settings.goal_dims) {
            (None, Some(gd)) => Some(gd.iter().map(|&d| s[d]).collect()),
            _ => above.or(self.goal.as_ref().map(|g| g.view())).map(|g| self.abstract_state(g)),
        };
        let Some(target) = target else { return Ok(()) };
        let z = self.abstract_state(s);
        let changed = !self.target.as_ref().is_some_and(|t| same_bits(t.view(), target.view()));
        if changed {
            self.cost.set_subgoal(Some(target.clone()));
            self.target = Some(target.clone());
            self.target_since = ctx.tick;
        }
        let due = match self.last_plan {
            None => true,
            Some(t) => changed || ctx.tick.saturating_sub(t) >= self.settings.period,
        };
        let mut replan = due;
        // The report is read even when a plan is due (the end of a window
        // may fall on it), unless the target itself changed.
        if self.settings.feedback != Feedback::Off && !changed {
            if let (Some((d, _spent)), Some(sub)) = (self.report(inputs.vector_opt(3)?), self.subgoal.clone()) {
                let tr = &mut self.tracking;
                let fresh = !tr.anchor.as_ref().is_some_and(|a| same_bits(a.view(), sub.view()));
                let mut unreachable = false;
                if d <= self.settings.reached {
                    if !replan {
                        self.handle.update(|st| st.reached += 1);
                    }
                    replan = true;
                } else if fresh {
                    *tr = Tracking { anchor: Some(sub.clone()), start: d, since: ctx.tick };
                } else if ctx.tick - tr.since >= self.settings.patience {
                    // Too little progress over a window: unreachable;
                    // enough: watch the next window.
                    unreachable = tr.start - d < self.settings.min_progress;
                    tr.start = d;
                    tr.since = ctx.tick;
                }
                if unreachable {
                    replan = true;
                    self.tracking = Tracking::default();
                    self.handle.update(|st| st.unreachable += 1);
                    if self.settings.feedback == Feedback::Refine {
                        // What failed is the way from here towards the
                        // subgoal: the bump goes one radius on from where
                        // the level below stalled (at most to the subgoal).
                        let gap: f32 = z.iter().zip(&sub).map(|(a, b)| (b - a) * (b - a)).sum::<f32>().sqrt();
                        let f = if gap > 0.0 { (self.settings.avoid_radius / gap).min(1.0) } else { 0.0 };
                        let point: Vec<f32> = z.iter().zip(&sub).map(|(a, b)| a + f * (b - a)).collect();
                        self.avoided.push(point);
                        let mut cost = self.build_cost()?;
                        cost.set_subgoal(Some(target.clone()));
                        self.cost = cost;
                        let point = self.avoided.last().cloned().unwrap_or_default();
                        self.handle.update(|st| st.avoided.push(point));
                    }
                }
            }
        }
        if replan {
            let sub = self.plan(&z)?;
            self.last_plan = Some(ctx.tick);
            for (&d, &v) in self.settings.dims.iter().zip(sub.iter()) {
                self.out[d] = v;
            }
            let tick = ctx.tick;
            let rec = sub.to_vec();
            self.handle.update(|st| st.subgoals.push((tick, rec)));
            self.subgoal = Some(sub);
        }
        outputs.set_vector(0, self.out.view());
        // Report to the level above on its subgoal (the target).
        if let Some(a) = above {
            let e = self.cost.subgoal_energy(z.view())?.unwrap_or(0.0);
            write_progress(&mut self.progress, e, ctx.tick - self.target_since, a);
            outputs.set_vector(1, self.progress.view());
        }
        Ok(())
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// The parameters every level takes besides its planner's.
pub fn level_params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new(
            "model",
            ParamType::node("world_model"),
            "world_model node of the level: its state is the kept coordinates, one step stands for `step_ticks` ticks",
        )
        .required(),
        ParamSpec::new(
            "dims",
            ParamType::FloatList { min_len: 1, max_len: 4096 },
            "the coordinates of the agent's state the level keeps (its abstract state), e.g. [0, 1]",
        )
        .required(),
        ParamSpec::new("step_ticks", ParamType::int(1, 1_000_000), "ticks one step of this level's model stands for").default(ParamValue::Int(10)),
        ParamSpec::new(
            "goal_dims",
            ParamType::FloatList { min_len: 1, max_len: 4096 },
            "the state coordinates holding the level's target, one per kept coordinate (a goal the observation carries, e.g. Gymnasium-Robotics' desired_goal), instead of the task's goal",
        ),
        ParamSpec::new("period", ParamType::int(1, 1_000_000), "ticks between plans (default: `step_ticks`; feedback may plan sooner)"),
        ParamSpec::new("subgoal_step", ParamType::int(1, 10_000), "which predicted state of the plan becomes the subgoal").default(ParamValue::Int(1)),
        ParamSpec::new(
            "feedback",
            ParamType::Str { choices: vec!["off".into(), "replan".into(), "refine".into()] },
            "what the level does with the progress reported from below",
        )
        .default(ParamValue::Str("refine".into())),
        ParamSpec::new("reached", ParamType::float(0.0, 1e9), "distance within which a subgoal is reached").default(ParamValue::Float(0.5)),
        ParamSpec::new(
            "patience",
            ParamType::int(1, 1_000_000),
            "ticks in which the distance to a subgoal must fall by `min_progress`, or it is unreachable (default: `step_ticks` / 2, at least 1)",
        ),
        ParamSpec::new("min_progress", ParamType::float(0.0, 1e9), "least decrease of the distance to a subgoal in `patience` ticks")
            .default(ParamValue::Float(0.25)),
        ParamSpec::new("avoid_radius", ParamType::float(1e-6, 1e9), "width of the bump an unreachable subgoal leaves in the cost")
            .default(ParamValue::Float(1.0)),
        ParamSpec::new("avoid_weight", ParamType::float(0.0, 1e12), "height of that bump, per plan step").default(ParamValue::Float(1000.0)),
        ParamSpec::new("action_bound", ParamType::float(1e-9, 1e9), "the level's abstract actions lie in [-bound, bound]").default(ParamValue::Float(1.0)),
        ParamSpec::new(
            "support",
            ParamType::node("memory"),
            "plan only where the experience is: the memory node whose visited states (in the kept coordinates) bound the plans, read at every episode start",
        ),
        ParamSpec::new("support_cell", ParamType::float(1e-6, 1e9), "side of the support's cells, in the abstract state").default(ParamValue::Float(0.25)),
        ParamSpec::new("support_weight", ParamType::float(0.0, 1e12), "cost of a step wholly outside the support (in proportion for part of one)")
            .default(ParamValue::Float(1000.0)),
        ParamSpec::new(
            "actions",
            ParamType::Structured { what: "a list of actions, each a list of numbers".into() },
            "a finite set of abstract actions instead of the box (for the discrete planners: cem-discrete, beam), e.g. [[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1]]",
        ),
    ]
}

/// The settings of a level from its parameters.
pub fn level_settings(p: &Params, state_dim: usize) -> Result<LevelSettings> {
    let dims = coordinates(p, "dims")?.unwrap_or_default();
    let steps = p.usize("step_ticks")? as u64;
    let s = LevelSettings {
        dims,
        state_dim,
        step_ticks: steps,
        goal_dims: coordinates(p, "goal_dims")?,
        period: p.usize_opt("period")?.map_or(steps, |v| v as u64),
        subgoal_step: p.usize("subgoal_step")?,
        feedback: Feedback::parse(p.str_opt("feedback")?.unwrap_or("refine"))?,
        reached: p.f32("reached")?,
        patience: p.usize_opt("patience")?.map_or((steps / 2).max(1), |v| v as u64),
        min_progress: p.f32("min_progress")?,
        avoid_radius: p.f32("avoid_radius")?,
        avoid_weight: p.f32("avoid_weight")?,
    };
    s.validate()?;
    Ok(s)
}

/// The level implementation of a planner declaration: its schema plus
/// [`level_params`]. Its abstract actions are a box, or the finite set
/// `actions` (which only the discrete planners search).
pub fn planner_level(decl: PlannerDecl) -> Implementation {
    let mut params = (decl.schema)();
    params.extend(level_params());
    let summary = format!("a planning level searching with {}: plans in its own world model, hands its plan's states down as subgoals", decl.name);
    Implementation::new(ModuleKind::Level, decl.name, &summary, LevelNode::ports(), params, move |ctx: &BuildContext<'_>, p: &Params| {
        let task = ctx.task()?;
        let settings = level_settings(p, task.state_dim())?;
        let model = ctx.world_model(p, "model")?;
        let a = model.get().action_dim();
        let space = match p.deserialize::<Vec<Vec<f32>>>("actions")? {
            Some(rows) => {
                if let Some(r) = rows.iter().position(|r| r.len() != a) {
                    return Err(CoreError::config(format!("actions[{r}]"), format!("has {} entries, and the world model's actions {a}", rows[r].len())));
                }
                ActionSpace::Discrete(ami_core::Choices::new(rows).map_err(|e| CoreError::config("actions", e.to_string()))?)
            }
            None => ActionSpace::Box(Bounds::symmetric(a, p.f32("action_bound")?)),
        };
        let planner = (decl.build)(p, &space, None)?;
        let mut node = LevelNode::new(planner, model, settings, task.goal.clone())?;
        if p.str_opt("support")?.is_some() {
            node = node.with_support(ctx.memory(p, "support")?, p.f32("support_cell")?, p.f32("support_weight")?)?;
        }
        Ok(Built::node(node))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn ctx() -> CostContext<'static> {
        CostContext { goal: None, subgoal: None, step: 0 }
    }

    #[test]
    fn a_bump_prices_the_closest_approach_of_a_step_and_nothing_beyond_its_radius() {
        let bump = AvoidCost::new(vec![vec![1.0, 0.0]], 0.5);
        let a = array![[0.0f32, 0.0], [0.0, 1.0], [0.0, 0.2]];
        let b = array![[2.0f32, 0.0], [2.0, 1.0], [2.0, 0.2]];
        let act = Array2::zeros((3, 1));
        let mut out = Array1::zeros(3);
        bump.add_cost(&ctx(), 10.0, a.view(), act.view(), b.view(), out.view_mut()).unwrap();
        // Through the centre (both ends a cell away): the full height.
        assert!((out[0] - 10.0).abs() < 1e-5, "{out}");
        // A cell off: beyond the radius, zero.
        assert_eq!(out[1], 0.0);
        // 0.2 off: 10 (1 - 0.04 / 0.25)^2 = 7.056.
        assert!((out[2] - 7.056).abs() < 1e-4, "{out}");
    }

    #[test]
    fn the_bump_gradient_matches_central_differences() {
        let bump = AvoidCost::new(vec![vec![1.0, 0.3], vec![0.2, -0.1]], 0.8);
        let a = array![[0.1f32, 0.0], [0.5, 0.5]];
        let b = array![[1.7f32, 0.1], [0.4, -0.2]];
        let act = Array2::zeros((2, 1));
        let (mut gs, mut ga, mut gn) = (Array2::zeros((2, 2)), Array2::zeros((2, 1)), Array2::zeros((2, 2)));
        bump.add_gradient(&ctx(), 3.0, a.view(), act.view(), b.view(), gs.view_mut(), ga.view_mut(), gn.view_mut());
        let energy = |a: &Array2<f32>, b: &Array2<f32>| {
            let mut o = Array1::zeros(2);
            bump.add_cost(&ctx(), 3.0, a.view(), act.view(), b.view(), o.view_mut()).unwrap();
            o
        };
        let h = 1e-3;
        for r in 0..2 {
            for i in 0..2 {
                for (which, grad) in [(0, &gs), (1, &gn)] {
                    let (mut ap, mut am, mut bp, mut bm) = (a.clone(), a.clone(), b.clone(), b.clone());
                    if which == 0 {
                        ap[[r, i]] += h;
                        am[[r, i]] -= h;
                    } else {
                        bp[[r, i]] += h;
                        bm[[r, i]] -= h;
                    }
                    let fd = (energy(&ap, &bp)[r] - energy(&am, &bm)[r]) / (2.0 * h);
                    assert!((grad[[r, i]] - fd).abs() < 2e-2, "row {r} coordinate {i} end {which}: {} vs {fd}", grad[[r, i]]);
                }
            }
        }
    }

    #[test]
    fn level_settings_are_checked() {
        let ok = LevelSettings {
            dims: vec![0, 1],
            state_dim: 4,
            step_ticks: 10,
            goal_dims: None,
            period: 10,
            subgoal_step: 1,
            feedback: Feedback::Refine,
            reached: 0.5,
            patience: 5,
            min_progress: 0.25,
            avoid_radius: 1.0,
            avoid_weight: 100.0,
        };
        assert!(ok.validate().is_ok());
        let err = LevelSettings { goal_dims: Some(vec![2]), ..ok.clone() }.validate().unwrap_err().to_string();
        assert!(err.contains("goal_dims") && err.contains("names 1 coordinates, and the level keeps 2"), "{err}");
        let err = LevelSettings { goal_dims: Some(vec![2, 4]), ..ok.clone() }.validate().unwrap_err().to_string();
        assert!(err.contains("goal_dims") && err.contains("coordinate 4 is outside the state"), "{err}");
        assert!(LevelSettings { goal_dims: Some(vec![2, 3]), ..ok.clone() }.validate().is_ok());
        let err = LevelSettings { dims: vec![], ..ok.clone() }.validate().unwrap_err().to_string();
        assert!(err.contains("dims"), "{err}");
        let err = LevelSettings { reached: f32::NAN, ..ok.clone() }.validate().unwrap_err().to_string();
        assert!(err.contains("reached"), "{err}");
        let err = LevelSettings { avoid_radius: 0.0, ..ok }.validate().unwrap_err().to_string();
        assert!(err.contains("avoid_radius"), "{err}");
        assert!(Feedback::parse("refine").is_ok() && Feedback::parse("maybe").is_err());
    }
}
