//! The subcommands of `ami`.

pub mod bench;
pub mod bench_train;
pub mod check;
pub mod collect;
pub mod envs;
pub mod graph;
pub mod list;
pub mod plot;
mod plot_maze;
pub mod plugin;
pub mod run;
pub mod train;
pub mod train_jepa;

/// The run was stopped by Ctrl-C (after every node's `finish` ran).
#[derive(Debug, thiserror::Error)]
#[error("interrupted (Ctrl-C): the current tick finished, every node's finish ran")]
pub struct Interrupted;

/// A file or value the user named cannot be used: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// A [`BadInput`] error (exit code 2) with `msg`.
pub(crate) fn input_error(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}

/// The error and its causes on one line, each said once: a cause whose
/// message the one before it already ends with (an error that prints its
/// source) is not repeated.
pub fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out += ": ";
        }
        out += &text;
    }
    out
}

/// The exit code for an error: 2 for bad input (an invalid, unreadable or
/// non-UTF-8 agent file, a refused parameter: [`ami_core::CoreError::is_user_input`],
/// like clap's bad arguments), 130 when interrupted, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.downcast_ref::<ami_core::CoreError>().is_some_and(|c| c.is_user_input()) {
            return 2;
        }
        if cause.downcast_ref::<ami_plugin_host::PluginError>().is_some_and(|p| p.is_user_input()) {
            return 2;
        }
        if cause.downcast_ref::<BadInput>().is_some() {
            return 2;
        }
        if cause.downcast_ref::<Interrupted>().is_some() {
            return 130;
        }
    }
    1
}
