//! Agents as TOML files: the file format, the [`Registry`] of module
//! implementations that files name, and the loader that validates a file
//! against the registry and builds its dataflow [`Graph`].
//!
//! Validation happens before anything runs and reports every problem at
//! once, each naming the node, the port or parameter, and the `file:line`
//! where it was written ([`GraphProblem`]): bad syntax, unknown keys, unknown
//! kinds or implementations, unknown parameters and parameters of the wrong
//! type or out of range, duplicate node names, missing required inputs,
//! port type mismatches, rate 0, and cycles without a delayed edge. No input
//! makes the loader panic.
//!
//! ```
//! use ami_core::config::{load_str, Registry};
//!
//! let err = load_str("[[nodes]]\nname = \"p\"\nkind = \"perception\"\nimplementation = \"nope\"\n", "a.toml", &Registry::with_core_builtins())
//!     .unwrap_err();
//! assert!(err.to_string().contains("a.toml:4: node `p`: unknown perception implementation `nope`"), "{err}");
//! ```
//!
//! The file format is documented in `docs/agent-files.md`.

mod builtins;
mod file;
mod params;
mod registry;

use std::path::Path;

pub use builtins::WaypointConfigurator;
pub use file::{parse_agent, AgentConfig, NodeConfig, ParamEntry, PluginsConfig, DEFAULT_EPISODES};
pub use params::{ParamSpec, ParamType, ParamValue, Params};
pub use registry::{plugin_name, BuildContext, BuildFn, Built, Implementation, ModuleKind, Registry, TaskResources};

use crate::error::{CoreError, Result};
use crate::graph::{Graph, GraphBuilder, GraphProblem, Inputs, Node, NodePorts, Outputs, ProblemKind, TickContext};
use params::ParamIssue;

/// A validated agent file: its graph, ready for an executor, and what the
/// runner needs to know about it.
#[derive(Debug)]
pub struct AgentGraph {
    /// The graph.
    pub graph: Graph,
    /// The file's settings (seeds, executor, nodes as written).
    pub config: AgentConfig,
    /// The name of the environment node.
    pub environment: String,
    /// The actor nodes, in file order.
    pub actors: Vec<String>,
    /// The task of the environment node.
    pub task: TaskResources,
}

/// Reads, validates and builds an agent file.
pub fn load_file(path: &Path, registry: &Registry) -> Result<AgentGraph> {
    let text = std::fs::read_to_string(path).map_err(|e| CoreError::Io { path: path.to_path_buf(), source: e })?;
    load_str(&text, &path.display().to_string(), registry)
}

/// Validates and builds agent file text; `file` names it in locations.
pub fn load_str(text: &str, file: &str, registry: &Registry) -> Result<AgentGraph> {
    let (cfg, problems) = parse_agent(text, file);
    match cfg {
        Some(cfg) => build(cfg, problems, registry),
        None => Err(CoreError::Graph(problems)),
    }
}

/// A placeholder with the declared ports of a node that could not be built,
/// so the edges touching it are still checked.
struct StubNode(NodePorts);

impl Node for StubNode {
    fn ports(&self) -> NodePorts {
        self.0.clone()
    }
    fn tick(&mut self, _ctx: &TickContext, _inputs: &Inputs<'_>, _outputs: &mut Outputs<'_>) -> Result<()> {
        Err(CoreError::module("stub", "this node could not be built"))
    }
}

fn issue_problem(node: &NodeConfig, imp: &Implementation, issue: ParamIssue) -> GraphProblem {
    let loc = |name: &str| node.params.iter().find(|p| p.name == name).and_then(|p| p.location.clone()).or_else(|| node.location.clone());
    let (kind, name, msg) = match issue {
        ParamIssue::Unknown(n) => {
            let known: Vec<&str> = imp.params.iter().map(|s| s.name.as_str()).collect();
            let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            (ProblemKind::UnknownParameter, n.clone(), format!("unknown parameter `{n}` for {} `{}` (parameters: {known})", imp.kind, imp.name))
        }
        ParamIssue::WrongType(n, m) => (ProblemKind::ParameterType, n.clone(), format!("parameter `{n}`: {m}")),
        ParamIssue::OutOfRange(n, m) => (ProblemKind::ParameterRange, n.clone(), format!("parameter `{n}`: {m}")),
        ParamIssue::Missing(n) => (ProblemKind::MissingParameter, n.clone(), format!("missing required parameter `{n}`")),
    };
    let at = loc(&name);
    GraphProblem::new(kind, msg).node(&node.name).port(name).at(at)
}

/// Turns a constructor's error into a problem, on the parameter's line when
/// the error names a parameter.
fn build_problem(node: &NodeConfig, err: CoreError) -> GraphProblem {
    if let CoreError::Config { field, reason } = &err {
        let last = field.rsplit('.').next().unwrap_or(field);
        if let Some(p) = node.params.iter().find(|p| p.name == *field || p.name == last) {
            return GraphProblem::new(ProblemKind::ParameterRange, format!("parameter `{}`: {reason}", p.name))
                .node(&node.name)
                .port(&p.name)
                .at(p.location.clone());
        }
        if field == "kind" {
            return GraphProblem::new(ProblemKind::MissingNode, format!("{} `{}` {reason}", node.kind, node.implementation))
                .node(&node.name)
                .at(node.kind_location.clone());
        }
    }
    GraphProblem::new(ProblemKind::Other, format!("cannot build {} `{}`: {err}", node.kind, node.implementation)).node(&node.name).at(node.location.clone())
}

/// Checks a parsed agent file against `registry` and builds its graph;
/// `problems` (from parsing) are reported with those found here.
pub fn build(cfg: AgentConfig, mut problems: Vec<GraphProblem>, registry: &Registry) -> Result<AgentGraph> {
    // Resolve kinds, implementations and parameters.
    let mut resolved: Vec<Option<(ModuleKind, &Implementation, Option<Params>)>> = Vec::with_capacity(cfg.nodes.len());
    for node in &cfg.nodes {
        if node.kind.is_empty() || node.implementation.is_empty() {
            resolved.push(None);
            continue;
        }
        let kind = match node.kind.parse::<ModuleKind>() {
            Ok(k) => k,
            Err(m) => {
                problems.push(GraphProblem::new(ProblemKind::UnknownKind, m).node(&node.name).at(node.kind_location.clone()));
                resolved.push(None);
                continue;
            }
        };
        let Some(imp) = registry.get(kind, &node.implementation) else {
            let have: Vec<&str> = registry.of_kind(kind).map(|i| i.name.as_str()).collect();
            let have = if have.is_empty() { "none".to_string() } else { have.join(", ") };
            problems.push(
                GraphProblem::new(
                    ProblemKind::UnknownImplementation,
                    format!("unknown {kind} implementation `{}` (registered: {have}; plugin modules are named `plugin:NAME/MODULE`)", node.implementation),
                )
                .node(&node.name)
                .at(node.implementation_location.clone()),
            );
            resolved.push(None);
            continue;
        };
        let given: Vec<(String, params::ParamValue)> = node.params.iter().map(|p| (p.name.clone(), p.value.clone())).collect();
        let params = match Params::validate(&imp.params, &given) {
            Ok(p) => Some(p),
            Err(issues) => {
                problems.extend(issues.into_iter().map(|i| issue_problem(node, imp, i)));
                None
            }
        };
        resolved.push(Some((kind, imp, params)));
    }
    // Exactly one environment.
    let envs: Vec<usize> = resolved.iter().enumerate().filter(|(_, r)| matches!(r, Some((ModuleKind::Environment, _, _)))).map(|(i, _)| i).collect();
    let env_declared = cfg.nodes.iter().any(|n| n.kind == "environment");
    if envs.is_empty() && !env_declared {
        problems.push(
            GraphProblem::new(ProblemKind::MissingNode, "the agent has no environment node (a node with kind = \"environment\")").at(cfg
                .nodes
                .first()
                .and_then(|n| n.location.clone())
                .or_else(|| Some(format!("{}:1", cfg.file)))),
        );
    }
    for &i in envs.iter().skip(1) {
        problems.push(
            GraphProblem::new(ProblemKind::Other, format!("a second environment node (the first is `{}`); an agent has one", cfg.nodes[envs[0]].name))
                .node(&cfg.nodes[i].name)
                .at(cfg.nodes[i].location.clone()),
        );
    }
    // Construct: the environment first (it supplies the task), then the rest.
    let mut built: Vec<Option<Box<dyn Node>>> = (0..cfg.nodes.len()).map(|_| None).collect();
    let mut task: Option<TaskResources> = None;
    let order = envs.iter().take(1).copied().chain((0..cfg.nodes.len()).filter(|i| !envs.contains(i)));
    for i in order {
        let Some((_, imp, Some(params))) = &resolved[i] else { continue };
        let node = &cfg.nodes[i];
        let ctx = BuildContext { node: &node.name, task: task.as_ref() };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (imp.build)(&ctx, params)))
            .unwrap_or_else(|_| Err(CoreError::module(&node.name, "the constructor panicked")));
        match r {
            Ok(b) => {
                if task.is_none() {
                    task = b.task;
                }
                built[i] = Some(b.node);
            }
            Err(e) => problems.push(build_problem(node, e)),
        }
    }
    // The graph: every declared node (stubs where building failed), edges.
    let mut gb = GraphBuilder::new();
    let mut unresolved = std::collections::HashSet::new();
    for (i, node) in cfg.nodes.iter().enumerate() {
        let boxed: Box<dyn Node> = match (built[i].take(), &resolved[i]) {
            (Some(n), _) => n,
            (None, Some((_, imp, _))) => Box::new(StubNode(imp.ports.clone())),
            (None, None) => {
                unresolved.insert(node.name.clone());
                Box::new(StubNode(NodePorts::new()))
            }
        };
        gb.add_boxed(&node.name, boxed, node.location.clone());
        gb.set_rate(&node.name, node.rate);
        gb.set_background(&node.name, node.background);
    }
    for e in &cfg.edges {
        let touches = |s: &str| s.split_once('.').is_some_and(|(n, _)| unresolved.contains(n));
        if !touches(&e.from) && !touches(&e.to) {
            gb.add_edge(e.clone());
        }
    }
    for p in problems {
        gb.report(p);
    }
    let graph = gb.build()?;
    let Some(task) = task else {
        return Err(CoreError::Graph(vec![GraphProblem::new(ProblemKind::MissingNode, "the environment node supplied no task").at(Some(cfg.file.clone()))]));
    };
    let environment = cfg.nodes[envs[0]].name.clone();
    let actors = cfg.nodes.iter().zip(&resolved).filter(|(_, r)| matches!(r, Some((ModuleKind::Actor, _, _)))).map(|(n, _)| n.name.clone()).collect();
    Ok(AgentGraph { graph, config: cfg, environment, actors, task })
}
