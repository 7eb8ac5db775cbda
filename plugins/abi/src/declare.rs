//! The [`declare_plugin!`](crate::declare_plugin) macro, [`PluginDecl::new`] that its expansion builds the
//! exported static with, and the `__private` functions the expansion calls (re-exported at the crate root,
//! where `$crate::__private::...` finds them). `PluginDecl::new` lives here rather than in decl.rs because
//! it reads [`LAYOUT_HASH`], whose computation (layout.rs) covers `PluginDecl` itself.

use std::mem::size_of;

use crate::decl::{fixed, target, PluginDecl, ABI_MAJOR, ABI_MINOR, FLAG_DEBUG_ASSERTIONS, FLAG_PANIC_UNWIND, MAGIC};
use crate::host::RegisterFn;
use crate::layout::LAYOUT_HASH;

impl PluginDecl {
    /// A declaration of this ABI version (used by [`declare_plugin!`](crate::declare_plugin)).
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
}

#[doc(hidden)]
pub mod __private {
    use std::ffi::c_void;
    use std::mem::size_of;
    use std::sync::atomic::Ordering;

    use crate::host::{HostApi, ModuleDesc, Registrar};
    use crate::kinds::Module;
    use crate::logging::{HOST, PLUGIN_NAME, PLUGIN_NAME_LEN};
    use crate::types::{ErrBuf, ModuleKind, Status, Str};

    /// Remembers the host API and plugin name for [`log`](crate::log).
    ///
    /// # Safety
    /// `host` is null or valid for the life of the process.
    pub unsafe fn register_begin(host: *const HostApi, name: &'static str) {
        PLUGIN_NAME_LEN.store(name.len(), Ordering::Release);
        PLUGIN_NAME.store(name.as_ptr().cast_mut(), Ordering::Release);
        if !host.is_null() {
            HOST.store(host.cast_mut(), Ordering::Release);
        }
    }

    /// Adds module `M` through the registrar.
    ///
    /// # Safety
    /// `reg` and `err` come from the host; `vtable` is a static vtable of `kind`.
    pub unsafe fn add_module<M: Module>(reg: *const Registrar, kind: ModuleKind, vtable: *const c_void, err: *mut ErrBuf) -> Status {
        let desc = ModuleDesc {
            size: size_of::<ModuleDesc>() as u32,
            kind,
            name: Str::new(M::NAME),
            description: Str::new(M::DESCRIPTION),
            params: M::PARAMS.as_ptr(),
            n_params: M::PARAMS.len(),
            vtable,
        };
        if reg.is_null() {
            // SAFETY: forwarded from the caller.
            unsafe { ErrBuf::write(err, "null registrar") };
            return Status::ERROR;
        }
        // SAFETY: the host passed a valid registrar; `desc` lives across the call.
        unsafe { ((*reg).add_module)((*reg).ctx, &desc, err) }
    }
}

/// Declares a plugin: exports the [`PluginDecl`] static `AMI_PLUGIN_DECL_<name>`
/// and a `register` function adding each listed module, and defines
/// `ami_plugin_decl()` so the same crate can be linked statically (as an
/// rlib) and loaded without `dlopen`.
///
/// Each module is `kind: Type`, where `kind` is one of `perception`,
/// `world_model`, `intrinsic_cost`, `critic`, `actor`, `planner`, `memory`,
/// `configurator`, `environment` and `Type` implements [`Module`] and the
/// matching trait of [`kinds`]. Use it once per library.
///
/// [`PluginDecl`]: crate::PluginDecl
/// [`Module`]: crate::Module
/// [`kinds`]: crate::kinds
#[macro_export]
macro_rules! declare_plugin {
    (name: $name:literal, version: $version:expr, modules: [ $( $kind:ident : $ty:ty ),* $(,)? ] $(,)?) => {
        #[doc(hidden)]
        unsafe extern "C" fn __ami_plugin_register(
            host: *const $crate::HostApi,
            reg: *const $crate::Registrar,
            err: *mut $crate::ErrBuf,
        ) -> $crate::Status {
            // SAFETY: the host passes a valid `HostApi` (or null), registrar and
            // error buffer; see the ami-plugin-abi documentation.
            unsafe {
                $crate::__private::register_begin(host, $name);
                $crate::guard(err, || {
                    $(
                        {
                            static VT: $crate::kinds::$kind::VTable = $crate::kinds::$kind::vtable::<$ty>();
                            let vt = (&VT as *const $crate::kinds::$kind::VTable).cast::<::std::ffi::c_void>();
                            let st = $crate::__private::add_module::<$ty>(reg, $crate::kinds::$kind::KIND, vt, err);
                            if st != $crate::Status::OK {
                                let e = &*err;
                                let msg = if e.ptr.is_null() { "" } else {
                                    ::std::str::from_utf8(::std::slice::from_raw_parts(e.ptr, e.len)).unwrap_or("")
                                };
                                return Err($crate::Error::new(::std::format!("registering {}: {}", <$ty as $crate::Module>::NAME, msg)));
                            }
                        }
                    )*
                    Ok(())
                })
            }
        }

        /// The plugin's declaration, exported for the ami host.
        #[unsafe(export_name = ::std::concat!("AMI_PLUGIN_DECL_", $name))]
        pub static AMI_PLUGIN_DECL: $crate::PluginDecl = $crate::PluginDecl::new($name, $version, __ami_plugin_register);

        /// The declaration, for linking this plugin statically.
        pub fn ami_plugin_decl() -> &'static $crate::PluginDecl {
            &AMI_PLUGIN_DECL
        }
    };
}
