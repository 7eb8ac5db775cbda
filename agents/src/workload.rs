//! The workload as an environment: the planners' yardstick
//! (`../shared/workload/WORKLOAD.md`) closed into a task an agent acts in.
//!
//! A workload file holds a residual MLP `s' = s + f(s, a)`, a start state
//! `s0` and a goal. [`WorkloadEnv`] steps that MLP from `s0`, with actions
//! in `[-1, 1]` and reward minus the workload's step energy
//! `||s' - goal||^2 + 0.01 ||a||^2`, for `max_steps` steps. An agent file
//! selects the same file as its `mlp` world model, so its planners take the
//! fused fast path inside a running agent (`agents/examples/workload.toml`).

use std::path::Path;

use ami_core::{Bounds, CoreError, Environment, Result, Step, WorldModel};
use ami_planners::{MlpWorldModel, Workload};
use ndarray::{Array1, Array2, ArrayView1};

/// A workload file's MLP as an environment (see the module docs).
pub struct WorkloadEnv {
    model: MlpWorldModel,
    s0: Array1<f32>,
    goal: Array1<f32>,
    state: Array1<f32>,
    steps: usize,
    max_steps: usize,
    next: Array2<f32>,
}

impl std::fmt::Debug for WorkloadEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadEnv").field("state_dim", &self.model.state_dim()).field("steps", &self.steps).finish()
    }
}

impl WorkloadEnv {
    /// Loads a workload file (it must have `s0` and `goal`).
    pub fn load(path: &Path, max_steps: usize) -> Result<(Self, Workload)> {
        let wl = Workload::load(path)?;
        let missing = |t: &str| CoreError::CorruptFile {
            path: path.to_path_buf(),
            reason: format!("the workload has no `{t}` tensor (an environment starts from s0 and pursues goal)"),
        };
        let s0 = wl.s0.clone().ok_or_else(|| missing("s0"))?;
        let goal = wl.goal.clone().ok_or_else(|| missing("goal"))?;
        let s = wl.model.state_dim();
        let env = Self { model: wl.model.clone(), state: s0.clone(), s0, goal, steps: 0, max_steps, next: Array2::zeros((1, s)) };
        Ok((env, wl))
    }
}

impl Environment for WorkloadEnv {
    fn name(&self) -> &str {
        "workload"
    }
    fn obs_dim(&self) -> usize {
        self.model.state_dim()
    }
    fn action_dim(&self) -> usize {
        self.model.action_dim()
    }
    fn action_bounds(&self) -> Bounds {
        Bounds::symmetric(self.model.action_dim(), 1.0)
    }
    fn max_steps(&self) -> usize {
        self.max_steps
    }
    fn reset(&mut self, _seed: u64) -> Result<Array1<f32>> {
        self.state.assign(&self.s0);
        self.steps = 0;
        Ok(self.state.clone())
    }
    fn step(&mut self, action: ArrayView1<'_, f32>) -> Result<Step> {
        let a: Array1<f32> = action.mapv(|x| x.clamp(-1.0, 1.0));
        let s = self.state.view().insert_axis(ndarray::Axis(0));
        self.model.predict(s, a.view().insert_axis(ndarray::Axis(0)), self.next.view_mut())?;
        self.state.assign(&self.next.row(0));
        self.steps += 1;
        let d: f64 = self.state.iter().zip(&self.goal).map(|(&x, &g)| f64::from(x - g).powi(2)).sum();
        let u: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum();
        Ok(Step { observation: self.state.clone(), reward: -(d + 0.01 * u), terminated: false, truncated: self.steps >= self.max_steps })
    }
}
