//! # ami-core: the contracts
//!
//! What every part of an ami agent agrees on, and nothing else: the six
//! module contracts of LeCun's "A Path Towards Autonomous Machine
//! Intelligence" (2022), the [`Planner`] contract with its [`Bounds`],
//! [`Budget`], [`PlanRequest`] and [`Plan`], the [`Environment`] contract,
//! the one error type [`CoreError`] with its located [`Problem`]s, and
//! seeded random streams ([`rng`]).
//!
//! * [`modules`]: [`Perception`], [`WorldModel`], [`Cost`] (immutable
//!   [`IntrinsicCost`] terms + trainable [`Critic`]s), [`ShortTermMemory`],
//!   [`Actor`] and [`Configurator`].
//! * [`planner`]: the Mode-2 planner contract (implementations in
//!   `ami-planners`).
//! * [`env`](mod@env): the world an agent acts in (built-in tasks in `ami-agents`,
//!   plugin environments through `ami-plugin-host`).
//!
//! ## Why a crate of its own
//!
//! Someone writing a world model, a cost or an environment depends on this
//! crate alone: ndarray, serde, rand and thiserror, no kernels, no graph, no
//! TOML, no dynamic loading, no autodiff. Everything else in ami (graph,
//! planners, agent files, the plugin host, learning) depends on it and on
//! nothing above it, so the compiler keeps the dependency direction.
//!
//! All module calls are batched: a batch of states is an ndarray
//! `[batch, state_dim]` of `f32`, a batch of actions `[batch, action_dim]`.
//!
//! ```
//! use ami_core::{Cost, GoalDistance, LinearModel, WorldModel};
//! use ndarray::{array, Array2};
//!
//! // A linear world model s' = s + a and a quadratic cost ||s' - goal||^2.
//! let model = LinearModel::new(Array2::eye(1), Array2::eye(1)).unwrap();
//! let mut cost = Cost::new();
//! cost.add_intrinsic(std::sync::Arc::new(GoalDistance::new(1)), 1.0).unwrap();
//! cost.set_goal(Some(array![3.0]));
//! let mut next = Array2::zeros((1, 1));
//! model.predict(array![[0.0]].view(), array![[2.0]].view(), next.view_mut()).unwrap();
//! let mut e = ndarray::Array1::zeros(1);
//! cost.step_energy(0, array![[0.0]].view(), array![[2.0]].view(), next.view(), e.view_mut()).unwrap();
//! assert_eq!(e[0], 1.0);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bounds;
pub mod env;
pub mod error;
pub mod fsio;
pub mod handle;
pub mod modules;
pub mod params;
pub mod planner;
pub mod problem;
pub mod rng;
pub mod tally;

pub use bounds::{ActionSpace, Bounds, Budget, Choices};
pub use env::{Environment, Step};
pub use error::{CoreError, Result};
pub use handle::{CriticHandle, Handle, MemoryHandle, ModelHandle, PolicyHandle, RunPhase, Shared, SharedCritic};
pub use modules::*;
pub use params::{ParamSpec, ParamType, ParamValue, Params, Settings};
pub use planner::{interrupt_requested, request_interrupt, Plan, PlanRequest, Planner};
pub use problem::{Location, Problem, ProblemKind};
pub use tally::{blame, non_finite_rows, NonFiniteTally};
