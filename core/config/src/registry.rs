//! The [`Registry`]: every implementation an agent file can name, declared
//! once as an [`Implementation`] value (kind, name, summary, ports,
//! parameter schema, constructor).
//!
//! Everything that lists or builds implementations reads the registry: the
//! agent-file loader, `ami run --planner` and `--task`, `ami check` and its
//! messages ("registered: cem, gd, mppi"), the plugin host (which adds a
//! plugin's modules as `plugin:NAME/MODULE`) and the implementation table
//! of `docs/agent-files.md` (a test compares the two). Like bevy's plugins,
//! a set of implementations is added by any `fn(&mut Registry)`
//! ([`Registry::add`]), so crates that define modules (the planners, the
//! built-in tasks, a user's own crate) register them without this crate
//! knowing them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use ami_core::{ActionSpace, CoreError, Cost, CriticHandle, MemoryHandle, ModelHandle, ParamSpec, Params, PolicyHandle, Result, RunPhase, Shared};

use crate::nodes::SharedCost;
use ami_graph::{Node, NodePorts};

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
    /// A world model planners refer to by name (`model = "NODE"`): the
    /// task's true dynamics, an MLP from safetensors, a plugin's model.
    WorldModel,
    /// A critic planners add as their terminal cost (`critic = "NODE"`).
    Critic,
    /// A Mode-1 policy an actor acts with (`policy = "NODE"`).
    Policy,
    /// Trains a module from the memory between episodes (a world model:
    /// `model = "NODE"`, `memory = "NODE"`).
    Trainer,
    /// A planning level: plans in an abstract state with its own world
    /// model and hands subgoals to the level below (hierarchy).
    Level,
}

impl ModuleKind {
    /// Every kind.
    pub const ALL: [ModuleKind; 11] = [
        ModuleKind::Environment,
        ModuleKind::Perception,
        ModuleKind::Configurator,
        ModuleKind::Actor,
        ModuleKind::Cost,
        ModuleKind::Memory,
        ModuleKind::WorldModel,
        ModuleKind::Critic,
        ModuleKind::Policy,
        ModuleKind::Trainer,
        ModuleKind::Level,
    ];
    /// The name used in agent files.
    pub fn name(self) -> &'static str {
        match self {
            ModuleKind::Environment => "environment",
            ModuleKind::Perception => "perception",
            ModuleKind::Configurator => "configurator",
            ModuleKind::Actor => "actor",
            ModuleKind::Cost => "cost",
            ModuleKind::Memory => "memory",
            ModuleKind::WorldModel => "world_model",
            ModuleKind::Critic => "critic",
            ModuleKind::Policy => "policy",
            ModuleKind::Trainer => "trainer",
            ModuleKind::Level => "level",
        }
    }
    /// The order nodes are built in: environments first (they supply the
    /// task), then the modules others refer to (world models, costs), then
    /// the rest.
    pub(crate) fn build_stage(self) -> u8 {
        match self {
            ModuleKind::Environment => 0,
            // Before everything that sizes itself by the state: a
            // perception may change its width.
            ModuleKind::Perception => 1,
            ModuleKind::WorldModel | ModuleKind::Critic | ModuleKind::Policy => 2,
            ModuleKind::Cost | ModuleKind::Memory => 3,
            _ => 4,
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
    /// Where actions may go: a box, or a finite set of actions (which only
    /// the discrete planners search).
    pub space: ActionSpace,
    /// The task's true dynamics (`implementation = "task"` world models,
    /// and planners that name no model), if the environment comes with
    /// them (a Gymnasium environment without a built-in task does not:
    /// its agent names a `world_model` node).
    pub model: Option<ModelHandle>,
    /// Builds a fresh cost with the task's intrinsic terms (and goal, if
    /// any): every node that evaluates the cost owns its copy, and
    /// modulations reach each copy through an edge. `None`: the
    /// environment has no cost of its own (its agent names a `cost` node).
    pub cost: Option<CostFactory>,
    /// The goal the configurator sets at tick 0, if the task has one.
    pub goal: Option<Vec<f32>>,
    /// The state's width when a perception node maps observations to
    /// states of another width (a JEPA's encoder); set by the loader once
    /// the perception node is built (environments leave it `None`).
    pub perceived_dim: Option<usize>,
}

/// Builds a fresh copy of a task's cost.
pub type CostFactory = Arc<dyn Fn() -> Cost + Send + Sync>;

impl TaskResources {
    /// The task's true dynamics, or an error saying the environment has
    /// none and what to name instead.
    pub fn model(&self) -> Result<&ModelHandle> {
        self.model.as_ref().ok_or_else(|| {
            CoreError::config(
                "model",
                format!(
                    "the environment `{}` comes with no world model: name a world_model node (`model = \"NODE\"`; a learned one, or a plugin's)",
                    self.name
                ),
            )
        })
    }
    /// A fresh copy of the task's cost, or an error saying the environment
    /// has none and what to name instead.
    pub fn new_cost(&self) -> Result<Cost> {
        self.cost.as_ref().map(|f| f()).ok_or_else(|| {
            CoreError::config(
                "cost",
                format!("the environment `{}` comes with no cost: name a cost node (`cost = \"NODE\"`; a plugin's intrinsic cost)", self.name),
            )
        })
    }
    /// The task's cost, or an empty one when it has none (for checks and
    /// for actors that do not plan).
    pub fn cost_or_empty(&self) -> Cost {
        self.cost.as_ref().map_or_else(Cost::new, |f| f())
    }
    /// Width of the state: the perception's when it maps observations to
    /// another width (a JEPA's embedding), else the true model's, or the
    /// observation's when the environment has no model (identity
    /// perception).
    pub fn state_dim(&self) -> usize {
        self.perceived_dim.unwrap_or_else(|| self.model.as_ref().map_or(self.obs_dim, |m| m.get().state_dim()))
    }
}

impl fmt::Debug for TaskResources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskResources").field("name", &self.name).field("obs_dim", &self.obs_dim).field("action_dim", &self.action_dim).finish()
    }
}

/// What a node's constructor sees besides its parameters.
#[derive(Clone, Copy)]
pub struct BuildContext<'a> {
    /// The node's name.
    pub node: &'a str,
    /// The task of the agent's environment node (`None` while the
    /// environment itself is built, or when the file has none).
    pub task: Option<&'a TaskResources>,
    /// The directory relative paths in parameters are resolved against
    /// (the agent file's), if any.
    pub base_dir: Option<&'a Path>,
    pub(crate) models: &'a BTreeMap<String, ModelHandle>,
    pub(crate) costs: &'a BTreeMap<String, SharedCost>,
    pub(crate) critics: &'a BTreeMap<String, CriticHandle>,
    pub(crate) policies: &'a BTreeMap<String, PolicyHandle>,
    pub(crate) memories: &'a BTreeMap<String, MemoryHandle>,
    /// Learning or evaluating: shared by the agent's nodes and its runner.
    pub phase: &'a RunPhase,
    /// The node's `rate` (it runs every `rate` ticks).
    pub rate: u32,
    /// Whether the node runs in the background.
    pub background: bool,
}

impl fmt::Debug for BuildContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildContext").field("node", &self.node).field("task", &self.task).finish()
    }
}

impl<'a> BuildContext<'a> {
    /// A context for building `node` outside an agent file (tests, code).
    pub fn standalone(node: &'a str, task: Option<&'a TaskResources>) -> Self {
        static EMPTY_MODELS: BTreeMap<String, ModelHandle> = BTreeMap::new();
        static EMPTY_COSTS: BTreeMap<String, SharedCost> = BTreeMap::new();
        static EMPTY_CRITICS: BTreeMap<String, CriticHandle> = BTreeMap::new();
        static EMPTY_POLICIES: BTreeMap<String, PolicyHandle> = BTreeMap::new();
        static EMPTY_MEMORIES: BTreeMap<String, MemoryHandle> = BTreeMap::new();
        static PHASE: std::sync::OnceLock<RunPhase> = std::sync::OnceLock::new();
        Self {
            node,
            task,
            base_dir: None,
            models: &EMPTY_MODELS,
            costs: &EMPTY_COSTS,
            critics: &EMPTY_CRITICS,
            policies: &EMPTY_POLICIES,
            memories: &EMPTY_MEMORIES,
            phase: PHASE.get_or_init(RunPhase::new),
            rate: 1,
            background: false,
        }
    }
    /// The task, or [`CoreError::NeedsTask`] (the loader leaves that out
    /// when the environment node itself failed to build: one root cause,
    /// one message).
    pub fn task(&self) -> Result<&'a TaskResources> {
        self.task.ok_or_else(|| CoreError::NeedsTask)
    }
    /// The world model named by parameter `param` (a `world_model` node's
    /// name), or the task's true model when the parameter is not set.
    pub fn world_model(&self, params: &Params, param: &str) -> Result<ModelHandle> {
        match params.str_opt(param)? {
            Some(name) => self.models.get(name).cloned().ok_or_else(|| self.unbuilt(missing(param, "world_model", name, self.models.keys()))),
            None => Ok(self.task()?.model()?.clone()),
        }
    }
    /// The cost named by parameter `param` (a `cost` node's name, shared
    /// with it), or a fresh copy of the task's cost when it is not set.
    pub fn cost(&self, params: &Params, param: &str) -> Result<SharedCost> {
        match params.str_opt(param)? {
            Some(name) => self.costs.get(name).cloned().ok_or_else(|| self.unbuilt(missing(param, "cost", name, self.costs.keys()))),
            None => Ok(Shared::of(self.task()?.new_cost()?)),
        }
    }
    /// The critic named by parameter `param` (a `critic` node's name), if
    /// the parameter is set.
    pub fn critic(&self, params: &Params, param: &str) -> Result<Option<CriticHandle>> {
        let Some(name) = params.str_opt(param)? else { return Ok(None) };
        self.critics.get(name).cloned().map(Some).ok_or_else(|| self.unbuilt(missing(param, "critic", name, self.critics.keys())))
    }
    /// The policy named by parameter `param` (a `policy` node's name).
    pub fn policy(&self, params: &Params, param: &str) -> Result<PolicyHandle> {
        let name = params.str_opt(param)?.ok_or_else(|| CoreError::config(param, "missing: name the policy node"))?;
        self.policies.get(name).cloned().ok_or_else(|| self.unbuilt(missing(param, "policy", name, self.policies.keys())))
    }
    /// The memory named by parameter `param` (a `memory` node's name), for
    /// nodes that read the short-term memory (trainers).
    pub fn memory(&self, params: &Params, param: &str) -> Result<MemoryHandle> {
        let name = params.str_opt(param)?.ok_or_else(|| CoreError::config(param, "missing: name the memory node"))?;
        self.memories.get(name).cloned().ok_or_else(|| self.unbuilt(missing(param, "memory", name, self.memories.keys())))
    }
    /// `missing` (a referenced node that was not built), or, without a
    /// task, that the task is missing: then the node named was not built
    /// for want of it, and the environment's own problem is the one to
    /// report.
    fn unbuilt(&self, missing: CoreError) -> CoreError {
        match self.task {
            Some(_) => missing,
            None => CoreError::NeedsTask,
        }
    }
    /// Resolves a path parameter against [`BuildContext::base_dir`].
    pub fn path(&self, p: &str) -> std::path::PathBuf {
        match self.base_dir {
            Some(d) if Path::new(p).is_relative() => d.join(p),
            _ => std::path::PathBuf::from(p),
        }
    }
}

fn missing<'k>(param: &str, kind: &str, name: &str, have: impl Iterator<Item = &'k String>) -> CoreError {
    let have: Vec<&str> = have.map(String::as_str).collect();
    CoreError::config(param, format!("no {kind} node named `{name}` ({kind} nodes: {})", if have.is_empty() { "none".into() } else { have.join(", ") }))
}

/// What a constructor returns: the node and what it provides to the nodes
/// built after it.
pub struct Built {
    /// The node.
    pub node: Box<dyn Node>,
    /// The task (environments only).
    pub task: Option<TaskResources>,
    /// The world model others may refer to (`world_model` nodes).
    pub model: Option<ModelHandle>,
    /// The cost others may refer to (`cost` nodes).
    pub cost: Option<SharedCost>,
    /// The critic others may refer to (`critic` nodes).
    pub critic: Option<CriticHandle>,
    /// The policy others may refer to (`policy` nodes).
    pub policy: Option<PolicyHandle>,
    /// The memory others may read (`memory` nodes).
    pub memory: Option<MemoryHandle>,
    /// The width of the states a perception node makes, when it differs
    /// from the observation's (the nodes built after it see it as the
    /// task's [`TaskResources::state_dim`]).
    pub perceived_dim: Option<usize>,
}

impl Built {
    /// A node that provides nothing to others.
    pub fn node(node: impl Node + 'static) -> Self {
        Self { node: Box::new(node), task: None, model: None, cost: None, critic: None, policy: None, memory: None, perceived_dim: None }
    }
}

/// A constructor: builds the node from validated parameters. Errors of the
/// form [`CoreError::Config`] whose `field` is a parameter name are reported
/// against that parameter's line.
pub type BuildFn = Arc<dyn Fn(&BuildContext<'_>, &Params) -> Result<Built> + Send + Sync>;

/// One implementation of a module kind, declared once: its name, summary,
/// ports, parameter schema and constructor.
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
#[derive(Clone, Default)]
pub struct Registry {
    impls: BTreeMap<(ModuleKind, String), Implementation>,
    pub(crate) planners: Vec<String>,
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
    /// Adds a set of implementations: any `fn(&mut Registry)` (or closure)
    /// is one, like a bevy plugin.
    pub fn add(&mut self, set: impl FnOnce(&mut Registry)) -> &mut Self {
        set(self);
        self
    }
    /// Adds an implementation; refuses a second one of the same kind and
    /// name.
    pub fn register(&mut self, imp: Implementation) -> Result<()> {
        if imp.name.is_empty() {
            return Err(CoreError::config("implementation", "the name must not be empty"));
        }
        if let Some(dup) = imp.params.iter().enumerate().find(|(i, p)| imp.params[..*i].iter().any(|q| q.name == p.name)).map(|(_, p)| &p.name) {
            return Err(CoreError::config(format!("{}/{}", imp.kind, imp.name), format!("parameter `{dup}` is declared twice")));
        }
        let key = (imp.kind, imp.name.clone());
        if self.impls.contains_key(&key) {
            return Err(CoreError::config(format!("{}/{}", imp.kind, imp.name), "an implementation of this kind and name is already registered"));
        }
        self.impls.insert(key, imp);
        Ok(())
    }
    /// The names of the planners registered with
    /// [`Registry::register_planner`] (in `builtins.rs`, next to the actor
    /// implementation it makes), in registration order.
    pub fn planners(&self) -> &[String] {
        &self.planners
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
    /// The implementation table of `docs/agent-files.md` (Markdown): one
    /// row per implementation with its kind, name, parameters and summary.
    pub fn markdown_table(&self) -> String {
        let mut out = String::from("| kind | implementation | parameters | what it is |\n|---|---|---|---|\n");
        for imp in self.iter().filter(|i| !i.name.starts_with("plugin:")) {
            let params: Vec<String> = imp
                .params
                .iter()
                .map(|p| match &p.default {
                    Some(d) => format!("`{}` = {d}", p.name),
                    None => format!("`{}`", p.name),
                })
                .collect();
            let params = if params.is_empty() { "—".to_string() } else { params.join(", ") };
            out.push_str(&format!("| {} | `{}` | {} | {} |\n", imp.kind, imp.name, params, imp.summary));
        }
        out
    }
}

/// The registry name of a plugin's module: `plugin:PLUGIN/MODULE`.
pub fn plugin_name(plugin: &str, module: &str) -> String {
    format!("plugin:{plugin}/{module}")
}

/// The plugin named by an implementation name `plugin:PLUGIN/MODULE`.
pub fn plugin_of(implementation: &str) -> Option<&str> {
    let rest = implementation.strip_prefix("plugin:")?;
    let (plugin, module) = rest.split_once('/')?;
    (!plugin.is_empty() && !module.is_empty()).then_some(plugin)
}
