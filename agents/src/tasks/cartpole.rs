//! Cart-pole balancing: Gymnasium's `CartPole-v1` dynamics (Euler
//! integrator, same constants and thresholds) driven by a continuous force.
//!
//! The state and observation are `[x, x_dot, theta, theta_dot]`; the action
//! is a force in `[-10, 10]` N (Gymnasium's discrete action `1` is `+10`,
//! `0` is `-10`). Every step yields reward 1.0, including the step that
//! leaves the thresholds (`|x| > 2.4` or `|theta| > 12 deg`), which
//! terminates the episode; steps taken after that yield 0.0, as in
//! Gymnasium. Episodes are truncated at 500 steps.

use ndarray::{Array1, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use rand::Rng;

use ami_core::{Bounds, Cost, CostContext, DifferentiableCost, DifferentiableWorldModel, IntrinsicCost, Result, WorldModel};

use ami_core::{Environment, Step};

/// Gravity (m/s^2).
pub const GRAVITY: f64 = 9.8;
/// Mass of the cart (kg).
pub const MASSCART: f64 = 1.0;
/// Mass of the pole (kg).
pub const MASSPOLE: f64 = 0.1;
/// Half the pole's length (m).
pub const LENGTH: f64 = 0.5;
/// Largest force (N); the action is clipped to `[-FORCE_MAG, FORCE_MAG]`.
pub const FORCE_MAG: f64 = 10.0;
/// Time step (s).
pub const TAU: f64 = 0.02;
/// The episode terminates when `|x|` exceeds this (m).
pub const X_THRESHOLD: f64 = 2.4;
/// The episode terminates when `|theta|` exceeds this (12 degrees, in rad).
pub const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
/// Steps after which an episode is truncated.
pub const MAX_STEPS: usize = 500;

const TOTAL_MASS: f64 = MASSPOLE + MASSCART;
const POLEMASS_LENGTH: f64 = MASSPOLE * LENGTH;

/// Whether a state lies outside the thresholds (Gymnasium's termination test).
pub fn out_of_bounds(state: [f64; 4]) -> bool {
    let [x, _, theta, _] = state;
    x.abs() > X_THRESHOLD || theta.abs() > THETA_THRESHOLD
}

/// One Euler step of Gymnasium's cart-pole equations under `force` (N,
/// not clipped here).
pub fn dynamics(state: [f64; 4], force: f64) -> [f64; 4] {
    let [x, x_dot, theta, theta_dot] = state;
    let (sintheta, costheta) = theta.sin_cos();
    let temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS;
    let thetaacc = (GRAVITY * sintheta - costheta * temp) / (LENGTH * (4.0 / 3.0 - MASSPOLE * (costheta * costheta) / TOTAL_MASS));
    let xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS;
    [x + TAU * x_dot, x_dot + TAU * xacc, theta + TAU * theta_dot, theta_dot + TAU * thetaacc]
}

/// The CartPole environment with a continuous force. Its state is kept in
/// `f64`, like Gymnasium's.
#[derive(Debug, Clone, Default)]
pub struct CartPole {
    state: [f64; 4],
    steps: usize,
    terminated: bool,
}

impl CartPole {
    /// A cart-pole at rest at the centre; call [`Environment::reset`] to
    /// start an episode.
    pub fn new() -> Self {
        Self::default()
    }

    /// The internal state `[x, x_dot, theta, theta_dot]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Overwrites the internal state and forgets an earlier termination (the
    /// next step that leaves the thresholds earns 1.0 and terminates); the
    /// step count is kept.
    pub fn set_state(&mut self, state: [f64; 4]) {
        self.state = state;
        self.terminated = false;
    }

    /// Steps taken in the current episode.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The observation of the current state (the state in `f32`).
    pub fn observation(&self) -> Array1<f32> {
        self.state.iter().map(|&v| v as f32).collect()
    }
}

impl Environment for CartPole {
    fn name(&self) -> &str {
        "cartpole"
    }
    fn obs_dim(&self) -> usize {
        4
    }
    fn action_dim(&self) -> usize {
        1
    }
    fn action_bounds(&self) -> Bounds {
        Bounds::symmetric(1, FORCE_MAG as f32)
    }
    fn max_steps(&self) -> usize {
        MAX_STEPS
    }
    fn reset(&mut self, seed: u64) -> Result<Array1<f32>> {
        let mut rng = ami_core::rng::rng(seed);
        for v in &mut self.state {
            *v = rng.gen_range(-0.05..0.05);
        }
        self.steps = 0;
        self.terminated = false;
        Ok(self.observation())
    }
    fn step(&mut self, action: ArrayView1<'_, f32>) -> Result<Step> {
        let force = f64::from(action[0]).clamp(-FORCE_MAG, FORCE_MAG);
        self.state = dynamics(self.state, force);
        self.steps += 1;
        let terminated = out_of_bounds(self.state);
        // Gymnasium: 1.0 up to and including the terminating step, 0.0 after.
        let reward = if self.terminated { 0.0 } else { 1.0 };
        self.terminated |= terminated;
        Ok(Step { observation: self.observation(), reward, terminated, truncated: self.steps >= MAX_STEPS })
    }
}

/// The true dynamics in `f32` on observations `[x, x_dot, theta,
/// theta_dot]`; the force is clipped to `[-10, 10]`. The model keeps
/// integrating past the thresholds (the cost penalises them).
#[derive(Debug, Clone, Copy, Default)]
pub struct CartPoleModel;

impl WorldModel for CartPoleModel {
    fn state_dim(&self) -> usize {
        4
    }
    fn action_dim(&self) -> usize {
        1
    }
    fn predict(&self, states: ArrayView2<'_, f32>, actions: ArrayView2<'_, f32>, mut next: ArrayViewMut2<'_, f32>) -> Result<()> {
        ami_core::check_predict_shapes(self, "CartPoleModel", &states, &actions, &next)?;
        const G: f32 = GRAVITY as f32;
        const MP: f32 = MASSPOLE as f32;
        const LEN: f32 = LENGTH as f32;
        const TM: f32 = TOTAL_MASS as f32;
        const PML: f32 = POLEMASS_LENGTH as f32;
        const DT: f32 = TAU as f32;
        const FMAX: f32 = FORCE_MAG as f32;
        for ((s, a), mut n) in states.rows().into_iter().zip(actions.rows()).zip(next.rows_mut()) {
            let (x, x_dot, theta, theta_dot) = (s[0], s[1], s[2], s[3]);
            let force = a[0].clamp(-FMAX, FMAX);
            let (sintheta, costheta) = theta.sin_cos();
            let temp = (force + PML * theta_dot * theta_dot * sintheta) / TM;
            let thetaacc = (G * sintheta - costheta * temp) / (LEN * (4.0 / 3.0 - MP * costheta * costheta / TM));
            let xacc = temp - PML * thetaacc * costheta / TM;
            n[0] = x + DT * x_dot;
            n[1] = x_dot + DT * xacc;
            n[2] = theta + DT * theta_dot;
            n[3] = theta_dot + DT * thetaacc;
        }
        Ok(())
    }
    fn differentiable(&self) -> Option<&dyn DifferentiableWorldModel> {
        Some(self)
    }
}

impl DifferentiableWorldModel for CartPoleModel {
    fn vjp(
        &self,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        grad_next: ArrayView2<'_, f32>,
        mut grad_states: ArrayViewMut2<'_, f32>,
        mut grad_actions: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        ami_core::check_vjp_shapes(self, "CartPoleModel", &states, &actions, &grad_next, &grad_states, &grad_actions)?;
        const G: f32 = GRAVITY as f32;
        const MP: f32 = MASSPOLE as f32;
        const LEN: f32 = LENGTH as f32;
        const TM: f32 = TOTAL_MASS as f32;
        const PML: f32 = POLEMASS_LENGTH as f32;
        const DT: f32 = TAU as f32;
        const FMAX: f32 = FORCE_MAG as f32;
        for b in 0..states.nrows() {
            let (s, a, g) = (states.row(b), actions.row(b), grad_next.row(b));
            let (theta, theta_dot) = (s[2], s[3]);
            let force = a[0].clamp(-FMAX, FMAX);
            let (st, ct) = theta.sin_cos();
            let temp = (force + PML * theta_dot * theta_dot * st) / TM;
            let den = LEN * (4.0 / 3.0 - MP * ct * ct / TM);
            let tacc = (G * st - ct * temp) / den;
            // Backward through n = [x + DT xd, xd + DT xacc, th + DT thd, thd + DT tacc].
            let g_xacc = DT * g[1];
            let g_tacc = DT * g[3] + g_xacc * (-PML * ct / TM);
            let g_temp = g_xacc + g_tacc * (-ct / den);
            let g_ct = g_xacc * (-PML * tacc / TM) + g_tacc * (-temp / den) + g_tacc * (-tacc / den) * (-2.0 * LEN * MP * ct / TM);
            let g_st = g_tacc * G / den + g_temp * PML * theta_dot * theta_dot / TM;
            grad_states[[b, 0]] += g[0];
            grad_states[[b, 1]] += DT * g[0] + g[1];
            grad_states[[b, 2]] += g[2] + g_st * ct - g_ct * st;
            grad_states[[b, 3]] += DT * g[2] + g[3] + g_temp * PML * 2.0 * theta_dot * st / TM;
            if a[0].abs() < FMAX {
                grad_actions[[b, 0]] += g_temp / TM;
            }
        }
        Ok(())
    }
}

/// The intrinsic cost `balance`: keeps the pole up and the cart near the
/// centre. On the state after the action (`next_states`) and the clipped
/// force `f`:
///
/// `(theta / 0.2095)^2 + 0.1 (x / 2.4)^2 + 0.01 x_dot^2 + 0.01 theta_dot^2
///  + 1e-4 (f / 10)^2 + 100 [next state out of the thresholds]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CartPoleCost;

impl CartPoleCost {
    /// Scale of the angle term (about the 12 degree threshold).
    pub const THETA_SCALE: f32 = 0.2095;
    /// Weight of the cart-position term `(x / 2.4)^2`.
    pub const X_WEIGHT: f32 = 0.1;
    /// Weight of each velocity term.
    pub const VELOCITY_WEIGHT: f32 = 0.01;
    /// Weight of the force term `(f / 10)^2`.
    pub const FORCE_WEIGHT: f32 = 1e-4;
    /// Penalty when the next state leaves the thresholds.
    pub const FAILURE_PENALTY: f32 = 100.0;
}

impl IntrinsicCost for CartPoleCost {
    fn name(&self) -> &str {
        "balance"
    }
    fn add_cost(
        &self,
        _ctx: &CostContext<'_>,
        weight: f32,
        _states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        mut out: ArrayViewMut1<'_, f32>,
    ) -> Result<()> {
        let (xt, tt, fmax) = (X_THRESHOLD as f32, THETA_THRESHOLD as f32, FORCE_MAG as f32);
        for ((o, s), a) in out.iter_mut().zip(next_states.rows()).zip(actions.rows()) {
            let (x, x_dot, theta, theta_dot) = (s[0], s[1], s[2], s[3]);
            let f = a[0].clamp(-fmax, fmax) / fmax;
            let th = theta / Self::THETA_SCALE;
            let xs = x / xt;
            let mut c = th * th + Self::X_WEIGHT * xs * xs + Self::VELOCITY_WEIGHT * (x_dot * x_dot + theta_dot * theta_dot) + Self::FORCE_WEIGHT * f * f;
            if x.abs() > xt || theta.abs() > tt || !c.is_finite() {
                c += Self::FAILURE_PENALTY;
            }
            *o += weight * c;
        }
        Ok(())
    }
    fn differentiable(&self) -> Option<&dyn DifferentiableCost> {
        Some(self)
    }
}

/// The gradient of the smooth part: the failure penalty is a step, whose
/// gradient is zero where it is defined.
impl DifferentiableCost for CartPoleCost {
    fn add_gradient(
        &self,
        _ctx: &CostContext<'_>,
        weight: f32,
        _states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        _grad_states: ArrayViewMut2<'_, f32>,
        mut grad_actions: ArrayViewMut2<'_, f32>,
        mut grad_next: ArrayViewMut2<'_, f32>,
    ) {
        let (xt, fmax) = (X_THRESHOLD as f32, FORCE_MAG as f32);
        for b in 0..next_states.nrows() {
            let (s, a) = (next_states.row(b), actions.row(b));
            grad_next[[b, 0]] += weight * 2.0 * Self::X_WEIGHT * s[0] / (xt * xt);
            grad_next[[b, 1]] += weight * 2.0 * Self::VELOCITY_WEIGHT * s[1];
            grad_next[[b, 2]] += weight * 2.0 * s[2] / (Self::THETA_SCALE * Self::THETA_SCALE);
            grad_next[[b, 3]] += weight * 2.0 * Self::VELOCITY_WEIGHT * s[3];
            if a[0].abs() < fmax {
                grad_actions[[b, 0]] += weight * 2.0 * Self::FORCE_WEIGHT * a[0] / (fmax * fmax);
            }
        }
    }
}

/// A cost holding [`CartPoleCost`] with weight 1.0.
pub fn cost() -> Cost {
    let mut cost = Cost::new();
    cost.add_intrinsic(std::sync::Arc::new(CartPoleCost), 1.0).expect("a fresh cost has no `balance` term");
    cost
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn reset_is_deterministic_and_in_bounds() {
        let mut a = CartPole::new();
        let mut b = CartPole::new();
        assert_eq!(a.reset(7).unwrap(), b.reset(7).unwrap());
        assert_ne!(a.reset(7).unwrap(), b.reset(8).unwrap());
        for seed in 0..500 {
            a.reset(seed).unwrap();
            assert!(a.state().iter().all(|v| (-0.05..0.05).contains(v)), "{:?}", a.state());
        }
    }

    #[test]
    fn constant_push_terminates() {
        for f in [10.0f32, -10.0, 25.0] {
            let mut env = CartPole::new();
            env.reset(3).unwrap();
            let mut n = 0;
            let last = loop {
                let s = env.step(array![f].view()).unwrap();
                n += 1;
                assert_eq!(s.reward, 1.0);
                if s.terminated || s.truncated {
                    break s;
                }
            };
            assert!(last.terminated && !last.truncated && n < 100, "{n}");
            // The pole falls against the push.
            assert_eq!(env.state()[2].signum(), -f64::from(f).signum());
            // Steps after termination earn nothing.
            assert_eq!(env.step(array![0.0f32].view()).unwrap().reward, 0.0);
        }
    }

    #[test]
    fn truncates_at_500() {
        let mut env = CartPole::new();
        env.reset(0).unwrap();
        for i in 1..=MAX_STEPS {
            // Keep the system exactly at its equilibrium.
            env.set_state([0.0; 4]);
            let s = env.step(array![0.0f32].view()).unwrap();
            assert_eq!(s.truncated, i == MAX_STEPS);
            assert!(!s.terminated);
        }
    }

    #[test]
    fn model_follows_the_env_and_cost_penalises_failure() {
        let mut env = CartPole::new();
        env.reset(5).unwrap();
        let model = CartPoleModel;
        let mut s = Array2::zeros((1, 4));
        let mut n = Array2::zeros((1, 4));
        for i in 0..40 {
            let f = ((i as f32) * 0.7).sin() * 12.0;
            s.row_mut(0).assign(&env.observation());
            model.predict(s.view(), array![[f]].view(), n.view_mut()).unwrap();
            let step = env.step(array![f].view()).unwrap();
            for j in 0..4 {
                assert!((n[[0, j]] - step.observation[j]).abs() <= 1e-4 * step.observation[j].abs().max(1.0));
            }
        }
        let ctx = CostContext { goal: None, subgoal: None, step: 0 };
        let states = array![[0.0f32, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]];
        let next = array![[0.0f32, 0.0, 0.0, 0.0], [0.0, 0.0, 0.1, 0.0], [0.0, 0.0, 0.25, 0.0]];
        let actions = array![[0.0f32], [0.0], [0.0]];
        let mut out = ndarray::Array1::zeros(3);
        CartPoleCost.add_cost(&ctx, 1.0, states.view(), actions.view(), next.view(), out.view_mut()).unwrap();
        assert_eq!(out[0], 0.0);
        assert!(out[1] > 0.0 && out[1] < 1.0);
        assert!(out[2] > 100.0);
    }
}
