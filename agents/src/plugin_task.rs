//! Plugins in agents: a plugin's modules registered as agent-file
//! implementations named `plugin:NAME/MODULE`, and plugin environments
//! behind the [`Environment`] trait.
//!
//! | plugin module kind | agent-file kind | node |
//! |---|---|---|
//! | environment | `environment` | the environment; its task's world model and cost come from the same plugin (params `model`, `costs`) |
//! | planner | `actor` | a Mode-2 planning actor rolling out the task's world model |
//! | actor | `actor` | a plugin actor |
//! | perception | `perception` | perception |
//! | configurator | `configurator` | configurator |
//! | memory | `memory` | short-term memory |
//! | intrinsic cost | `cost` | a cost node with this one term (weight 1) |
//!
//! World models and critics are not nodes: an environment node uses its
//! plugin's world model, and planners roll out the task's model.

use std::sync::Arc;

use ami_core::config::{Built, Implementation, ModuleKind, ParamSpec, ParamType, ParamValue, Params, Registry, TaskResources};
use ami_core::graph::{shared_cost, ActorNode, ConfiguratorNode, CostNode, MemoryNode, Node, NodePorts, PerceptionNode, PortType};
use ami_core::plugin::abi::ModuleKind as Kind;
use ami_core::plugin::{ModuleInfo, Plugin, PluginEnvironment, PluginIntrinsicCost};
use ami_core::{Bounds, CoreError, Cost, PlanningActor, WorldModel};
use ndarray::{Array1, ArrayView1};

use crate::agent::EnvNode;
use crate::config::environment_ports;
use crate::env::{Environment, Step};

/// A plugin environment as an [`Environment`]. A failing step (error or
/// panic) ends the episode with a NaN observation and reward, and is
/// recorded in [`ami_core::plugin::failure_log`], which `ami run` checks
/// after every episode.
#[derive(Debug)]
pub struct PluginEnv {
    inner: PluginEnvironment,
    name: String,
}

impl PluginEnv {
    /// Wraps a plugin environment.
    pub fn new(inner: PluginEnvironment) -> Self {
        let name = inner.label();
        Self { inner, name }
    }
    fn failed(&self, e: CoreError) -> Array1<f32> {
        let msg = e.to_string();
        tracing::error!("{msg}");
        if !self.inner.is_poisoned() {
            ami_core::plugin::report_failure(msg);
        }
        Array1::from_elem(self.inner.obs_dim(), f32::NAN)
    }
}

impl Environment for PluginEnv {
    fn name(&self) -> &str {
        &self.name
    }
    fn obs_dim(&self) -> usize {
        self.inner.obs_dim()
    }
    fn action_dim(&self) -> usize {
        self.inner.action_dim()
    }
    fn action_bounds(&self) -> Bounds {
        self.inner.action_bounds().clone()
    }
    fn max_steps(&self) -> usize {
        self.inner.max_steps()
    }
    fn reset(&mut self, seed: u64) -> Array1<f32> {
        match self.inner.reset(seed) {
            Ok(o) => o,
            Err(e) => self.failed(e),
        }
    }
    fn step(&mut self, action: ArrayView1<'_, f32>) -> Step {
        match self.inner.step(action) {
            Ok(s) => Step { observation: s.observation, reward: s.reward, terminated: s.terminated, truncated: s.truncated },
            Err(e) => Step { observation: self.failed(e), reward: f64::NAN, terminated: true, truncated: false },
        }
    }
}

/// The agent-file parameter type of a plugin parameter's declared type.
fn param_type(ty: &str) -> ParamType {
    match ty {
        "number" => ParamType::float(-1e300, 1e300),
        "integer" => ParamType::int(i64::MIN, i64::MAX),
        "boolean" => ParamType::Bool,
        "string" => ParamType::string(),
        "array of numbers" => ParamType::FloatList { min_len: 0, max_len: 1 << 20 },
        other => ParamType::Structured { what: other.to_string() },
    }
}

fn param_specs(m: &ModuleInfo) -> Vec<ParamSpec> {
    m.params.iter().map(|p| ParamSpec::new(&p.name, param_type(&p.ty), &format!("{} (default {})", p.doc, p.default))).collect()
}

/// The plugin's own parameters of `p` as a JSON object (the `reserved`
/// keys are the host's).
fn plugin_json(p: &Params, reserved: &[&str]) -> String {
    let map: serde_json::Map<String, serde_json::Value> =
        p.iter().filter(|(k, _)| !reserved.contains(k)).map(|(k, v)| (k.to_string(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null))).collect();
    serde_json::Value::Object(map).to_string()
}

fn actor_ports() -> NodePorts {
    NodePorts::new()
        .input("state", PortType::State, true)
        .input("modulation", PortType::Modulation, false)
        .input("done", PortType::Done, false)
        .output("action", PortType::Action)
        .output("plan_ms", PortType::Scalar)
}

fn cost_ports() -> NodePorts {
    CostNode::new(shared_cost(Cost::new())).ports()
}

fn memory_ports() -> NodePorts {
    NodePorts::new().input("state", PortType::State, true).input("prev_state", PortType::State, false).input("prev_action", PortType::Action, false).input(
        "cost",
        PortType::Cost,
        false,
    )
}

/// Builds the task of a plugin environment: the environment node and its
/// world model and cost from the same plugin.
fn environment_task(plugin: &Arc<Plugin>, module: &str, p: &Params) -> ami_core::Result<Built> {
    let env = plugin.environment(module, &plugin_json(p, &["model", "model_config", "costs"]))?;
    let model_name = match p.str_opt("model")? {
        Some(m) => m.to_string(),
        None => {
            let models: Vec<&str> = plugin.modules_of(Kind::WORLD_MODEL).map(|m| m.name.as_str()).collect();
            match models.as_slice() {
                [one] => one.to_string(),
                [] => return Err(CoreError::config("model", format!("plugin `{}` has no world model for its environment `{module}`", plugin.name()))),
                many => {
                    return Err(CoreError::config("model", format!("plugin `{}` has several world models ({}): choose one", plugin.name(), many.join(", "))))
                }
            }
        }
    };
    let model_cfg = match p.get("model_config") {
        Some(v) => serde_json::to_string(v).map_err(|e| CoreError::config("model_config", e.to_string()))?,
        None => "{}".into(),
    };
    let model: Arc<dyn WorldModel> = Arc::new(plugin.world_model(&model_name, &model_cfg).map_err(|e| CoreError::config("model", e.to_string()))?);
    let mut terms: Vec<Arc<PluginIntrinsicCost>> = Vec::new();
    match p.get("costs") {
        Some(ParamValue::Table(t)) => {
            for (name, cfg) in t {
                let cfg = serde_json::to_string(cfg).map_err(|e| CoreError::config("costs", e.to_string()))?;
                terms.push(Arc::new(plugin.intrinsic_cost(name, &cfg).map_err(|e| CoreError::config("costs", e.to_string()))?));
            }
        }
        Some(other) => return Err(CoreError::config("costs", format!("expected a table {{ TERM = {{ params }} }}, got a {}", other.type_name()))),
        None => {
            for m in plugin.modules_of(Kind::INTRINSIC_COST) {
                terms.push(Arc::new(plugin.intrinsic_cost(&m.name, "{}")?));
            }
        }
    }
    if model.action_dim() != env.action_dim() {
        return Err(CoreError::config(
            "model",
            format!("world model `{model_name}` takes actions of width {}, the environment {}", model.action_dim(), env.action_dim()),
        ));
    }
    let cost_terms = terms.clone();
    let cost: Arc<dyn Fn() -> Cost + Send + Sync> = Arc::new(move || {
        let mut c = Cost::new();
        for t in &cost_terms {
            // Names are unique within a plugin, so this cannot fail.
            let _ = c.add_intrinsic(t.clone(), 1.0);
        }
        c
    });
    let task = TaskResources {
        name: format!("plugin:{}/{module}", plugin.name()),
        obs_dim: env.obs_dim(),
        action_dim: env.action_dim(),
        bounds: env.action_bounds().clone(),
        model,
        cost,
        goal: None,
    };
    Ok(Built { node: Box::new(EnvNode::new(Box::new(PluginEnv::new(env)))) as Box<dyn Node>, task: Some(task) })
}

/// Registers every module of `plugin` that can be a graph node under the
/// name `plugin:NAME/MODULE` (see the module documentation).
pub fn register_plugin(registry: &mut Registry, plugin: &Arc<Plugin>) -> ami_core::Result<()> {
    for m in plugin.modules() {
        let (pl, name) = (plugin.clone(), m.name.clone());
        let summary = if m.description.is_empty() { format!("{} from plugin {}", m.kind, plugin.name()) } else { m.description.clone() };
        let params = param_specs(m);
        let imp = match m.kind {
            Kind::ENVIRONMENT => {
                let mut params = params;
                params.push(ParamSpec::new("model", ParamType::string(), "world model module of the same plugin (default: its only one)"));
                params.push(ParamSpec::new(
                    "model_config",
                    ParamType::Structured { what: "a table of the world model's parameters".into() },
                    "world model parameters",
                ));
                params.push(ParamSpec::new(
                    "costs",
                    ParamType::Structured { what: "a table { TERM = { params } } of intrinsic cost modules of the same plugin".into() },
                    "cost terms (default: all the plugin's intrinsic costs, weight 1)",
                ));
                Implementation::new(ModuleKind::Environment, &m.name, &summary, environment_ports(), params, move |_, p| environment_task(&pl, &name, p))
            }
            Kind::PLANNER => Implementation::new(ModuleKind::Actor, &m.name, &summary, actor_ports(), params, move |ctx, p| {
                let task = ctx.task()?;
                let planner = pl.planner(&name, &plugin_json(p, &[]), task.bounds.clone())?;
                let actor = PlanningActor::new(Box::new(planner), task.model.clone());
                Ok(Built::node(ActorNode::new(Box::new(actor), shared_cost((task.cost)()))))
            }),
            Kind::ACTOR => Implementation::new(ModuleKind::Actor, &m.name, &summary, actor_ports(), params, move |ctx, p| {
                let task = ctx.task()?;
                let actor = pl.actor(&name, &plugin_json(p, &[]))?;
                Ok(Built::node(ActorNode::new(Box::new(actor), shared_cost((task.cost)()))))
            }),
            Kind::PERCEPTION => {
                let ports = PerceptionNode::new(Arc::new(ami_core::IdentityPerception::new(1))).ports();
                Implementation::new(ModuleKind::Perception, &m.name, &summary, ports, params, move |_, p| {
                    Ok(Built::node(PerceptionNode::new(Arc::new(pl.perception(&name, &plugin_json(p, &[]))?))))
                })
            }
            Kind::CONFIGURATOR => {
                let ports = ConfiguratorNode::new(Box::new(ami_core::ScheduleConfigurator::default())).ports();
                Implementation::new(ModuleKind::Configurator, &m.name, &summary, ports, params, move |_, p| {
                    Ok(Built::node(ConfiguratorNode::new(Box::new(pl.configurator(&name, &plugin_json(p, &[]))?))))
                })
            }
            Kind::MEMORY => Implementation::new(ModuleKind::Memory, &m.name, &summary, memory_ports(), params, move |_, p| {
                Ok(Built::node(MemoryNode::new(Box::new(pl.memory(&name, &plugin_json(p, &[]))?), None)))
            }),
            Kind::INTRINSIC_COST => Implementation::new(ModuleKind::Cost, &m.name, &summary, cost_ports(), params, move |ctx, p| {
                let mut c = Cost::new();
                c.add_intrinsic(Arc::new(pl.intrinsic_cost(&name, &plugin_json(p, &[]))?), 1.0)?;
                if let Some(g) = ctx.task.and_then(|t| t.goal.clone()) {
                    c.set_goal(Some(Array1::from(g)));
                }
                Ok(Built::node(CostNode::new(shared_cost(c))))
            }),
            _ => continue,
        };
        registry.register_plugin_module(plugin.name(), &m.name, imp)?;
    }
    Ok(())
}

/// The plugin names an agent file refers to (`plugin:NAME/...` anywhere in
/// its text), in order of first appearance.
pub fn referenced_plugins(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, _) in text.match_indices("plugin:") {
        let rest = &text[i + "plugin:".len()..];
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-' || *c == '.').collect();
        if !name.is_empty() && rest[name.len()..].starts_with('/') && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The plugin host settings for an agent file's `[plugins]` table merged
/// with the command line's `cli` settings: search paths of both (the
/// command line's first), pins of both (the command line's win on the same
/// key), and `allow_panic_abort` if either allows it. The table's relative
/// paths are resolved against `base`, the agent file's directory.
pub fn host_config(
    table: &ami_core::config::PluginsConfig,
    base: &std::path::Path,
    mut cli: ami_core::plugin::PluginHostConfig,
) -> ami_core::plugin::PluginHostConfig {
    cli.search_paths.extend(table.search.iter().map(|d| base.join(d)));
    for (k, v) in &table.sha256 {
        let key = if looks_like_path(k) { base.join(k).display().to_string() } else { k.clone() };
        cli.sha256.entry(key).or_insert_with(|| v.clone());
    }
    cli.allow_panic_abort |= table.allow_panic_abort;
    cli
}

/// The libraries an agent file's `[plugins]` table asks to load: paths
/// resolved against `base`, plugin names as written.
pub fn libraries_to_load(table: &ami_core::config::PluginsConfig, base: &std::path::Path) -> Vec<std::path::PathBuf> {
    table.load.iter().map(|l| if looks_like_path(l) { base.join(l) } else { std::path::PathBuf::from(l) }).collect()
}

fn looks_like_path(s: &str) -> bool {
    s.contains('/') || s.ends_with(".so") || s.ends_with(".dylib") || s.ends_with(".dll")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_referenced_plugins() {
        let t = "implementation = \"plugin:acrobot/env\"\n# plugin:sampling/predictive\nx = \"plugin:acrobot/model\" plugin:bad";
        assert_eq!(referenced_plugins(t), ["acrobot", "sampling"]);
    }
}
