//! # ami-core
//!
//! The module contracts of an agent in the architecture of LeCun's
//! "A Path Towards Autonomous Machine Intelligence" (2022), the Mode-2
//! planners that minimise energy through a world model, the short-term
//! memory, and the dataflow graph that wires the modules into an agent.
//!
//! * [`modules`]: the six module contracts — [`Perception`], [`WorldModel`],
//!   [`Cost`] (immutable [`IntrinsicCost`] terms + trainable [`Critic`]s),
//!   [`ShortTermMemory`], [`Actor`] and [`Configurator`].
//! * [`planner`]: Mode-2 planners ([`Cem`], [`Mppi`]) generic over any world
//!   model and cost, and the receding-horizon [`PlanningActor`].
//! * [`graph`]: the dataflow graph (typed ports, delayed edges, validation)
//!   and its executors (deterministic sequential, parallel).
//! * [`config`]: agents as TOML files, validated against a registry of
//!   module implementations.
//!
//! All module calls are batched: a batch of states is an ndarray
//! `[batch, state_dim]` of `f32`, a batch of actions `[batch, action_dim]`.
//!
//! ```
//! use ami_core::prelude::*;
//! use ndarray::{array, Array2};
//!
//! // A linear world model s' = s + a and a quadratic cost ||s' - goal||^2.
//! let model = LinearModel::new(Array2::eye(1), Array2::eye(1)).unwrap();
//! let mut cost = Cost::new();
//! cost.add_intrinsic(std::sync::Arc::new(GoalDistance::new(1)), 1.0);
//! cost.set_goal(Some(array![3.0]));
//! let mut cem = Cem::new(CemConfig { horizon: 3, ..CemConfig::default() }, Bounds::symmetric(1, 2.0)).unwrap();
//! cem.reset(7);
//! let plan = cem.plan(&PlanRequest::new(&model, &cost, array![0.0].view())).unwrap();
//! assert!((plan.actions[[0, 0]] - 2.0).abs() < 0.1);
//! ```
#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod graph;
pub mod mlp;
pub mod modules;
pub mod planner;
pub mod plugin;
pub mod rng;

/// The kernels crate (fused rollouts, CPU backend), re-exported.
pub use ami_kernels as kernels;
pub use error::{CoreError, Result};
pub use mlp::{goal_energy, MlpWorldModel, Workload};
pub use modules::*;
pub use planner::*;

/// The types most programs need, in one `use`.
pub mod prelude {
    pub use crate::error::{CoreError, Result};
    pub use crate::graph::*;
    pub use crate::modules::*;
    pub use crate::planner::*;
}
