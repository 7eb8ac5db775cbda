//! # ami-agents
//!
//! Built-in tasks behind the [`Environment`] trait (Pendulum, CartPole and a
//! 2-D point mass), each with a true-dynamics world model and an intrinsic
//! cost so a planning agent works without learning; ready-made agents
//! built as dataflow graphs ([`agent`]); and the `ami` command-line tool.

pub mod agent;
pub mod config;
pub mod env;
pub mod plugin_task;
pub mod tasks;

pub use env::{Environment, Step};
