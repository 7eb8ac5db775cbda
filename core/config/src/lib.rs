//! # ami-config: composing agents
//!
//! Agents as TOML files and in code: the file format ([`parse_agent`]), the
//! [`Registry`] of implementations files name (each declared once, as one
//! [`Implementation`] value), the loader that validates a file against the
//! registry and builds its dataflow graph ([`load_file`]), the graph nodes
//! that wrap the module contracts ([`nodes`]), and the [`Agent`] that runs
//! episodes, built from a file or composed in code with [`AgentBuilder`].
//!
//! Validation happens before anything runs and reports every problem at
//! once, each naming the node, the port or parameter, and the `file:line`
//! where it was written ([`Problem`](ami_core::Problem)): bad syntax,
//! unknown keys, unknown kinds or implementations, unknown parameters and
//! parameters of the wrong type or out of range, references to nodes that
//! do not exist, duplicate node names, missing required inputs, port type
//! mismatches, rate 0, and cycles without a delayed edge. No input makes
//! the loader panic.
//!
//! ```
//! use ami_config::{load_str, Registry};
//!
//! let err = load_str("[[nodes]]\nname = \"p\"\nkind = \"perception\"\nimplementation = \"nope\"\n", "a.toml", &Registry::with_core_builtins())
//!     .unwrap_err();
//! assert!(err.to_string().contains("a.toml:4: node `p`: unknown perception implementation `nope`"), "{err}");
//! ```
//!
//! ## World models, costs and planners as modules
//!
//! A `world_model` node (`task`: the environment's true dynamics, `mlp`:
//! a residual MLP from safetensors, or a plugin's model) is a module other
//! nodes refer to by name: a planner with `model = "dynamics"` plans
//! through it, holding its [`ModelHandle`](ami_core::ModelHandle), so a
//! trainer can publish new weights while the agent runs. The loader wires
//! the reference as an edge into the planner's `model` port, which `ami
//! graph --dot` draws. Likewise `cost = "NODE"` plans under a cost node's
//! (shared) cost.
//!
//! The file format is documented in `docs/agent-files.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agent;
pub mod builtins;
pub mod distill;
mod file;
pub mod jepa;
pub mod learn;
pub mod level;
mod load;
pub mod nodes;
mod registry;

pub use agent::{standard_agent_toml, Agent, AgentBuilder, EpisodeResult, Handles, NodeSpec, STANDARD_EDGES};
pub use builtins::WaypointConfigurator;
pub use file::{parse_agent, AgentConfig, NodeConfig, ParamEntry, PluginsConfig, DEFAULT_EPISODES};
pub use load::{build, load_file, load_str, read_agent_file, AgentGraph};
pub use nodes::SharedCost;
pub use registry::{plugin_name, plugin_of, BuildContext, BuildFn, Built, CostFactory, Implementation, ModuleKind, Registry, TaskResources};
