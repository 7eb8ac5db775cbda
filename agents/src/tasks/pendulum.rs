//! Pendulum swing-up: Gymnasium's `Pendulum-v1`, step for step.
//!
//! The state is the angle `th` (0 = upright) and the angular velocity
//! `thdot`; the observation is `[cos th, sin th, thdot]` and the action a
//! torque in `[-2, 2]`. The reward, computed from the state *before* the
//! step with the clipped torque, is
//! `-(angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2)`. Episodes last 200
//! steps (truncated) and never terminate.

use std::f64::consts::PI;

use ndarray::{array, Array1, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use rand::Rng;

use ami_core::{Bounds, Cost, CostContext, DifferentiableCost, DifferentiableWorldModel, IntrinsicCost, Result, WorldModel};

use ami_core::{Environment, Step};

/// Largest angular velocity (rad/s); faster is clipped.
pub const MAX_SPEED: f64 = 8.0;
/// Largest torque (N m); the action is clipped to `[-MAX_TORQUE, MAX_TORQUE]`.
pub const MAX_TORQUE: f64 = 2.0;
/// Time step (s).
pub const DT: f64 = 0.05;
/// Gravity (m/s^2).
pub const G: f64 = 10.0;
/// Mass (kg).
pub const M: f64 = 1.0;
/// Length (m).
pub const L: f64 = 1.0;
/// Steps after which an episode is truncated.
pub const MAX_STEPS: usize = 200;

/// Wraps an angle into `[-pi, pi)` exactly as Gymnasium's `angle_normalize`
/// (`((x + pi) % (2 pi)) - pi` with Python's floored modulo).
pub fn angle_normalize(x: f64) -> f64 {
    (x + PI).rem_euclid(2.0 * PI) - PI
}

/// The Pendulum environment. Its state is kept in `f64`, like Gymnasium's.
#[derive(Debug, Clone, Default)]
pub struct Pendulum {
    th: f64,
    thdot: f64,
    steps: usize,
}

impl Pendulum {
    /// A pendulum at rest at the top (`th = 0`); call
    /// [`Environment::reset`] to start an episode.
    pub fn new() -> Self {
        Self::default()
    }

    /// The internal state `[th, thdot]` (the angle is not wrapped).
    pub fn state(&self) -> [f64; 2] {
        [self.th, self.thdot]
    }

    /// Overwrites the internal state `[th, thdot]`; the step count is kept.
    pub fn set_state(&mut self, state: [f64; 2]) {
        [self.th, self.thdot] = state;
    }

    /// Steps taken in the current episode.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The observation of the current state, `[cos th, sin th, thdot]`.
    pub fn observation(&self) -> Array1<f32> {
        array![self.th.cos() as f32, self.th.sin() as f32, self.thdot as f32]
    }
}

impl Environment for Pendulum {
    fn name(&self) -> &str {
        "pendulum"
    }
    fn obs_dim(&self) -> usize {
        3
    }
    fn action_dim(&self) -> usize {
        1
    }
    fn action_bounds(&self) -> Bounds {
        Bounds::symmetric(1, MAX_TORQUE as f32)
    }
    fn max_steps(&self) -> usize {
        MAX_STEPS
    }
    fn reset(&mut self, seed: u64) -> Result<Array1<f32>> {
        let mut rng = ami_core::rng::rng(seed);
        self.th = rng.gen_range(-PI..PI);
        self.thdot = rng.gen_range(-1.0..1.0);
        self.steps = 0;
        Ok(self.observation())
    }
    fn step(&mut self, action: ArrayView1<'_, f32>) -> Result<Step> {
        let u = f64::from(action[0]).clamp(-MAX_TORQUE, MAX_TORQUE);
        let (th, thdot) = (self.th, self.thdot);
        let costs = angle_normalize(th).powi(2) + 0.1 * thdot * thdot + 0.001 * (u * u);
        let newthdot = (thdot + (3.0 * G / (2.0 * L) * th.sin() + 3.0 / (M * L * L) * u) * DT).clamp(-MAX_SPEED, MAX_SPEED);
        self.th = th + newthdot * DT;
        self.thdot = newthdot;
        self.steps += 1;
        Ok(Step { observation: self.observation(), reward: -costs, terminated: false, truncated: self.steps >= MAX_STEPS })
    }
}

/// The true dynamics on observations `[cos th, sin th, thdot]` in `f32`
/// (`th = atan2(sin, cos)`); actions are clipped to `[-2, 2]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PendulumModel;

impl WorldModel for PendulumModel {
    fn state_dim(&self) -> usize {
        3
    }
    fn action_dim(&self) -> usize {
        1
    }
    fn predict(&self, states: ArrayView2<'_, f32>, actions: ArrayView2<'_, f32>, mut next: ArrayViewMut2<'_, f32>) -> Result<()> {
        ami_core::check_predict_shapes(self, "PendulumModel", &states, &actions, &next)?;
        const GRAV: f32 = (3.0 * G / (2.0 * L)) as f32;
        const TORQUE: f32 = (3.0 / (M * L * L)) as f32;
        let (dt, max_speed, max_torque) = (DT as f32, MAX_SPEED as f32, MAX_TORQUE as f32);
        for ((s, a), mut n) in states.rows().into_iter().zip(actions.rows()).zip(next.rows_mut()) {
            let th = s[1].atan2(s[0]);
            let u = a[0].clamp(-max_torque, max_torque);
            let newthdot = (s[2] + (GRAV * th.sin() + TORQUE * u) * dt).clamp(-max_speed, max_speed);
            let newth = th + newthdot * dt;
            n[0] = newth.cos();
            n[1] = newth.sin();
            n[2] = newthdot;
        }
        Ok(())
    }
    fn differentiable(&self) -> Option<&dyn DifferentiableWorldModel> {
        Some(self)
    }
}

impl DifferentiableWorldModel for PendulumModel {
    fn vjp(
        &self,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        grad_next: ArrayView2<'_, f32>,
        mut grad_states: ArrayViewMut2<'_, f32>,
        mut grad_actions: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        ami_core::check_vjp_shapes(self, "PendulumModel", &states, &actions, &grad_next, &grad_states, &grad_actions)?;
        const GRAV: f32 = (3.0 * G / (2.0 * L)) as f32;
        const TORQUE: f32 = (3.0 / (M * L * L)) as f32;
        let (dt, max_speed, max_torque) = (DT as f32, MAX_SPEED as f32, MAX_TORQUE as f32);
        for b in 0..states.nrows() {
            let (s, a, g) = (states.row(b), actions.row(b), grad_next.row(b));
            let th = s[1].atan2(s[0]);
            let u = a[0].clamp(-max_torque, max_torque);
            let w = s[2] + (GRAV * th.sin() + TORQUE * u) * dt;
            let newthdot = w.clamp(-max_speed, max_speed);
            let newth = th + newthdot * dt;
            let g_newth = -newth.sin() * g[0] + newth.cos() * g[1];
            let g_newthdot = g[2] + dt * g_newth;
            let g_w = if w.abs() < max_speed { g_newthdot } else { 0.0 };
            let g_th = g_newth + g_w * dt * GRAV * th.cos();
            let r2 = (s[0] * s[0] + s[1] * s[1]).max(f32::MIN_POSITIVE);
            grad_states[[b, 0]] += g_th * (-s[1] / r2);
            grad_states[[b, 1]] += g_th * (s[0] / r2);
            grad_states[[b, 2]] += g_w;
            if a[0].abs() < max_torque {
                grad_actions[[b, 0]] += g_w * dt * TORQUE;
            }
        }
        Ok(())
    }
}

/// The intrinsic cost `swingup`: the negative reward of Pendulum-v1,
/// `angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2`, evaluated on the
/// state *before* the action (`states`) and the clipped action, exactly as
/// Gymnasium's reward. `next_states` is not read.
#[derive(Debug, Clone, Copy, Default)]
pub struct PendulumCost;

impl IntrinsicCost for PendulumCost {
    fn name(&self) -> &str {
        "swingup"
    }
    fn add_cost(
        &self,
        _ctx: &CostContext<'_>,
        weight: f32,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        _next_states: ArrayView2<'_, f32>,
        mut out: ArrayViewMut1<'_, f32>,
    ) -> Result<()> {
        let max_torque = MAX_TORQUE as f32;
        for ((o, s), a) in out.iter_mut().zip(states.rows()).zip(actions.rows()) {
            // atan2 already lies in [-pi, pi]: it is the normalised angle.
            let th = s[1].atan2(s[0]);
            let u = a[0].clamp(-max_torque, max_torque);
            *o += weight * (th * th + 0.1 * s[2] * s[2] + 0.001 * u * u);
        }
        Ok(())
    }
    fn differentiable(&self) -> Option<&dyn DifferentiableCost> {
        Some(self)
    }
}

impl DifferentiableCost for PendulumCost {
    fn add_gradient(
        &self,
        _ctx: &CostContext<'_>,
        weight: f32,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        _next_states: ArrayView2<'_, f32>,
        mut grad_states: ArrayViewMut2<'_, f32>,
        mut grad_actions: ArrayViewMut2<'_, f32>,
        _grad_next: ArrayViewMut2<'_, f32>,
    ) {
        let max_torque = MAX_TORQUE as f32;
        for b in 0..states.nrows() {
            let (s, a) = (states.row(b), actions.row(b));
            let th = s[1].atan2(s[0]);
            let r2 = (s[0] * s[0] + s[1] * s[1]).max(f32::MIN_POSITIVE);
            let g_th = weight * 2.0 * th;
            grad_states[[b, 0]] += g_th * (-s[1] / r2);
            grad_states[[b, 1]] += g_th * (s[0] / r2);
            grad_states[[b, 2]] += weight * 0.2 * s[2];
            if a[0].abs() < max_torque {
                grad_actions[[b, 0]] += weight * 0.002 * a[0];
            }
        }
    }
}

/// A cost holding [`PendulumCost`] with weight 1.0.
pub fn cost() -> Cost {
    let mut cost = Cost::new();
    cost.add_intrinsic(std::sync::Arc::new(PendulumCost), 1.0).expect("a fresh cost has no `swingup` term");
    cost
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn angle_normalize_matches_python_modulo() {
        assert!((angle_normalize(0.5) - 0.5).abs() < 1e-15);
        assert!((angle_normalize(3.0 * PI / 2.0) + PI / 2.0).abs() < 1e-12);
        assert!((angle_normalize(-3.0 * PI / 2.0) - PI / 2.0).abs() < 1e-12);
        assert!((angle_normalize(PI) + PI).abs() < 1e-12);
        assert!((angle_normalize(-7.0 * PI - 0.25) - (PI - 0.25)).abs() < 1e-12);
    }

    #[test]
    fn reset_is_deterministic_and_in_bounds() {
        let mut a = Pendulum::new();
        let mut b = Pendulum::new();
        assert_eq!(a.reset(42).unwrap(), b.reset(42).unwrap());
        assert_eq!(a.state(), b.state());
        assert_ne!(a.reset(1).unwrap(), b.reset(2).unwrap());
        for seed in 0..500 {
            a.reset(seed).unwrap();
            let [th, thdot] = a.state();
            assert!((-PI..PI).contains(&th), "{th}");
            assert!((-1.0..1.0).contains(&thdot), "{thdot}");
            assert_eq!(a.steps(), 0);
        }
    }

    #[test]
    fn episode_truncates_at_200_and_never_terminates() {
        let mut env = Pendulum::new();
        env.reset(0).unwrap();
        for i in 1..=MAX_STEPS {
            let s = env.step(array![2.0f32].view()).unwrap();
            assert!(!s.terminated);
            assert_eq!(s.truncated, i == MAX_STEPS);
            assert!(s.reward <= 0.0);
            assert!(s.observation[2].abs() <= 8.0);
        }
    }

    #[test]
    fn torque_is_clipped() {
        let mut a = Pendulum::new();
        let mut b = Pendulum::new();
        a.set_state([0.3, -0.2]);
        b.set_state([0.3, -0.2]);
        assert_eq!(a.step(array![50.0f32].view()).unwrap(), b.step(array![2.0f32].view()).unwrap());
    }

    #[test]
    fn model_and_cost_follow_the_env() {
        let mut env = Pendulum::new();
        let model = PendulumModel;
        env.reset(9).unwrap();
        let mut s = Array2::zeros((1, 3));
        let mut n = Array2::zeros((1, 3));
        let mut out = ndarray::Array1::zeros(1);
        for i in 0..50 {
            let u = ((i as f32) * 0.37).sin() * 3.0;
            s.row_mut(0).assign(&env.observation());
            let a = array![[u]];
            model.predict(s.view(), a.view(), n.view_mut()).unwrap();
            out.fill(0.5);
            PendulumCost.add_cost(&CostContext { goal: None, subgoal: None, step: 0 }, 2.0, s.view(), a.view(), n.view(), out.view_mut()).unwrap();
            let step = env.step(a.row(0)).unwrap();
            for j in 0..3 {
                assert!((n[[0, j]] - step.observation[j]).abs() < 1e-4, "{n} vs {}", step.observation);
            }
            assert!((out[0] - 0.5 + 2.0 * step.reward as f32).abs() < 1e-3, "{} vs {}", out[0], step.reward);
        }
    }
}
