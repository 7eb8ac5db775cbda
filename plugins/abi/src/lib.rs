//! # ami-plugin-abi
//!
//! The contract between the ami host and plugin libraries: a versioned C ABI
//! made only of `#[repr(C)]` types, plus [`declare_plugin!`], which turns
//! ordinary Rust types implementing the module traits of [`kinds`] into an
//! exported declaration and `catch_unwind` shims. This crate has no
//! dependencies and never will.
//!
//! A plugin is a `cdylib` exporting one static, [`PluginDecl`], under the
//! symbol [`DECL_SYMBOL`]`NAME` (`AMI_PLUGIN_DECL_acrobot` for the plugin
//! `acrobot`: one name per plugin, so several plugin crates can be linked
//! statically into one binary). The host reads that static
//! **from the file** (without running plugin code) and refuses the library
//! unless the magic, ABI major/minor, declaration size, layout hash, target
//! and panic strategy are compatible. Only then is the library opened and
//! its `register` function called; through the [`Registrar`] it adds any
//! number of modules of any kind, each with a kind-specific vtable that
//! starts with a [`VTableHeader`] and only ever grows at the end.
//!
//! Rules of the boundary:
//! * data crosses as [`TensorView`]s borrowing **host-owned** buffers; a
//!   plugin writes its outputs into views the host allocated and never
//!   hands back memory it owns;
//! * configuration crosses as JSON text ([`Str`]), parsed by [`Config`];
//! * errors are written into a host-owned [`ErrBuf`];
//! * every call into plugin code is wrapped in `catch_unwind`
//!   ([`guard`]): a panic becomes [`Status::PANICKED`] and the host poisons
//!   the module instance.
//!
//! ```
//! use ami_plugin_abi::prelude::*;
//!
//! /// `s' = s + dt * a` on a 1-D state.
//! pub struct Integrator { dt: f32 }
//!
//! impl Module for Integrator {
//!     const NAME: &'static str = "integrator";
//!     const PARAMS: &'static [Param] = &[Param::new("dt", "number", "0.1", "time step")];
//!     fn create(config: &Config) -> Result<Self, Error> {
//!         Ok(Self { dt: config.f32_or("dt", 0.1)? })
//!     }
//! }
//!
//! impl WorldModel for Integrator {
//!     fn state_dim(&self) -> usize { 1 }
//!     fn action_dim(&self) -> usize { 1 }
//!     fn predict(&self, states: Tensor<'_>, actions: Tensor<'_>, _latents: Option<Tensor<'_>>, mut next: TensorMut<'_>) -> Result<(), Error> {
//!         for i in 0..states.rows() {
//!             next.row_mut(i)[0] = states.row(i)[0] + self.dt * actions.row(i)[0];
//!         }
//!         Ok(())
//!     }
//! }
//!
//! ami_plugin_abi::declare_plugin! {
//!     name: "integrator",
//!     version: "0.1.0",
//!     modules: [world_model: Integrator],
//! }
//!
//! let decl = ami_plugin_decl();
//! assert_eq!(decl.name(), "integrator");
//! assert_eq!(decl.abi_major, ami_plugin_abi::ABI_MAJOR);
//! ```

use std::ffi::c_void;
use std::fmt;
use std::mem::{offset_of, size_of};
use std::sync::atomic::{AtomicPtr, Ordering};

mod declare;
mod json;
pub mod kinds;
mod tensor;

#[doc(hidden)]
pub use declare::__private;

pub use json::{Config, Json};
pub use kinds::{
    Actor, Batch, Configurator, CostContext, Critic, Environment, HostCostRef, IntrinsicCost, Memory, Modulation, Module, Perception, PlanInfo, Planner,
    Problem, StepResult, TransitionIn, TransitionOut, WorldModel,
};
pub use tensor::{Tensor, TensorMut, TensorView, DEVICE_CPU, DTYPE_F32, MAX_DIMS};

/// Everything a plugin author needs, in one `use`.
pub mod prelude {
    pub use crate::kinds::{
        Actor, Batch, Configurator, CostContext, Critic, Environment, HostCostRef, IntrinsicCost, Memory, Modulation, Module, Perception, PlanInfo, Planner,
        Problem, StepResult, TransitionIn, TransitionOut, WorldModel,
    };
    pub use crate::{Config, Error, Json, Param, Tensor, TensorMut};
}

/// The first eight bytes of every declaration.
pub const MAGIC: [u8; 8] = *b"AMIPLUG\0";
/// ABI major version: a plugin whose major differs from the host's is refused.
pub const ABI_MAJOR: u16 = 1;
/// ABI minor version: minors only append fields and functions at the end of
/// vtables. A host accepts plugins of its own minor or older.
pub const ABI_MINOR: u16 = 0;
/// The prefix of the exported symbol holding the [`PluginDecl`]; the plugin
/// name follows (`AMI_PLUGIN_DECL_acrobot`). A library exports exactly one.
pub const DECL_SYMBOL: &str = "AMI_PLUGIN_DECL_";
/// Bytes of the declaration the host reads from the file before loading:
/// everything up to (not including) the `register` pointer.
pub const DECL_HEADER_SIZE: usize = offset_of!(PluginDecl, register);
/// Flag: the plugin was built with `panic = "unwind"` (panics can be caught).
pub const FLAG_PANIC_UNWIND: u64 = 1;
/// Flag: the plugin was built with debug assertions.
pub const FLAG_DEBUG_ASSERTIONS: u64 = 2;

/// The status every ABI call returns.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub u32);

impl Status {
    /// Success.
    pub const OK: Status = Status(0);
    /// A reported error; the message is in the [`ErrBuf`].
    pub const ERROR: Status = Status(1);
    /// The module panicked; the panic message is in the [`ErrBuf`]. The
    /// host poisons the instance and never calls it again.
    pub const PANICKED: Status = Status(2);
}

/// A borrowed UTF-8 string: pointer and length, no terminator.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Str {
    /// First byte (may dangle when `len == 0`).
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

// SAFETY: a `Str` is a read-only borrow of UTF-8 bytes; sharing the pointer
// between threads is as safe as sharing the `&str` it was made from.
unsafe impl Send for Str {}
// SAFETY: see `Send`: nothing is ever written through a `Str`.
unsafe impl Sync for Str {}

impl Str {
    /// Borrows a static string (usable in constants).
    pub const fn new(s: &'static str) -> Self {
        Self { ptr: s.as_ptr(), len: s.len() }
    }
    /// Borrows any string; the caller keeps `s` alive while the `Str` is used.
    pub fn borrow(s: &str) -> Self {
        Self { ptr: s.as_ptr(), len: s.len() }
    }
    /// The string, or an error naming the problem if it is not UTF-8.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that outlive `'a`.
    pub unsafe fn as_str<'a>(&self) -> Result<&'a str, Error> {
        if self.len == 0 {
            return Ok("");
        }
        if self.ptr.is_null() {
            return Err(Error::new("null string pointer with a non-zero length"));
        }
        // SAFETY: the caller guarantees `len` readable bytes at `ptr`.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        std::str::from_utf8(bytes).map_err(|e| Error::new(format!("string is not UTF-8: {e}")))
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Str({} bytes)", self.len)
    }
}

/// A host-owned buffer the plugin writes an error message into. The plugin
/// copies at most `cap` bytes (cut at a character boundary) and sets `len`;
/// nothing is allocated or freed across the boundary.
#[repr(C)]
#[derive(Debug)]
pub struct ErrBuf {
    /// Start of the host's buffer.
    pub ptr: *mut u8,
    /// Its capacity in bytes.
    pub cap: usize,
    /// Bytes written by the plugin.
    pub len: usize,
}

impl ErrBuf {
    /// Writes `msg` (truncated to the capacity at a character boundary) into
    /// the buffer behind `err`; does nothing if `err` is null.
    ///
    /// # Safety
    /// `err` is null or points to a valid `ErrBuf` whose `ptr` has `cap`
    /// writable bytes.
    pub unsafe fn write(err: *mut ErrBuf, msg: &str) {
        if err.is_null() {
            return;
        }
        // SAFETY: the caller guarantees `err` is valid when non-null.
        let e = unsafe { &mut *err };
        if e.ptr.is_null() {
            e.len = 0;
            return;
        }
        let mut n = msg.len().min(e.cap);
        while n > 0 && !msg.is_char_boundary(n) {
            n -= 1;
        }
        // SAFETY: `n <= cap` bytes are writable at `ptr`; `msg` cannot overlap
        // a buffer the host handed out for writing.
        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), e.ptr, n) };
        e.len = n;
    }
}

/// The error type of plugin code: a message the host shows to the user,
/// prefixed with the plugin and module names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl Error {
    /// An error with a message.
    pub fn new(msg: impl fmt::Display) -> Self {
        Self(msg.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

/// The kind of a module, as a number that new ABI minors may extend.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModuleKind(pub u32);

impl ModuleKind {
    /// Perception: observations -> states.
    pub const PERCEPTION: ModuleKind = ModuleKind(1);
    /// World model: (states, actions) -> next states.
    pub const WORLD_MODEL: ModuleKind = ModuleKind(2);
    /// Intrinsic cost term.
    pub const INTRINSIC_COST: ModuleKind = ModuleKind(3);
    /// Trainable critic term.
    pub const CRITIC: ModuleKind = ModuleKind(4);
    /// Actor (Mode-1 policy or any acting module).
    pub const ACTOR: ModuleKind = ModuleKind(5);
    /// Mode-2 planner that calls back into the host's world model and cost.
    pub const PLANNER: ModuleKind = ModuleKind(6);
    /// Short-term memory.
    pub const MEMORY: ModuleKind = ModuleKind(7);
    /// Configurator.
    pub const CONFIGURATOR: ModuleKind = ModuleKind(8);
    /// Environment (a task the agent acts in).
    pub const ENVIRONMENT: ModuleKind = ModuleKind(9);

    /// The kind's name (`world_model`, ...), or `None` for a kind this
    /// version of the ABI does not know.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::PERCEPTION => "perception",
            Self::WORLD_MODEL => "world_model",
            Self::INTRINSIC_COST => "intrinsic_cost",
            Self::CRITIC => "critic",
            Self::ACTOR => "actor",
            Self::PLANNER => "planner",
            Self::MEMORY => "memory",
            Self::CONFIGURATOR => "configurator",
            Self::ENVIRONMENT => "environment",
            _ => return None,
        })
    }
}

impl fmt::Display for ModuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "unknown kind {}", self.0),
        }
    }
}

/// A documented configuration parameter of a module (shown by
/// `ami plugin inspect`; keys not declared are refused at creation).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Key in the JSON configuration object.
    pub name: Str,
    /// JSON type in words (`number`, `integer`, `boolean`, `string`, `array of numbers`).
    pub ty: Str,
    /// Default value, as JSON text.
    pub default: Str,
    /// What it does.
    pub doc: Str,
}

impl Param {
    /// A parameter (usable in constants).
    pub const fn new(name: &'static str, ty: &'static str, default: &'static str, doc: &'static str) -> Self {
        Self { name: Str::new(name), ty: Str::new(ty), default: Str::new(default), doc: Str::new(doc) }
    }
}

/// Sizes of a module instance, asked once after creation. Fields that do
/// not apply to the module's kind are 0.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dims {
    /// Width of an observation (perception, environment).
    pub obs_dim: u64,
    /// Width of a state.
    pub state_dim: u64,
    /// Width of an action.
    pub action_dim: u64,
    /// Width of the latent variable (world model).
    pub latent_dim: u64,
    /// Planning horizon (planner).
    pub horizon: u64,
    /// Capacity (memory).
    pub capacity: u64,
    /// Steps after which an episode is truncated (environment).
    pub max_steps: u64,
    /// Reserved, 0.
    pub reserved: u64,
}

/// The functions every vtable starts with.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VTableHeader {
    /// Size in bytes of the whole vtable as the plugin compiled it; the host
    /// calls appended functions only if they lie within this size.
    pub size: u32,
    /// The module's kind (must equal the descriptor's).
    pub kind: ModuleKind,
    /// Creates an instance from JSON configuration text; writes it to `out`.
    pub create: unsafe extern "C" fn(config: Str, out: *mut *mut c_void, err: *mut ErrBuf) -> Status,
    /// Destroys an instance (never called on a poisoned one).
    pub destroy: unsafe extern "C" fn(this: *mut c_void),
    /// Starts a new episode with a seed.
    pub reset: unsafe extern "C" fn(this: *mut c_void, seed: u64, err: *mut ErrBuf) -> Status,
    /// Reports the instance's sizes.
    pub dims: unsafe extern "C" fn(this: *const c_void, out: *mut Dims, err: *mut ErrBuf) -> Status,
}

/// One module as registered by a plugin.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ModuleDesc {
    /// `size_of::<ModuleDesc>()` as the plugin compiled it.
    pub size: u32,
    /// The kind; selects the type behind `vtable`.
    pub kind: ModuleKind,
    /// Module name, unique within the plugin (`model`, `swingup`, ...).
    pub name: Str,
    /// One-line description.
    pub description: Str,
    /// Declared configuration parameters.
    pub params: *const Param,
    /// Number of entries at `params`.
    pub n_params: usize,
    /// The kind's vtable (e.g. [`kinds::WorldModelVTable`]), static in the library.
    pub vtable: *const c_void,
}

/// Logging services the host offers to plugins.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HostApi {
    /// `size_of::<HostApi>()` as the host compiled it.
    pub size: u32,
    /// The host's ABI major.
    pub abi_major: u16,
    /// The host's ABI minor.
    pub abi_minor: u16,
    /// Logs a message at a level (0 error, 1 warn, 2 info, 3 debug, 4 trace).
    pub log: unsafe extern "C" fn(level: u32, plugin: Str, msg: Str),
}

/// What `register` receives: the host's context and its callback.
#[repr(C)]
#[derive(Debug)]
pub struct Registrar {
    /// Opaque host state.
    pub ctx: *mut c_void,
    /// Adds one module; the host copies what it needs from `desc`.
    pub add_module: unsafe extern "C" fn(ctx: *mut c_void, desc: *const ModuleDesc, err: *mut ErrBuf) -> Status,
}

/// The signature of a plugin's register function.
pub type RegisterFn = unsafe extern "C" fn(host: *const HostApi, reg: *const Registrar, err: *mut ErrBuf) -> Status;

/// The exported declaration. Everything before `register` is plain bytes
/// (no pointers), so the host can read it straight from the file.
#[repr(C)]
#[derive(Debug)]
pub struct PluginDecl {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`ABI_MAJOR`] of the abi crate the plugin was built with.
    pub abi_major: u16,
    /// [`ABI_MINOR`] of the abi crate the plugin was built with.
    pub abi_minor: u16,
    /// `size_of::<PluginDecl>()` as the plugin compiled it.
    pub decl_size: u32,
    /// [`LAYOUT_HASH`] as the plugin compiled it.
    pub layout_hash: u64,
    /// [`FLAG_PANIC_UNWIND`] | [`FLAG_DEBUG_ASSERTIONS`].
    pub flags: u64,
    /// Plugin name, NUL-padded UTF-8.
    pub name: [u8; 64],
    /// Plugin version, NUL-padded UTF-8.
    pub version: [u8; 32],
    /// [`target()`] of the plugin build, NUL-padded.
    pub target: [u8; 64],
    /// Version of the ami-plugin-abi crate, NUL-padded.
    pub abi_crate_version: [u8; 32],
    /// The register function.
    pub register: RegisterFn,
}

impl PluginDecl {
    /// A declaration of this ABI version (used by [`declare_plugin!`]).
    /// Fails to compile if the name exceeds 63 bytes or the version 31.
    pub const fn new(name: &str, version: &str, register: RegisterFn) -> Self {
        let flags = if cfg!(panic = "unwind") { FLAG_PANIC_UNWIND } else { 0 } | if cfg!(debug_assertions) { FLAG_DEBUG_ASSERTIONS } else { 0 };
        Self {
            magic: MAGIC,
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            decl_size: size_of::<PluginDecl>() as u32,
            layout_hash: LAYOUT_HASH,
            flags,
            name: fixed::<64>(name),
            version: fixed::<32>(version),
            target: target(),
            abi_crate_version: fixed::<32>(env!("CARGO_PKG_VERSION")),
            register,
        }
    }
    /// The plugin name.
    pub fn name(&self) -> &str {
        fixed_str(&self.name)
    }
    /// The plugin version.
    pub fn version(&self) -> &str {
        fixed_str(&self.version)
    }
}

/// Reads a NUL-padded fixed string (up to the first NUL; invalid UTF-8 is cut
/// at the first bad byte).
pub fn fixed_str(bytes: &[u8]) -> &str {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    match std::str::from_utf8(&bytes[..end]) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    }
}

const fn fixed<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    assert!(b.len() < N, "string too long for a fixed declaration field");
    let mut out = [0u8; N];
    let mut i = 0;
    while i < b.len() {
        out[i] = b[i];
        i += 1;
    }
    out
}

const fn push(out: &mut [u8; 64], mut at: usize, s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && at < 63 {
        out[at] = b[i];
        at += 1;
        i += 1;
    }
    at
}

/// The target a library was built for, as NUL-padded text
/// `arch-os-env-pointerbits-endian` (e.g. `x86_64-linux-gnu-64-little`).
/// The host requires the plugin's to equal its own.
pub const fn target() -> [u8; 64] {
    let mut out = [0u8; 64];
    let mut at = push(&mut out, 0, std::env::consts::ARCH);
    at = push(&mut out, at, "-");
    at = push(&mut out, at, std::env::consts::OS);
    at = push(&mut out, at, "-");
    let env = if cfg!(target_env = "gnu") {
        "gnu"
    } else if cfg!(target_env = "musl") {
        "musl"
    } else if cfg!(target_env = "msvc") {
        "msvc"
    } else {
        "none"
    };
    at = push(&mut out, at, env);
    at = push(&mut out, at, if usize::BITS == 64 { "-64" } else { "-32" });
    push(&mut out, at, if cfg!(target_endian = "little") { "-little" } else { "-big" });
    out
}

// ---------------------------------------------------------------------------
// Layout hash: FNV-1a over the size, alignment and field offsets of every
// #[repr(C)] type of the ABI. Changing any of them changes the hash, so a
// plugin built against a different layout is refused even if someone forgot
// to bump the version.

const fn fnv(mut h: u64, v: u64) -> u64 {
    let mut i = 0;
    while i < 8 {
        h ^= (v >> (i * 8)) & 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

macro_rules! layout {
    ($h:ident, $t:ty; $($f:ident),* $(,)?) => {{
        $h = fnv($h, size_of::<$t>() as u64);
        $h = fnv($h, std::mem::align_of::<$t>() as u64);
        $( $h = fnv($h, offset_of!($t, $f) as u64); )*
    }};
}

const fn layout_hash() -> u64 {
    use kinds::*;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    h = fnv(h, ABI_MAJOR as u64);
    layout!(h, Str; ptr, len);
    layout!(h, ErrBuf; ptr, cap, len);
    layout!(h, Param; name, ty, default, doc);
    layout!(h, Dims; obs_dim, state_dim, action_dim, latent_dim, horizon, capacity, max_steps, reserved);
    layout!(h, VTableHeader; size, kind, create, destroy, reset, dims);
    layout!(h, ModuleDesc; size, kind, name, description, params, n_params, vtable);
    layout!(h, HostApi; size, abi_major, abi_minor, log);
    layout!(h, Registrar; ctx, add_module);
    layout!(h, PluginDecl; magic, abi_major, abi_minor, decl_size, layout_hash, flags, name, version, target, abi_crate_version, register);
    layout!(h, TensorView; data, dtype, device, ndim, flags, reserved, shape, strides);
    layout!(h, CostCtxFfi; goal, step);
    layout!(h, StepOut; reward, terminated, truncated, reserved);
    layout!(h, PlanInfoFfi; energy, iterations, evaluated);
    layout!(h, HostModel; ctx, state_dim, action_dim, predict);
    layout!(h, HostCost; ctx, has_terminal, step_energy, terminal_energy);
    layout!(h, PlanProblemFfi; state, low, high, model, cost);
    layout!(h, BatchFfi; states, actions, costs, next_states);
    layout!(h, TransitionFfi; t, state, action, cost, next_state, imagined);
    layout!(h, StrSink; ctx, write);
    layout!(h, PerceptionVTable; header, encode);
    layout!(h, WorldModelVTable; header, predict, vjp);
    layout!(h, IntrinsicCostVTable; header, add_cost);
    layout!(h, CriticVTable; header, add_value, train);
    layout!(h, ActorVTable; header, act, modulate);
    layout!(h, PlannerVTable; header, plan, set_horizon, set_budget);
    layout!(h, MemoryVTable; header, len, push, get, by_time, save, clear);
    layout!(h, ConfiguratorVTable; header, configure);
    layout!(h, EnvironmentVTable; header, bounds, reset_episode, step);
    h
}

/// The layout hash of this ABI version (see the source for what it covers).
pub const LAYOUT_HASH: u64 = layout_hash();

/// The layout hashes a host of this version accepts, by ABI minor.
pub const KNOWN_LAYOUT_HASHES: &[(u16, u64)] = &[(0, LAYOUT_HASH)];

// ---------------------------------------------------------------------------
// Plugin-side plumbing used by the macro (the macro itself and its
// `__private` helpers are in declare.rs).

static HOST: AtomicPtr<HostApi> = AtomicPtr::new(std::ptr::null_mut());
static PLUGIN_NAME: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static PLUGIN_NAME_LEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Log levels of [`log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Level {
    /// Errors.
    Error = 0,
    /// Warnings.
    Warn = 1,
    /// Information.
    Info = 2,
    /// Debugging.
    Debug = 3,
    /// Tracing.
    Trace = 4,
}

/// Logs through the host (its `tracing` subscriber). A no-op before the
/// host has registered the plugin. Plugin code must log this way: a
/// library's own copy of a logging crate has no subscriber.
pub fn log(level: Level, msg: &str) {
    let host = HOST.load(Ordering::Acquire);
    if host.is_null() {
        return;
    }
    let name = PLUGIN_NAME.load(Ordering::Acquire);
    let len = PLUGIN_NAME_LEN.load(Ordering::Acquire);
    let plugin = if name.is_null() { Str::new("") } else { Str { ptr: name, len } };
    // SAFETY: `HOST` was set from the host's `HostApi`, which the host keeps
    // alive for the life of the process (it never unloads plugins).
    unsafe { ((*host).log)(level as u32, plugin, Str::borrow(msg)) };
}

/// Runs `f`, turning an `Err` into [`Status::ERROR`] and a panic into
/// [`Status::PANICKED`], with the message written into `err`. Every shim
/// that [`declare_plugin!`] generates goes through here.
///
/// # Safety
/// `err` is null or a valid [`ErrBuf`].
#[inline(always)]
pub unsafe fn guard(err: *mut ErrBuf, f: impl FnOnce() -> Result<(), Error>) -> Status {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(())) => Status::OK,
        Ok(Err(e)) => {
            // SAFETY: forwarded from the caller.
            unsafe { ErrBuf::write(err, &e.0) };
            Status::ERROR
        }
        Err(payload) => {
            let msg = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "panic with a non-string payload".to_string()
            };
            // Dropping a payload can itself panic (a payload with a panicking
            // Drop); forget it instead: a few bytes leak once per poisoning.
            std::mem::forget(payload);
            // SAFETY: forwarded from the caller.
            unsafe { ErrBuf::write(err, &msg) };
            Status::PANICKED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_pointer_free_and_stable() {
        assert_eq!(offset_of!(PluginDecl, magic), 0);
        assert_eq!(offset_of!(PluginDecl, abi_major), 8);
        assert_eq!(offset_of!(PluginDecl, abi_minor), 10);
        assert_eq!(offset_of!(PluginDecl, decl_size), 12);
        assert_eq!(offset_of!(PluginDecl, layout_hash), 16);
        assert_eq!(DECL_HEADER_SIZE, 224);
        assert_eq!(fixed_str(&target()), format!("{}-{}-gnu-64-little", std::env::consts::ARCH, std::env::consts::OS));
    }

    #[test]
    fn errbuf_truncates_at_char_boundary() {
        let mut mem = [0u8; 5];
        let mut e = ErrBuf { ptr: mem.as_mut_ptr(), cap: mem.len(), len: 0 };
        // SAFETY: `e` points to `mem`.
        unsafe { ErrBuf::write(&mut e, "abcdé!") };
        assert_eq!(e.len, 4);
        assert_eq!(&mem[..4], b"abcd");
    }

    #[test]
    fn guard_contains_panics_and_errors() {
        let mut mem = [0u8; 64];
        let mut e = ErrBuf { ptr: mem.as_mut_ptr(), cap: mem.len(), len: 0 };
        // SAFETY: `e` is valid.
        let st = unsafe { guard(&mut e, || panic!("boom {}", 7)) };
        assert_eq!(st, Status::PANICKED);
        assert_eq!(&mem[..e.len], b"boom 7");
        // SAFETY: `e` is valid.
        let st = unsafe { guard(&mut e, || Err("bad".into())) };
        assert_eq!(st, Status::ERROR);
        assert_eq!(&mem[..e.len], b"bad");
    }
}
