//! What the planners share: request checks, settings updates that keep the
//! old settings when the new ones are refused, and warm-start handling.

use ami_core::{Bounds, CoreError, PlanRequest, Result};
use ndarray::Array2;

pub(crate) fn check_request(name: &str, horizon: usize, bounds: &Bounds, req: &PlanRequest<'_>) -> Result<()> {
    if req.model.action_dim() != bounds.dim() {
        return Err(CoreError::shape(
            format!("{name}: world model action_dim"),
            format!("{} (the bounds' dimension)", bounds.dim()),
            req.model.action_dim().to_string(),
        ));
    }
    if req.state.len() != req.model.state_dim() {
        return Err(CoreError::shape(
            format!("{name}: state"),
            format!("length {} (the model's state_dim)", req.model.state_dim()),
            format!("length {}", req.state.len()),
        ));
    }
    if horizon == 0 {
        return Err(CoreError::config(format!("{name}.horizon"), "must be at least 1"));
    }
    Ok(())
}

/// Changes a planner's settings on a copy and keeps the copy only if it
/// validates, so a refused change leaves the planner as it was.
pub(crate) fn update_settings<C: Clone>(cfg: &mut C, validate: fn(&C) -> Result<()>, change: impl FnOnce(&mut C)) -> Result<()> {
    let mut next = cfg.clone();
    change(&mut next);
    validate(&next)?;
    *cfg = next;
    Ok(())
}

/// The mean a sampling planner starts from: the previous plan shifted one
/// step earlier when warm starting (and its shape still fits), otherwise
/// zero actions clamped into the bounds.
pub(crate) fn initial_mean(warm: Option<Array2<f32>>, warm_start: bool, horizon: usize, bounds: &Bounds) -> Array2<f32> {
    match warm {
        Some(mut w) if warm_start && w.dim() == (horizon, bounds.dim()) => {
            shift_plan(&mut w);
            w
        }
        _ => {
            let mut m = Array2::<f32>::zeros((horizon, bounds.dim()));
            for mut row in m.rows_mut() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = v.clamp(bounds.low[j], bounds.high[j]);
                }
            }
            m
        }
    }
}

/// The sequence a planning call starts from: the proposal given through
/// [`Planner::propose`](ami_core::Planner::propose), clamped into the
/// bounds and used as it is, when there is one of the right shape;
/// otherwise [`initial_mean`].
pub(crate) fn start_plan(proposal: Option<Array2<f32>>, warm: Option<Array2<f32>>, warm_start: bool, horizon: usize, bounds: &Bounds) -> Array2<f32> {
    match proposal {
        Some(mut p) if p.dim() == (horizon, bounds.dim()) => {
            for mut row in p.rows_mut() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = v.clamp(bounds.low[j], bounds.high[j]);
                }
            }
            p
        }
        _ => initial_mean(warm, warm_start, horizon, bounds),
    }
}

/// The choice sequence a discrete planner starts from: a proposal of the
/// horizon's length, else (when warm starting) the previous plan shifted
/// one step earlier, repeating its last choice.
pub(crate) fn discrete_start(proposal: Option<Vec<usize>>, warm: Option<Vec<usize>>, warm_start: bool, horizon: usize) -> Option<Vec<usize>> {
    match (proposal, warm) {
        (Some(p), _) if p.len() == horizon => Some(p),
        (_, Some(mut w)) if warm_start && w.len() == horizon && horizon > 0 => {
            w.rotate_left(1);
            w[horizon - 1] = w[horizon.saturating_sub(2)];
            Some(w)
        }
        _ => None,
    }
}

/// A proposal `[T, A]` as the nearest choice of each row, or `None` when
/// its shape is not `[horizon, choices.dim()]`.
pub(crate) fn choice_indices(choices: &ami_core::Choices, plan: &Array2<f32>, horizon: usize) -> Option<Vec<usize>> {
    (plan.dim() == (horizon, choices.dim())).then(|| plan.rows().into_iter().map(|r| choices.nearest(&r.to_vec())).collect())
}

/// Shifts a `[T, A]` plan one step earlier, repeating the last action.
pub(crate) fn shift_plan(plan: &mut Array2<f32>) {
    let (t, a) = plan.dim();
    if t < 2 {
        return;
    }
    match plan.as_slice_mut() {
        Some(v) => v.copy_within(a.., 0),
        None => {
            for i in 1..t {
                for j in 0..a {
                    plan[[i - 1, j]] = plan[[i, j]];
                }
            }
        }
    }
}

/// The wall-clock deadline of one planning call (the one place planners
/// read the clock for their budget). With no deadline set, a planner runs
/// all its iterations and stays bit-exact; with one, how many iterations
/// run depends on the machine's speed.
pub(crate) struct Deadline {
    start: std::time::Instant,
    ms: Option<f64>,
}

impl Deadline {
    /// Starts the clock of a call with an optional deadline in ms.
    pub(crate) fn start(ms: Option<f64>) -> Self {
        Self { start: std::time::Instant::now(), ms }
    }
    /// Whether a new iteration must not start after `done` iterations
    /// (the first always runs): the deadline passed, or the process was
    /// interrupted ([`ami_core::request_interrupt`]).
    pub(crate) fn expired(&self, done: usize) -> bool {
        done > 0 && (ami_core::interrupt_requested() || self.ms.is_some_and(|d| self.start.elapsed().as_secs_f64() * 1e3 >= d))
    }
}

/// What the fused kernels' energies say of non-finite values: they do not
/// break the rollout down by module.
pub(crate) const FUSED: &str = "the world model or critic (in the fused rollout)";

/// Counts the non-finite energies of a fused-kernel batch in `tally`.
pub(crate) fn tally_fused(tally: &mut ami_core::modules::NonFiniteTally, energies: &[f32]) {
    tally.add(|| FUSED.into(), energies.iter().filter(|e| !e.is_finite()).count() as u64);
}

/// Picks the returned plan of a sampling planner: the final mean, or the
/// best sample seen if it is better (or the mean's energy is not finite);
/// refuses a plan with a non-finite action.
pub(crate) fn final_plan(
    planner: &str,
    mean: (Array2<f32>, f32),
    best: Option<(f32, Array2<f32>)>,
    iterations: usize,
    evaluated: usize,
    non_finite: ami_core::modules::NonFiniteTally,
) -> Result<ami_core::Plan> {
    let (mut actions, mut energy) = mean;
    if let Some((e, b)) = best {
        if e < energy || !energy.is_finite() {
            actions = b;
            energy = e;
        }
    }
    if actions.iter().any(|v| !v.is_finite()) {
        return Err(CoreError::non_finite(planner, evaluated, &non_finite));
    }
    Ok(ami_core::Plan { actions, energy, iterations, evaluated, non_finite })
}
