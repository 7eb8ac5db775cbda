//! # ami-planners: Mode-2 planners
//!
//! Mode-2 planning [paper §3.1.2, §5]: find the action sequence whose
//! predicted future has the lowest energy under the cost, act its first
//! action, and plan again at the next tick (receding horizon).
//!
//! * [`Cem`], [`Mppi`]: sampling planners; [`Gd`]: Adam on the action
//!   sequences through a differentiable world model (all three over a box
//!   of continuous actions).
//! * [`DiscreteCem`] (categorical distributions) and [`Beam`] (beam
//!   search): planners over a finite set of actions
//!   ([`ActionSpace::Discrete`](ami_core::ActionSpace::Discrete)), such as
//!   Gymnasium's `Discrete` spaces.
//! * [`PlanningActor`]: the receding-horizon Mode-2 actor over any planner.
//! * [`MlpWorldModel`]: a residual MLP world model loaded from safetensors
//!   (PyTorch `Linear` layout), which the planners detect and roll out on
//!   the fused SIMD kernels of `ami-kernels` (the fast path).
//!
//! The planners are generic over any [`WorldModel`](ami_core::WorldModel)
//! and [`Cost`](ami_core::Cost): they only use the batched `predict` and
//! energy calls ([`Rollout`]), unless the model offers an accelerated form
//! they know ([`WorldModel::accelerated`](ami_core::WorldModel::accelerated)
//! returning a kernels `ResidualMlp`) and the cost is one quadratic form.
//!
//! ```
//! use ami_core::{Bounds, Cost, GoalDistance, LinearModel, PlanRequest, Planner};
//! use ami_planners::{Cem, CemConfig};
//! use ndarray::{array, Array2};
//!
//! // A linear world model s' = s + a and a quadratic cost ||s' - goal||^2.
//! let model = LinearModel::new(Array2::eye(1), Array2::eye(1)).unwrap();
//! let mut cost = Cost::new();
//! cost.add_intrinsic(std::sync::Arc::new(GoalDistance::new(1)), 1.0).unwrap();
//! cost.set_goal(Some(array![3.0]));
//! let mut cem = Cem::new(CemConfig { horizon: 3, ..CemConfig::default() }, Bounds::symmetric(1, 2.0)).unwrap();
//! cem.reset(7);
//! let plan = cem.plan(&PlanRequest::new(&model, &cost, array![0.0].view())).unwrap();
//! assert!((plan.actions[[0, 0]] - 2.0).abs() < 0.1);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod actor;
mod beam;
mod cem;
mod cem_discrete;
mod common;
pub mod decl;
mod declaration;
pub mod fast;
mod gd;
pub mod mlp;
mod mppi;
mod rollout;

/// The kernels crate (fused rollouts, CPU backend), re-exported.
pub use ami_kernels as kernels;

pub use actor::{propose, PlanningActor, PolicyUse};
pub use beam::{Beam, BeamConfig};
pub use cem::{Cem, CemConfig};
pub use cem_discrete::{DiscreteCem, DiscreteCemConfig};
pub use declaration::PlannerDecl;
pub use gd::{energy_gradient, Gd, GdConfig};
pub use mlp::{goal_energy, MlpWorldModel, Workload};
pub use mppi::{Mppi, MppiConfig};
pub use rollout::Rollout;
