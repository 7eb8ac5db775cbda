//! The plugin host: [`PluginHostConfig`] (where plugins come from and what
//! is trusted) and [`PluginHost`], which finds, checks and loads libraries
//! and creates module instances from them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ami_plugin_abi::PluginDecl;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::adapters::{
    PluginActor, PluginConfigurator, PluginCritic, PluginEnvironment, PluginIntrinsicCost, PluginMemory, PluginPerception, PluginPlanner, PluginWorldModel,
};
use crate::decl::{self, DeclInfo};
use crate::error::PluginError;
use crate::image::Image;
use crate::info::PluginInfo;
use crate::plugin::Plugin;
use crate::probe::{self, ProbeCommand};
use crate::register_abi::register;

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
    /// Load each library in a child process first ([`crate::probe`]), so a
    /// corrupt file crashes the child, not this process. Not settable from
    /// a file: the program embedding the host decides.
    #[serde(skip)]
    pub probe: Option<ProbeCommand>,
}

/// The largest library file the host reads (1 GiB): a larger one is refused
/// before anything is allocated for it.
pub const MAX_LIBRARY_BYTES: u64 = 1 << 30;

/// The plugin host: loads libraries and creates module instances.
#[derive(Debug, Default)]
pub struct PluginHost {
    config: PluginHostConfig,
    plugins: Vec<Arc<Plugin>>,
    warnings: Vec<String>,
    /// The pins' keys that matched a library loaded.
    used_pins: std::collections::BTreeSet<String>,
}

/// Splits `plugin:NAME/MODULE` or `NAME/MODULE`.
pub fn parse_reference(r: &str) -> Result<(&str, &str), PluginError> {
    let s = r.strip_prefix("plugin:").unwrap_or(r);
    match s.split_once('/') {
        Some((p, m)) if !p.is_empty() && !m.is_empty() && !m.contains('/') => Ok((p, m)),
        _ => Err(PluginError::BadReference(r.to_string())),
    }
}

/// Reads a library file through one descriptor: a regular file of at most
/// [`MAX_LIBRARY_BYTES`], checked before anything is allocated for it.
fn read_library(path: &Path) -> Result<Vec<u8>, PluginError> {
    let io = |source| PluginError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(PluginError::NotALibrary { path: path.to_path_buf(), reason: "not a regular file".into() });
    }
    if meta.len() > MAX_LIBRARY_BYTES {
        return Err(PluginError::NotALibrary {
            path: path.to_path_buf(),
            reason: format!("{} bytes, more than the {MAX_LIBRARY_BYTES} a plugin may have", meta.len()),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // Bounded again while reading: the file may grow after the check.
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_LIBRARY_BYTES + 1), &mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_LIBRARY_BYTES {
        return Err(PluginError::NotALibrary {
            path: path.to_path_buf(),
            reason: format!("grew past the {MAX_LIBRARY_BYTES} bytes a plugin may have while being read"),
        });
    }
    Ok(bytes)
}

/// Lower-case hexadecimal digits of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl PluginHost {
    /// A host with a configuration.
    pub fn new(config: PluginHostConfig) -> Self {
        Self { config, plugins: Vec::new(), warnings: Vec::new(), used_pins: Default::default() }
    }
    /// The configuration.
    pub fn config(&self) -> &PluginHostConfig {
        &self.config
    }
    /// Adds a SHA-256 pin (hex) for a plugin name or library path.
    pub fn pin(&mut self, key: impl Into<String>, sha256_hex: impl Into<String>) {
        self.config.sha256.insert(key.into(), sha256_hex.into());
    }
    /// The pins whose key matched no library loaded so far (a misspelt
    /// plugin name pins nothing: the caller refuses it once every plugin is
    /// loaded, rather than run unverified code).
    pub fn unused_pins(&self) -> Vec<&str> {
        self.config.sha256.keys().filter(|k| !self.used_pins.contains(*k)).map(String::as_str).collect()
    }
    /// Refuses pins that matched no library loaded ([`PluginError::UnusedPins`]);
    /// call it once every plugin is loaded.
    pub fn check_pins(&self) -> Result<(), PluginError> {
        let unused = self.unused_pins();
        if unused.is_empty() {
            return Ok(());
        }
        let loaded: Vec<String> = self.plugins.iter().map(|p| format!("`{}`", p.name())).collect();
        Err(PluginError::UnusedPins {
            pins: unused.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
            loaded: if loaded.is_empty() { "none".to_string() } else { loaded.join(", ") },
        })
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
        decl::read_declaration(path, &read_library(path)?)
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
            // A bare name is looked up in the search paths only: a file of
            // that name in the working directory is not loaded.
            let p = self.find(&name)?;
            return self.load_path(&p);
        }
        self.load_path(given)
    }

    /// Opens the library once and checks and loads exactly the bytes read
    /// (never the path a second time: a file swapped in between would be
    /// loaded unverified).
    fn load_path(&mut self, path: &Path) -> Result<Arc<Plugin>, PluginError> {
        let bytes = read_library(path)?;
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(p) = self.plugins.iter().find(|p| p.info.path.as_deref() == Some(canonical.as_path())) {
            return Ok(p.clone());
        }
        self.load_bytes(path, &canonical, &bytes)
    }

    /// Checks `bytes` (the library read from `path`) and loads them.
    pub(crate) fn load_bytes(&mut self, path: &Path, canonical: &Path, bytes: &[u8]) -> Result<Arc<Plugin>, PluginError> {
        let digest = hex(&sha2::Sha256::digest(bytes));
        let info = decl::read_declaration(path, bytes)?;
        let pin = self.pin_for(path, canonical, &info.name).map(|(k, v)| (k.clone(), v.clone()));
        if let Some((key, want)) = pin {
            self.used_pins.insert(key.clone());
            let want_l = want.trim().to_ascii_lowercase();
            if want_l.len() != 64 || !want_l.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(PluginError::BadPin { key, value: want });
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
        // What is probed and loaded is the image of the bytes just checked.
        let image = Image::new(bytes).map_err(|source| PluginError::Io { path: path.to_path_buf(), source })?;
        if let Some(cmd) = &self.config.probe {
            probe::probe(cmd, &image, path, self.config.allow_panic_abort)?;
        }
        // Open with RTLD_NOW | RTLD_LOCAL: all symbols resolved up front, none
        // leaking into the global namespace.
        let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL;
        // SAFETY: loading runs the library's initialisers; the user configured
        // this path, and the image's bytes passed every check above.
        let lib = unsafe { libloading::os::unix::Library::open(Some(image.load_path()), flags) }
            .map_err(|e| PluginError::Open { path: path.to_path_buf(), reason: e.to_string() })?;
        image.keep();
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
            return Err(PluginError::Open { path: path.to_path_buf(), reason: "the declaration in memory differs from the one in the file".into() });
        }
        // SAFETY: checked declaration in a library that stays loaded.
        let modules = unsafe { register(decl, path) }?;
        for w in &warnings {
            tracing::warn!("{w}");
        }
        self.warnings.extend(warnings);
        let plugin = Arc::new(Plugin {
            info: Arc::new(PluginInfo { decl: info, path: Some(canonical.to_path_buf()), sha256: Some(digest), poisoned: Mutex::new(Vec::new()) }),
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
