//! Built-in tasks: each is an [`Environment`] together with a true-dynamics
//! [`WorldModel`] (on the observation space, so perception is the identity)
//! and the intrinsic cost terms a planning agent minimises.
//!
//! * [`pendulum`]: Gymnasium's `Pendulum-v1`, exactly.
//! * [`cartpole`]: Gymnasium's `CartPole-v1` dynamics with a continuous force.
//! * [`pointmass`]: a damped 2-D point mass driven to a goal.
//!
//! [`TaskKind`] names the tasks and builds a ready [`TaskSpec`]:
//!
//! ```
//! use ami_agents::tasks::TaskKind;
//!
//! let kind: TaskKind = "pendulum".parse().unwrap();
//! let mut spec = kind.spec();
//! let obs = spec.env.reset(3).unwrap();
//! assert_eq!(obs.len(), spec.model.state_dim());
//! assert_eq!(spec.cost.term_names(), ["swingup"]);
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use ami_core::{Cost, Environment, ParamValue, WorldModel};

pub mod cartpole;
pub mod maze;
pub mod pendulum;
pub mod pointmass;
pub mod wall;

pub use cartpole::{CartPole, CartPoleCost, CartPoleModel};
pub use pendulum::{Pendulum, PendulumCost, PendulumModel};
pub use pointmass::{PointMass, PointMassModel};

/// The built-in tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskKind {
    /// Pendulum swing-up (Gymnasium `Pendulum-v1`).
    Pendulum,
    /// Cart-pole balancing with a continuous force (Gymnasium `CartPole-v1` dynamics).
    CartPole,
    /// A damped 2-D point mass driven to a goal.
    PointMass,
}

impl TaskKind {
    /// Every task, in the order of their names in [`TaskKind::NAMES`].
    pub const ALL: [TaskKind; 3] = [TaskKind::Pendulum, TaskKind::CartPole, TaskKind::PointMass];
    /// The names that [`FromStr`] accepts.
    pub const NAMES: [&'static str; 3] = ["pendulum", "cartpole", "pointmass"];

    /// The task's name (`pendulum`, `cartpole`, `pointmass`).
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Pendulum => "pendulum",
            TaskKind::CartPole => "cartpole",
            TaskKind::PointMass => "pointmass",
        }
    }

    /// Builds the task: a fresh environment (call `reset` before stepping),
    /// its true-dynamics world model, and a cost holding the task's
    /// intrinsic terms with weight 1.0. For the point mass the goal
    /// `[1, 1, 0, 0]` is returned in [`TaskSpec::goal`] and also already set
    /// on the cost.
    pub fn spec(&self) -> TaskSpec {
        match self {
            TaskKind::Pendulum => TaskSpec { env: Box::new(Pendulum::new()), model: Arc::new(PendulumModel), cost: pendulum::cost(), goal: None },
            TaskKind::CartPole => TaskSpec { env: Box::new(CartPole::new()), model: Arc::new(CartPoleModel), cost: cartpole::cost(), goal: None },
            TaskKind::PointMass => {
                let env = PointMass::new();
                let goal = env.goal_state().to_vec();
                let mut cost = pointmass::cost();
                cost.set_goal(Some(ndarray::Array1::from(goal.clone())));
                TaskSpec { env: Box::new(env), model: Arc::new(PointMassModel), cost, goal: Some(goal) }
            }
        }
    }
}

/// One step of a 2-D point mass `[x, y, vx, vy]` among walls:
/// `v' = v + dt (gain f - damping v)`, then the position moves one axis at
/// a time, and a move into a wall (`is_free` false) stops that axis and
/// zeroes its velocity. The mazes' and the wall task's dynamics.
pub fn sliding_step(s: [f64; 4], f: [f64; 2], dt: f64, gain: f64, damping: f64, is_free: impl Fn(f64, f64) -> bool) -> [f64; 4] {
    let mut vx = s[2] + dt * (gain * f[0] - damping * s[2]);
    let mut vy = s[3] + dt * (gain * f[1] - damping * s[3]);
    let mut x = s[0] + dt * vx;
    if !is_free(x, s[1]) {
        x = s[0];
        vx = 0.0;
    }
    let mut y = s[1] + dt * vy;
    if !is_free(x, y) {
        y = s[1];
        vy = 0.0;
    }
    [x, y, vx, vy]
}

/// `(name, value)` parameter overrides.
fn overrides(values: &[(&str, ParamValue)]) -> Vec<(String, ParamValue)> {
    values.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

impl TaskKind {
    /// The settings ami uses for `planner` on this task by default
    /// (`ami run --task X --planner Y`): overrides of the planner's own
    /// defaults, tuned per task; empty for a planner the task has none for.
    pub fn planner_defaults(self, planner: &str) -> Vec<(String, ParamValue)> {
        use ParamValue::{Bool, Float as F, Int as I};
        let cem = |h, n, it, el, std: f64, min: f64| {
            overrides(&[
                ("horizon", I(h)),
                ("samples", I(n)),
                ("iterations", I(it)),
                ("elites", I(el)),
                ("init_std", F(std)),
                ("min_std", F(min)),
                ("momentum", F(0.1)),
                ("return_best", Bool(true)),
            ])
        };
        let mppi = |h, n, it, lambda: f64, noise: f64| {
            overrides(&[("horizon", I(h)), ("samples", I(n)), ("iterations", I(it)), ("temperature", F(lambda)), ("noise_std", F(noise))])
        };
        let gd = |h, n, steps, lr: f64, std: f64| overrides(&[("horizon", I(h)), ("samples", I(n)), ("steps", I(steps)), ("lr", F(lr)), ("init_std", F(std))]);
        match (self, planner) {
            (TaskKind::Pendulum, "cem") => cem(30, 256, 6, 24, 1.0, 0.05),
            (TaskKind::CartPole, "cem") => cem(25, 128, 4, 16, 5.0, 0.5),
            (TaskKind::PointMass, "cem") => cem(20, 128, 4, 16, 0.5, 0.05),
            (TaskKind::Pendulum, "mppi") => mppi(30, 256, 6, 0.5, 1.0),
            (TaskKind::CartPole, "mppi") => mppi(25, 128, 4, 0.5, 5.0),
            (TaskKind::PointMass, "mppi") => mppi(20, 128, 4, 0.1, 0.5),
            (TaskKind::Pendulum, "gd") => gd(30, 16, 30, 0.2, 1.0),
            (TaskKind::CartPole, "gd") => gd(25, 16, 30, 1.0, 3.0),
            (TaskKind::PointMass, "gd") => gd(20, 16, 30, 0.1, 0.5),
            _ => Vec::new(),
        }
    }

    /// One line for listings.
    pub fn summary(self) -> &'static str {
        match self {
            TaskKind::Pendulum => "Gymnasium Pendulum-v1 (swing-up), 200 steps",
            TaskKind::CartPole => "CartPole-v1 dynamics with a continuous force, 500 steps",
            TaskKind::PointMass => "a damped 2-D point mass driven to a goal",
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an unknown task name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task `{name}`; valid tasks: pendulum, cartpole, pointmass")]
pub struct UnknownTask {
    /// The name that was given.
    pub name: String,
}

impl FromStr for TaskKind {
    type Err = UnknownTask;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let t = s.trim();
        TaskKind::ALL.into_iter().find(|k| k.name().eq_ignore_ascii_case(t)).ok_or_else(|| UnknownTask { name: s.to_string() })
    }
}

/// A task ready to run: the environment, its true-dynamics model and the
/// intrinsic cost.
pub struct TaskSpec {
    /// The environment (not yet reset).
    pub env: Box<dyn Environment>,
    /// The true dynamics, in `f32`, on the observation space.
    pub model: Arc<dyn WorldModel>,
    /// The intrinsic cost terms, each with weight 1.0.
    pub cost: Cost,
    /// The goal state the configurator should set (point mass only).
    pub goal: Option<Vec<f32>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in TaskKind::ALL {
            assert_eq!(k.to_string().parse::<TaskKind>().unwrap(), k);
        }
        assert_eq!(TaskKind::ALL.map(TaskKind::name), TaskKind::NAMES);
        assert_eq!("CartPole".parse::<TaskKind>().unwrap(), TaskKind::CartPole);
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let err = "acrobot".parse::<TaskKind>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("acrobot"), "{msg}");
        for n in TaskKind::NAMES {
            assert!(msg.contains(n), "{msg}");
        }
    }

    #[test]
    fn specs_are_consistent() {
        for k in TaskKind::ALL {
            let mut spec = k.spec();
            assert_eq!(spec.env.name(), k.name());
            let obs = spec.env.reset(1).unwrap();
            assert_eq!(obs.len(), spec.env.obs_dim());
            assert_eq!(spec.model.state_dim(), spec.env.obs_dim());
            assert_eq!(spec.model.action_dim(), spec.env.action_dim());
            assert_eq!(spec.env.action_bounds().dim(), spec.env.action_dim());
            assert!(spec.cost.intrinsic_terms().all(|(_, _, w)| w == 1.0));
            assert!(spec.cost.intrinsic_terms().count() >= 1);
            match k {
                TaskKind::PointMass => {
                    assert_eq!(spec.goal.as_deref(), Some(&[1.0, 1.0, 0.0, 0.0][..]));
                    assert_eq!(spec.cost.goal().unwrap().to_vec(), vec![1.0, 1.0, 0.0, 0.0]);
                }
                _ => assert!(spec.goal.is_none()),
            }
        }
    }
}
