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
mod register;

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ami_plugin_abi::kinds::{
    ActorVTable, ConfiguratorVTable, CriticVTable, EnvironmentVTable, IntrinsicCostVTable, MemoryVTable, PerceptionVTable, PlannerVTable, WorldModelVTable,
};
use ami_plugin_abi::{Dims, ErrBuf, HostApi, ModuleDesc, ModuleKind, PluginDecl, Registrar, Status, Str, VTableHeader, ABI_MAJOR, ABI_MINOR, DECL_HEADER_SIZE};
use serde::{Deserialize, Serialize};
use sha2::Digest;

pub use adapters::{
    PluginActor, PluginConfigurator, PluginCritic, PluginEnvironment, PluginIntrinsicCost, PluginMemory, PluginPerception, PluginPlanner, PluginWorldModel,
};
pub use ami_plugin_abi as abi;
pub use decl::DeclInfo;
pub use register::{host_config, libraries_to_load, register_plugin};

use ami_core::error::CoreError;

/// Why a plugin could not be loaded or used. Every message names the
/// library file or the plugin and module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The file could not be read.
    #[error("plugin {path}: cannot read the file: {source}")]
    Io {
        /// The library file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a shared library this host can read.
    #[error("plugin {path}: not a loadable shared library: {reason}")]
    NotALibrary {
        /// The library file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A shared library without an ami declaration.
    #[error("plugin {path}: not an ami plugin: {reason}")]
    NotAPlugin {
        /// The library file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The declaration does not fit this host.
    #[error("plugin {path}: incompatible {what}: expected {expected}, found {found}")]
    Incompatible {
        /// The library file.
        path: PathBuf,
        /// Which property (magic, ABI major version, ...).
        what: String,
        /// What this host needs.
        expected: String,
        /// What the library declares.
        found: String,
    },
    /// The file's SHA-256 differs from the configured pin.
    #[error("plugin {path}: SHA-256 mismatch: expected {expected}, found {found}; refusing to load it")]
    Sha256Mismatch {
        /// The library file.
        path: PathBuf,
        /// The pinned digest.
        expected: String,
        /// The file's digest.
        found: String,
    },
    /// A pin is not 64 hexadecimal digits.
    #[error("plugin pin for `{key}`: expected 64 hexadecimal digits, found `{value}`")]
    BadPin {
        /// The pinned library.
        key: String,
        /// The value given.
        value: String,
    },
    /// `dlopen` failed.
    #[error("plugin {path}: cannot open the library: {reason}")]
    Open {
        /// The library file.
        path: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// The plugin's register function failed or registered something invalid.
    #[error("plugin {path}: registration failed: {message}")]
    Register {
        /// The library file (or `static` for a linked plugin).
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Two libraries declare the same plugin name.
    #[error("plugin `{name}` from {path} is already loaded from {existing}")]
    Duplicate {
        /// Plugin name.
        name: String,
        /// The new library.
        path: PathBuf,
        /// The one already loaded.
        existing: PathBuf,
    },
    /// A plugin named by reference is not loaded and was not found.
    #[error("plugin `{name}` is not loaded and no library for it was found (searched: {searched})")]
    NotFound {
        /// The plugin name.
        name: String,
        /// The places searched.
        searched: String,
    },
    /// A module reference is not `plugin:NAME/MODULE` or `NAME/MODULE`.
    #[error("invalid module reference `{0}`: expected `plugin:NAME/MODULE` or `NAME/MODULE`")]
    BadReference(String),
    /// The plugin has no module of that name.
    #[error("plugin `{plugin}` has no module `{module}` (it has: {available})")]
    NoSuchModule {
        /// Plugin name.
        plugin: String,
        /// Module asked for.
        module: String,
        /// Modules it has.
        available: String,
    },
    /// The module is of another kind.
    #[error("plugin `{plugin}` module `{module}` is a {found}, expected a {expected}")]
    WrongKind {
        /// Plugin name.
        plugin: String,
        /// Module name.
        module: String,
        /// Kind needed.
        expected: String,
        /// Kind it has.
        found: String,
    },
    /// The module reported an error.
    #[error("plugin `{plugin}` module `{module}`: {message}")]
    Module {
        /// Plugin name.
        plugin: String,
        /// Module name.
        module: String,
        /// The module's message.
        message: String,
    },
    /// The module panicked (now or earlier) and is poisoned.
    #[error("plugin `{plugin}` module `{module}` panicked: {message}; the module is poisoned and will not be called again")]
    Panicked {
        /// Plugin name.
        plugin: String,
        /// Module name.
        module: String,
        /// The panic message.
        message: String,
    },
}

impl From<PluginError> for CoreError {
    fn from(e: PluginError) -> Self {
        match &e {
            PluginError::Module { plugin, module, message } => CoreError::module(format!("plugin:{plugin}/{module}"), message.clone()),
            PluginError::Panicked { plugin, module, .. } => CoreError::module(format!("plugin:{plugin}/{module}"), e.to_string()),
            _ => CoreError::module("plugin host", e.to_string()),
        }
    }
}

/// Where plugins come from and what is trusted. Deserialisable, so agent
/// files can carry a `[plugins]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginHostConfig {
    /// Directories searched for `lib<NAME>.so` when a plugin is named
    /// rather than given by path (after these, `$AMI_PLUGIN_PATH`).
    pub search_paths: Vec<PathBuf>,
    /// SHA-256 pins, hex: the key is a plugin name, or a library path as
    /// given or canonicalised. A library whose digest differs is refused.
    pub sha256: BTreeMap<String, String>,
    /// Accept plugins built with `panic = "abort"` (with a warning) instead
    /// of refusing them; their panics abort the process.
    pub allow_panic_abort: bool,
}

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
    vtable: VTablePtr,
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

#[derive(Debug, Clone, Copy)]
struct VTablePtr(NonNull<VTableHeader>);

// SAFETY: the vtable is immutable static data in a library that is never
// unloaded (or in this binary); sharing a pointer to it is sound.
unsafe impl Send for VTablePtr {}
// SAFETY: as for `Send`.
unsafe impl Sync for VTablePtr {}

/// A loaded plugin: its declaration and its modules.
#[derive(Debug)]
pub struct Plugin {
    info: Arc<PluginInfo>,
    modules: Vec<ModuleInfo>,
}

/// Identity and health of a loaded plugin.
#[derive(Debug)]
pub struct PluginInfo {
    /// The declaration.
    pub decl: DeclInfo,
    /// The library file (`None` for a statically linked plugin).
    pub path: Option<PathBuf>,
    /// SHA-256 of the file, hex.
    pub sha256: Option<String>,
    poisoned: Mutex<Vec<(String, String)>>,
}

impl PluginInfo {
    /// The plugin name.
    pub fn name(&self) -> &str {
        &self.decl.name
    }
    fn record_poison(&self, module: &str, message: &str) {
        if let Ok(mut p) = self.poisoned.lock() {
            p.push((module.to_string(), message.to_string()));
        }
        tracing::error!("{}", PluginError::Panicked { plugin: self.name().to_string(), module: module.to_string(), message: message.to_string() });
    }
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

/// The plugin host: loads libraries and creates module instances.
#[derive(Debug, Default)]
pub struct PluginHost {
    config: PluginHostConfig,
    plugins: Vec<Arc<Plugin>>,
    warnings: Vec<String>,
}

/// Splits `plugin:NAME/MODULE` or `NAME/MODULE`.
pub fn parse_reference(r: &str) -> Result<(&str, &str), PluginError> {
    let s = r.strip_prefix("plugin:").unwrap_or(r);
    match s.split_once('/') {
        Some((p, m)) if !p.is_empty() && !m.is_empty() && !m.contains('/') => Ok((p, m)),
        _ => Err(PluginError::BadReference(r.to_string())),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

static HOST_API: HostApi = HostApi { size: std::mem::size_of::<HostApi>() as u32, abi_major: ABI_MAJOR, abi_minor: ABI_MINOR, log: host_log };

unsafe extern "C" fn host_log(level: u32, plugin: Str, msg: Str) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the plugin passes strings valid for the call.
        let (p, m) = unsafe { (plugin.as_str().unwrap_or("?"), msg.as_str().unwrap_or("<invalid UTF-8>")) };
        match level {
            0 => tracing::error!(plugin = p, "{m}"),
            1 => tracing::warn!(plugin = p, "{m}"),
            2 => tracing::info!(plugin = p, "{m}"),
            3 => tracing::debug!(plugin = p, "{m}"),
            _ => tracing::trace!(plugin = p, "{m}"),
        }
    });
}

struct RegisterCtx {
    modules: Vec<ModuleInfo>,
    problems: Vec<String>,
}

fn min_vtable_size(kind: ModuleKind) -> Option<usize> {
    use std::mem::size_of;
    Some(match kind {
        ModuleKind::PERCEPTION => size_of::<PerceptionVTable>(),
        ModuleKind::WORLD_MODEL => size_of::<WorldModelVTable>(),
        ModuleKind::INTRINSIC_COST => size_of::<IntrinsicCostVTable>(),
        ModuleKind::CRITIC => size_of::<CriticVTable>(),
        ModuleKind::ACTOR => size_of::<ActorVTable>(),
        ModuleKind::PLANNER => size_of::<PlannerVTable>(),
        ModuleKind::MEMORY => size_of::<MemoryVTable>(),
        ModuleKind::CONFIGURATOR => size_of::<ConfiguratorVTable>(),
        ModuleKind::ENVIRONMENT => size_of::<EnvironmentVTable>(),
        _ => return None,
    })
}

/// # Safety
/// `desc` is a valid descriptor whose strings, params and vtable outlive the process.
unsafe fn read_desc(desc: *const ModuleDesc) -> Result<Option<ModuleInfo>, String> {
    // SAFETY: forwarded from the caller.
    let d = unsafe { desc.as_ref() }.ok_or("null module descriptor")?;
    if (d.size as usize) < std::mem::size_of::<ModuleDesc>() {
        return Err(format!("module descriptor of {} bytes, expected at least {}", d.size, std::mem::size_of::<ModuleDesc>()));
    }
    // SAFETY: strings of a descriptor point into the library's static data.
    let name = unsafe { d.name.as_str() }.map_err(|e| format!("module name: {e}"))?.to_string();
    if name.is_empty() || name.contains('/') || name.contains(char::is_whitespace) {
        return Err(format!("invalid module name `{name}` (non-empty, no `/` or spaces)"));
    }
    // SAFETY: as above.
    let description = unsafe { d.description.as_str() }.map_err(|e| format!("module `{name}` description: {e}"))?.to_string();
    let Some(min) = min_vtable_size(d.kind) else {
        tracing::warn!("module `{name}` has kind {} that this host does not know; skipped", d.kind.0);
        return Ok(None);
    };
    let vt = NonNull::new(d.vtable.cast_mut().cast::<VTableHeader>()).ok_or_else(|| format!("module `{name}`: null vtable"))?;
    // SAFETY: a non-null vtable pointer from the plugin; the header is read first to learn the size.
    let header = unsafe { vt.as_ref() };
    if (header.size as usize) < min {
        return Err(format!("module `{name}` ({}): vtable of {} bytes, expected at least {min}", d.kind, header.size));
    }
    if header.kind != d.kind {
        return Err(format!("module `{name}`: descriptor says {} but its vtable says {}", d.kind, header.kind));
    }
    let mut params = Vec::new();
    if d.n_params > 0 {
        if d.params.is_null() {
            return Err(format!("module `{name}`: null parameter list"));
        }
        // SAFETY: `n_params` entries at `params`, static in the library.
        for p in unsafe { std::slice::from_raw_parts(d.params, d.n_params) } {
            // SAFETY: parameter strings are static in the library.
            let s = |x: Str| unsafe { x.as_str() }.map(str::to_string).map_err(|e| format!("module `{name}` parameter: {e}"));
            params.push(ParamInfo { name: s(p.name)?, ty: s(p.ty)?, default: s(p.default)?, doc: s(p.doc)? });
        }
    }
    Ok(Some(ModuleInfo { kind: d.kind, name, description, params, vtable: VTablePtr(vt) }))
}

unsafe extern "C" fn add_module(ctx: *mut c_void, desc: *const ModuleDesc, err: *mut ErrBuf) -> Status {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `ctx` is the `RegisterCtx` the host passed to `register`.
        let ctx = unsafe { &mut *ctx.cast::<RegisterCtx>() };
        // SAFETY: the plugin passes its descriptor.
        match unsafe { read_desc(desc) } {
            Ok(Some(m)) => {
                if ctx.modules.iter().any(|x| x.name == m.name) {
                    Err(format!("duplicate module name `{}`", m.name))
                } else {
                    ctx.modules.push(m);
                    Ok(())
                }
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        }
    }));
    let msg = match r {
        Ok(Ok(())) => return Status::OK,
        Ok(Err(m)) => m,
        Err(_) => "host panicked while reading a module descriptor".to_string(),
    };
    // SAFETY: the plugin passes a valid error buffer (or null).
    unsafe { ErrBuf::write(err, &msg) };
    // SAFETY: as above.
    if let Some(ctx) = unsafe { ctx.cast::<RegisterCtx>().as_mut() } {
        ctx.problems.push(msg);
    }
    Status::ERROR
}

/// Calls a plugin's register function and collects its modules.
///
/// # Safety
/// `decl` is a declaration that passed the checks, in a library that stays loaded.
unsafe fn register(decl: &'static PluginDecl, path: &Path) -> Result<Vec<ModuleInfo>, PluginError> {
    let mut ctx = RegisterCtx { modules: Vec::new(), problems: Vec::new() };
    let reg = Registrar { ctx: (&mut ctx as *mut RegisterCtx).cast(), add_module };
    let mut buf = [0u8; 1024];
    let mut err = ErrBuf { ptr: buf.as_mut_ptr(), cap: buf.len(), len: 0 };
    // SAFETY: the declaration passed the version and layout checks, so
    // `register` has the expected signature; the arguments live across the call.
    let st = unsafe { (decl.register)(&HOST_API, &reg, &mut err) };
    if st != Status::OK || !ctx.problems.is_empty() {
        let mut msg = String::from_utf8_lossy(&buf[..err.len.min(buf.len())]).into_owned();
        if st == Status::PANICKED {
            msg = format!("register panicked: {msg}");
        }
        if msg.is_empty() {
            msg = ctx.problems.join("; ");
        }
        return Err(PluginError::Register { path: path.to_path_buf(), message: msg });
    }
    Ok(ctx.modules)
}

impl PluginHost {
    /// A host with a configuration.
    pub fn new(config: PluginHostConfig) -> Self {
        Self { config, plugins: Vec::new(), warnings: Vec::new() }
    }
    /// The configuration.
    pub fn config(&self) -> &PluginHostConfig {
        &self.config
    }
    /// Adds a SHA-256 pin (hex) for a plugin name or library path.
    pub fn pin(&mut self, key: impl Into<String>, sha256_hex: impl Into<String>) {
        self.config.sha256.insert(key.into(), sha256_hex.into());
    }
    /// Adds a search directory.
    pub fn add_search_path(&mut self, dir: impl Into<PathBuf>) {
        self.config.search_paths.push(dir.into());
    }
    /// Warnings of accepted-but-odd libraries (e.g. `panic = "abort"`).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// The loaded plugins.
    pub fn plugins(&self) -> &[Arc<Plugin>] {
        &self.plugins
    }
    /// The loaded plugin called `name`.
    pub fn plugin(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.iter().find(|p| p.name() == name)
    }

    fn search_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = self.config.search_paths.clone();
        if let Some(env) = std::env::var_os("AMI_PLUGIN_PATH") {
            dirs.extend(std::env::split_paths(&env));
        }
        dirs
    }

    /// The library file for a plugin name: `lib<NAME>.so` (or `NAME.so`)
    /// in the search paths.
    pub fn find(&self, name: &str) -> Result<PathBuf, PluginError> {
        let files = [format!("{}{name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX), format!("{name}{}", std::env::consts::DLL_SUFFIX)];
        let dirs = self.search_dirs();
        for d in &dirs {
            for f in &files {
                let p = d.join(f);
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        let searched = if dirs.is_empty() {
            "no search paths; give the library's path, a search path, or set AMI_PLUGIN_PATH".to_string()
        } else {
            dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        };
        Err(PluginError::NotFound { name: name.to_string(), searched })
    }

    fn pin_for(&self, given: &Path, canonical: &Path, name: &str) -> Option<(&String, &String)> {
        let keys = [given.to_string_lossy().into_owned(), canonical.to_string_lossy().into_owned(), name.to_string()];
        keys.iter().find_map(|k| self.config.sha256.get_key_value(k))
    }

    /// Reads and checks a library's declaration without loading it.
    pub fn inspect_file(path: &Path) -> Result<DeclInfo, PluginError> {
        let bytes = std::fs::read(path).map_err(|source| PluginError::Io { path: path.to_path_buf(), source })?;
        decl::read_declaration(path, &bytes)
    }

    /// Loads a library given by path, or by plugin name through the search
    /// paths. Loading the same plugin twice returns the loaded one.
    pub fn load(&mut self, path_or_name: impl AsRef<Path>) -> Result<Arc<Plugin>, PluginError> {
        let given = path_or_name.as_ref();
        let looks_like_name = given.components().count() == 1 && given.extension().is_none();
        if looks_like_name {
            let name = given.to_string_lossy();
            if let Some(p) = self.plugin(&name) {
                return Ok(p.clone());
            }
            if !given.exists() {
                let p = self.find(&name)?;
                return self.load_path(&p);
            }
        }
        self.load_path(given)
    }

    fn load_path(&mut self, path: &Path) -> Result<Arc<Plugin>, PluginError> {
        let bytes = std::fs::read(path).map_err(|source| PluginError::Io { path: path.to_path_buf(), source })?;
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(p) = self.plugins.iter().find(|p| p.info.path.as_deref() == Some(canonical.as_path())) {
            return Ok(p.clone());
        }
        let digest = hex(&sha2::Sha256::digest(&bytes));
        let info = decl::read_declaration(path, &bytes)?;
        if let Some((key, want)) = self.pin_for(path, &canonical, &info.name) {
            let want_l = want.trim().to_ascii_lowercase();
            if want_l.len() != 64 || !want_l.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(PluginError::BadPin { key: key.clone(), value: want.clone() });
            }
            if want_l != digest {
                return Err(PluginError::Sha256Mismatch { path: path.to_path_buf(), expected: want_l, found: digest });
            }
        }
        let warnings = decl::check_declaration(path, &info, self.config.allow_panic_abort)?;
        if let Some(p) = self.plugin(&info.name) {
            return Err(PluginError::Duplicate {
                name: info.name.clone(),
                path: path.to_path_buf(),
                existing: p.info.path.clone().unwrap_or_else(|| PathBuf::from("<static>")),
            });
        }
        // Open with RTLD_NOW | RTLD_LOCAL: all symbols resolved up front, none
        // leaking into the global namespace.
        let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL;
        // SAFETY: loading runs the library's initialisers; the user configured
        // this path, and its declaration passed every check above.
        let lib = unsafe { libloading::os::unix::Library::open(Some(&canonical), flags) }
            .map_err(|e| PluginError::Open { path: path.to_path_buf(), reason: e.to_string() })?;
        let symbol = info.symbol.clone().unwrap_or_else(|| format!("{}{}", ami_plugin_abi::DECL_SYMBOL, info.name));
        let sym_name = format!("{symbol}\0");
        // SAFETY: the symbol is the `PluginDecl` static (checked in the file);
        // we only take its address here.
        let decl_ptr: *const PluginDecl = match unsafe { lib.get::<*const PluginDecl>(sym_name.as_bytes()) } {
            Ok(s) => *s,
            Err(e) => {
                std::mem::forget(lib);
                return Err(PluginError::Open { path: path.to_path_buf(), reason: format!("symbol {symbol}: {e}") });
            }
        };
        // Never unload: thread-local destructors and callbacks may point into it.
        std::mem::forget(lib);
        // SAFETY: the library is never unloaded, so its static lives for 'static.
        let decl: &'static PluginDecl = unsafe { &*decl_ptr };
        let in_memory = DeclInfo::from_static(decl);
        if (&in_memory.magic, in_memory.abi_major, in_memory.abi_minor, in_memory.layout_hash, &in_memory.name)
            != (&info.magic, info.abi_major, info.abi_minor, info.layout_hash, &info.name)
        {
            return Err(PluginError::Open {
                path: path.to_path_buf(),
                reason: "the declaration in memory differs from the one in the file (file changed while loading?)".into(),
            });
        }
        // SAFETY: checked declaration in a library that stays loaded.
        let modules = unsafe { register(decl, path) }?;
        for w in &warnings {
            tracing::warn!("{w}");
        }
        self.warnings.extend(warnings);
        let plugin = Arc::new(Plugin {
            info: Arc::new(PluginInfo { decl: info, path: Some(canonical), sha256: Some(digest), poisoned: Mutex::new(Vec::new()) }),
            modules,
        });
        self.plugins.push(plugin.clone());
        Ok(plugin)
    }

    /// Registers a plugin linked into this binary (its crate as an rlib), with
    /// the same checks and adapters as a loaded one but without `dlopen`.
    pub fn load_static(&mut self, decl: &'static PluginDecl) -> Result<Arc<Plugin>, PluginError> {
        let info = DeclInfo::from_static(decl);
        let path = PathBuf::from(format!("<static {}>", info.name));
        let warnings = decl::check_declaration(&path, &info, self.config.allow_panic_abort)?;
        if let Some(p) = self.plugin(&info.name) {
            return Err(PluginError::Duplicate { name: info.name.clone(), path, existing: p.info.path.clone().unwrap_or_else(|| PathBuf::from("<static>")) });
        }
        // SAFETY: checked declaration of a plugin linked into this binary.
        let modules = unsafe { register(decl, &path) }?;
        self.warnings.extend(warnings);
        let plugin = Arc::new(Plugin { info: Arc::new(PluginInfo { decl: info, path: None, sha256: None, poisoned: Mutex::new(Vec::new()) }), modules });
        self.plugins.push(plugin.clone());
        Ok(plugin)
    }

    /// The plugin a reference names, loading it from the search paths if it
    /// is not loaded yet.
    pub fn resolve(&mut self, reference: &str) -> Result<(Arc<Plugin>, String), PluginError> {
        let (p, m) = parse_reference(reference)?;
        let plugin = match self.plugin(p) {
            Some(pl) => pl.clone(),
            None => {
                let path = self.find(p)?;
                self.load_path(&path)?
            }
        };
        Ok((plugin, m.to_string()))
    }

    /// Every module panic so far, as `plugin `P` module `M` panicked: ...`.
    pub fn poison_reports(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.plugins {
            if let Ok(list) = p.info.poisoned.lock() {
                for (m, msg) in list.iter() {
                    out.push(PluginError::Panicked { plugin: p.name().to_string(), module: m.clone(), message: msg.clone() }.to_string());
                }
            }
        }
        out
    }

    /// A world model instance (`reference` is `plugin:NAME/MODULE` or `NAME/MODULE`).
    pub fn world_model(&mut self, reference: &str, config: &str) -> Result<PluginWorldModel, PluginError> {
        let (p, m) = self.resolve(reference)?;
        p.world_model(&m, config)
    }
    /// An intrinsic cost term instance.
    pub fn intrinsic_cost(&mut self, reference: &str, config: &str) -> Result<PluginIntrinsicCost, PluginError> {
        let (p, m) = self.resolve(reference)?;
        p.intrinsic_cost(&m, config)
    }
    /// A critic instance.
    pub fn critic(&mut self, reference: &str, config: &str) -> Result<PluginCritic, PluginError> {
        let (p, m) = self.resolve(reference)?;
        p.critic(&m, config)
    }
    /// A perception instance.
    pub fn perception(&mut self, reference: &str, config: &str) -> Result<PluginPerception, PluginError> {
        let (p, m) = self.resolve(reference)?;
        p.perception(&m, config)
    }
    /// An actor instance.
    pub fn actor(&mut self, reference: &str, config: &str) -> Result<PluginActor, PluginError> {
        let (p, m) = self.resolve(reference)?;
        p.actor(&m, config)
    }
    /// A planner instance planning within `bounds`.
    pub fn planner(&mut self, reference: &str, config: &str, bounds: ami_core::Bounds) -> Result<PluginPlanner, PluginError> {
        let (p, m) = self.resolve(reference)?;
        p.planner(&m, config, bounds)
    }
    /// A short-term memory instance.
    pub fn memory(&mut self, reference: &str, config: &str) -> Result<PluginMemory, PluginError> {
        let (p, m) = self.resolve(reference)?;
        p.memory(&m, config)
    }
    /// A configurator instance.
    pub fn configurator(&mut self, reference: &str, config: &str) -> Result<PluginConfigurator, PluginError> {
        let (p, m) = self.resolve(reference)?;
        p.configurator(&m, config)
    }
    /// An environment instance.
    pub fn environment(&mut self, reference: &str, config: &str) -> Result<PluginEnvironment, PluginError> {
        let (p, m) = self.resolve(reference)?;
        p.environment(&m, config)
    }
}

/// Creates an instance with `config` and reports its [`Dims`] (for `ami
/// plugin inspect`).
pub fn probe_dims(plugin: &Plugin, module: &str, config: &str) -> Result<Dims, PluginError> {
    let m = plugin.module(module)?;
    let inst = Instance::create(plugin.info.clone(), m, config)?;
    inst.dims()
}

/// One live module instance: the plugin's pointer, its vtable, and whether
/// it is poisoned. Dropping it destroys the instance unless poisoned.
pub(crate) struct Instance {
    ptr: NonNull<c_void>,
    vtable: NonNull<VTableHeader>,
    plugin: Arc<PluginInfo>,
    module: String,
    poisoned: AtomicBool,
}

// SAFETY: the ABI requires every module type to be `Send` (declare_plugin!
// enforces it for Rust plugins: `Module: Send`), and the vtable is immutable
// static data.
unsafe impl Send for Instance {}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plugin:{}/{}{}", self.plugin.name(), self.module, if self.poisoned.load(Ordering::Relaxed) { " (poisoned)" } else { "" })
    }
}

impl Instance {
    fn create(plugin: Arc<PluginInfo>, m: &ModuleInfo, config: &str) -> Result<Self, PluginError> {
        let vtable = m.vtable.0;
        // SAFETY: checked at registration: a vtable of `m.kind` at least as large as ours.
        let header = unsafe { vtable.as_ref() };
        let mut out: *mut c_void = std::ptr::null_mut();
        let mut buf = [MaybeUninit::<u8>::uninit(); 1024];
        let mut err = ErrBuf { ptr: buf.as_mut_ptr().cast(), cap: buf.len(), len: 0 };
        // SAFETY: `create` of a checked vtable; config text and out slot live across the call.
        let st = unsafe { (header.create)(Str::borrow(config), &mut out, &mut err) };
        let module = m.name.clone();
        if st != Status::OK {
            let message = err_text(&buf, &err);
            let plugin_name = plugin.name().to_string();
            return Err(if st == Status::PANICKED {
                plugin.record_poison(&module, &message);
                PluginError::Panicked { plugin: plugin_name, module, message }
            } else {
                PluginError::Module { plugin: plugin_name, module, message: format!("cannot create: {message}") }
            });
        }
        let ptr = NonNull::new(out).ok_or_else(|| PluginError::Module {
            plugin: plugin.name().into(),
            module: module.clone(),
            message: "create returned null".into(),
        })?;
        Ok(Self { ptr, vtable, plugin, module, poisoned: AtomicBool::new(false) })
    }

    fn header(&self) -> &'static VTableHeader {
        // SAFETY: checked at registration; static in a never-unloaded library.
        unsafe { &*self.vtable.as_ptr() }
    }

    /// The kind vtable.
    ///
    /// # Safety
    /// `V` is the vtable type of this instance's kind.
    unsafe fn vtable<V>(&self) -> &'static V {
        // SAFETY: forwarded: the registration checked kind and size; vtables
        // are static data of a library that is never unloaded.
        unsafe { &*self.vtable.cast::<V>().as_ptr() }
    }

    fn this(&self) -> *const c_void {
        self.ptr.as_ptr()
    }

    fn this_mut(&mut self) -> *mut c_void {
        self.ptr.as_ptr()
    }

    /// `plugin:NAME/MODULE`.
    pub(crate) fn label(&self) -> String {
        format!("plugin:{}/{}", self.plugin.name(), self.module)
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    fn poisoned_error(&self) -> PluginError {
        let msg = self.plugin.poisoned.lock().ok().and_then(|l| l.iter().rev().find(|(m, _)| *m == self.module).map(|(_, s)| s.clone())).unwrap_or_default();
        PluginError::Panicked { plugin: self.plugin.name().into(), module: self.module.clone(), message: msg }
    }

    /// Runs one ABI call with a fresh error buffer and maps its status.
    #[inline]
    fn call(&self, f: impl FnOnce(*mut ErrBuf) -> Status) -> Result<(), PluginError> {
        if self.is_poisoned() {
            return Err(self.poisoned_error());
        }
        let mut buf = [MaybeUninit::<u8>::uninit(); 512];
        let mut err = ErrBuf { ptr: buf.as_mut_ptr().cast(), cap: buf.len(), len: 0 };
        let st = f(&mut err);
        if st == Status::OK {
            return Ok(());
        }
        self.fail(st, err_text(&buf, &err))
    }

    #[cold]
    fn fail(&self, st: Status, message: String) -> Result<(), PluginError> {
        if st == Status::ERROR {
            return Err(PluginError::Module { plugin: self.plugin.name().into(), module: self.module.clone(), message });
        }
        let message = if st == Status::PANICKED { message } else { format!("returned the unknown status {} ({message})", st.0) };
        self.poisoned.store(true, Ordering::Release);
        self.plugin.record_poison(&self.module, &message);
        tracing::error!("plugin `{}` module `{}` panicked: {message}; poisoned", self.plugin.name(), self.module);
        Err(PluginError::Panicked { plugin: self.plugin.name().into(), module: self.module.clone(), message })
    }

    fn dims(&self) -> Result<Dims, PluginError> {
        let mut d = Dims::default();
        let h = self.header();
        // SAFETY: `dims` of a checked vtable on a live instance; `d` outlives the call.
        self.call(|err| unsafe { (h.dims)(self.this(), &mut d, err) })?;
        Ok(d)
    }

    fn reset(&mut self, seed: u64) -> Result<(), PluginError> {
        let reset = self.header().reset;
        let this = self.this_mut();
        // SAFETY: `reset` of a checked vtable on a live instance held exclusively.
        self.call(|err| unsafe { reset(this, seed, err) })
    }
}

fn err_text(buf: &[MaybeUninit<u8>], err: &ErrBuf) -> String {
    let n = err.len.min(buf.len());
    // SAFETY: the plugin initialised the first `len` bytes (ErrBuf contract; `len <= cap`).
    let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
    let s = String::from_utf8_lossy(bytes).into_owned();
    if s.is_empty() {
        "(no message)".into()
    } else {
        s
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if self.is_poisoned() {
            // A poisoned instance may be in any state: leak it rather than run its Drop.
            return;
        }
        let destroy = self.header().destroy;
        // SAFETY: the instance is live, owned by us, and destroyed exactly once.
        unsafe { destroy(self.ptr.as_ptr()) };
    }
}

/// The size of the declaration header read from files (re-exported for tests).
pub const DECLARATION_HEADER_SIZE: usize = DECL_HEADER_SIZE;
