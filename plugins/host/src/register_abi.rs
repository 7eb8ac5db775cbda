//! The registration side of the ABI: the [`HostApi`] handed to plugins, the
//! registrar callback that reads and checks each module descriptor, and
//! [`register`], which runs a plugin's register function and collects its
//! modules.
//!
//! (`register.rs` is something else: it turns loaded modules into
//! agent-file implementations.)

use std::ffi::c_void;
use std::path::Path;
use std::ptr::NonNull;

use ami_plugin_abi::kinds::{
    ActorVTable, ConfiguratorVTable, CriticVTable, EnvironmentVTable, IntrinsicCostVTable, MemoryVTable, PerceptionVTable, PlannerVTable, WorldModelVTable,
};
use ami_plugin_abi::{ErrBuf, HostApi, ModuleDesc, ModuleKind, PluginDecl, Registrar, Status, Str, VTableHeader, ABI_MAJOR, ABI_MINOR};

use crate::error::PluginError;
use crate::info::{ModuleInfo, ParamInfo, VTablePtr};

/// The host services every plugin's register function receives.
static HOST_API: HostApi = HostApi { size: std::mem::size_of::<HostApi>() as u32, abi_major: ABI_MAJOR, abi_minor: ABI_MINOR, log: host_log };

/// [`HostApi::log`]: a plugin's log line, forwarded to `tracing`.
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

/// What [`add_module`] collects during one [`register`] call.
struct RegisterCtx {
    modules: Vec<ModuleInfo>,
    problems: Vec<String>,
}

/// The vtable size this host needs for `kind`, or `None` for a kind it
/// does not know.
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

/// Reads and checks one module descriptor; `Ok(None)` for a kind this host
/// does not know (skipped with a warning).
///
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

/// [`Registrar::add_module`]: records one module in the [`RegisterCtx`].
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
pub(crate) unsafe fn register(decl: &'static PluginDecl, path: &Path) -> Result<Vec<ModuleInfo>, PluginError> {
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
