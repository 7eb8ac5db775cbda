//! Errors of ami-core.

use std::path::PathBuf;

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
    #[error("unknown cost term `{0}` (the cost has: {1})")]
    UnknownCostTerm(String, String),
    /// Every sample of a planning iteration had a non-finite energy.
    #[error("planner `{planner}`: all {samples} samples had non-finite energy (the world model or cost produced NaN/inf)")]
    NonFinite {
        /// The planner.
        planner: String,
        /// How many samples were evaluated.
        samples: usize,
    },
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
    /// A graph could not be built or validated; every problem is listed.
    #[error("invalid graph:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Graph(Vec<crate::graph::GraphProblem>),
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
    /// A module error.
    pub fn module(module: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::Module { module: module.into(), message: message.into() }
    }
}

/// Checks that `found == expected` for a 2-D shape, naming `context`.
pub(crate) fn check_shape2(context: &str, expected: [usize; 2], found: &[usize]) -> Result<()> {
    if found != expected {
        return Err(CoreError::shape(context, format!("{expected:?}"), format!("{found:?}")));
    }
    Ok(())
}
