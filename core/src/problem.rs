//! Problems found while validating an agent, with where they were written.
//!
//! Validation never stops at the first problem: the agent-file loader and
//! the graph builder collect every [`Problem`] and refuse the agent with all
//! of them at once ([`CoreError::Invalid`](crate::CoreError::Invalid)), so a
//! user fixes a file in one round. A problem carries its location as data
//! ([`Location`]: file and line), not baked into a string, so tools can
//! point at it.

use std::fmt;

/// Where something was written: a file and, when known, a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// The file, as named to the loader (a path, or `<task-planner>` for
    /// generated text).
    pub file: String,
    /// 1-based line.
    pub line: Option<usize>,
}

impl Location {
    /// A line of a file.
    pub fn line(file: impl Into<String>, line: usize) -> Self {
        Self { file: file.into(), line: Some(line) }
    }
    /// A whole file.
    pub fn file(file: impl Into<String>) -> Self {
        Self { file: file.into(), line: None }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// The kind of a [`Problem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// Two nodes share a name.
    DuplicateNode,
    /// A node name is empty or contains `.`.
    BadNodeName,
    /// An edge endpoint is not written `node.port`.
    BadEndpoint,
    /// An edge names a node that does not exist.
    UnknownNode,
    /// An edge names a port the node does not have.
    UnknownPort,
    /// An edge joins ports of different types.
    TypeMismatch,
    /// An input port has more than one incoming edge.
    MultipleSources,
    /// A required input port has no incoming edge.
    MissingInput,
    /// A cycle has no delayed edge.
    Cycle,
    /// A node rate is 0.
    BadRate,
    /// A module kind is not known (config files).
    UnknownKind,
    /// An implementation name is not registered (config files).
    UnknownImplementation,
    /// A parameter is not in the implementation's schema.
    UnknownParameter,
    /// A parameter has the wrong type.
    ParameterType,
    /// A parameter is out of its range.
    ParameterRange,
    /// A required parameter is missing.
    MissingParameter,
    /// The file could not be parsed.
    Syntax,
    /// The file parses but its structure is wrong: an unknown or missing
    /// field, or a field of the wrong type (outside node parameters).
    Schema,
    /// The graph lacks a node the runner needs (e.g. an environment).
    MissingNode,
    /// A parameter names a node that does not exist or has another kind
    /// (e.g. `model = "dynamics"` without a `world_model` node `dynamics`).
    UnknownReference,
    /// A second node of a kind the agent has one of (the environment).
    Duplicate,
    /// A module's constructor refused to build it (a file it needs is
    /// missing, its world model does not fit the environment, ...).
    Build,
}

/// One problem found while validating an agent (its file or its graph).
/// Validation collects all of them before refusing the agent, and each
/// names what it can: the node, the port or parameter, and the [`Location`]
/// where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// The node concerned, if any.
    pub node: Option<String>,
    /// The port concerned, if any.
    pub port: Option<String>,
    /// Where it was written, if known.
    pub location: Option<Location>,
    /// The explanation.
    pub message: String,
}

impl Problem {
    /// A problem.
    pub fn new(kind: ProblemKind, message: impl Into<String>) -> Self {
        Self { kind, node: None, port: None, location: None, message: message.into() }
    }
    /// Names the node.
    pub fn node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }
    /// Names the port.
    pub fn port(mut self, port: impl Into<String>) -> Self {
        self.port = Some(port.into());
        self
    }
    /// Puts `prefix` before the message.
    pub fn message_prefix(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}{}", self.message);
        self
    }
    /// Sets the location.
    pub fn at(mut self, location: Option<Location>) -> Self {
        if self.location.is_none() {
            self.location = location;
        }
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = &self.location {
            write!(f, "{l}: ")?;
        }
        match (&self.node, &self.port) {
            // A parameter's problem names it as a parameter, not a port.
            (Some(n), Some(p)) if self.message.contains(&format!("parameter `{p}`")) => write!(f, "node `{n}`: ")?,
            (Some(n), Some(p)) => write!(f, "node `{n}`, port `{p}`: ")?,
            (Some(n), None) => write!(f, "node `{n}`: ")?,
            _ => {}
        }
        f.write_str(&self.message)
    }
}
