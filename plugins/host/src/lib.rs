//! # ami-plugin-host
//!
//! The plugin host: loads modules shipped as dynamic libraries and wraps
//! them in adapters that implement the ordinary module traits, so a plugin
//! module is used exactly like a built-in one.
//!
//! This is the only code in ami that opens libraries. Loading a library
//! runs its code, so the host only loads paths the user configured (a path,
//! or a name found in the configured search paths), optionally pinned by
//! SHA-256. Before opening a file the host reads the plugin's declaration
//! from it **without running any plugin code** ([`decl`]) and refuses the
//! library with a message naming what was expected and what was found when
//! the magic, ABI major, ABI minor, declaration size, layout hash, target or
//! panic strategy do not fit. Libraries are never unloaded.
//!
//! The file is opened **once**: the bytes read are hashed, checked, copied
//! into a sealed anonymous file and loaded from there, so a file
//! swapped or rewritten meanwhile is never loaded unverified. A host with a
//! [`ProbeCommand`] first loads that image in a child process
//! ([`probe`]): a corrupt library that crashes the system loader crashes
//! the child, and the host refuses it.
//!
//! Every call into a plugin goes through a `catch_unwind` shim on the
//! plugin's side: a module that panics is **poisoned** (never called again,
//! never destroyed), the call returns an error naming the plugin and the
//! module, and the host keeps running; [`PluginHost::poison_reports`] lists
//! what happened.
//!
//! ```no_run
//! use ami_plugin_host::{PluginHost, PluginHostConfig};
//! use ami_core::WorldModel;
//!
//! let mut host = PluginHost::new(PluginHostConfig::default());
//! host.load("target/debug/libacrobot.so").unwrap();
//! let model = host.world_model("acrobot/model", "{}").unwrap();
//! assert_eq!(model.state_dim(), 6);
//! ```

mod adapters;
pub mod decl;
mod error;
mod host;
pub(crate) mod image;
mod info;
mod instance;
mod plugin;
pub mod probe;
pub mod probe_child;
mod register;
mod register_abi;

pub use adapters::{
    PluginActor, PluginConfigurator, PluginCritic, PluginEnvironment, PluginIntrinsicCost, PluginMemory, PluginPerception, PluginPlanner, PluginWorldModel,
};
pub use ami_plugin_abi as abi;
pub use decl::DeclInfo;
pub use error::PluginError;
pub use host::{parse_reference, PluginHost, PluginHostConfig, MAX_LIBRARY_BYTES};
pub use info::{ModuleInfo, ParamInfo, PluginInfo};
pub use plugin::{probe_dims, Plugin};
pub use probe::ProbeCommand;
pub use register::{host_config, libraries_to_load, register_plugin};

/// The size of the declaration header read from files (re-exported for tests).
pub use ami_plugin_abi::DECL_HEADER_SIZE as DECLARATION_HEADER_SIZE;
