//! # ami: agents that plan with learned world models
//!
//! One dependency for users of ami: the crates of the workspace under
//! short names, and a [`prelude`] of the dozen names most programs need.
//!
//! | module | crate | what it holds |
//! |---|---|---|
//! | [`core`] | `ami-core` | the contracts: the six modules, `Planner`, `Environment`, errors, handles, parameter schemas |
//! | [`graph`] | `ami-graph` | the dataflow graph and its executors |
//! | [`planners`] | `ami-planners` | CEM, MPPI, GD, the planning actor, the MLP world model |
//! | [`kernels`] | `ami-kernels` | the fused SIMD kernels |
//! | [`config`] | `ami-config` | agent files, the registry, graph nodes, `Agent`, `AgentBuilder` |
//! | [`agents`] | `ami-agents` | the built-in tasks and agent loading with plugins |
//!
//! `ami` pulls in `ami-agents`, which loads agents with their plugins (so
//! `ami-plugin-host`, the one crate that loads libraries, comes along).
//! Learning (`ami-learn`, dfdx) is a separate dependency. A program that
//! needs neither tasks nor plugins can depend on `ami-config` and
//! `ami-planners` directly, and a module author on `ami-core` alone.
//!
//! ```
//! use ami::prelude::*;
//! use ami::agents::tasks::{Pendulum, PendulumModel};
//!
//! let cem = Cem::new(CemConfig { horizon: 10, samples: 64, iterations: 2, ..CemConfig::default() }, Bounds::symmetric(1, 2.0)).unwrap();
//! let mut agent = AgentBuilder::new(Pendulum::new())
//!     .model(PendulumModel)
//!     .cost(ami::agents::tasks::pendulum::cost())
//!     .planner(cem)
//!     .build()
//!     .unwrap();
//! let r = agent.run_episode(0, |_| {}).unwrap();
//! assert_eq!(r.steps, 200);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use ami_agents as agents;
pub use ami_config as config;
pub use ami_core as core;
pub use ami_graph as graph;
pub use ami_kernels as kernels;
pub use ami_planners as planners;

/// The names most programs need, in one `use` (no `Result` that shadows
/// std's: ami's is [`core::Result`]).
pub mod prelude {
    pub use ami_config::{Agent, AgentBuilder};
    pub use ami_core::{Bounds, CoreError, Cost, Environment, IntrinsicCost, PlanRequest, Planner, Step, WorldModel};
    pub use ami_planners::{Cem, CemConfig};
}
