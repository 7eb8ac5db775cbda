//! The registry of module implementations that agent files name.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::params::{ParamSpec, Params};
use crate::error::{CoreError, Result};
use crate::graph::{Node, NodePorts};
use crate::modules::{Cost, WorldModel};
use crate::planner::Bounds;

/// The module kinds an agent file's node may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ModuleKind {
    /// The world the agent acts in (a source and sink of the graph).
    Environment,
    /// Observation -> state.
    Perception,
    /// Sets up and modulates the other modules.
    Configurator,
    /// Proposes actions (Mode-1 policy or Mode-2 planner).
    Actor,
    /// Evaluates the energy of observed transitions.
    Cost,
    /// Short-term memory.
    Memory,
}

impl ModuleKind {
    /// Every kind.
    pub const ALL: [ModuleKind; 6] =
        [ModuleKind::Environment, ModuleKind::Perception, ModuleKind::Configurator, ModuleKind::Actor, ModuleKind::Cost, ModuleKind::Memory];
    /// The name used in agent files.
    pub fn name(self) -> &'static str {
        match self {
            ModuleKind::Environment => "environment",
            ModuleKind::Perception => "perception",
            ModuleKind::Configurator => "configurator",
            ModuleKind::Actor => "actor",
            ModuleKind::Cost => "cost",
            ModuleKind::Memory => "memory",
        }
    }
}

impl fmt::Display for ModuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModuleKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ModuleKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown module kind `{s}` (expected one of: {})", ModuleKind::ALL.map(ModuleKind::name).join(", ")))
    }
}

/// What an environment implementation tells the rest of the agent about its
/// task: dimensions, action bounds, a true-dynamics world model and the
/// task's intrinsic cost.
#[derive(Clone)]
pub struct TaskResources {
    /// Task name.
    pub name: String,
    /// Width of an observation.
    pub obs_dim: usize,
    /// Width of an action.
    pub action_dim: usize,
    /// Action bounds.
    pub bounds: Bounds,
    /// The world model planners roll out.
    pub model: Arc<dyn WorldModel>,
    /// Builds a fresh cost with the task's intrinsic terms (and goal, if
    /// any): every node that evaluates the cost owns its copy, and
    /// modulations reach each copy through an edge.
    pub cost: Arc<dyn Fn() -> Cost + Send + Sync>,
    /// The goal the configurator sets at tick 0, if the task has one.
    pub goal: Option<Vec<f32>>,
}

impl fmt::Debug for TaskResources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskResources").field("name", &self.name).field("obs_dim", &self.obs_dim).field("action_dim", &self.action_dim).finish()
    }
}

/// What a node's constructor sees besides its parameters.
#[derive(Debug, Clone, Copy)]
pub struct BuildContext<'a> {
    /// The node's name.
    pub node: &'a str,
    /// The task of the agent's environment node (`None` while the
    /// environment itself is built, or when the file has none).
    pub task: Option<&'a TaskResources>,
}

impl<'a> BuildContext<'a> {
    /// The task, or an error saying the node needs an environment node.
    pub fn task(&self) -> Result<&'a TaskResources> {
        self.task.ok_or_else(|| CoreError::config("kind", "needs the task of an environment node (its dimensions, world model and cost): add one to the agent"))
    }
}

/// What a constructor returns: the node and, for an environment, its task.
pub struct Built {
    /// The node.
    pub node: Box<dyn Node>,
    /// The task (environments only).
    pub task: Option<TaskResources>,
}

impl Built {
    /// A node without task.
    pub fn node(node: impl Node + 'static) -> Self {
        Self { node: Box::new(node), task: None }
    }
}

/// A constructor: builds the node from validated parameters. Errors of the
/// form [`CoreError::Config`] whose `field` is a parameter name are reported
/// against that parameter's line.
pub type BuildFn = Arc<dyn Fn(&BuildContext<'_>, &Params) -> Result<Built> + Send + Sync>;

/// One implementation of a module kind: its ports, parameter schema and
/// constructor.
#[derive(Clone)]
pub struct Implementation {
    /// The module kind.
    pub kind: ModuleKind,
    /// The name agent files use (`cem`, `ring`, `plugin:NAME/MODULE`, ...).
    pub name: String,
    /// One line of documentation.
    pub summary: String,
    /// The ports every node built by this implementation has.
    pub ports: NodePorts,
    /// The parameters it accepts.
    pub params: Vec<ParamSpec>,
    /// The constructor.
    pub build: BuildFn,
}

impl fmt::Debug for Implementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Implementation").field("kind", &self.kind).field("name", &self.name).field("params", &self.params).finish()
    }
}

impl Implementation {
    /// An implementation.
    pub fn new(
        kind: ModuleKind,
        name: &str,
        summary: &str,
        ports: NodePorts,
        params: Vec<ParamSpec>,
        build: impl Fn(&BuildContext<'_>, &Params) -> Result<Built> + Send + Sync + 'static,
    ) -> Self {
        Self { kind, name: name.into(), summary: summary.into(), ports, params, build: Arc::new(build) }
    }
}

/// The implementations agent files can name, by kind and name.
///
/// The built-ins register at start-up; the plugin host adds a plugin's
/// modules with [`Registry::register_plugin_module`], under the names
/// `plugin:NAME/MODULE`.
#[derive(Clone, Default)]
pub struct Registry {
    impls: BTreeMap<(ModuleKind, String), Implementation>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.impls.keys().map(|(k, n)| format!("{k}/{n}"))).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
    /// A registry holding ami-core's built-in implementations (perception,
    /// configurators, actors, cost, memory). Environments come from the
    /// crate that defines them (ami-agents adds its tasks).
    pub fn with_core_builtins() -> Self {
        let mut r = Self::new();
        super::builtins::register(&mut r);
        r
    }
    /// Adds an implementation; refuses a second one of the same kind and
    /// name.
    pub fn register(&mut self, imp: Implementation) -> Result<()> {
        if imp.name.is_empty() {
            return Err(CoreError::config("implementation", "the name must not be empty"));
        }
        let key = (imp.kind, imp.name.clone());
        if self.impls.contains_key(&key) {
            return Err(CoreError::config(format!("{}/{}", imp.kind, imp.name), "an implementation of this kind and name is already registered"));
        }
        self.impls.insert(key, imp);
        Ok(())
    }
    /// The hook for the plugin host: registers module `module` of plugin
    /// `plugin` under the name `plugin:PLUGIN/MODULE` (the `name` field of
    /// `imp` is replaced). Agent files then use
    /// `implementation = "plugin:PLUGIN/MODULE"`.
    pub fn register_plugin_module(&mut self, plugin: &str, module: &str, mut imp: Implementation) -> Result<()> {
        if plugin.is_empty() || module.is_empty() || plugin.contains('/') {
            return Err(CoreError::config("plugin", format!("bad plugin or module name `{plugin}/{module}`")));
        }
        imp.name = plugin_name(plugin, module);
        self.register(imp)
    }
    /// The implementation `name` of `kind`.
    pub fn get(&self, kind: ModuleKind, name: &str) -> Option<&Implementation> {
        self.impls.get(&(kind, name.to_string()))
    }
    /// The implementations of `kind`, by name.
    pub fn of_kind(&self, kind: ModuleKind) -> impl Iterator<Item = &Implementation> {
        self.impls.values().filter(move |i| i.kind == kind)
    }
    /// Every implementation.
    pub fn iter(&self) -> impl Iterator<Item = &Implementation> {
        self.impls.values()
    }
}

/// The registry name of a plugin's module: `plugin:PLUGIN/MODULE`.
pub fn plugin_name(plugin: &str, module: &str) -> String {
    format!("plugin:{plugin}/{module}")
}
