//! A loaded plugin ([`Plugin`]): what it registered and the typed
//! constructors of its module instances.

use std::sync::Arc;

use ami_plugin_abi::{Dims, ModuleKind};

use crate::adapters::{
    PluginActor, PluginConfigurator, PluginCritic, PluginEnvironment, PluginIntrinsicCost, PluginMemory, PluginPerception, PluginPlanner, PluginWorldModel,
};
use crate::error::PluginError;
use crate::info::{ModuleInfo, PluginInfo};
use crate::instance::Instance;

/// A loaded plugin: its declaration and its modules.
#[derive(Debug)]
pub struct Plugin {
    pub(crate) info: Arc<PluginInfo>,
    pub(crate) modules: Vec<ModuleInfo>,
}

impl Plugin {
    /// The plugin name.
    pub fn name(&self) -> &str {
        &self.info.decl.name
    }
    /// Identity and health.
    pub fn info(&self) -> &Arc<PluginInfo> {
        &self.info
    }
    /// The registered modules, in registration order.
    pub fn modules(&self) -> &[ModuleInfo] {
        &self.modules
    }
    /// The module called `name`.
    pub fn module(&self, name: &str) -> Result<&ModuleInfo, PluginError> {
        self.modules.iter().find(|m| m.name == name).ok_or_else(|| PluginError::NoSuchModule {
            plugin: self.name().to_string(),
            module: name.to_string(),
            available: self.modules.iter().map(|m| format!("{} ({})", m.name, m.kind)).collect::<Vec<_>>().join(", "),
        })
    }
    /// The modules of one kind.
    pub fn modules_of(&self, kind: ModuleKind) -> impl Iterator<Item = &ModuleInfo> {
        self.modules.iter().filter(move |m| m.kind == kind)
    }
    /// A world model instance of module `name` with JSON configuration.
    pub fn world_model(&self, name: &str, config: &str) -> Result<PluginWorldModel, PluginError> {
        PluginWorldModel::new(self.instance(name, ModuleKind::WORLD_MODEL, config)?)
    }
    /// An intrinsic cost term instance.
    pub fn intrinsic_cost(&self, name: &str, config: &str) -> Result<PluginIntrinsicCost, PluginError> {
        PluginIntrinsicCost::new(self.instance(name, ModuleKind::INTRINSIC_COST, config)?)
    }
    /// A critic instance.
    pub fn critic(&self, name: &str, config: &str) -> Result<PluginCritic, PluginError> {
        PluginCritic::new(self.instance(name, ModuleKind::CRITIC, config)?)
    }
    /// A perception instance.
    pub fn perception(&self, name: &str, config: &str) -> Result<PluginPerception, PluginError> {
        PluginPerception::new(self.instance(name, ModuleKind::PERCEPTION, config)?)
    }
    /// An actor instance.
    pub fn actor(&self, name: &str, config: &str) -> Result<PluginActor, PluginError> {
        PluginActor::new(self.instance(name, ModuleKind::ACTOR, config)?)
    }
    /// A planner instance planning within `bounds`.
    pub fn planner(&self, name: &str, config: &str, bounds: ami_core::Bounds) -> Result<PluginPlanner, PluginError> {
        PluginPlanner::new(self.instance(name, ModuleKind::PLANNER, config)?, bounds)
    }
    /// A short-term memory instance.
    pub fn memory(&self, name: &str, config: &str) -> Result<PluginMemory, PluginError> {
        PluginMemory::new(self.instance(name, ModuleKind::MEMORY, config)?)
    }
    /// A configurator instance.
    pub fn configurator(&self, name: &str, config: &str) -> Result<PluginConfigurator, PluginError> {
        PluginConfigurator::new(self.instance(name, ModuleKind::CONFIGURATOR, config)?)
    }
    /// An environment instance.
    pub fn environment(&self, name: &str, config: &str) -> Result<PluginEnvironment, PluginError> {
        PluginEnvironment::new(self.instance(name, ModuleKind::ENVIRONMENT, config)?)
    }

    /// Creates an instance of module `name` of `kind` with JSON configuration.
    fn instance(&self, name: &str, kind: ModuleKind, config: &str) -> Result<Instance, PluginError> {
        let m = self.module(name)?;
        if m.kind != kind {
            return Err(PluginError::WrongKind { plugin: self.name().into(), module: name.into(), expected: kind.to_string(), found: m.kind.to_string() });
        }
        Instance::create(self.info.clone(), m, config)
    }
}

/// Creates an instance with `config` and reports its [`Dims`] (for `ami
/// plugin inspect`).
pub fn probe_dims(plugin: &Plugin, module: &str, config: &str) -> Result<Dims, PluginError> {
    let m = plugin.module(module)?;
    let inst = Instance::create(plugin.info.clone(), m, config)?;
    inst.dims()
}
