//! The pieces a graph is built from, as written: an edge between two
//! `node.port` endpoints ([`EdgeSpec`]) and a node with its settings.

use ami_core::Location;

use crate::node::Node;

/// An edge from an output port to an input port, written `node.port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeSpec {
    /// Source, `node.output_port`.
    pub from: String,
    /// Destination, `node.input_port`.
    pub to: String,
    /// Whether the destination sees the previous tick's value.
    pub delayed: bool,
    /// Where the edge was written (e.g. `agent.toml:12`), for messages.
    pub location: Option<Location>,
}

pub(crate) struct NodeEntry {
    pub(crate) name: String,
    pub(crate) node: Box<dyn Node>,
    pub(crate) rate: u32,
    pub(crate) background: bool,
    pub(crate) location: Option<Location>,
}
