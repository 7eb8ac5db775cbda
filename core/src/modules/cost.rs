use std::fmt;
use std::sync::Arc;

use ndarray::{Array1, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use crate::error::{CoreError, Result};
use crate::modules::{Modulation, TransitionBatch};
pub use crate::tally::{blame, non_finite_rows, NonFiniteTally};

/// What a cost term may read besides the batch: the goal set by the
/// configurator and the step of the rollout (0 = first predicted step).
#[derive(Debug, Clone, Copy)]
pub struct CostContext<'a> {
    /// The current goal, if the configurator set one.
    pub goal: Option<ArrayView1<'a, f32>>,
    /// The current subgoal, if a higher planning level set one: a vector
    /// of the state's width in which NaN marks a coordinate the subgoal
    /// leaves free ([`SubgoalDistance`] reads it).
    pub subgoal: Option<ArrayView1<'a, f32>>,
    /// Step index within the rollout being evaluated.
    pub step: usize,
}

/// An intrinsic cost term IC_i [paper §3.2]: hard-wired, **immutable**
/// discomfort of a transition. Only `&self` methods exist and the term has
/// no trainable parameters; the only thing that changes at run time is its
/// weight `u_i` inside a [`Cost`], set by the configurator.
pub trait IntrinsicCost: Send + Sync {
    /// Name of the term (used by modulations to address its weight).
    fn name(&self) -> &str;
    /// **Adds** `weight * IC(s, a, s')` of every row of the batch to `out`
    /// (`[batch]`). `states` is the state before the action, `next_states`
    /// the predicted (or observed) state after it. An error (a term that
    /// cannot price this batch) stops the planning call and reaches the
    /// user with the term's own message.
    fn add_cost(
        &self,
        ctx: &CostContext<'_>,
        weight: f32,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        out: ArrayViewMut1<'_, f32>,
    ) -> Result<()>;
    /// The quadratic form of the term, if it has one. Fused planner kernels
    /// use it to evaluate the cost inside the rollout.
    fn as_quadratic(&self) -> Option<&QuadraticCost> {
        None
    }
    /// The width of the goal this term compares states with, if it reads
    /// the goal (`None`, the default: it does not). A goal of another width
    /// is refused, so a 2-D fingertip goal is never silently compared with
    /// joint angles.
    fn goal_dim(&self) -> Option<usize> {
        None
    }
    /// The width of the state this term reads subgoals against, if it
    /// reads the subgoal (`None`, the default: it does not). A subgoal of
    /// another width is refused.
    fn subgoal_dim(&self) -> Option<usize> {
        None
    }
    /// The differentiable capability, for gradient planners; `None` (the
    /// default) if the term gives no gradient.
    fn differentiable(&self) -> Option<&dyn DifferentiableCost> {
        None
    }
}

/// An intrinsic cost term with a gradient, so gradient planners (GD) can
/// minimise it through a differentiable world model.
pub trait DifferentiableCost: IntrinsicCost {
    /// **Adds** `weight * d cost[b] / d x[b]` for every row `b` to the
    /// gradient with respect to `states` (`grad_states`), `actions`
    /// (`grad_actions`) and `next_states` (`grad_next`), each the shape of
    /// its input.
    #[allow(clippy::too_many_arguments)]
    fn add_gradient(
        &self,
        ctx: &CostContext<'_>,
        weight: f32,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        grad_states: ArrayViewMut2<'_, f32>,
        grad_actions: ArrayViewMut2<'_, f32>,
        grad_next: ArrayViewMut2<'_, f32>,
    );
}

/// A trainable critic TC_j [paper §3.2]: predicts the future intrinsic cost
/// from a state. Planners use the weighted critics as the terminal cost of a
/// rollout; it is trained from short-term memory.
pub trait Critic: Send + Sync {
    /// Name of the critic term.
    fn name(&self) -> &str;
    /// **Adds** `weight * V(s)` for every row of `states` to `out`.
    fn add_value(&self, ctx: &CostContext<'_>, weight: f32, states: ArrayView2<'_, f32>, out: ArrayViewMut1<'_, f32>) -> Result<()>;
    /// One training step on a batch of transitions; returns the loss.
    fn train(&mut self, batch: &TransitionBatch, discount: f32) -> Result<f32>;
    /// The critic as `Any`, so the module that made it (a trainer) can
    /// recognise its own type behind a handle; `None` by default.
    fn as_any(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        None
    }
    /// Whether [`Critic::add_value_gradient`] is implemented (gradient
    /// planners need it); `false` by default.
    fn has_gradient(&self) -> bool {
        false
    }
    /// **Adds** `weight * dV/ds` for every row of `states` to `grad`
    /// (`[rows, S]`); refuses by default.
    fn add_value_gradient(&self, _ctx: &CostContext<'_>, _weight: f32, _states: ArrayView2<'_, f32>, _grad: ArrayViewMut2<'_, f32>) -> Result<()> {
        Err(CoreError::config(format!("critic.{}", self.name()), "this critic has no gradient (Critic::has_gradient is false)"))
    }
    /// A form of the critic the planners' fused kernels can evaluate
    /// inside their rollouts (an MLP critic returns the kernels'
    /// `ValueMlp`), as `Any` so this contract names no kernel type; `None`
    /// (the default) keeps planning with a critic on the generic path.
    fn accelerated(&self) -> Option<std::sync::Arc<dyn std::any::Any + Send + Sync>> {
        None
    }
}

/// A fixed critic `V(s) = sum_i w_i (s_i - g_i)^2` (the goal `g` from the
/// context, zero without one): a hand-written estimate of the cost still to
/// come, used as a terminal cost so a short horizon sees further. It does
/// not learn: [`Critic::train`] refuses (trained critics come from
/// `ami-learn`).
#[derive(Debug, Clone, PartialEq)]
pub struct QuadraticCritic {
    name: String,
    weights: Vec<f32>,
}

impl QuadraticCritic {
    /// A critic with per-dimension weights.
    pub fn new(name: impl Into<String>, weights: Vec<f32>) -> Self {
        Self { name: name.into(), weights }
    }
}

impl Critic for QuadraticCritic {
    fn name(&self) -> &str {
        &self.name
    }
    fn add_value(&self, ctx: &CostContext<'_>, weight: f32, states: ArrayView2<'_, f32>, mut out: ArrayViewMut1<'_, f32>) -> Result<()> {
        for (o, s) in out.iter_mut().zip(states.rows()) {
            let mut v = 0.0f32;
            for (i, (&si, &wi)) in s.iter().zip(&self.weights).enumerate() {
                let g = ctx.goal.map_or(0.0, |g| g.get(i).copied().unwrap_or(0.0));
                v += wi * (si - g) * (si - g);
            }
            *o += weight * v;
        }
        Ok(())
    }
    fn train(&mut self, _batch: &TransitionBatch, _discount: f32) -> Result<f32> {
        Err(CoreError::config(format!("critic.{}", self.name), "a quadratic critic is fixed and does not train"))
    }
}

/// `IC(s, a, s') = sum_i q_i (s'_i - g_i)^2 + sum_j r_j a_j^2`, with `g` the
/// goal from the context (zero when no goal is set).
#[derive(Debug, Clone, PartialEq)]
pub struct QuadraticCost {
    name: String,
    state_weights: Vec<f32>,
    action_weights: Vec<f32>,
}

impl QuadraticCost {
    /// A quadratic cost with per-dimension weights.
    pub fn new(name: impl Into<String>, state_weights: Vec<f32>, action_weights: Vec<f32>) -> Self {
        Self { name: name.into(), state_weights, action_weights }
    }
    /// Per-dimension weights `q` on `s' - goal`.
    pub fn state_weights(&self) -> &[f32] {
        &self.state_weights
    }
    /// Per-dimension weights `r` on the action.
    pub fn action_weights(&self) -> &[f32] {
        &self.action_weights
    }
}

impl IntrinsicCost for QuadraticCost {
    fn name(&self) -> &str {
        &self.name
    }
    fn add_cost(
        &self,
        ctx: &CostContext<'_>,
        weight: f32,
        _states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        mut out: ArrayViewMut1<'_, f32>,
    ) -> Result<()> {
        let q = &self.state_weights;
        let r = &self.action_weights;
        for ((o, s), a) in out.iter_mut().zip(next_states.rows()).zip(actions.rows()) {
            let mut c = 0.0f32;
            for (i, (&si, &qi)) in s.iter().zip(q).enumerate() {
                if qi != 0.0 {
                    let g = ctx.goal.map_or(0.0, |g| g.get(i).copied().unwrap_or(0.0));
                    let d = si - g;
                    c += qi * d * d;
                }
            }
            for (&aj, &rj) in a.iter().zip(r) {
                c += rj * aj * aj;
            }
            *o += weight * c;
        }
        Ok(())
    }
    fn as_quadratic(&self) -> Option<&QuadraticCost> {
        Some(self)
    }
    fn goal_dim(&self) -> Option<usize> {
        self.state_weights.iter().any(|&q| q != 0.0).then_some(self.state_weights.len())
    }
    fn differentiable(&self) -> Option<&dyn DifferentiableCost> {
        Some(self)
    }
}

impl DifferentiableCost for QuadraticCost {
    fn add_gradient(
        &self,
        ctx: &CostContext<'_>,
        weight: f32,
        _states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        _grad_states: ArrayViewMut2<'_, f32>,
        mut grad_actions: ArrayViewMut2<'_, f32>,
        mut grad_next: ArrayViewMut2<'_, f32>,
    ) {
        for (b, s) in next_states.rows().into_iter().enumerate() {
            for (i, (&si, &qi)) in s.iter().zip(&self.state_weights).enumerate() {
                if qi != 0.0 {
                    let g = ctx.goal.map_or(0.0, |g| g.get(i).copied().unwrap_or(0.0));
                    grad_next[[b, i]] += 2.0 * (weight * qi) * (si - g);
                }
            }
        }
        for (b, a) in actions.rows().into_iter().enumerate() {
            for (j, (&aj, &rj)) in a.iter().zip(&self.action_weights).enumerate() {
                grad_actions[[b, j]] += 2.0 * (weight * rj) * aj;
            }
        }
    }
}

/// `||s' - goal||^2` over the first `state_dim` dimensions: the distance of
/// the predicted state to the configurator's goal.
pub struct GoalDistance;

impl GoalDistance {
    /// The squared distance to the goal as a [`QuadraticCost`] named `goal`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(state_dim: usize) -> QuadraticCost {
        QuadraticCost::new("goal", vec![1.0; state_dim], Vec::new())
    }
}

/// `||a||^2`: effort.
pub struct ActionPenalty;

impl ActionPenalty {
    /// The squared action norm as a [`QuadraticCost`] named `effort`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(action_dim: usize) -> QuadraticCost {
        QuadraticCost::new("effort", Vec::new(), vec![1.0; action_dim])
    }
}

/// `sum_i q_i (s'_i - subgoal_i)^2` over the coordinates the subgoal fixes
/// (NaN entries are free): the distance of the predicted state to the
/// subgoal a higher planning level set (a `level` node's plan, through the
/// cost node's `subgoal` port or [`Modulation::Subgoal`]). Zero while no
/// subgoal is set. Named `subgoal` unless built with another name.
#[derive(Debug, Clone, PartialEq)]
pub struct SubgoalDistance {
    name: String,
    weights: Vec<f32>,
}

impl SubgoalDistance {
    /// The squared distance to the subgoal on a state of `state_dim`
    /// coordinates, each weighted 1.
    pub fn new(state_dim: usize) -> Self {
        Self::weighted("subgoal", vec![1.0; state_dim])
    }
    /// The distance with per-coordinate weights (`weights.len()` is the
    /// state's width).
    pub fn weighted(name: impl Into<String>, weights: Vec<f32>) -> Self {
        Self { name: name.into(), weights }
    }
    /// The unweighted distance of one state to `subgoal` (free
    /// coordinates skipped): what a cost node reports as progress.
    pub fn distance(&self, state: ArrayView1<'_, f32>, subgoal: ArrayView1<'_, f32>) -> f32 {
        let mut c = 0.0;
        for ((&s, &g), &q) in state.iter().zip(subgoal.iter()).zip(&self.weights) {
            if q != 0.0 && !g.is_nan() {
                c += q * (s - g) * (s - g);
            }
        }
        c
    }
}

impl IntrinsicCost for SubgoalDistance {
    fn name(&self) -> &str {
        &self.name
    }
    fn add_cost(
        &self,
        ctx: &CostContext<'_>,
        weight: f32,
        _states: ArrayView2<'_, f32>,
        _actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        mut out: ArrayViewMut1<'_, f32>,
    ) -> Result<()> {
        let Some(g) = ctx.subgoal else { return Ok(()) };
        for (o, s) in out.iter_mut().zip(next_states.rows()) {
            *o += weight * self.distance(s, g);
        }
        Ok(())
    }
    fn subgoal_dim(&self) -> Option<usize> {
        Some(self.weights.len())
    }
    fn differentiable(&self) -> Option<&dyn DifferentiableCost> {
        Some(self)
    }
}

impl DifferentiableCost for SubgoalDistance {
    fn add_gradient(
        &self,
        ctx: &CostContext<'_>,
        weight: f32,
        _states: ArrayView2<'_, f32>,
        _actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        _grad_states: ArrayViewMut2<'_, f32>,
        _grad_actions: ArrayViewMut2<'_, f32>,
        mut grad_next: ArrayViewMut2<'_, f32>,
    ) {
        let Some(g) = ctx.subgoal else { return };
        for (b, s) in next_states.rows().into_iter().enumerate() {
            for (i, ((&si, &gi), &q)) in s.iter().zip(g.iter()).zip(&self.weights).enumerate() {
                if q != 0.0 && !gi.is_nan() {
                    grad_next[[b, i]] += 2.0 * weight * q * (si - gi);
                }
            }
        }
    }
}

struct Term {
    name: String,
    term: Arc<dyn IntrinsicCost>,
    weight: f32,
}

struct CriticTerm {
    name: String,
    critic: Box<dyn Critic>,
    weight: f32,
}

/// A cost's modulated settings (term weights in order, goal), taken by
/// [`Cost::settings`] and put back by [`Cost::restore`].
#[derive(Debug, Clone, PartialEq)]
pub struct CostSettings {
    weights: Vec<f32>,
    goal: Option<Array1<f32>>,
    subgoal: Option<Array1<f32>>,
}

/// The cost module [paper §3.2]: the energy
/// `C(s) = sum_i u_i IC_i(s) + sum_j v_j TC_j(s)`.
///
/// Intrinsic terms are held behind `Arc<dyn IntrinsicCost>` and never
/// handed out mutably: only their weights change, through
/// [`Cost::set_weight`] / [`Cost::apply`] (the configurator's modulation).
/// Critic terms are trainable and serve as the terminal cost of a rollout.
#[derive(Default)]
pub struct Cost {
    terms: Vec<Term>,
    critics: Vec<CriticTerm>,
    goal: Option<Array1<f32>>,
    subgoal: Option<Array1<f32>>,
}

impl fmt::Debug for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cost")
            .field("intrinsic", &self.terms.iter().map(|t| (&t.name, t.weight)).collect::<Vec<_>>())
            .field("critics", &self.critics.iter().map(|t| (&t.name, t.weight)).collect::<Vec<_>>())
            .field("goal", &self.goal)
            .finish()
    }
}

impl Cost {
    /// An empty cost (energy 0 everywhere).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an intrinsic term under its own name with weight `weight`.
    /// Returns an error if a term of that name already exists.
    pub fn add_intrinsic(&mut self, term: Arc<dyn IntrinsicCost>, weight: f32) -> Result<&mut Self> {
        let name = term.name().to_string();
        self.add_intrinsic_named(name, term, weight)
    }

    /// Adds an intrinsic term under `name`.
    pub fn add_intrinsic_named(&mut self, name: impl Into<String>, term: Arc<dyn IntrinsicCost>, weight: f32) -> Result<&mut Self> {
        let name = name.into();
        self.check_new_name(&name)?;
        check_weight(&name, weight)?;
        self.terms.push(Term { name, term, weight });
        Ok(self)
    }

    /// Adds a trainable critic term (a terminal cost of rollouts).
    pub fn add_critic(&mut self, critic: Box<dyn Critic>, weight: f32) -> Result<&mut Self> {
        let name = critic.name().to_string();
        self.check_new_name(&name)?;
        check_weight(&name, weight)?;
        self.critics.push(CriticTerm { name, critic, weight });
        Ok(self)
    }

    fn check_new_name(&self, name: &str) -> Result<()> {
        if self.terms.iter().any(|t| t.name == name) || self.critics.iter().any(|t| t.name == name) {
            return Err(CoreError::config(format!("cost.{name}"), "a cost term of this name already exists"));
        }
        Ok(())
    }

    /// Names of all terms, intrinsic then critic.
    pub fn term_names(&self) -> Vec<&str> {
        self.terms.iter().map(|t| t.name.as_str()).chain(self.critics.iter().map(|t| t.name.as_str())).collect()
    }

    /// The intrinsic terms with their weights.
    pub fn intrinsic_terms(&self) -> impl Iterator<Item = (&str, &dyn IntrinsicCost, f32)> {
        self.terms.iter().map(|t| (t.name.as_str(), t.term.as_ref(), t.weight))
    }

    /// The weight of a term.
    pub fn weight(&self, name: &str) -> Option<f32> {
        self.terms.iter().find(|t| t.name == name).map(|t| t.weight).or_else(|| self.critics.iter().find(|t| t.name == name).map(|t| t.weight))
    }

    /// Sets the weight of a term (intrinsic or critic).
    pub fn set_weight(&mut self, name: &str, weight: f32) -> Result<()> {
        check_weight(name, weight)?;
        if let Some(t) = self.terms.iter_mut().find(|t| t.name == name) {
            t.weight = weight;
            return Ok(());
        }
        if let Some(t) = self.critics.iter_mut().find(|t| t.name == name) {
            t.weight = weight;
            return Ok(());
        }
        Err(CoreError::UnknownCostTerm { term: name.to_string(), known: self.term_names().join(", ") })
    }

    /// The goal that goal-relative terms measure against.
    pub fn goal(&self) -> Option<ArrayView1<'_, f32>> {
        self.goal.as_ref().map(|g| g.view())
    }

    /// Sets (or clears) the goal.
    pub fn set_goal(&mut self, goal: Option<Array1<f32>>) {
        self.goal = goal;
    }

    /// The subgoal that [`SubgoalDistance`] terms measure against (NaN:
    /// a free coordinate).
    pub fn subgoal(&self) -> Option<ArrayView1<'_, f32>> {
        self.subgoal.as_ref().map(|g| g.view())
    }

    /// Sets (or clears) the subgoal.
    pub fn set_subgoal(&mut self, subgoal: Option<Array1<f32>>) {
        self.subgoal = subgoal;
    }

    /// Whether any term reads the subgoal ([`IntrinsicCost::subgoal_dim`]).
    pub fn reads_subgoal(&self) -> bool {
        self.terms.iter().any(|t| t.term.subgoal_dim().is_some())
    }

    /// The unweighted energy of the subgoal terms at `state` (how far it is
    /// from the subgoal), or `None` without a subgoal or a term that
    /// reads it: the achieved cost a lower level reports to the level
    /// above.
    pub fn subgoal_energy(&self, state: ArrayView1<'_, f32>) -> Result<Option<f32>> {
        let Some(g) = self.subgoal.as_ref() else { return Ok(None) };
        let ctx = CostContext { goal: self.goal(), subgoal: Some(g.view()), step: 0 };
        let states = state.insert_axis(ndarray::Axis(0));
        let actions = ndarray::Array2::<f32>::zeros((1, 0));
        let mut out = [0.0f32];
        let mut any = false;
        for t in self.terms.iter().filter(|t| t.term.subgoal_dim().is_some()) {
            t.term.add_cost(&ctx, 1.0, states, actions.view(), states, ArrayViewMut1::from(&mut out[..]))?;
            any = true;
        }
        Ok(any.then_some(out[0]))
    }

    /// Checks that a subgoal of width `width` fits every term that reads
    /// it, and that it has a finite or NaN (free) entry in each place.
    pub fn check_subgoal(&self, subgoal: &[f32]) -> Result<()> {
        if subgoal.iter().any(|v| v.is_infinite()) {
            return Err(CoreError::config("subgoal", "entries must be finite (or NaN for a free coordinate)"));
        }
        for t in &self.terms {
            if let Some(d) = t.term.subgoal_dim() {
                if d != subgoal.len() {
                    return Err(CoreError::config(
                        "subgoal",
                        format!("the subgoal has {} entries, and cost term `{}` compares it with {d} state coordinates", subgoal.len(), t.name),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Applies a configurator modulation that concerns the cost (weights,
    /// goal, subgoal). Returns `Ok(false)` for modulations addressed to
    /// other modules.
    pub fn apply(&mut self, m: &Modulation) -> Result<bool> {
        match m {
            Modulation::CostWeight { term, weight } => self.set_weight(term, *weight).map(|_| true),
            Modulation::Goal(g) => {
                if let Some(g) = g {
                    self.check_goal(g.len())?;
                }
                self.set_goal(g.clone().map(Array1::from));
                Ok(true)
            }
            Modulation::Subgoal(g) => {
                if let Some(g) = g {
                    if !self.reads_subgoal() {
                        return Err(CoreError::config(
                            "subgoal",
                            format!(
                                "a subgoal arrived and no term of the cost reads one (terms: {}); add a subgoal term (the task cost's `subgoal_weight`)",
                                self.term_names().join(", ")
                            ),
                        ));
                    }
                    self.check_subgoal(g)?;
                }
                self.set_subgoal(g.clone().map(Array1::from));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The context handed to the terms for rollout step `step`.
    pub fn context(&self, step: usize) -> CostContext<'_> {
        CostContext { goal: self.goal(), subgoal: self.subgoal(), step }
    }

    /// Writes the weighted intrinsic energy of each transition of the batch
    /// into `out` (overwriting it). A term's error is returned as it is.
    pub fn step_energy(
        &self,
        step: usize,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        out: ArrayViewMut1<'_, f32>,
    ) -> Result<()> {
        self.step_energy_tallied(step, states, actions, next_states, out, None)
    }

    /// [`Cost::step_energy`], counting in `tally` the rows each term made
    /// non-finite (one pass over `out` per term).
    pub fn step_energy_tallied(
        &self,
        step: usize,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        mut out: ArrayViewMut1<'_, f32>,
        mut tally: Option<&mut NonFiniteTally>,
    ) -> Result<()> {
        out.fill(0.0);
        let ctx = self.context(step);
        // Rows whose inputs are already non-finite are not a term's doing.
        let mut blamed = if tally.is_some() { non_finite_rows(&[states, actions, next_states]) } else { Vec::new() };
        for t in &self.terms {
            if t.weight != 0.0 {
                t.term.add_cost(&ctx, t.weight, states, actions, next_states, out.view_mut())?;
                if let Some(tally) = tally.as_deref_mut() {
                    tally.add(|| format!("cost term `{}`", t.name), blame(&mut blamed, out.view()));
                }
            }
        }
        Ok(())
    }

    /// The settings modulations change (every term's weight and the goal),
    /// to [`Cost::restore`] at the start of the next episode.
    pub fn settings(&self) -> CostSettings {
        CostSettings {
            weights: self.terms.iter().map(|t| t.weight).chain(self.critics.iter().map(|c| c.weight)).collect(),
            goal: self.goal.clone(),
            subgoal: self.subgoal.clone(),
        }
    }

    /// Puts back settings taken with [`Cost::settings`] (terms added since
    /// keep their weights).
    pub fn restore(&mut self, s: &CostSettings) {
        let n = self.terms.len();
        for (i, &w) in s.weights.iter().enumerate() {
            if i < n {
                self.terms[i].weight = w;
            } else if let Some(c) = self.critics.get_mut(i - n) {
                c.weight = w;
            }
        }
        self.goal = s.goal.clone();
        self.subgoal = s.subgoal.clone();
    }

    /// Checks that a goal of width `width` fits every term that reads the
    /// goal ([`IntrinsicCost::goal_dim`]).
    pub fn check_goal(&self, width: usize) -> Result<()> {
        for t in &self.terms {
            if let Some(d) = t.term.goal_dim() {
                if d != width {
                    return Err(CoreError::config(
                        "goal",
                        format!("the goal has {width} entries, and cost term `{}` compares it with {d} state coordinates", t.name),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether every weighted intrinsic term and critic is differentiable,
    /// so [`Cost::add_step_gradient`] and [`Cost::add_terminal_gradient`]
    /// give the whole gradient.
    pub fn is_differentiable(&self) -> bool {
        self.critics.iter().all(|c| c.weight == 0.0 || c.critic.has_gradient())
            && self.terms.iter().all(|t| t.weight == 0.0 || t.term.differentiable().is_some())
    }

    /// **Adds** the gradient of the weighted critic values of a rollout's
    /// final states (see [`Cost::add_terminal_energy`]) to `grad`
    /// (`[rows, S]`); refuses a critic without a gradient.
    pub fn add_terminal_gradient(&self, step: usize, states: ArrayView2<'_, f32>, mut grad: ArrayViewMut2<'_, f32>) -> Result<()> {
        let ctx = self.context(step);
        for c in &self.critics {
            if c.weight != 0.0 {
                c.critic.add_value_gradient(&ctx, c.weight, states, grad.view_mut())?;
            }
        }
        Ok(())
    }

    /// Adds the gradient of the step energy (see [`Cost::step_energy`])
    /// with respect to `states`, `actions` and `next_states` to the three
    /// gradient buffers; refuses a term without a gradient.
    #[allow(clippy::too_many_arguments)]
    pub fn add_step_gradient(
        &self,
        step: usize,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        mut grad_states: ArrayViewMut2<'_, f32>,
        mut grad_actions: ArrayViewMut2<'_, f32>,
        mut grad_next: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        let ctx = self.context(step);
        for t in &self.terms {
            if t.weight == 0.0 {
                continue;
            }
            let d = t
                .term
                .differentiable()
                .ok_or_else(|| CoreError::config(format!("cost.{}", t.name), "this cost term has no gradient (IntrinsicCost::differentiable is None)"))?;
            d.add_gradient(&ctx, t.weight, states, actions, next_states, grad_states.view_mut(), grad_actions.view_mut(), grad_next.view_mut());
        }
        Ok(())
    }

    /// Whether any critic term exists (a terminal cost is added to rollouts).
    pub fn has_terminal(&self) -> bool {
        self.critics.iter().any(|c| c.weight != 0.0)
    }

    /// **Adds** the weighted critic values of the final states of a rollout.
    pub fn add_terminal_energy(&self, step: usize, states: ArrayView2<'_, f32>, out: ArrayViewMut1<'_, f32>) -> Result<()> {
        self.add_terminal_energy_tallied(step, states, out, None)
    }

    /// [`Cost::add_terminal_energy`], counting in `tally` the rows each
    /// critic made non-finite.
    pub fn add_terminal_energy_tallied(
        &self,
        step: usize,
        states: ArrayView2<'_, f32>,
        mut out: ArrayViewMut1<'_, f32>,
        mut tally: Option<&mut NonFiniteTally>,
    ) -> Result<()> {
        let ctx = self.context(step);
        let mut blamed = Vec::new();
        if tally.is_some() {
            blamed = non_finite_rows(&[states]);
            blame(&mut blamed, out.view());
        }
        for c in &self.critics {
            if c.weight != 0.0 {
                c.critic.add_value(&ctx, c.weight, states, out.view_mut())?;
                if let Some(tally) = tally.as_deref_mut() {
                    tally.add(|| format!("critic `{}`", c.critic.name()), blame(&mut blamed, out.view()));
                }
            }
        }
        Ok(())
    }

    /// The critic terms of non-zero weight, with their weights.
    pub fn weighted_critics(&self) -> impl Iterator<Item = (&dyn Critic, f32)> {
        self.critics.iter().filter(|c| c.weight != 0.0).map(|c| (c.critic.as_ref(), c.weight))
    }
    /// The critic terms, mutably, for training. Intrinsic terms are never
    /// reachable mutably.
    pub fn critics_mut(&mut self) -> impl Iterator<Item = &mut (dyn Critic + 'static)> {
        self.critics.iter_mut().map(|c| c.critic.as_mut())
    }

    /// When the whole energy is one quadratic form over next-state and
    /// action with no critic, returns its effective weights `(q, r)` with the
    /// term weights folded in (fused kernels use this).
    pub fn as_quadratic(&self, state_dim: usize, action_dim: usize) -> Option<(Vec<f32>, Vec<f32>)> {
        if self.has_terminal() {
            return None;
        }
        self.intrinsic_as_quadratic(state_dim, action_dim)
    }
    /// Like [`Cost::as_quadratic`], for the intrinsic terms alone (the
    /// critics, if any, are left to [`Cost::weighted_critics`]).
    pub fn intrinsic_as_quadratic(&self, state_dim: usize, action_dim: usize) -> Option<(Vec<f32>, Vec<f32>)> {
        let mut q = vec![0.0; state_dim];
        let mut r = vec![0.0; action_dim];
        for t in &self.terms {
            let quad = t.term.as_quadratic()?;
            for (qi, &w) in q.iter_mut().zip(quad.state_weights()) {
                *qi += t.weight * w;
            }
            for (ri, &w) in r.iter_mut().zip(quad.action_weights()) {
                *ri += t.weight * w;
            }
        }
        Some((q, r))
    }
}

fn check_weight(name: &str, weight: f32) -> Result<()> {
    if !weight.is_finite() {
        return Err(CoreError::config(format!("cost.{name}.weight"), format!("must be finite, got {weight}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array1};

    #[test]
    fn weighted_sum_of_terms_with_goal() {
        let mut c = Cost::new();
        c.add_intrinsic(Arc::new(GoalDistance::new(2)), 2.0).unwrap();
        c.add_intrinsic(Arc::new(ActionPenalty::new(1)), 0.5).unwrap();
        c.set_goal(Some(array![1.0, 0.0]));
        let s = array![[0.0, 0.0]];
        let a = array![[2.0]];
        let n = array![[3.0, 1.0]];
        let mut e = Array1::zeros(1);
        c.step_energy(0, s.view(), a.view(), n.view(), e.view_mut()).unwrap();
        // 2 * ((3-1)^2 + 1^2) + 0.5 * 4 = 12
        assert_eq!(e[0], 12.0);
        c.apply(&Modulation::CostWeight { term: "effort".into(), weight: 0.0 }).unwrap();
        c.step_energy(0, s.view(), a.view(), n.view(), e.view_mut()).unwrap();
        assert_eq!(e[0], 10.0);
        let err = c.set_weight("nope", 1.0).unwrap_err();
        assert!(err.to_string().contains("unknown cost term `nope`"), "{err}");
        assert!(c.add_intrinsic(Arc::new(GoalDistance::new(2)), 1.0).is_err());
        assert_eq!(c.as_quadratic(2, 1), Some((vec![2.0, 2.0], vec![0.0])));
    }

    #[test]
    fn the_subgoal_term_measures_only_the_coordinates_the_subgoal_fixes() {
        let mut c = Cost::new();
        c.add_intrinsic(Arc::new(GoalDistance::new(3)), 0.0).unwrap();
        c.add_intrinsic(Arc::new(SubgoalDistance::weighted("subgoal", vec![1.0, 2.0, 1.0])), 0.5).unwrap();
        let s = array![[0.0f32, 0.0, 0.0]];
        let a = array![[0.0f32]];
        let next = array![[1.0f32, 2.0, 3.0]];
        let mut out = Array1::zeros(1);
        // No subgoal: the term adds nothing.
        c.step_energy(0, s.view(), a.view(), next.view(), out.view_mut()).unwrap();
        assert_eq!(out[0], 0.0);
        assert_eq!(c.subgoal_energy(next.row(0)).unwrap(), None);
        // [0, 0, free]: 0.5 * (1 * 1^2 + 2 * 2^2) = 4.5; the free third
        // coordinate is not compared.
        c.apply(&Modulation::Subgoal(Some(vec![0.0, 0.0, f32::NAN]))).unwrap();
        c.step_energy(0, s.view(), a.view(), next.view(), out.view_mut()).unwrap();
        assert_eq!(out[0], 4.5);
        assert_eq!(c.subgoal_energy(next.row(0)).unwrap(), Some(9.0), "unweighted: the achieved cost a level reports");
        // The gradient against central differences.
        let sg = SubgoalDistance::weighted("subgoal", vec![1.0, 2.0, 1.0]);
        let ctx = c.context(0);
        let mut g = ndarray::Array2::zeros((1, 3));
        let (mut gs, mut ga) = (ndarray::Array2::zeros((1, 3)), ndarray::Array2::zeros((1, 1)));
        sg.add_gradient(&ctx, 0.5, s.view(), a.view(), next.view(), gs.view_mut(), ga.view_mut(), g.view_mut());
        for i in 0..3 {
            let h = 1e-2;
            let at = |d: f32| {
                let mut n = next.clone();
                n[[0, i]] += d;
                let mut o = Array1::zeros(1);
                sg.add_cost(&ctx, 0.5, s.view(), a.view(), n.view(), o.view_mut()).unwrap();
                o[0]
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            assert!((g[[0, i]] - fd).abs() < 1e-3, "coordinate {i}: {} vs {fd}", g[[0, i]]);
        }
        // Widths are checked, infinities refused, and the subgoal comes
        // back with the settings.
        let before = c.settings();
        let err = c.apply(&Modulation::Subgoal(Some(vec![0.0, 0.0]))).unwrap_err().to_string();
        assert!(err.contains("the subgoal has 2 entries, and cost term `subgoal` compares it with 3"), "{err}");
        assert!(c.apply(&Modulation::Subgoal(Some(vec![0.0, f32::INFINITY, 0.0]))).is_err());
        c.apply(&Modulation::Subgoal(None)).unwrap();
        assert!(c.subgoal().is_none());
        c.restore(&before);
        assert_eq!(c.subgoal().map(|g| g[0]), Some(0.0));
        // A cost without a subgoal term refuses a subgoal, saying what to add.
        let mut plain = Cost::new();
        plain.add_intrinsic(Arc::new(GoalDistance::new(3)), 1.0).unwrap();
        let err = plain.apply(&Modulation::Subgoal(Some(vec![0.0; 3]))).unwrap_err().to_string();
        assert!(err.contains("no term of the cost reads one"), "{err}");
    }
}
