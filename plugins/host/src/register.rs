//! A plugin's modules as agent-file implementations named
//! `plugin:NAME/MODULE`, and the `[plugins]` table of agent files.
//!
//! | plugin module kind | agent-file kind | node |
//! |---|---|---|
//! | environment | `environment` | the environment; its task's world model and cost come from the same plugin (params `model`, `costs`) |
//! | world model | `world_model` | a world model planners refer to (`model = "NODE"`) |
//! | planner | `actor` | a Mode-2 planning actor (params `model`, `cost` as for the built-in planners) |
//! | actor | `actor` | a plugin actor |
//! | perception | `perception` | perception |
//! | configurator | `configurator` | configurator |
//! | memory | `memory` | short-term memory |
//! | intrinsic cost | `cost` | a cost node with this one term (weight 1) |
//! | critic | `critic` | a critic planners add as their terminal value (`critic = "NODE"`) |

use std::sync::Arc;

use ami_config::nodes::{ActorNode, ConfiguratorNode, CostNode, EnvNode, HandleNode, MemoryNode, ModelNode, PerceptionNode};
use ami_config::{Built, Implementation, ModuleKind, PluginsConfig, Registry, TaskResources};
use ami_core::{CoreError, Cost, Critic, CriticHandle, Environment, Handle, ModelHandle, ParamSpec, ParamType, ParamValue, Params, Shared};
use ndarray::Array1;

use crate::abi::ModuleKind as Kind;
use crate::{ModuleInfo, Plugin, PluginHostConfig, PluginIntrinsicCost};

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

/// A goal from numbers that must each fit an `f32`.
fn goal_of(numbers: Option<Vec<f64>>) -> ami_core::Result<Vec<f32>> {
    let numbers = numbers.ok_or_else(|| CoreError::config("goal", "expected a list of numbers"))?;
    if let Some(x) = numbers.iter().find(|x| !x.is_finite() || x.abs() > f64::from(f32::MAX)) {
        return Err(CoreError::config("goal", format!("{x} is not a finite f32")));
    }
    Ok(numbers.into_iter().map(|x| x as f32).collect())
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
    let model = ModelHandle::of(plugin.world_model(&model_name, &model_cfg).map_err(|e| CoreError::config("model", e.to_string()))?);
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
    if model.get().action_dim() != env.action_dim() {
        return Err(CoreError::config(
            "model",
            format!("world model `{model_name}` takes actions of width {}, the environment {}", model.get().action_dim(), env.action_dim()),
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
    // A `goal` parameter of the environment module declares the task's
    // default goal (its default, or the value the agent file gives).
    let goal = match p.get("goal") {
        Some(ParamValue::List(items)) => Some(goal_of(items.iter().map(|v| v.as_f64()).collect::<Option<Vec<f64>>>())?),
        Some(other) => return Err(CoreError::config("goal", format!("expected a list of numbers, got a {}", other.type_name()))),
        None => match plugin.module(module)?.params.iter().find(|q| q.name == "goal") {
            Some(q) => Some(
                goal_of(serde_json::from_str::<Vec<f64>>(&q.default).ok())
                    .map_err(|e| CoreError::config("goal", format!("the plugin declares a default goal `{}` that is not a list of numbers: {e}", q.default)))?,
            ),
            None => None,
        },
    };
    if let Some(g) = &goal {
        let width = model.get().state_dim();
        if g.len() != width {
            return Err(CoreError::config("goal", format!("a goal of width {} for states of width {width} (the world model `{model_name}`'s)", g.len())));
        }
    }
    let task = TaskResources {
        name: format!("plugin:{}/{module}", plugin.name()),
        obs_dim: env.obs_dim(),
        action_dim: env.action_dim(),
        space: env.action_space(),
        model: Some(model),
        cost: Some(cost),
        goal,
        perceived_dim: None,
    };
    Ok(Built { task: Some(task), ..Built::node(EnvNode::new(Box::new(env))) })
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
                Implementation::new(ModuleKind::Environment, &m.name, &summary, EnvNode::ports(), params, move |_, p| environment_task(&pl, &name, p))
            }
            Kind::PLANNER => {
                let mut params = params;
                params.extend(ami_config::builtins::planning_actor_params());
                Implementation::new(ModuleKind::Actor, &m.name, &summary, ActorNode::ports(), params, move |ctx, p| {
                    // The planning actor's own parameters are not the plugin's.
                    let actor_params: Vec<String> = ami_config::builtins::planning_actor_params().into_iter().map(|s| s.name).collect();
                    let own = plugin_json(p, &actor_params.iter().map(String::as_str).collect::<Vec<_>>());
                    let planner = pl.planner(&name, &own, ctx.task()?.space.require_box(&name)?.clone())?;
                    ami_config::builtins::planning_actor(ctx, p, Box::new(planner))
                })
            }
            Kind::ACTOR => Implementation::new(ModuleKind::Actor, &m.name, &summary, ActorNode::ports(), params, move |ctx, p| {
                let task = ctx.task()?;
                let actor = pl.actor(&name, &plugin_json(p, &[]))?;
                Ok(Built::node(ActorNode::new(Box::new(actor), Shared::of(task.cost_or_empty()))))
            }),
            Kind::PERCEPTION => Implementation::new(ModuleKind::Perception, &m.name, &summary, PerceptionNode::ports(), params, move |_, p| {
                Ok(Built::node(PerceptionNode::new(Arc::new(pl.perception(&name, &plugin_json(p, &[]))?))))
            }),
            Kind::CONFIGURATOR => Implementation::new(ModuleKind::Configurator, &m.name, &summary, ConfiguratorNode::ports(), params, move |_, p| {
                Ok(Built::node(ConfiguratorNode::new(Box::new(pl.configurator(&name, &plugin_json(p, &[]))?))))
            }),
            Kind::MEMORY => Implementation::new(ModuleKind::Memory, &m.name, &summary, MemoryNode::ports(), params, move |_, p| {
                Ok(Built::node(MemoryNode::new(Box::new(pl.memory(&name, &plugin_json(p, &[]))?), None)))
            }),
            Kind::WORLD_MODEL => Implementation::new(ModuleKind::WorldModel, &m.name, &summary, ModelNode::ports_for("model"), params, move |ctx, p| {
                let model = ModelHandle::of(pl.world_model(&name, &plugin_json(p, &[]))?);
                if let Some(task) = ctx.task {
                    if model.get().action_dim() != task.action_dim {
                        return Err(CoreError::config(
                            "model",
                            format!("the world model takes actions of width {}, the environment's are of width {}", model.get().action_dim(), task.action_dim),
                        ));
                    }
                }
                Ok(Built { model: Some(model.clone()), ..Built::node(ModelNode::new(model, "model")) })
            }),
            Kind::CRITIC => Implementation::new(ModuleKind::Critic, &m.name, &summary, HandleNode::<dyn Critic>::ports_for("critic"), params, move |_, p| {
                let critic: CriticHandle = Handle::new(Arc::new(pl.critic(&name, &plugin_json(p, &[]))?));
                Ok(Built { critic: Some(critic.clone()), ..Built::node(HandleNode::new(critic, "critic")) })
            }),
            Kind::INTRINSIC_COST => Implementation::new(ModuleKind::Cost, &m.name, &summary, CostNode::ports(), params, move |ctx, p| {
                let mut c = Cost::new();
                c.add_intrinsic(Arc::new(pl.intrinsic_cost(&name, &plugin_json(p, &[]))?), 1.0)?;
                if let Some(g) = ctx.task.and_then(|t| t.goal.clone()) {
                    c.set_goal(Some(Array1::from(g)));
                }
                let cost = Shared::of(c);
                Ok(Built { cost: Some(cost.clone()), ..Built::node(CostNode::new(cost)) })
            }),
            _ => continue,
        };
        registry.register_plugin_module(plugin.name(), &m.name, imp)?;
    }
    Ok(())
}

/// The plugin host settings for an agent file's `[plugins]` table merged
/// with the command line's `cli` settings: search paths of both (the
/// command line's first), pins of both (the command line's win on the same
/// key), and `allow_panic_abort` if either allows it. The table's relative
/// paths are resolved against `base`, the agent file's directory.
pub fn host_config(table: &PluginsConfig, base: &std::path::Path, mut cli: PluginHostConfig) -> PluginHostConfig {
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
pub fn libraries_to_load(table: &PluginsConfig, base: &std::path::Path) -> Vec<std::path::PathBuf> {
    table.load.iter().map(|l| if looks_like_path(l) { base.join(l) } else { std::path::PathBuf::from(l) }).collect()
}

fn looks_like_path(s: &str) -> bool {
    s.contains('/') || s.ends_with(".so") || s.ends_with(".dylib") || s.ends_with(".dll")
}
