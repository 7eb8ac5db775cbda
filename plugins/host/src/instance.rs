//! One live module instance ([`Instance`]): creating it through its
//! vtable, calling into it with panics turned into poisoning, and
//! destroying it.

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ami_plugin_abi::{Dims, ErrBuf, Status, Str, VTableHeader};

use crate::error::PluginError;
use crate::info::{ModuleInfo, PluginInfo};

/// One live module instance: the plugin's pointer, its vtable, and whether
/// it is poisoned. Dropping it destroys the instance unless poisoned.
pub(crate) struct Instance {
    ptr: NonNull<c_void>,
    vtable: NonNull<VTableHeader>,
    /// The plugin it comes from.
    pub(crate) plugin: Arc<PluginInfo>,
    /// Its module's name.
    pub(crate) module: String,
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
    /// Creates an instance of module `m` of `plugin` with JSON `config`.
    pub(crate) fn create(plugin: Arc<PluginInfo>, m: &ModuleInfo, config: &str) -> Result<Self, PluginError> {
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

    /// The common vtable header.
    fn header(&self) -> &'static VTableHeader {
        // SAFETY: checked at registration; static in a never-unloaded library.
        unsafe { &*self.vtable.as_ptr() }
    }

    /// The kind vtable.
    ///
    /// # Safety
    /// `V` is the vtable type of this instance's kind.
    pub(crate) unsafe fn vtable<V>(&self) -> &'static V {
        // SAFETY: forwarded: the registration checked kind and size; vtables
        // are static data of a library that is never unloaded.
        unsafe { &*self.vtable.cast::<V>().as_ptr() }
    }

    /// The plugin's instance pointer, for calls taking it by shared pointer.
    pub(crate) fn this(&self) -> *const c_void {
        self.ptr.as_ptr()
    }

    /// The plugin's instance pointer, for calls that need it exclusively.
    pub(crate) fn this_mut(&mut self) -> *mut c_void {
        self.ptr.as_ptr()
    }

    /// `plugin:NAME/MODULE`.
    pub(crate) fn label(&self) -> String {
        format!("plugin:{}/{}", self.plugin.name(), self.module)
    }

    /// Whether a call panicked and the instance is poisoned.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// The error for a call on a poisoned instance (with the recorded panic message).
    fn poisoned_error(&self) -> PluginError {
        let msg = self.plugin.poisoned.lock().ok().and_then(|l| l.iter().rev().find(|(m, _)| *m == self.module).map(|(_, s)| s.clone())).unwrap_or_default();
        PluginError::Panicked { plugin: self.plugin.name().into(), module: self.module.clone(), message: msg }
    }

    /// Runs one ABI call with a fresh error buffer and maps its status.
    #[inline]
    pub(crate) fn call(&self, f: impl FnOnce(*mut ErrBuf) -> Status) -> Result<(), PluginError> {
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

    /// Maps a failed status to an error, poisoning the instance unless it is
    /// an ordinary [`Status::ERROR`].
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

    /// The instance's [`Dims`].
    pub(crate) fn dims(&self) -> Result<Dims, PluginError> {
        let mut d = Dims::default();
        let h = self.header();
        // SAFETY: `dims` of a checked vtable on a live instance; `d` outlives the call.
        self.call(|err| unsafe { (h.dims)(self.this(), &mut d, err) })?;
        // Sizes the host allocates by are bounded before anything is.
        let bad = |what: &str, n: u64, max: u64| PluginError::Module {
            plugin: self.plugin.name().into(),
            module: self.module.clone(),
            message: format!("declares {what} {n}, more than the {max} ami accepts"),
        };
        for (what, n) in [
            ("an observation width of", d.obs_dim),
            ("a state width of", d.state_dim),
            ("an action width of", d.action_dim),
            ("a latent width of", d.latent_dim),
            ("a horizon of", d.horizon),
        ] {
            if n > MAX_DIM {
                return Err(bad(what, n, MAX_DIM));
            }
        }
        if d.capacity > MAX_CAPACITY {
            return Err(bad("a capacity of", d.capacity, MAX_CAPACITY));
        }
        if d.max_steps > MAX_EPISODE_STEPS {
            return Err(bad("episodes of at most", d.max_steps, MAX_EPISODE_STEPS));
        }
        Ok(d)
    }

    /// Resets the instance with `seed`.
    pub(crate) fn reset(&mut self, seed: u64) -> Result<(), PluginError> {
        let reset = self.header().reset;
        let this = self.this_mut();
        // SAFETY: `reset` of a checked vtable on a live instance held exclusively.
        self.call(|err| unsafe { reset(this, seed, err) })
    }
}

/// The widest observation, state, action or latent (and the longest
/// horizon) a plugin module may declare.
pub const MAX_DIM: u64 = 1 << 20;
/// The largest memory capacity a plugin memory may declare.
pub const MAX_CAPACITY: u64 = 1 << 30;
/// The longest episode a plugin environment may declare (`max_steps`):
/// the runner truncates every episode there.
pub const MAX_EPISODE_STEPS: u64 = 10_000_000;

/// The message a plugin wrote into `err` (over `buf`), or `(no message)`.
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
