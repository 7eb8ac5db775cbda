//! Why a plugin could not be loaded or used: [`PluginError`] and its
//! conversion into the core error type.

use std::path::PathBuf;

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
    /// Loading the library in a probe child process failed: it crashed,
    /// hung or reported an error.
    #[error("plugin {path}: refused: {reason}")]
    Probe {
        /// The library file.
        path: PathBuf,
        /// What happened to the child.
        reason: String,
    },
    /// SHA-256 pins whose key matched no library loaded (a misspelt name
    /// would leave the real plugin unverified).
    #[error("the pin(s) {pins} name no plugin loaded (loaded: {loaded}); a pin's key is a plugin name or a library path")]
    UnusedPins {
        /// The pins' keys, quoted.
        pins: String,
        /// The plugins loaded, quoted, or `none`.
        loaded: String,
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

impl PluginError {
    /// Whether the error is the user's input (a library that is missing,
    /// corrupt, incompatible or mispinned, a bad reference or module name):
    /// the CLI exits 2. A module's own failure or panic is not.
    pub fn is_user_input(&self) -> bool {
        !matches!(self, PluginError::Module { .. } | PluginError::Panicked { .. })
    }
}

impl From<PluginError> for CoreError {
    fn from(e: PluginError) -> Self {
        match &e {
            PluginError::Module { plugin, module, message } => CoreError::module(format!("plugin:{plugin}/{module}"), message.clone()),
            PluginError::Panicked { plugin, module, .. } => CoreError::module(format!("plugin:{plugin}/{module}"), e.to_string()),
            _ => CoreError::External { user_input: e.is_user_input(), error: Box::new(e) },
        }
    }
}
