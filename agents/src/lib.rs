//! # ami-agents
//!
//! The built-in tasks behind the [`Environment`](ami_core::Environment)
//! contract (Pendulum, CartPole and a 2-D point mass, each with its
//! true-dynamics world model and intrinsic cost, and the planners'
//! workload as an environment), the registry agent files are checked
//! against ([`registry()`]), agent loading with the plugins an agent needs
//! ([`loader`]), and the `ami` command-line tool.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod loader;
mod registry;
pub mod tasks;
pub mod workload;

pub use ami_config::{Agent, AgentBuilder, EpisodeResult};
pub use loader::{load, task_agent_toml, AgentSource, LoadOptions, Loaded, DEFAULT_AGENT};
pub use registry::{gym_default_planner, gym_task, register_tasks, registry};

/// Loads and validates agent file text against [`registry()`] (no plugins);
/// `file` names it in problem locations.
pub fn load_str(text: &str, file: &str) -> ami_core::Result<ami_config::AgentGraph> {
    ami_config::load_str(text, file, &registry())
}

/// Loads and validates an agent file against [`registry()`] (no plugins).
pub fn load_file(path: &std::path::Path) -> ami_core::Result<ami_config::AgentGraph> {
    ami_config::load_file(path, &registry())
}

/// The standard agent on built-in `task` with a registered `planner` and
/// the task's default settings for it (what `ami run --task X --planner Y`
/// runs), ready to run episodes with the sequential executor.
pub fn build_agent(task: tasks::TaskKind, planner: &str) -> ami_core::Result<Agent> {
    let loaded = load(&AgentSource::Task { task, planner: planner.to_string() }, &LoadOptions::default())?;
    Agent::from_agent_graph(loaded.graph, ami_graph::ExecutorKind::Sequential)
}
