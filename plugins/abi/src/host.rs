//! What the host and a plugin's `register` function exchange: the
//! [`HostApi`], the [`Registrar`] and the [`ModuleDesc`] of each module.

use std::ffi::c_void;

use crate::types::{ErrBuf, ModuleKind, Param, Status, Str};

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
    /// The kind's vtable (e.g. [`kinds::WorldModelVTable`](crate::kinds::WorldModelVTable)), static in the library.
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
