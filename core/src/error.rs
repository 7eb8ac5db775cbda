//! The one error type of ami: [`CoreError`]. Every ami crate returns it,
//! so errors compose across module boundaries (a planner failing inside an
//! actor node inside an executor is one chain: `Node { source: Module }`).
//! Variants carry what went wrong as typed fields (the file, node, tick,
//! field, [`Location`]) rather than only in the message, so callers can
//! act on them: the CLI, for instance, exits 2 on
//! [`CoreError::is_user_input`] errors.

use std::path::PathBuf;

use crate::problem::{Location, Problem};

/// Result with [`CoreError`].
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// Everything that can go wrong in ami-core. Messages name the file, node,
/// port, module or field concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// Two arrays that must agree in shape do not.
    #[error("shape mismatch in {context}: expected {expected}, found {found}")]
    Shape {
        /// Where the mismatch was found (module and argument).
        context: String,
        /// The expected shape, in words.
        expected: String,
        /// The shape that was passed.
        found: String,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// The field (e.g. `cem.elites`).
        field: String,
        /// Why it was refused.
        reason: String,
    },
    /// A cost term named in a modulation does not exist.
    #[error("unknown cost term `{term}` (the cost has: {known})")]
    UnknownCostTerm {
        /// The name that was given.
        term: String,
        /// The cost's terms, comma-separated.
        known: String,
    },
    /// Every sample of a planning iteration had a non-finite energy.
    #[error("planner `{planner}`: all {samples} samples had non-finite energy (NaN/inf from {sources})")]
    NonFinite {
        /// The planner.
        planner: String,
        /// How many samples were evaluated.
        samples: usize,
        /// The modules whose outputs were non-finite, with their row counts
        /// ([`crate::tally::NonFiniteTally::describe`]).
        sources: String,
    },
    /// A node needs the task of an environment node (its dimensions, world
    /// model or cost) and the agent has none, or its environment node failed
    /// to build. Typed so that the loader can tell a node that only lacks
    /// the task from one with a problem of its own.
    #[error("needs the task of an environment node (its dimensions, world model and cost): add one to the agent")]
    NeedsTask,
    /// A module failed.
    #[error("module `{module}`: {message}")]
    Module {
        /// The module (or node) name.
        module: String,
        /// What happened.
        message: String,
    },
    /// An I/O error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file exists but its content is not valid.
    #[error("{path}: corrupt or unsupported file: {reason}")]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An agent (its file or its graph) is invalid; every problem found is
    /// listed, each with its node, port and location.
    #[error("invalid agent:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
    /// An agent file is not valid TOML.
    #[error("{location}: not valid TOML: {message}")]
    Syntax {
        /// Where the parser stopped.
        location: Location,
        /// The parser's message.
        message: String,
    },
    /// An agent file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read agent file {path}: {reason}")]
    AgentFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A module outside ami's own crates failed with its own typed error
    /// (the Gymnasium bridge's `GymError`, for instance); reach it with
    /// [`CoreError::external`].
    #[error("{error}")]
    External {
        /// Whether the failure is the user's input (an unknown environment
        /// id, a missing interpreter): the CLI exits 2.
        user_input: bool,
        /// The module's error.
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A node failed while the graph was running.
    #[error("node `{node}` failed at tick {tick}: {source}")]
    Node {
        /// The node name.
        node: String,
        /// The tick.
        tick: u64,
        /// The underlying error.
        #[source]
        source: Box<CoreError>,
    },
}

impl CoreError {
    /// A shape error.
    pub fn shape(context: impl Into<String>, expected: impl Into<String>, found: impl Into<String>) -> Self {
        CoreError::Shape { context: context.into(), expected: expected.into(), found: found.into() }
    }
    /// A configuration error.
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CoreError::Config { field: field.into(), reason: reason.into() }
    }
    /// Whether the error is the user's input: an invalid agent file or
    /// graph, an unreadable agent file, a refused parameter (the CLI exits
    /// 2 on these, as on bad arguments).
    pub fn is_user_input(&self) -> bool {
        match self {
            CoreError::Invalid(_) | CoreError::Syntax { .. } | CoreError::AgentFile { .. } | CoreError::Config { .. } | CoreError::NeedsTask => true,
            CoreError::External { user_input, .. } => *user_input,
            CoreError::Node { source, .. } => source.is_user_input(),
            _ => false,
        }
    }
    /// The problems of an [`CoreError::Invalid`] error (the syntax error as
    /// one problem), else `None`.
    pub fn problems(&self) -> Option<Vec<Problem>> {
        match self {
            CoreError::Invalid(p) => Some(p.clone()),
            CoreError::Syntax { location, message } => {
                Some(vec![Problem::new(crate::problem::ProblemKind::Syntax, format!("not valid TOML: {message}")).at(Some(location.clone()))])
            }
            _ => None,
        }
    }
    /// The typed error of an [`CoreError::External`] failure, looking
    /// through the nodes it failed in.
    pub fn external<T: std::error::Error + 'static>(&self) -> Option<&T> {
        match self {
            CoreError::External { error, .. } => error.downcast_ref::<T>(),
            CoreError::Node { source, .. } => source.external(),
            _ => None,
        }
    }
    /// A module error.
    pub fn module(module: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::Module { module: module.into(), message: message.into() }
    }
    /// Every one of `samples` samples of `planner` had a non-finite energy;
    /// `tally` says which modules produced it.
    pub fn non_finite(planner: impl Into<String>, samples: usize, tally: &crate::tally::NonFiniteTally) -> Self {
        CoreError::NonFinite { planner: planner.into(), samples, sources: tally.describe() }
    }
    /// A [`CoreError::NonFinite`] with its sources from `tally` (other
    /// errors unchanged).
    pub fn with_sources(self, tally: &crate::tally::NonFiniteTally) -> Self {
        match self {
            CoreError::NonFinite { planner, samples, .. } => CoreError::non_finite(planner, samples, tally),
            e => e,
        }
    }
}

/// Checks that `found == expected` for a 2-D shape, naming `context`
/// (for implementers of the contracts).
pub fn check_shape2(context: &str, expected: [usize; 2], found: &[usize]) -> Result<()> {
    if found != expected {
        return Err(CoreError::shape(context, format!("{expected:?}"), format!("{found:?}")));
    }
    Ok(())
}
