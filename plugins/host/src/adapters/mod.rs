//! Adapters: plugin module instances behind the ordinary module traits.
//!
//! One file per module kind; [`tensor`] moves arrays across the ABI,
//! [`callbacks`] holds the host callbacks a plugin calls back into, and
//! [`common`] the small helpers the adapters share.

mod actor;
mod callbacks;
mod common;
mod configurator;
mod critic;
mod environment;
mod intrinsic_cost;
mod memory;
mod perception;
mod planner;
mod tensor;
mod world_model;

pub use actor::PluginActor;
pub use configurator::PluginConfigurator;
pub use critic::PluginCritic;
pub use environment::PluginEnvironment;
pub use intrinsic_cost::PluginIntrinsicCost;
pub use memory::PluginMemory;
pub use perception::PluginPerception;
pub use planner::PluginPlanner;
pub use world_model::PluginWorldModel;
