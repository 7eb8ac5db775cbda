//! [`GraphBuilder`]: nodes and edges added in code (or by the agent-file
//! loader), validated all at once by [`GraphBuilder::build`].

use ami_core::{Location, Problem, ProblemKind, Result};

use crate::graph::Graph;
use crate::node::Node;
use crate::spec::{EdgeSpec, NodeEntry};

/// Builds a [`Graph`] in code: add nodes, connect ports, then
/// [`GraphBuilder::build`] validates everything at once.
#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeEntry>,
    edges: Vec<EdgeSpec>,
    problems: Vec<Problem>,
}

impl GraphBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a node.
    pub fn add_node(&mut self, name: &str, node: impl Node + 'static) -> &mut Self {
        self.add_boxed(name, Box::new(node), None)
    }
    /// Adds a boxed node, with the place it was declared (for messages).
    pub fn add_boxed(&mut self, name: &str, node: Box<dyn Node>, location: Option<Location>) -> &mut Self {
        self.nodes.push(NodeEntry { name: name.to_string(), node, rate: 1, background: false, location });
        self
    }
    /// Runs node `name` only every `rate` ticks (tick % rate == 0).
    pub fn set_rate(&mut self, name: &str, rate: u32) -> &mut Self {
        match self.nodes.iter_mut().rev().find(|n| n.name == name) {
            Some(n) => n.rate = rate,
            None => self.problems.push(Problem::new(ProblemKind::UnknownNode, format!("set_rate: no node named `{name}`")).node(name)),
        }
        self
    }
    /// Runs node `name` in the background: its run at tick `k` reads its
    /// inputs as of tick `k`, and its outputs become visible to other nodes
    /// at tick `k + rate` (held until then). The parallel executor runs it on
    /// its own thread, so the rest of the graph does not wait for it except
    /// at tick `k + rate`; the sequential executor gives the same values.
    /// Edges out of a background node impose no order within a tick (like
    /// delayed edges), so they may close a cycle.
    pub fn set_background(&mut self, name: &str, background: bool) -> &mut Self {
        match self.nodes.iter_mut().rev().find(|n| n.name == name) {
            Some(n) => n.background = background,
            None => self.problems.push(Problem::new(ProblemKind::UnknownNode, format!("set_background: no node named `{name}`")).node(name)),
        }
        self
    }
    /// Connects `from` (`node.output`) to `to` (`node.input`).
    pub fn connect(&mut self, from: &str, to: &str) -> &mut Self {
        self.add_edge(EdgeSpec { from: from.into(), to: to.into(), delayed: false, location: None })
    }
    /// Connects with a one-tick delay (allowed to close a cycle).
    pub fn connect_delayed(&mut self, from: &str, to: &str) -> &mut Self {
        self.add_edge(EdgeSpec { from: from.into(), to: to.into(), delayed: true, location: None })
    }
    /// Adds an edge.
    pub fn add_edge(&mut self, edge: EdgeSpec) -> &mut Self {
        self.edges.push(edge);
        self
    }
    /// Records a problem found outside the builder (e.g. by a config loader),
    /// so it is reported with the others by [`GraphBuilder::build`].
    pub fn report(&mut self, problem: Problem) -> &mut Self {
        self.problems.push(problem);
        self
    }

    /// Validates and builds the graph. On failure every problem found is in
    /// [`CoreError::Invalid`](ami_core::CoreError::Invalid).
    pub fn build(self) -> Result<Graph> {
        let GraphBuilder { nodes, edges, problems } = self;
        let checked = crate::validate::validate(&nodes, &edges, problems)?;
        Ok(Graph::assemble(nodes, checked))
    }
}
