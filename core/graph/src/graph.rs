//! [`Graph`]: a validated dataflow graph, ready for an executor, with its
//! run order and levels.

use std::collections::HashSet;
use std::fmt;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::node::{Node, NodePorts};
use crate::spec::{EdgeSpec, NodeEntry};
use crate::validate::Checked;
use crate::value::{Binding, PortType};

/// An edge seen from its source: output `port` feeds input `input` of node
/// `node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutEdge {
    pub(crate) port: usize,
    pub(crate) node: usize,
    pub(crate) input: usize,
    pub(crate) delayed: bool,
}

/// A validated dataflow graph, ready for an executor.
pub struct Graph {
    pub(crate) names: Vec<String>,
    pub(crate) nodes: Vec<Box<dyn Node>>,
    pub(crate) ports: Vec<NodePorts>,
    pub(crate) rates: Vec<u32>,
    pub(crate) background: Vec<bool>,
    pub(crate) bindings: Vec<Vec<Binding>>,
    pub(crate) input_names: Vec<Vec<String>>,
    pub(crate) order: Vec<usize>,
    pub(crate) levels: Vec<Vec<usize>>,
    pub(crate) delayed_sources: Vec<(usize, usize)>,
    pub(crate) out_edges: Vec<Vec<OutEdge>>,
    /// Output ports carrying events (modulations): emptied at the start of
    /// every tick, so a message is delivered on one tick only.
    pub(crate) event_ports: Vec<Vec<usize>>,
    pub(crate) graph: DiGraph<usize, EdgeSpec>,
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Graph").field("nodes", &self.names).field("order", &self.order).finish()
    }
}

impl Graph {
    /// Node names, in insertion order.
    pub fn node_names(&self) -> &[String] {
        &self.names
    }
    /// The ports of node `name`.
    pub fn ports(&self, name: &str) -> Option<&NodePorts> {
        self.index(name).map(|i| &self.ports[i])
    }
    /// The run order of one tick: the [`Graph::levels`] in turn, each in
    /// insertion order (a topological order of the instant edges).
    pub fn order(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(|&i| self.names[i].as_str())
    }
    /// Groups of nodes with no instant dependency among them, in run order:
    /// the nodes of one level may run concurrently.
    pub fn levels(&self) -> Vec<Vec<&str>> {
        self.levels.iter().map(|l| l.iter().map(|&i| self.names[i].as_str()).collect()).collect()
    }
    /// The rate of node `name`.
    pub fn rate(&self, name: &str) -> Option<u32> {
        self.index(name).map(|i| self.rates[i])
    }
    /// Whether node `name` runs in the background (see
    /// [`GraphBuilder::set_background`](crate::GraphBuilder::set_background)).
    pub fn is_background(&self, name: &str) -> Option<bool> {
        self.index(name).map(|i| self.background[i])
    }
    pub(crate) fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
    /// A node, for reading its state after a run.
    pub fn node(&self, name: &str) -> Option<&dyn Node> {
        self.index(name).map(|i| self.nodes[i].as_ref())
    }

    /// Lays out a validated graph: levels, run order, edges by source.
    pub(crate) fn assemble(nodes: Vec<NodeEntry>, checked: Checked) -> Graph {
        let Checked { ports, bindings, edges: edge_list, topo } = checked;
        let mut g: DiGraph<usize, EdgeSpec> = DiGraph::new();
        let idx: Vec<NodeIndex> = (0..nodes.len()).map(|i| g.add_node(i)).collect();
        for (fi, _, ti, _, e) in &edge_list {
            g.add_edge(idx[*fi], idx[*ti], e.clone());
        }
        // Levels: a node's level is 1 + the max level of its instant
        // predecessors (edges out of background nodes are not instant).
        let mut level = vec![0usize; nodes.len()];
        for &i in &topo {
            for b in &bindings[i] {
                if let Binding::Current { node, .. } = b {
                    if !nodes[*node].background {
                        level[i] = level[i].max(level[*node] + 1);
                    }
                }
            }
        }
        let depth = level.iter().copied().max().map_or(0, |m| m + 1);
        let mut levels = vec![Vec::new(); depth];
        for i in 0..nodes.len() {
            levels[level[i]].push(i);
        }
        // The run order is the levels in turn, each in insertion order, so
        // both executors order side effects the same way.
        let order: Vec<usize> = levels.iter().flatten().copied().collect();
        let delayed_sources: Vec<(usize, usize)> = {
            let mut set: Vec<(usize, usize)> = edge_list.iter().filter(|e| e.4.delayed).map(|e| (e.0, e.1)).collect::<HashSet<_>>().into_iter().collect();
            set.sort_unstable();
            set
        };
        let mut out_edges: Vec<Vec<OutEdge>> = vec![Vec::new(); nodes.len()];
        for (fi, fp, ti, tp, e) in &edge_list {
            out_edges[*fi].push(OutEdge { port: *fp, node: *ti, input: *tp, delayed: e.delayed });
        }
        let event_ports: Vec<Vec<usize>> =
            ports.iter().map(|p| p.outputs.iter().enumerate().filter(|(_, s)| s.ty == PortType::Modulation).map(|(k, _)| k).collect()).collect();
        let mut names = Vec::with_capacity(nodes.len());
        let mut boxed = Vec::with_capacity(nodes.len());
        let mut rates = Vec::with_capacity(nodes.len());
        let mut background = Vec::with_capacity(nodes.len());
        for n in nodes {
            names.push(n.name);
            boxed.push(n.node);
            rates.push(n.rate);
            background.push(n.background);
        }
        let input_names = ports.iter().map(|p| p.inputs.iter().map(|s| s.name.clone()).collect()).collect();
        Graph { names, nodes: boxed, ports, rates, background, bindings, input_names, order, levels, delayed_sources, out_edges, event_ports, graph: g }
    }
}
