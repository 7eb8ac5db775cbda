//! Loading an agent, with the plugins it needs: what `ami run`, `ami
//! check` and `ami graph` do, as a library call.
//!
//! An [`AgentSource`] says where the agent comes from (a file, text, a
//! built-in task with a planner, a plugin's environment, or the default
//! agent). [`load`] turns it into text, parses it, loads the plugins the
//! *parsed* file needs (libraries in its `[plugins]` table and the plugins
//! its nodes' implementations name, `plugin:NAME/MODULE`; never names that
//! merely appear in comments or strings), registers their modules, and
//! builds the validated graph.

use std::path::{Path, PathBuf};

use ami_config::{parse_agent, plugin_of, read_agent_file, standard_agent_toml, AgentConfig, AgentGraph, NodeSpec, Registry};
use ami_core::{CoreError, ParamValue, Problem, ProblemKind, Result};
use ami_plugin_host::abi::ModuleKind as Kind;
use ami_plugin_host::{host_config, libraries_to_load, register_plugin, PluginHost, PluginHostConfig};

use crate::tasks::TaskKind;

/// The default agent (`ami run` without a file): Pendulum swing-up with CEM.
pub const DEFAULT_AGENT: &str = include_str!("../examples/pendulum.toml");

/// Where an agent comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentSource {
    /// The default agent ([`DEFAULT_AGENT`]).
    Default,
    /// An agent file; relative paths in it are relative to its directory.
    File(PathBuf),
    /// Agent-file text, named `name` in messages.
    Text {
        /// The text.
        text: String,
        /// Its name in locations (`<generated>`).
        name: String,
    },
    /// The standard agent on a built-in task with a planner (its per-task
    /// defaults, [`TaskKind::planner_defaults`]).
    Task {
        /// The task.
        task: TaskKind,
        /// A registered planner's name (`cem`, `mppi`, `gd`).
        planner: String,
    },
    /// The standard agent on a Gymnasium environment ([`gym_agent_toml`]).
    Gym {
        /// The Gymnasium id.
        id: String,
        /// A registered planner's name.
        planner: String,
        /// The interpreter (default: `$AMI_PYTHON`, else `python3`).
        python: Option<PathBuf>,
    },
    /// The standard agent on a plugin's environment: `plugin` (its only
    /// environment) or `plugin/module`, planned by a built-in planner or a
    /// plugin planner `plugin:NAME/MODULE`.
    PluginTask {
        /// `PLUGIN` or `PLUGIN/MODULE`.
        env: String,
        /// A built-in planner name or `plugin:NAME/MODULE`.
        planner: String,
    },
}

/// The standard agent on a Gymnasium environment (`ami run --env
/// gym:ID`): the `gym` environment node, planned with the model, cost and
/// planner defaults of the built-in task with the same dynamics
/// ([`crate::registry::gym_task`]).
pub fn gym_agent_toml(id: &str, planner: &str, python: Option<&Path>, registry: &Registry) -> Result<String> {
    if !registry.planners().iter().any(|p| p == planner) {
        return Err(CoreError::config("planner", format!("unknown planner `{planner}` (registered: {})", registry.planners().join(", "))));
    }
    let task = crate::registry::gym_task(id).ok_or_else(|| {
        CoreError::config(
            "env",
            format!("gym:{id} has no built-in task model and cost to plan with (Pendulum-v1 and CartPole-v1 have): write an agent file with an environment node `implementation = \"gym\"`, `id` and `task`"),
        )
    })?;
    let mut params = vec![("id".to_string(), ParamValue::Str(id.into()))];
    if let Some(py) = python {
        params.push(("python".to_string(), ParamValue::Str(py.display().to_string())));
    }
    let env = NodeSpec::new("gym", params);
    let actor = NodeSpec::new(planner, task.planner_defaults(planner));
    Ok(standard_agent_toml(&format!("gym-{id}-{planner}"), &env, &actor, &[]))
}

impl AgentSource {
    /// How the source is named in messages and results.
    pub fn describe(&self) -> String {
        match self {
            AgentSource::Default => "default".into(),
            AgentSource::File(p) => p.display().to_string(),
            AgentSource::Text { name, .. } => name.clone(),
            AgentSource::Task { task, planner } => format!("--task {task} --planner {planner}"),
            AgentSource::PluginTask { env, .. } => format!("--plugin-task {env}"),
            AgentSource::Gym { id, planner, .. } => format!("--env gym:{id} --planner {planner}"),
        }
    }
}

/// Plugins to load besides those the agent names, and the host's settings.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Libraries to load first: paths, or plugin names looked up in the
    /// search paths.
    pub plugins: Vec<String>,
    /// Search paths, SHA-256 pins, panic policy (merged with the file's
    /// `[plugins]` table).
    pub host: PluginHostConfig,
}

/// A loaded agent: its validated graph, a name for messages, and the
/// plugin host if plugins were loaded (keep it alive while the agent runs).
pub struct Loaded {
    /// The validated graph.
    pub graph: AgentGraph,
    /// How the source is named in messages.
    pub source: String,
    /// The host holding the loaded plugins, if any.
    pub host: Option<PluginHost>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded").field("source", &self.source).field("plugins", &self.host.is_some()).finish()
    }
}

/// The settings of the standard agent's planner on a plugin environment
/// (`--plugin-task` without a plugin planner).
fn plugin_task_planner_defaults(planner: &str) -> Vec<(String, ParamValue)> {
    use ParamValue::{Bool, Float as F, Int as I};
    let v: Vec<(&str, ParamValue)> = match planner {
        "cem" => vec![
            ("horizon", I(25)),
            ("samples", I(256)),
            ("iterations", I(5)),
            ("elites", I(24)),
            ("init_std", F(0.5)),
            ("min_std", F(0.05)),
            ("momentum", F(0.1)),
            ("return_best", Bool(true)),
        ],
        "mppi" => vec![("horizon", I(25)), ("samples", I(256)), ("iterations", I(5)), ("temperature", F(0.5)), ("noise_std", F(0.5))],
        _ => vec![],
    };
    v.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A plugin that could not be loaded, saying which and why; exit 2 when
/// the library or its name is the user's input.
fn plugin_error(what: String, e: ami_plugin_host::PluginError) -> CoreError {
    CoreError::External { user_input: e.is_user_input(), error: format!("{what}: {e}").into() }
}

/// The standard agent on built-in `task` with `planner`, as agent-file
/// text (what `ami run --task X --planner Y` runs).
pub fn task_agent_toml(task: TaskKind, planner: &str, registry: &Registry) -> Result<String> {
    if !registry.planners().iter().any(|p| p == planner) {
        return Err(CoreError::config("planner", format!("unknown planner `{planner}` (registered: {})", registry.planners().join(", "))));
    }
    let env = NodeSpec::new(task.name(), vec![]);
    let actor = NodeSpec::new(planner, task.planner_defaults(planner));
    Ok(standard_agent_toml(&format!("{task}-{planner}"), &env, &actor, &[]))
}

/// The plugins a parsed agent names: its `[plugins]` libraries (resolved
/// against `base`) and the plugins of its nodes' implementations.
pub fn plugins_needed(cfg: &AgentConfig, base: &Path) -> (Vec<PathBuf>, Vec<String>) {
    let libraries = libraries_to_load(&cfg.plugins, base);
    let mut names: Vec<String> = Vec::new();
    for n in &cfg.nodes {
        if let Some(p) = plugin_of(&n.implementation) {
            if !names.iter().any(|x| x == p) {
                names.push(p.to_string());
            }
        }
    }
    (libraries, names)
}

/// Loads `source` (see the module docs). Errors: [`CoreError::AgentFile`]
/// for a file that cannot be read, [`CoreError::Syntax`] for text that is
/// not TOML, [`CoreError::Invalid`] with every problem for an invalid agent,
/// and a module error naming the plugin when a plugin cannot be loaded.
pub fn load(source: &AgentSource, opts: &LoadOptions) -> Result<Loaded> {
    let registry = crate::registry();
    let mut host: Option<PluginHost> = None;
    let (text, name, base) = match source {
        AgentSource::Default => (DEFAULT_AGENT.to_string(), "<default: agents/examples/pendulum.toml>".to_string(), None),
        AgentSource::File(p) => (read_agent_file(p)?, p.display().to_string(), Some(p.parent().unwrap_or(Path::new("")).to_path_buf())),
        AgentSource::Text { text, name } => (text.clone(), name.clone(), None),
        AgentSource::Task { task, planner } => (task_agent_toml(*task, planner, &registry)?, format!("<{task}-{planner}>"), None),
        AgentSource::Gym { id, planner, python } => (gym_agent_toml(id, planner, python.as_deref(), &registry)?, format!("<gym:{id}-{planner}>"), None),
        AgentSource::PluginTask { env, planner } => {
            let h = host.get_or_insert_with(|| PluginHost::new(opts.host.clone()));
            for p in &opts.plugins {
                h.load(p).map_err(|e| plugin_error(format!("loading plugin `{p}`"), e))?;
            }
            let spec = env.strip_prefix("plugin:").unwrap_or(env);
            let (plugin_name, module) = match spec.split_once('/') {
                Some((p, m)) => (p.to_string(), Some(m.to_string())),
                None => (spec.to_string(), None),
            };
            let plugin = match h.plugin(&plugin_name) {
                Some(p) => p.clone(),
                None => h.load(&plugin_name).map_err(|e| plugin_error(format!("loading plugin `{plugin_name}`"), e))?,
            };
            let module = match module {
                Some(m) => m,
                None => {
                    let envs: Vec<&str> = plugin.modules_of(Kind::ENVIRONMENT).map(|m| m.name.as_str()).collect();
                    match envs.as_slice() {
                        [one] => one.to_string(),
                        [] => return Err(CoreError::config("plugin-task", format!("plugin `{plugin_name}` has no environment module"))),
                        many => {
                            return Err(CoreError::config(
                                "plugin-task",
                                format!("plugin `{plugin_name}` has several environments ({}): use --plugin-task {plugin_name}/MODULE", many.join(", ")),
                            ))
                        }
                    }
                }
            };
            let env_impl = format!("plugin:{plugin_name}/{module}");
            let actor = match planner.strip_prefix("plugin:") {
                Some(p) => NodeSpec::new(&format!("plugin:{p}"), vec![]),
                None => NodeSpec::new(planner, plugin_task_planner_defaults(planner)),
            };
            let text = standard_agent_toml(&env_impl, &NodeSpec::new(&env_impl, vec![]), &actor, &[]);
            (text, format!("<--plugin-task {env_impl}>"), None)
        }
    };
    let (cfg, problems) = parse_agent(&text, &name)?;
    let base_dir = base.clone().unwrap_or_default();
    let (libraries, names) = plugins_needed(&cfg, &base_dir);
    let mut registry = registry;
    if host.is_some() || !opts.plugins.is_empty() || !libraries.is_empty() || !names.is_empty() || !cfg.plugins.is_empty() {
        let h = host.get_or_insert_with(|| PluginHost::new(host_config(&cfg.plugins, &base_dir, opts.host.clone())));
        if !matches!(source, AgentSource::PluginTask { .. }) {
            for p in &opts.plugins {
                h.load(p).map_err(|e| plugin_error(format!("loading plugin `{p}`"), e))?;
            }
        }
        // Libraries the file names are problems at their line, reported
        // with the file's other problems (and not followed by an unknown
        // implementation for each node of a plugin that did not load).
        let mut failed: Vec<Problem> = Vec::new();
        for (i, p) in libraries.iter().enumerate() {
            if let Err(e) = h.load(p) {
                let at = cfg.plugins.load_at.get(i).cloned().flatten().or_else(|| cfg.plugins.location.clone());
                failed.push(Problem::new(ProblemKind::Build, format!("[plugins] load `{}`: {e}", p.display())).at(at));
            }
        }
        for n in &names {
            if h.plugin(n).is_none() {
                if let Err(e) = h.load(n) {
                    let node = cfg.nodes.iter().find(|node| plugin_of(&node.implementation) == Some(n.as_str()));
                    let mut problem = Problem::new(ProblemKind::Build, format!("plugin `{n}`: {e}"));
                    if let Some(node) = node {
                        problem = problem.node(&node.name).at(node.implementation_location.clone().or_else(|| node.location.clone()));
                    }
                    failed.push(problem);
                }
            }
        }
        if !failed.is_empty() {
            let mut all = problems;
            all.extend(failed);
            return Err(CoreError::Invalid(all));
        }
        for p in h.plugins() {
            register_plugin(&mut registry, p)?;
        }
    }
    // A pin that matched no library loaded is a mistake (a misspelt name
    // would otherwise leave the real plugin unverified).
    match &host {
        Some(h) => h.check_pins()?,
        None => PluginHost::new(opts.host.clone()).check_pins()?,
    }
    let graph = ami_config::build(cfg, problems, &registry, base.as_deref())?;
    Ok(Loaded { graph, source: source.describe(), host })
}
