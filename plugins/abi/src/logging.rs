//! Plugin-side logging through the host. The host API and plugin name are
//! stored here by `register_begin` (in declare.rs), which the `register`
//! function that [`declare_plugin!`](crate::declare_plugin) generates calls first.

use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::host::HostApi;
use crate::types::Str;

pub(crate) static HOST: AtomicPtr<HostApi> = AtomicPtr::new(std::ptr::null_mut());
pub(crate) static PLUGIN_NAME: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
pub(crate) static PLUGIN_NAME_LEN: AtomicUsize = AtomicUsize::new(0);

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
