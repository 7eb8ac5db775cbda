//! The subcommands of `ami`.

pub mod bench;
pub mod check;
pub mod graph;
pub mod plugin;
pub mod run;

/// The run was stopped by Ctrl-C (after every node's `finish` ran).
#[derive(Debug, thiserror::Error)]
#[error("interrupted (Ctrl-C): the current tick finished, every node's finish ran")]
pub struct Interrupted;

/// The exit code for an error: 2 when an agent file is invalid (like
/// clap's bad arguments), 130 when interrupted, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if matches!(cause.downcast_ref::<ami_core::CoreError>(), Some(ami_core::CoreError::Graph(_))) {
            return 2;
        }
        if cause.downcast_ref::<Interrupted>().is_some() {
            return 130;
        }
    }
    1
}
