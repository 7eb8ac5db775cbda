//! Validation of a graph before it runs: node names and rates, edge
//! endpoints, port types, one source per input, required inputs, and no
//! cycle without a delayed edge. Every problem is collected; none stops the
//! others from being found.

use std::collections::{HashMap, HashSet};

use ami_core::{CoreError, Problem, ProblemKind, Result};
use petgraph::algo::{kosaraju_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::node::NodePorts;
use crate::spec::{EdgeSpec, NodeEntry};
use crate::value::Binding;

/// A resolved edge: (source node, output port, destination node, input
/// port, the edge as written).
pub(crate) type ResolvedEdge = (usize, usize, usize, usize, EdgeSpec);

/// What validation found out about a graph that has no problem.
pub(crate) struct Checked {
    pub(crate) ports: Vec<NodePorts>,
    pub(crate) bindings: Vec<Vec<Binding>>,
    pub(crate) edges: Vec<ResolvedEdge>,
    /// A topological order of the instant edges.
    pub(crate) topo: Vec<usize>,
}

/// Checks `nodes` and `edges`; `problems` (found by whoever built them)
/// are reported with the ones found here.
pub(crate) fn validate(nodes: &[NodeEntry], edges: &[EdgeSpec], mut problems: Vec<Problem>) -> Result<Checked> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if n.name.is_empty() || n.name.contains('.') || n.name.chars().any(char::is_whitespace) {
            problems.push(Problem::new(ProblemKind::BadNodeName, "node names must be non-empty, without `.` or spaces").node(&n.name).at(n.location.clone()));
        }
        if index.insert(n.name.as_str(), i).is_some() {
            problems.push(Problem::new(ProblemKind::DuplicateNode, "two nodes have this name").node(&n.name).at(n.location.clone()));
        }
        if n.rate == 0 {
            problems.push(Problem::new(ProblemKind::BadRate, "rate must be at least 1 (run every `rate` ticks)").node(&n.name).at(n.location.clone()));
        }
    }
    let ports: Vec<NodePorts> = nodes.iter().map(|n| n.node.ports()).collect();
    let mut bindings: Vec<Vec<Binding>> = ports.iter().map(|p| vec![Binding::None; p.inputs.len()]).collect();
    let mut edge_list: Vec<(usize, usize, usize, usize, EdgeSpec)> = Vec::new();
    for e in edges {
        let loc = e.location.clone();
        let (Some((fnode, fport)), Some((tnode, tport))) = (e.from.split_once('.'), e.to.split_once('.')) else {
            problems.push(Problem::new(ProblemKind::BadEndpoint, format!("edge `{}` -> `{}`: endpoints are written `node.port`", e.from, e.to)).at(loc));
            continue;
        };
        let mut ok = true;
        let fi = index.get(fnode).copied();
        let ti = index.get(tnode).copied();
        if fi.is_none() {
            problems.push(
                Problem::new(ProblemKind::UnknownNode, format!("edge from `{}`: no node named `{fnode}`", e.from)).node(fnode).port(fport).at(loc.clone()),
            );
            ok = false;
        }
        if ti.is_none() {
            problems
                .push(Problem::new(ProblemKind::UnknownNode, format!("edge to `{}`: no node named `{tnode}`", e.to)).node(tnode).port(tport).at(loc.clone()));
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
                Problem::new(ProblemKind::UnknownPort, format!("no output port `{fport}` (outputs: {})", list(&have))).node(fnode).port(fport).at(loc.clone()),
            );
        }
        if tp.is_none() {
            let have: Vec<&str> = ports[ti].inputs.iter().map(|p| p.name.as_str()).collect();
            problems.push(
                Problem::new(ProblemKind::UnknownPort, format!("no input port `{tport}` (inputs: {})", list(&have))).node(tnode).port(tport).at(loc.clone()),
            );
        }
        let (Some(fp), Some(tp)) = (fp, tp) else { continue };
        let (fty, tty) = (ports[fi].outputs[fp].ty, ports[ti].inputs[tp].ty);
        if fty != tty {
            problems.push(
                Problem::new(ProblemKind::TypeMismatch, format!("type mismatch: `{}` is {fty}, `{}` expects {tty}", e.from, e.to))
                    .node(tnode)
                    .port(tport)
                    .at(loc.clone()),
            );
            continue;
        }
        if bindings[ti][tp] != Binding::None {
            problems.push(
                Problem::new(ProblemKind::MultipleSources, format!("input `{}` has more than one incoming edge", e.to)).node(tnode).port(tport).at(loc.clone()),
            );
            continue;
        }
        bindings[ti][tp] = if e.delayed { Binding::Delayed { node: fi, port: fp } } else { Binding::Current { node: fi, port: fp } };
        edge_list.push((fi, fp, ti, tp, e.clone()));
    }
    for (i, n) in nodes.iter().enumerate() {
        for (k, p) in ports[i].inputs.iter().enumerate() {
            if !p.required {
                continue;
            }
            // What the input holds on the first tick of an episode.
            let first_tick = match bindings[i][k] {
                Binding::None => Some("has no incoming edge".to_string()),
                Binding::Delayed { node, .. } => Some(format!(
                    "is fed only by a delayed edge (from `{}`), so it has no value on the first tick of an episode: feed it with an edge that is not `delayed`",
                    nodes[node].name
                )),
                Binding::Current { node, .. } if nodes[node].background && node != i => Some(format!(
                    "is fed by `{}`, which runs in the background: its outputs arrive a tick late at the earliest, so this input has no value on the first tick",
                    nodes[node].name
                )),
                _ => None,
            };
            if let Some(why) = first_tick {
                problems.push(
                    Problem::new(ProblemKind::MissingInput, format!("required input ({}) {why}", p.ty)).node(&n.name).port(&p.name).at(n.location.clone()),
                );
            }
        }
    }
    // Structure over the non-delayed edges: must be acyclic.
    let mut instant: DiGraph<usize, ()> = DiGraph::new();
    let iidx: Vec<NodeIndex> = (0..nodes.len()).map(|i| instant.add_node(i)).collect();
    for (fi, _, ti, _, e) in &edge_list {
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
                    let mut problem =
                        Problem::new(ProblemKind::Cycle, format!("cycle without a delayed edge through nodes {} (mark an edge of it `delayed`)", list(&names)));
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
        return Err(CoreError::Invalid(problems));
    }
    Ok(Checked { ports, bindings, edges: edge_list, topo })
}

fn list(items: &[&str]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
    }
}
