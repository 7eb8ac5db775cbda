//! The basic `#[repr(C)]` types of the ABI that every other module builds on:
//! [`Status`], [`Str`], [`ErrBuf`], [`Error`], [`ModuleKind`], [`Param`],
//! [`Dims`] and [`VTableHeader`]. This module depends on nothing else in the
//! crate.

use std::ffi::c_void;
use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errbuf_truncates_at_char_boundary() {
        let mut mem = [0u8; 5];
        let mut e = ErrBuf { ptr: mem.as_mut_ptr(), cap: mem.len(), len: 0 };
        // SAFETY: `e` points to `mem`.
        unsafe { ErrBuf::write(&mut e, "abcdé!") };
        assert_eq!(e.len, 4);
        assert_eq!(&mem[..4], b"abcd");
    }
}
