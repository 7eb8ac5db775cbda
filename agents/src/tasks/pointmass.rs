//! A 2-D point mass driven to a goal.
//!
//! The state and observation are `[x, y, vx, vy]`, the action a force
//! `[fx, fy]` in `[-1, 1]^2`. With `dt = 0.1`, mass 1 and damping 0.1:
//! `v' = v + dt (f - 0.1 v)`, `p' = p + dt v'`; positions are clipped to
//! `[-2, 2]` and the velocity on an axis that hits a wall is zeroed. The
//! reward, on the state after the step, is `-||p' - goal|| - 0.01 ||f||^2`.
//! Episodes last 100 steps (truncated) and never terminate.

use std::sync::Arc;

use ndarray::{Array1, ArrayView1, ArrayView2, ArrayViewMut2};
use rand::Rng;

use ami_core::{Bounds, Cost, DifferentiableWorldModel, QuadraticCost, Result, WorldModel};

use ami_core::{Environment, Step};

/// Time step (s).
pub const DT: f64 = 0.1;
/// Linear damping coefficient (1/s).
pub const DAMPING: f64 = 0.1;
/// Largest force on each axis; the action is clipped to `[-MAX_FORCE, MAX_FORCE]`.
pub const MAX_FORCE: f64 = 1.0;
/// Positions are clipped to `[-WALL, WALL]`.
pub const WALL: f64 = 2.0;
/// Steps after which an episode is truncated.
pub const MAX_STEPS: usize = 100;
/// The default goal position.
pub const DEFAULT_GOAL: [f32; 2] = [1.0, 1.0];

/// One step of the point-mass dynamics on one axis: `(p, v, f)` to
/// `(p', v')`, with `f` already clipped; expanded once for the `f64`
/// environment and once for the `f32` model so both share one formula.
macro_rules! axis_step {
    ($t:ty, $p:expr, $v:expr, $f:expr) => {{
        let v = $v + (DT as $t) * ($f - (DAMPING as $t) * $v);
        let p = $p + (DT as $t) * v;
        let wall = WALL as $t;
        if p > wall {
            (wall, 0.0)
        } else if p < -wall {
            (-wall, 0.0)
        } else {
            (p, v)
        }
    }};
}

fn axis_step_f64(p: f64, v: f64, f: f64) -> (f64, f64) {
    axis_step!(f64, p, v, f)
}

fn axis_step_f32(p: f32, v: f32, f: f32) -> (f32, f32) {
    axis_step!(f32, p, v, f)
}

/// The point-mass environment. Its state is kept in `f64`.
#[derive(Debug, Clone)]
pub struct PointMass {
    state: [f64; 4],
    goal: [f32; 2],
    steps: usize,
}

impl Default for PointMass {
    fn default() -> Self {
        Self { state: [0.0; 4], goal: DEFAULT_GOAL, steps: 0 }
    }
}

impl PointMass {
    /// A point mass at rest at the origin with the goal [`DEFAULT_GOAL`];
    /// call [`Environment::reset`] to start an episode.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same environment with goal position `goal`.
    pub fn with_goal(mut self, goal: [f32; 2]) -> Self {
        self.goal = goal;
        self
    }

    /// The goal position.
    pub fn goal(&self) -> [f32; 2] {
        self.goal
    }

    /// The goal as a full state `[gx, gy, 0, 0]` (the goal the configurator
    /// sets on the cost).
    pub fn goal_state(&self) -> [f32; 4] {
        [self.goal[0], self.goal[1], 0.0, 0.0]
    }

    /// The internal state `[x, y, vx, vy]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Overwrites the internal state; the step count is kept.
    pub fn set_state(&mut self, state: [f64; 4]) {
        self.state = state;
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

impl Environment for PointMass {
    fn name(&self) -> &str {
        "pointmass"
    }
    fn obs_dim(&self) -> usize {
        4
    }
    fn action_dim(&self) -> usize {
        2
    }
    fn action_bounds(&self) -> Bounds {
        Bounds::symmetric(2, MAX_FORCE as f32)
    }
    fn max_steps(&self) -> usize {
        MAX_STEPS
    }
    fn reset(&mut self, seed: u64) -> Result<Array1<f32>> {
        let mut rng = ami_core::rng::rng(seed);
        let x = rng.gen_range(-1.0..1.0);
        let y = rng.gen_range(-1.0..1.0);
        self.state = [x, y, 0.0, 0.0];
        self.steps = 0;
        Ok(self.observation())
    }
    fn step(&mut self, action: ArrayView1<'_, f32>) -> Result<Step> {
        let fx = f64::from(action[0]).clamp(-MAX_FORCE, MAX_FORCE);
        let fy = f64::from(action[1]).clamp(-MAX_FORCE, MAX_FORCE);
        let [x, y, vx, vy] = self.state;
        let (x, vx) = axis_step_f64(x, vx, fx);
        let (y, vy) = axis_step_f64(y, vy, fy);
        self.state = [x, y, vx, vy];
        self.steps += 1;
        let (dx, dy) = (x - f64::from(self.goal[0]), y - f64::from(self.goal[1]));
        let reward = -(dx * dx + dy * dy).sqrt() - 0.01 * (fx * fx + fy * fy);
        Ok(Step { observation: self.observation(), reward, terminated: false, truncated: self.steps >= MAX_STEPS })
    }
}

/// The true dynamics in `f32` on observations `[x, y, vx, vy]`; forces are
/// clipped to `[-1, 1]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PointMassModel;

impl WorldModel for PointMassModel {
    fn state_dim(&self) -> usize {
        4
    }
    fn action_dim(&self) -> usize {
        2
    }
    fn predict(&self, states: ArrayView2<'_, f32>, actions: ArrayView2<'_, f32>, mut next: ArrayViewMut2<'_, f32>) -> Result<()> {
        ami_core::check_predict_shapes(self, "PointMassModel", &states, &actions, &next)?;
        let fmax = MAX_FORCE as f32;
        for ((s, a), mut n) in states.rows().into_iter().zip(actions.rows()).zip(next.rows_mut()) {
            let (x, vx) = axis_step_f32(s[0], s[2], a[0].clamp(-fmax, fmax));
            let (y, vy) = axis_step_f32(s[1], s[3], a[1].clamp(-fmax, fmax));
            n[0] = x;
            n[1] = y;
            n[2] = vx;
            n[3] = vy;
        }
        Ok(())
    }
    fn differentiable(&self) -> Option<&dyn DifferentiableWorldModel> {
        Some(self)
    }
}

impl DifferentiableWorldModel for PointMassModel {
    fn vjp(
        &self,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        grad_next: ArrayView2<'_, f32>,
        mut grad_states: ArrayViewMut2<'_, f32>,
        mut grad_actions: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        ami_core::check_vjp_shapes(self, "PointMassModel", &states, &actions, &grad_next, &grad_states, &grad_actions)?;
        let (fmax, dt, damping) = (MAX_FORCE as f32, DT as f32, DAMPING as f32);
        for b in 0..states.nrows() {
            let (s, a, g) = (states.row(b), actions.row(b), grad_next.row(b));
            for axis in 0..2 {
                let (p, v) = axis_step_f32(s[axis], s[axis + 2], a[axis].clamp(-fmax, fmax));
                // At a wall the state is pinned: no gradient flows back.
                if v == 0.0 && p.abs() >= WALL as f32 {
                    continue;
                }
                let (gp, gv) = (g[axis], g[axis + 2] + dt * g[axis]);
                grad_states[[b, axis]] += gp;
                grad_states[[b, axis + 2]] += gv * (1.0 - dt * damping);
                if a[axis].abs() < fmax {
                    grad_actions[[b, axis]] += gv * dt;
                }
            }
        }
        Ok(())
    }
}

/// The intrinsic term `goal`: `(x'-gx)^2 + (y'-gy)^2 + 0.1 (vx'^2 + vy'^2)`
/// relative to the goal `[gx, gy, 0, 0]` that the [`Cost`] holds.
pub fn goal_term() -> QuadraticCost {
    QuadraticCost::new("goal", vec![1.0, 1.0, 0.1, 0.1], Vec::new())
}

/// The intrinsic term `effort`: `0.01 (fx^2 + fy^2)`.
pub fn effort_term() -> QuadraticCost {
    QuadraticCost::new("effort", Vec::new(), vec![0.01, 0.01])
}

/// A cost holding [`goal_term`] and [`effort_term`] with weight 1.0 and no
/// goal set (the configurator sets it; see [`PointMass::goal_state`]).
pub fn cost() -> Cost {
    let mut cost = Cost::new();
    cost.add_intrinsic(Arc::new(goal_term()), 1.0).expect("a fresh cost has no `goal` term");
    cost.add_intrinsic(Arc::new(effort_term()), 1.0).expect("a fresh cost has no `effort` term");
    cost
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn reset_is_deterministic_and_in_bounds() {
        let mut a = PointMass::new();
        let mut b = PointMass::new();
        assert_eq!(a.reset(11).unwrap(), b.reset(11).unwrap());
        assert_ne!(a.reset(11).unwrap(), b.reset(12).unwrap());
        for seed in 0..500 {
            let o = a.reset(seed).unwrap();
            assert!((-1.0..1.0).contains(&o[0]) && (-1.0..1.0).contains(&o[1]), "{o}");
            assert_eq!((o[2], o[3]), (0.0, 0.0));
        }
    }

    #[test]
    fn moves_toward_positive_force_and_stops_at_walls() {
        let mut env = PointMass::new();
        env.reset(0).unwrap();
        let [x0, y0, _, _] = env.state();
        let s = env.step(array![1.0f32, -0.5].view()).unwrap();
        assert!(f64::from(s.observation[0]) > x0 && f64::from(s.observation[1]) < y0);
        assert!(s.observation[2] > 0.0 && s.observation[3] < 0.0);
        let mut last = s;
        for _ in 0..200 {
            last = env.step(array![5.0f32, 0.0].view()).unwrap();
        }
        assert_eq!(last.observation[0], 2.0);
        assert_eq!(last.observation[2], 0.0);
        assert!(last.truncated && !last.terminated);
    }

    #[test]
    fn reward_is_distance_and_effort() {
        let mut env = PointMass::new().with_goal([0.5, -0.5]);
        env.set_state([0.5, -0.5, 0.0, 0.0]);
        let s = env.step(array![0.0f32, 0.0].view()).unwrap();
        assert_eq!(s.reward, 0.0);
        env.set_state([0.5, -0.5, 0.0, 0.0]);
        let s = env.step(array![1.0f32, 0.0].view()).unwrap();
        let dx = 0.1 * 0.1;
        assert!((s.reward - (-dx - 0.01)).abs() < 1e-12, "{}", s.reward);
    }

    #[test]
    fn model_follows_the_env() {
        let mut env = PointMass::new();
        env.reset(4).unwrap();
        let model = PointMassModel;
        let mut s = Array2::zeros((1, 4));
        let mut n = Array2::zeros((1, 4));
        for i in 0..100 {
            let a = array![[((i as f32) * 0.3).sin() * 1.5, ((i as f32) * 0.2).cos()]];
            s.row_mut(0).assign(&env.observation());
            model.predict(s.view(), a.view(), n.view_mut()).unwrap();
            let step = env.step(a.row(0)).unwrap();
            for j in 0..4 {
                assert!((n[[0, j]] - step.observation[j]).abs() < 1e-5);
            }
        }
    }
}
