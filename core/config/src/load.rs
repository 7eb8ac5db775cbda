//! The agent-file loader: parse, check against the [`Registry`], build
//! every node, wire the graph, report every problem at once.

use std::collections::BTreeMap;
use std::path::Path;

use ami_core::params::ParamIssue;
use ami_core::{CoreError, Location, ParamType, ParamValue, Params, Problem, ProblemKind, Result};
use ami_graph::{EdgeSpec, Graph, GraphBuilder, Inputs, Node, NodePorts, Outputs, PortType, TickContext};

use crate::file::{parse_agent, AgentConfig, NodeConfig};
use crate::registry::{BuildContext, Implementation, ModuleKind, Registry, TaskResources};

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
    /// The handles of the `world_model` nodes, by node name (publish new
    /// weights to them while the agent runs).
    pub models: BTreeMap<String, ami_core::ModelHandle>,
    /// The handles of the `policy` nodes, by node name.
    pub policies: BTreeMap<String, ami_core::PolicyHandle>,
    /// Learning or evaluating, shared with the nodes (switch it between
    /// episodes).
    pub phase: ami_core::RunPhase,
}

/// Reads an agent file's text: a missing or unreadable file, or one that
/// is not UTF-8, is [`CoreError::AgentFile`] naming it.
pub fn read_agent_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| CoreError::AgentFile { path: path.to_path_buf(), reason: e.to_string() })?;
    String::from_utf8(bytes).map_err(|e| CoreError::AgentFile {
        path: path.to_path_buf(),
        reason: format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
    })
}

/// Reads, validates and builds an agent file; relative paths in it are
/// resolved against its directory.
pub fn load_file(path: &Path, registry: &Registry) -> Result<AgentGraph> {
    let text = read_agent_file(path)?;
    let (cfg, problems) = parse_agent(&text, &path.display().to_string())?;
    build(cfg, problems, registry, path.parent())
}

/// Validates and builds agent file text; `file` names it in locations.
/// Relative paths are resolved against the working directory.
pub fn load_str(text: &str, file: &str, registry: &Registry) -> Result<AgentGraph> {
    let (cfg, problems) = parse_agent(text, file)?;
    build(cfg, problems, registry, None)
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

fn issue_problem(node: &NodeConfig, imp: &Implementation, issue: ParamIssue) -> Problem {
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
        other => (ProblemKind::ParameterType, String::new(), other.to_string()),
    };
    let at = loc(&name);
    Problem::new(kind, msg).node(&node.name).port(name).at(at)
}

/// Turns a constructor's error into a problem, on the parameter's line when
/// the error names a parameter.
/// Whether `err` (building `node`) is about a parameter of it that names a
/// node in `unbuilt`: a consequence of that node's problem, not a new one.
fn names_unbuilt(node: &NodeConfig, err: &CoreError, unbuilt: &std::collections::HashSet<&str>) -> bool {
    let CoreError::Config { field, .. } = err else { return false };
    node.params.iter().any(|p| p.name == *field && matches!(&p.value, ParamValue::Str(n) if unbuilt.contains(n.as_str())))
}

fn build_problem(node: &NodeConfig, err: CoreError) -> Problem {
    if let CoreError::Config { field, reason } = &err {
        let (first, last) = (field.split('.').next().unwrap_or(field), field.rsplit('.').next().unwrap_or(field));
        // `weights.speed`: the parameter `weights`, or a parameter `speed`.
        if let Some(p) = node.params.iter().find(|p| p.name == *field || p.name == last || p.name == first) {
            return Problem::new(ProblemKind::ParameterRange, format!("parameter `{}`: {reason}", p.name))
                .node(&node.name)
                .port(&p.name)
                .at(p.location.clone());
        }
    }
    if let CoreError::NeedsTask = &err {
        return Problem::new(ProblemKind::MissingNode, format!("{} `{}` {err}", node.kind, node.implementation))
            .node(&node.name)
            .at(node.kind_location.clone());
    }
    Problem::new(ProblemKind::Build, format!("cannot build {} `{}`: {err}", node.kind, node.implementation)).node(&node.name).at(node.location.clone())
}

/// Checks a parsed agent file against `registry` and builds its graph;
/// `problems` (from parsing) are reported with those found here. Relative
/// paths in parameters are resolved against `base_dir`.
pub fn build(cfg: AgentConfig, mut problems: Vec<Problem>, registry: &Registry, base_dir: Option<&Path>) -> Result<AgentGraph> {
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
                problems.push(Problem::new(ProblemKind::UnknownKind, m).node(&node.name).at(node.kind_location.clone()));
                resolved.push(None);
                continue;
            }
        };
        let Some(imp) = registry.get(kind, &node.implementation) else {
            let have: Vec<&str> = registry.of_kind(kind).map(|i| i.name.as_str()).collect();
            let have = if have.is_empty() { "none".to_string() } else { have.join(", ") };
            problems.push(
                Problem::new(
                    ProblemKind::UnknownImplementation,
                    format!("unknown {kind} implementation `{}` (registered: {have}; plugin modules are named `plugin:NAME/MODULE`)", node.implementation),
                )
                .node(&node.name)
                .at(node.implementation_location.clone()),
            );
            resolved.push(None);
            continue;
        };
        let given: Vec<(String, ParamValue)> = node.params.iter().map(|p| (p.name.clone(), p.value.clone())).collect();
        let params = match Params::validate(&imp.params, &given) {
            Ok(p) => Some(p),
            Err(issues) => {
                problems.extend(issues.into_iter().map(|i| issue_problem(node, imp, i)));
                None
            }
        };
        resolved.push(Some((kind, imp, params)));
    }
    // Parameters that name other nodes: the node must exist with that kind.
    let kind_of = |name: &str| cfg.nodes.iter().position(|n| n.name == name).map(|i| (i, cfg.nodes[i].kind.as_str()));
    let mut references: Vec<(usize, String, usize)> = Vec::new();
    for (i, node) in cfg.nodes.iter().enumerate() {
        // Read from the file as written, so a reference is checked even when
        // another parameter of the node was refused.
        let Some((_, imp, _)) = &resolved[i] else { continue };
        for spec in &imp.params {
            let written = node.params.iter().find(|p| p.name == spec.name).map(|p| &p.value);
            let (ParamType::Node { kind }, Some(ParamValue::Str(target))) = (&spec.ty, written) else { continue };
            let at = node.params.iter().find(|p| p.name == spec.name).and_then(|p| p.location.clone()).or_else(|| node.location.clone());
            match kind_of(target) {
                Some((j, k)) if k == kind => references.push((i, spec.name.clone(), j)),
                Some((_, k)) => problems.push(
                    Problem::new(ProblemKind::UnknownReference, format!("parameter `{}`: node `{target}` is a {k} node, not a {kind} node", spec.name))
                        .node(&node.name)
                        .port(&spec.name)
                        .at(at),
                ),
                None => {
                    let have: Vec<&str> = cfg.nodes.iter().filter(|n| n.kind == *kind).map(|n| n.name.as_str()).collect();
                    problems.push(
                        Problem::new(
                            ProblemKind::UnknownReference,
                            format!(
                                "parameter `{}`: no {kind} node named `{target}` ({kind} nodes: {})",
                                spec.name,
                                if have.is_empty() { "none".into() } else { have.join(", ") }
                            ),
                        )
                        .node(&node.name)
                        .port(&spec.name)
                        .at(at),
                    );
                }
            }
        }
    }
    // Exactly one environment.
    let envs: Vec<usize> = resolved.iter().enumerate().filter(|(_, r)| matches!(r, Some((ModuleKind::Environment, _, _)))).map(|(i, _)| i).collect();
    let env_declared = cfg.nodes.iter().any(|n| n.kind == "environment");
    if envs.is_empty() && !env_declared {
        problems.push(
            Problem::new(ProblemKind::MissingNode, "the agent has no environment node (a node with kind = \"environment\")").at(cfg
                .nodes
                .first()
                .and_then(|n| n.location.clone())
                .or_else(|| Some(Location::line(&cfg.file, 1)))),
        );
    }
    for &i in envs.iter().skip(1) {
        problems.push(
            Problem::new(ProblemKind::Duplicate, format!("a second environment node (the first is `{}`); an agent has one", cfg.nodes[envs[0]].name))
                .node(&cfg.nodes[i].name)
                .at(cfg.nodes[i].location.clone()),
        );
    }
    // Construct in stages: the environment (it supplies the task), then the
    // modules others refer to (world models, costs), then the rest.
    let mut built: Vec<Option<Box<dyn Node>>> = (0..cfg.nodes.len()).map(|_| None).collect();
    let mut task: Option<TaskResources> = None;
    let (mut models, mut costs, mut critics, mut policies, mut memories) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let phase = ami_core::RunPhase::new();
    let first_env = envs.first().copied();
    // Declared but unresolvable (an unknown implementation): reported as such.
    let mut env_failed = envs.is_empty() && env_declared;
    // Nodes that are not built: their own problem is reported, so a node
    // that fails only for naming one of them is not a second problem.
    let mut unbuilt: std::collections::HashSet<&str> =
        (0..cfg.nodes.len()).filter(|&i| !matches!(&resolved[i], Some((_, _, Some(_))))).map(|i| cfg.nodes[i].name.as_str()).collect();
    let mut order: Vec<usize> = (0..cfg.nodes.len()).filter(|&i| Some(i) == first_env || !envs.contains(&i)).collect();
    order.sort_by_key(|&i| resolved[i].as_ref().map_or(9, |(k, _, _)| k.build_stage()));
    for i in order {
        let Some((_, imp, Some(params))) = &resolved[i] else {
            // Its parameters were refused (reported): nodes that only lack
            // its task say nothing more.
            env_failed |= Some(i) == first_env;
            continue;
        };
        let node = &cfg.nodes[i];
        let ctx = BuildContext {
            node: &node.name,
            task: task.as_ref(),
            base_dir,
            models: &models,
            costs: &costs,
            critics: &critics,
            policies: &policies,
            memories: &memories,
            phase: &phase,
            rate: node.rate,
            background: node.background,
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (imp.build)(&ctx, params)))
            .unwrap_or_else(|_| Err(CoreError::module(&node.name, "the constructor panicked")));
        match r {
            Ok(b) => {
                if task.is_none() {
                    task = b.task;
                }
                if let (Some(t), Some(w)) = (task.as_mut(), b.perceived_dim) {
                    t.perceived_dim = Some(w);
                }
                if let Some(m) = b.model {
                    models.insert(node.name.clone(), m);
                }
                if let Some(c) = b.cost {
                    costs.insert(node.name.clone(), c);
                }
                if let Some(c) = b.critic {
                    critics.insert(node.name.clone(), c);
                }
                if let Some(p) = b.policy {
                    policies.insert(node.name.clone(), p);
                }
                if let Some(m) = b.memory {
                    memories.insert(node.name.clone(), m);
                }
                built[i] = Some(b.node);
            }
            // A node that only lacks the task of an environment that failed
            // to build is not a second problem.
            Err(CoreError::NeedsTask) if env_failed => {}
            Err(e) if names_unbuilt(node, &e, &unbuilt) => {}
            Err(e) => {
                env_failed |= Some(i) == first_env;
                unbuilt.insert(node.name.as_str());
                problems.push(build_problem(node, e));
            }
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
    // Inputs the file feeds from a node that could not be resolved: their
    // missing edge is not a second problem.
    let mut cut = std::collections::HashSet::new();
    for e in &cfg.edges {
        let touches = |s: &str| s.split_once('.').is_some_and(|(n, _)| unresolved.contains(n));
        if !touches(&e.from) && !touches(&e.to) {
            gb.add_edge(e.clone());
        } else if let Some((n, p)) = e.to.split_once('.') {
            cut.insert((n.to_string(), p.to_string()));
        }
    }
    // Reference edges: a parameter naming another node whose input port of
    // the same name is a reference port (`model`) is wired from that node's
    // output of the same type, unless the file wires it itself.
    for (i, param, j) in references {
        let (Some((_, imp, _)), Some((_, target, _))) = (&resolved[i], &resolved[j]) else { continue };
        let Some(input) = imp.ports.inputs.iter().find(|p| p.name == param && matches!(p.ty, PortType::Model | PortType::Memory)) else { continue };
        let Some(output) = target.ports.outputs.iter().find(|p| p.ty == input.ty) else { continue };
        let to = format!("{}.{}", cfg.nodes[i].name, param);
        if cfg.edges.iter().any(|e| e.to == to) {
            continue;
        }
        let location = cfg.nodes[i].params.iter().find(|p| p.name == param).and_then(|p| p.location.clone());
        gb.add_edge(EdgeSpec { from: format!("{}.{}", cfg.nodes[j].name, output.name), to, delayed: false, location });
    }
    for p in problems {
        gb.report(p);
    }
    let graph = gb.build().map_err(|e| match e {
        CoreError::Invalid(ps) if !cut.is_empty() => CoreError::Invalid(
            ps.into_iter()
                .filter(|p| {
                    !(p.kind == ProblemKind::MissingInput && p.node.as_ref().zip(p.port.as_ref()).is_some_and(|(n, q)| cut.contains(&(n.clone(), q.clone()))))
                })
                .collect(),
        ),
        other => other,
    })?;
    let Some(task) = task else {
        return Err(CoreError::Invalid(vec![
            Problem::new(ProblemKind::MissingNode, "the environment node supplied no task").at(Some(Location::file(&cfg.file)))
        ]));
    };
    let environment = cfg.nodes[envs[0]].name.clone();
    let actors = cfg.nodes.iter().zip(&resolved).filter(|(_, r)| matches!(r, Some((ModuleKind::Actor, _, _)))).map(|(n, _)| n.name.clone()).collect();
    Ok(AgentGraph { graph, config: cfg, environment, actors, task, models, policies, phase })
}
