//! What the host knows of a loaded plugin and its modules, as data:
//! [`PluginInfo`] (declaration, file, digest, poisoning), [`ModuleInfo`]
//! and [`ParamInfo`]. Module instances keep a reference to it.

use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::Mutex;

use ami_plugin_abi::{ModuleKind, VTableHeader};

use crate::decl::DeclInfo;
use crate::error::PluginError;

/// A registered module: what `ami plugin inspect` shows.
#[derive(Debug, Clone)]
pub struct ModuleInfo {
    /// Its kind.
    pub kind: ModuleKind,
    /// Name, unique within the plugin.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Declared parameters: `(name, type, default, doc)`.
    pub params: Vec<ParamInfo>,
    /// Its vtable, checked at registration against `kind`.
    pub(crate) vtable: VTablePtr,
}

/// A declared configuration parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    /// JSON key.
    pub name: String,
    /// JSON type in words.
    pub ty: String,
    /// Default, as JSON text.
    pub default: String,
    /// Documentation.
    pub doc: String,
}

/// A module's vtable: static data of a library that is never unloaded (or
/// of this binary), whose kind and size were checked at registration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VTablePtr(pub(crate) NonNull<VTableHeader>);

// SAFETY: the vtable is immutable static data in a library that is never
// unloaded (or in this binary); sharing a pointer to it is sound.
unsafe impl Send for VTablePtr {}
// SAFETY: as for `Send`.
unsafe impl Sync for VTablePtr {}

/// Identity and health of a loaded plugin.
#[derive(Debug)]
pub struct PluginInfo {
    /// The declaration.
    pub decl: DeclInfo,
    /// The library file (`None` for a statically linked plugin).
    pub path: Option<PathBuf>,
    /// SHA-256 of the file, hex.
    pub sha256: Option<String>,
    /// `(module, panic message)` of every module panic so far.
    pub(crate) poisoned: Mutex<Vec<(String, String)>>,
}

impl PluginInfo {
    /// The plugin name.
    pub fn name(&self) -> &str {
        &self.decl.name
    }
    /// Records (and logs) that `module` panicked with `message`.
    pub(crate) fn record_poison(&self, module: &str, message: &str) {
        if let Ok(mut p) = self.poisoned.lock() {
            p.push((module.to_string(), message.to_string()));
        }
        tracing::error!("{}", PluginError::Panicked { plugin: self.name().to_string(), module: module.to_string(), message: message.to_string() });
    }
}
