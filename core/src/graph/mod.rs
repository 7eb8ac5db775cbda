//! The dataflow graph (work in progress).
/// A graph problem.
#[derive(Debug, Clone)]
pub struct GraphProblem;
impl std::fmt::Display for GraphProblem { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "p") } }
