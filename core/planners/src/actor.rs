//! The receding-horizon Mode-2 actor.

use std::sync::Arc;
use std::time::Instant;

use ndarray::{Array1, Array2, ArrayView1, Axis};

use ami_core::error::{CoreError, Result};
use ami_core::modules::{ActMode, Actor, Cost, Decision, Modulation, Policy, WorldModel};
use ami_core::{ModelHandle, Plan, PlanRequest, Planner, PolicyHandle, RunPhase};

use crate::common::shift_plan;
use crate::rollout::Rollout;

/// A Mode-2 actor: at every call it plans through the world model from the
/// current state (warm-started from the previous plan shifted one step),
/// and acts the first action of the plan — receding-horizon control.
///
/// The world model is held through a [`ModelHandle`]: each call plans with
/// the version current when it starts, so a trainer can publish new
/// weights between calls.
///
/// With a Mode-1 policy ([`PlanningActor::with_policy`]) the actor decides
/// each tick by its [`ActMode`]: it rolls the policy out through the world
/// model into a proposal, compares the proposal's energy with the standing
/// plan's (its last plan, shifted to now), and either acts the policy's
/// action (Mode-1) or plans (Mode-2), starting the planner from the better
/// of the two sequences.
pub struct PlanningActor {
    planner: Box<dyn Planner>,
    model: ModelHandle,
    last: Option<Plan>,
    plan_calls: u64,
    plan_seconds: f64,
    mode1: Option<Mode1>,
    decision: Decision,
    label: Option<Array1<f32>>,
}

/// What a planning actor with a policy keeps.
struct Mode1 {
    policy: PolicyHandle,
    /// The mode of learning episodes and of evaluation episodes.
    learn: ActMode,
    eval: ActMode,
    /// The mode now (a modulation may change it until the episode ends).
    mode: ActMode,
    /// In `label` mode, the planner acts in the first this many learning
    /// episodes.
    teacher_episodes: usize,
    episodes: usize,
    /// Whether the actor acted yet in this episode.
    started: bool,
    teacher_acts: bool,
    propose: bool,
    /// The actor's own switch rule: margin, tolerance, max_policy_ticks.
    switch_rule: (f32, f32, usize),
    phase: RunPhase,
    /// The planner's last plan, shifted one step per tick since.
    standing: Option<Array2<f32>>,
    policy_ticks: usize,
}

/// How a [`PlanningActor`] uses a Mode-1 policy (see
/// [`PlanningActor::with_policy`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyUse {
    /// The mode in learning episodes.
    pub mode: ActMode,
    /// The mode in evaluation episodes.
    pub eval_mode: ActMode,
    /// In `label` mode, the planner acts (and labels) in the first this
    /// many learning episodes, the policy afterwards (DAgger's first
    /// round is behaviour cloning).
    pub teacher_episodes: usize,
    /// Start each planning call from the policy's proposal when its energy
    /// is lower than the standing plan's.
    pub propose: bool,
    /// The actor's own switch rule (an [`ActMode::Switch`]): the fields a
    /// [`Modulation::Switch`] leaves unset come from it.
    pub switch_rule: ActMode,
}

impl PlanningActor {
    /// An actor that plans with `planner` through `model`.
    pub fn new(planner: Box<dyn Planner>, model: Arc<dyn WorldModel>) -> Self {
        Self::with_handle(planner, ModelHandle::new(model))
    }
    /// An actor that plans with `planner` through whatever version `model`
    /// holds when each call starts.
    pub fn with_handle(planner: Box<dyn Planner>, model: ModelHandle) -> Self {
        Self { planner, model, last: None, plan_calls: 0, plan_seconds: 0.0, mode1: None, decision: Decision::Planned, label: None }
    }
    /// Adds a Mode-1 policy used as `how` says; `phase` tells learning
    /// from evaluation episodes. Refuses a policy of another action width,
    /// and proposals to a planner that ignores them.
    pub fn with_policy(mut self, policy: PolicyHandle, how: PolicyUse, phase: RunPhase) -> Result<Self> {
        if policy.get().action_dim() != self.planner.action_dim() {
            return Err(CoreError::config(
                "policy",
                format!("acts with width {}, the planner plans actions of width {}", policy.get().action_dim(), self.planner.action_dim()),
            ));
        }
        how.mode.validate()?;
        how.eval_mode.validate()?;
        how.switch_rule.validate()?;
        let ActMode::Switch { margin, tolerance, max_policy_ticks } = how.switch_rule else {
            return Err(CoreError::config("switch_rule", format!("must be a switch rule, got mode `{}`", how.switch_rule.name())));
        };
        if how.propose && !self.planner.supports_proposals() {
            return Err(CoreError::config(
                "propose",
                format!("planner `{}` does not start from proposals (Planner::supports_proposals is false): set propose = false", self.planner.name()),
            ));
        }
        self.mode1 = Some(Mode1 {
            policy,
            learn: how.mode,
            eval: how.eval_mode,
            mode: how.mode,
            teacher_episodes: how.teacher_episodes,
            episodes: 0,
            started: false,
            teacher_acts: false,
            propose: how.propose,
            switch_rule: (margin, tolerance, max_policy_ticks),
            phase,
            standing: None,
            policy_ticks: 0,
        });
        Ok(self)
    }
    /// The mode now, if the actor has a policy.
    pub fn mode(&self) -> Option<ActMode> {
        self.mode1.as_ref().map(|m| m.mode)
    }
    /// The handle of the world model it plans with.
    pub fn model(&self) -> &ModelHandle {
        &self.model
    }
    /// The planner.
    pub fn planner(&self) -> &dyn Planner {
        self.planner.as_ref()
    }
    /// Number of planning calls and their mean wall time in milliseconds.
    pub fn plan_stats(&self) -> (u64, f64) {
        let mean = if self.plan_calls == 0 { 0.0 } else { self.plan_seconds * 1e3 / self.plan_calls as f64 };
        (self.plan_calls, mean)
    }
}

impl Actor for PlanningActor {
    fn action_dim(&self) -> usize {
        self.planner.action_dim()
    }
    fn reset(&mut self, seed: u64) {
        self.planner.reset(seed);
        self.last = None;
        self.label = None;
        self.decision = Decision::Planned;
        if let Some(m) = &mut self.mode1 {
            m.mode = if m.phase.is_evaluating() { m.eval } else { m.learn };
            m.started = false;
            m.standing = None;
            m.policy_ticks = 0;
        }
    }
    fn act(&mut self, state: ArrayView1<'_, f32>, cost: &Cost) -> Result<Array1<f32>> {
        let model = self.model.get();
        self.label = None;
        let Some(m) = &mut self.mode1 else {
            self.decision = Decision::Planned;
            return Ok(self.plan(model.as_ref(), cost, state)?.row(0).to_owned());
        };
        if !m.started {
            // An episode counts towards `teacher_episodes` once the actor
            // acts in it (an exploring wrapper may act instead).
            m.started = true;
            let evaluating = m.phase.is_evaluating();
            m.teacher_acts = !evaluating && m.episodes < m.teacher_episodes;
            if !evaluating {
                m.episodes += 1;
            }
        }
        if let Some(p) = &mut m.standing {
            shift_plan(p);
        }
        let mode = m.mode;
        if mode == ActMode::Policy {
            let action = m_action(&m.policy, state)?;
            return self.reactive(action);
        }
        let horizon = self.planner.horizon();
        let warm = self.planner.warm_starts() && self.planner.supports_proposals();
        let standing = m.standing.take().filter(|p| p.nrows() == horizon);
        // The proposal and the energies are needed by the switch rule and
        // to choose the planner's start; `plan` without proposals and
        // `label` without proposals need neither.
        let compare = matches!(mode, ActMode::Switch { .. }) || m.propose;
        let (proposal, e_prop, e_stand) = if compare {
            let proposal = propose(&m.policy, model.as_ref(), state, horizon)?;
            let e_prop = Rollout::energy_of(model.as_ref(), cost, state, &proposal)?;
            let e_stand = standing.as_ref().map(|p| Rollout::energy_of(model.as_ref(), cost, state, p)).transpose()?;
            (Some(proposal), e_prop, e_stand)
        } else {
            (None, f32::NAN, None)
        };
        let policy_acts = match mode {
            ActMode::Label => !m.teacher_acts,
            _ => mode.policy_acts(e_prop, e_stand, m.policy_ticks),
        };
        if policy_acts && mode != ActMode::Label {
            // `switch` chose Mode-1: keep the standing plan for later ticks.
            m.standing = standing;
            let action = proposal.expect("the switch rule rolled the policy out").row(0).to_owned();
            return self.reactive(action);
        }
        // The planner starts from the proposal when it is better than the
        // standing plan (or the planner does not warm-start), else from the
        // standing plan when it warm-starts: its own shifted previous plan
        // is stale after Mode-1 ticks.
        let better = e_prop.is_finite() && (!warm || e_stand.is_none_or(|e| !e.is_finite() || e_prop < e));
        let policy_action = match (&proposal, policy_acts) {
            (Some(p), true) => Some(p.row(0).to_owned()),
            (None, true) => Some(m_action(&m.policy, state)?),
            _ => None,
        };
        match (proposal, standing) {
            (Some(p), _) if m.propose && better => self.planner.propose(p),
            (_, Some(p)) if warm => self.planner.propose(p),
            _ => {}
        }
        let plan = self.plan(model.as_ref(), cost, state)?;
        let planned = plan.row(0).to_owned();
        let m = self.mode1.as_mut().expect("checked above");
        m.standing = Some(plan);
        self.label = Some(planned.clone());
        if let Some(action) = policy_action {
            // `label`: the planner only labels; the policy acts.
            self.decision = Decision::Reactive;
            m.policy_ticks += 1;
            return Ok(action);
        }
        self.decision = Decision::Planned;
        m.policy_ticks = 0;
        Ok(planned)
    }
    fn last_plan(&self) -> Option<&Plan> {
        self.last.as_ref()
    }
    fn modulate(&mut self, m: &Modulation) -> Result<()> {
        match m {
            Modulation::Budget(b) => self.planner.set_budget(*b),
            Modulation::Horizon(h) => {
                self.planner.set_horizon(*h)?;
                if let Some(m) = &mut self.mode1 {
                    m.standing = None;
                }
                Ok(())
            }
            Modulation::Mode(mode) => match &mut self.mode1 {
                Some(m) => {
                    mode.validate()?;
                    m.mode = *mode;
                    Ok(())
                }
                None => Err(CoreError::config("mode", format!("the actor has no policy to switch to (mode `{}`): set its `policy`", mode.name()))),
            },
            Modulation::Switch { margin, tolerance, max_policy_ticks } => match &mut self.mode1 {
                Some(m) => {
                    let (m0, t0, k0) = m.switch_rule;
                    let rule =
                        ActMode::Switch { margin: margin.unwrap_or(m0), tolerance: tolerance.unwrap_or(t0), max_policy_ticks: max_policy_ticks.unwrap_or(k0) };
                    rule.validate()?;
                    m.mode = rule;
                    Ok(())
                }
                None => Err(CoreError::config("mode", "the actor has no policy to switch to (mode `switch`): set its `policy`")),
            },
            _ => Ok(()),
        }
    }
    fn last_decision(&self) -> Decision {
        self.decision
    }
    fn teacher_action(&self) -> Option<Array1<f32>> {
        self.label.clone()
    }
}

impl PlanningActor {
    /// A Mode-1 decision: no plan this tick.
    fn reactive(&mut self, action: Array1<f32>) -> Result<Array1<f32>> {
        self.decision = Decision::Reactive;
        self.last = None;
        if let Some(m) = &mut self.mode1 {
            m.policy_ticks += 1;
        }
        Ok(action)
    }
    /// One planning call, timed and kept as the last plan; returns the
    /// plan's actions.
    fn plan(&mut self, model: &dyn WorldModel, cost: &Cost, state: ArrayView1<'_, f32>) -> Result<Array2<f32>> {
        let t0 = Instant::now();
        let plan = self.planner.plan(&PlanRequest::new(model, cost, state))?;
        self.plan_seconds += t0.elapsed().as_secs_f64();
        self.plan_calls += 1;
        let actions = plan.actions.clone();
        self.last = Some(plan);
        Ok(actions)
    }
}

/// The policy's action in one state.
fn m_action(policy: &PolicyHandle, state: ArrayView1<'_, f32>) -> Result<Array1<f32>> {
    policy.act_batch(state.insert_axis(Axis(0))).map(|a| a.row(0).to_owned())
}

/// The policy's proposal: `horizon` actions from `state`, each the
/// policy's action in the state the world model predicts the previous
/// actions lead to.
pub fn propose(policy: &dyn Policy, model: &dyn WorldModel, state: ArrayView1<'_, f32>, horizon: usize) -> Result<Array2<f32>> {
    let mut s = state.to_owned().insert_axis(Axis(0));
    let mut next = s.clone();
    let mut out = Array2::zeros((horizon, policy.action_dim()));
    for t in 0..horizon {
        let a = policy.act_batch(s.view())?;
        out.row_mut(t).assign(&a.row(0));
        if t + 1 < horizon {
            model.predict(s.view(), a.view(), next.view_mut())?;
            std::mem::swap(&mut s, &mut next);
        }
    }
    Ok(out)
}
