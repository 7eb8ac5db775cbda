use std::collections::{HashMap, HashSet};
use std::fmt;

use petgraph::algo::{kosaraju_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use super::value::Binding;
use super::{Node, NodePorts, PortType};
use crate::error::{CoreError, Result};

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
    pub location: Option<String>,
}

/// The kind of a graph problem.
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
    /// Anything else.
    Other,
}

/// One problem found while validating a graph. Validation collects all of
/// them before refusing the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphProblem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// The node concerned, if any.
    pub node: Option<String>,
    /// The port concerned, if any.
    pub port: Option<String>,
    /// Where it was written (`file:line`), if known.
    pub location: Option<String>,
    /// The explanation.
    pub message: String,
}

impl GraphProblem {
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
    fn message_prefix(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}{}", self.message);
        self
    }
    /// Sets the location.
    pub fn at(mut self, location: Option<String>) -> Self {
        if self.location.is_none() {
            self.location = location;
        }
        self
    }
}

impl fmt::Display for GraphProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = &self.location {
            write!(f, "{l}: ")?;
        }
        match (&self.node, &self.port) {
            (Some(n), Some(p)) => write!(f, "node `{n}`, port `{p}`: ")?,
            (Some(n), None) => write!(f, "node `{n}`: ")?,
            _ => {}
        }
        f.write_str(&self.message)
    }
}

struct NodeEntry {
    name: String,
    node: Box<dyn Node>,
    rate: u32,
    background: bool,
    location: Option<String>,
}

/// Builds a [`Graph`] in code: add nodes, connect ports, then
/// [`GraphBuilder::build`] validates everything at once.
#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeEntry>,
    edges: Vec<EdgeSpec>,
    problems: Vec<GraphProblem>,
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
    pub fn add_boxed(&mut self, name: &str, node: Box<dyn Node>, location: Option<String>) -> &mut Self {
        self.nodes.push(NodeEntry { name: name.to_string(), node, rate: 1, background: false, location });
        self
    }
    /// Runs node `name` only every `rate` ticks (tick % rate == 0).
    pub fn set_rate(&mut self, name: &str, rate: u32) -> &mut Self {
        match self.nodes.iter_mut().rev().find(|n| n.name == name) {
            Some(n) => n.rate = rate,
            None => self.problems.push(GraphProblem::new(ProblemKind::UnknownNode, format!("set_rate: no node named `{name}`")).node(name)),
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
            None => self.problems.push(GraphProblem::new(ProblemKind::UnknownNode, format!("set_background: no node named `{name}`")).node(name)),
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
    pub fn report(&mut self, problem: GraphProblem) -> &mut Self {
        self.problems.push(problem);
        self
    }

    /// Validates and builds the graph. On failure every problem found is in
    /// [`CoreError::Graph`].
    pub fn build(self) -> Result<Graph> {
        let GraphBuilder { nodes, edges, mut problems } = self;
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            if n.name.is_empty() || n.name.contains('.') || n.name.chars().any(char::is_whitespace) {
                problems.push(
                    GraphProblem::new(ProblemKind::BadNodeName, "node names must be non-empty, without `.` or spaces").node(&n.name).at(n.location.clone()),
                );
            }
            if index.insert(n.name.as_str(), i).is_some() {
                problems.push(GraphProblem::new(ProblemKind::DuplicateNode, "two nodes have this name").node(&n.name).at(n.location.clone()));
            }
            if n.rate == 0 {
                problems.push(GraphProblem::new(ProblemKind::BadRate, "rate must be at least 1 (run every `rate` ticks)").node(&n.name).at(n.location.clone()));
            }
        }
        let ports: Vec<NodePorts> = nodes.iter().map(|n| n.node.ports()).collect();
        let mut bindings: Vec<Vec<Binding>> = ports.iter().map(|p| vec![Binding::None; p.inputs.len()]).collect();
        let mut edge_list: Vec<(usize, usize, usize, usize, EdgeSpec)> = Vec::new();
        for e in &edges {
            let loc = e.location.clone();
            let (Some((fnode, fport)), Some((tnode, tport))) = (e.from.split_once('.'), e.to.split_once('.')) else {
                problems
                    .push(GraphProblem::new(ProblemKind::BadEndpoint, format!("edge `{}` -> `{}`: endpoints are written `node.port`", e.from, e.to)).at(loc));
                continue;
            };
            let mut ok = true;
            let fi = index.get(fnode).copied();
            let ti = index.get(tnode).copied();
            if fi.is_none() {
                problems.push(
                    GraphProblem::new(ProblemKind::UnknownNode, format!("edge from `{}`: no node named `{fnode}`", e.from))
                        .node(fnode)
                        .port(fport)
                        .at(loc.clone()),
                );
                ok = false;
            }
            if ti.is_none() {
                problems.push(
                    GraphProblem::new(ProblemKind::UnknownNode, format!("edge to `{}`: no node named `{tnode}`", e.to)).node(tnode).port(tport).at(loc.clone()),
                );
                ok = false;
            }
            if !ok {
                continue;
            }
            let (fi, ti) = (fi.expect("checked"), ti.expect("checked"));
            let fp = ports[fi].output_index(fport);
            let tp = ports[ti].input_index(tport);
            if fp.is_none() {
                let have: Vec<&str> = ports[fi].outputs.iter().map(|p| p.name.as_str()).collect();
                problems.push(
                    GraphProblem::new(ProblemKind::UnknownPort, format!("no output port `{fport}` (outputs: {})", list(&have)))
                        .node(fnode)
                        .port(fport)
                        .at(loc.clone()),
                );
            }
            if tp.is_none() {
                let have: Vec<&str> = ports[ti].inputs.iter().map(|p| p.name.as_str()).collect();
                problems.push(
                    GraphProblem::new(ProblemKind::UnknownPort, format!("no input port `{tport}` (inputs: {})", list(&have)))
                        .node(tnode)
                        .port(tport)
                        .at(loc.clone()),
                );
            }
            let (Some(fp), Some(tp)) = (fp, tp) else { continue };
            let (fty, tty) = (ports[fi].outputs[fp].ty, ports[ti].inputs[tp].ty);
            if fty != tty {
                problems.push(
                    GraphProblem::new(ProblemKind::TypeMismatch, format!("type mismatch: `{}` is {fty}, `{}` expects {tty}", e.from, e.to))
                        .node(tnode)
                        .port(tport)
                        .at(loc.clone()),
                );
                continue;
            }
            if bindings[ti][tp] != Binding::None {
                problems.push(
                    GraphProblem::new(ProblemKind::MultipleSources, format!("input `{}` has more than one incoming edge", e.to))
                        .node(tnode)
                        .port(tport)
                        .at(loc.clone()),
                );
                continue;
            }
            bindings[ti][tp] = if e.delayed { Binding::Delayed { node: fi, port: fp } } else { Binding::Current { node: fi, port: fp } };
            edge_list.push((fi, fp, ti, tp, e.clone()));
        }
        for (i, n) in nodes.iter().enumerate() {
            for (k, p) in ports[i].inputs.iter().enumerate() {
                if p.required && bindings[i][k] == Binding::None {
                    problems.push(
                        GraphProblem::new(ProblemKind::MissingInput, format!("required input ({}) has no incoming edge", p.ty))
                            .node(&n.name)
                            .port(&p.name)
                            .at(n.location.clone()),
                    );
                }
            }
        }
        // Structure over the non-delayed edges: must be acyclic.
        let mut g: DiGraph<usize, EdgeSpec> = DiGraph::new();
        let idx: Vec<NodeIndex> = (0..nodes.len()).map(|i| g.add_node(i)).collect();
        let mut instant: DiGraph<usize, ()> = DiGraph::new();
        let iidx: Vec<NodeIndex> = (0..nodes.len()).map(|i| instant.add_node(i)).collect();
        for (fi, _, ti, _, e) in &edge_list {
            g.add_edge(idx[*fi], idx[*ti], e.clone());
            if !e.delayed && !nodes[*fi].background {
                instant.add_edge(iidx[*fi], iidx[*ti], ());
            }
        }
        let topo: Vec<usize> = match toposort(&instant, None) {
            Ok(o) => o.into_iter().map(|ni| instant[ni]).collect(),
            Err(_) => {
                for scc in kosaraju_scc(&instant) {
                    let self_loop = scc.len() == 1 && instant.contains_edge(scc[0], scc[0]);
                    if scc.len() > 1 || self_loop {
                        let members: HashSet<usize> = scc.iter().map(|ni| instant[*ni]).collect();
                        let mut names: Vec<&str> = members.iter().map(|&i| nodes[i].name.as_str()).collect();
                        names.sort_unstable();
                        // Name the last edge of the cycle in the file: usually the feedback edge to mark `delayed`.
                        let edge = edge_list.iter().rev().find(|e| !e.4.delayed && !nodes[e.0].background && members.contains(&e.0) && members.contains(&e.2));
                        let mut problem = GraphProblem::new(
                            ProblemKind::Cycle,
                            format!("cycle without a delayed edge through nodes {} (mark an edge of it `delayed`)", list(&names)),
                        );
                        problem = match edge {
                            Some((_, _, ti, tp, e)) => problem
                                .message_prefix(&format!("edge `{}` -> `{}` closes a ", e.from, e.to))
                                .node(&nodes[*ti].name)
                                .port(&ports[*ti].inputs[*tp].name)
                                .at(e.location.clone()),
                            None => problem.node(names[0]).at(nodes[index[names[0]]].location.clone()),
                        };
                        problems.push(problem);
                    }
                }
                Vec::new()
            }
        };
        if !problems.is_empty() {
            return Err(CoreError::Graph(problems));
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
        Ok(Graph { names, nodes: boxed, ports, rates, background, bindings, input_names, order, levels, delayed_sources, out_edges, event_ports, graph: g })
    }
}

/// An edge seen from its source: output `port` feeds input `input` of node
/// `node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutEdge {
    pub(crate) port: usize,
    pub(crate) node: usize,
    pub(crate) input: usize,
    pub(crate) delayed: bool,
}

fn list(items: &[&str]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
    }
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
    graph: DiGraph<usize, EdgeSpec>,
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
    /// [`GraphBuilder::set_background`]).
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

    /// The graph in Graphviz DOT: nodes as records listing their ports,
    /// delayed edges dashed, rates shown when not 1.
    pub fn to_dot(&self) -> String {
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"").replace(['{', '}', '|', '<', '>'], "_");
        let mut out = String::from("digraph agent {\n  rankdir=LR;\n  node [shape=record, fontname=\"Helvetica\"];\n");
        for (i, name) in self.names.iter().enumerate() {
            let ins: Vec<String> = self.ports[i].inputs.iter().map(|p| format!("<i_{0}> {0}", esc(&p.name))).collect();
            let outs: Vec<String> = self.ports[i].outputs.iter().map(|p| format!("<o_{0}> {0}", esc(&p.name))).collect();
            let mut rate = if self.rates[i] != 1 { format!("\\n(every {} ticks)", self.rates[i]) } else { String::new() };
            if self.background[i] {
                rate.push_str("\\n(background)");
            }
            out.push_str(&format!("  \"{0}\" [label=\"{{{{{1}}}|{0}{rate}|{{{2}}}}}\"];\n", esc(name), ins.join("|"), outs.join("|")));
        }
        for e in self.graph.edge_indices() {
            let (a, b) = self.graph.edge_endpoints(e).expect("edge exists");
            let spec = &self.graph[e];
            let fp = spec.from.split_once('.').map_or("", |x| x.1);
            let tp = spec.to.split_once('.').map_or("", |x| x.1);
            let style = if spec.delayed { " [style=dashed, label=\"delayed\"]" } else { "" };
            out.push_str(&format!(
                "  \"{}\":\"o_{}\" -> \"{}\":\"i_{}\"{style};\n",
                esc(&self.names[self.graph[a]]),
                esc(fp),
                esc(&self.names[self.graph[b]]),
                esc(tp)
            ));
        }
        out.push_str("}\n");
        out
    }
}
