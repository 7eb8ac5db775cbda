//! The six module contracts of the architecture (paper sections in brackets):
//! [`Perception`] (§3), [`WorldModel`] (§3, §4), [`Cost`] (§3.2) made of
//! [`IntrinsicCost`] and [`Critic`] terms, [`ShortTermMemory`] (§3.3, §4.9),
//! [`Actor`] (§3.1, §5) and [`Configurator`] (§6).

mod actor;
mod configurator;
mod cost;
mod memory;
mod perception;
mod world_model;

pub use actor::*;
pub use configurator::*;
pub use cost::*;
pub use memory::*;
pub use perception::*;
pub use world_model::*;
