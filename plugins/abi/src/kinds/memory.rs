//! Short-term memory: the [`Memory`] trait with its [`TransitionIn`] and [`TransitionOut`], the [`MemoryVTable`] and [`TransitionFfi`], and the shims between them.

use std::ffi::c_void;
use std::mem::size_of;

use super::{header, write_dims, Err, Module};
use crate::guard::guard;
use crate::tensor::TensorView;
use crate::types::{Dims, Error, ModuleKind, Status, Str, VTableHeader};

// ---------------------------------------------------------------------------
// Rust-side types.

/// A transition given to [`Memory::push`].
#[derive(Debug, Clone, Copy)]
pub struct TransitionIn<'a> {
    /// Time step.
    pub t: u64,
    /// State before the action.
    pub state: &'a [f32],
    /// The action.
    pub action: &'a [f32],
    /// Intrinsic cost.
    pub cost: f32,
    /// State after the action.
    pub next_state: &'a [f32],
    /// Imagined rather than perceived.
    pub imagined: bool,
}

/// Where [`Memory::get`] writes a transition (buffers sized by the host).
#[derive(Debug)]
pub struct TransitionOut<'a> {
    /// Time step.
    pub t: u64,
    /// `[state_dim]`.
    pub state: &'a mut [f32],
    /// `[action_dim]`.
    pub action: &'a mut [f32],
    /// Intrinsic cost.
    pub cost: f32,
    /// `[state_dim]`.
    pub next_state: &'a mut [f32],
    /// Imagined rather than perceived.
    pub imagined: bool,
}

/// Short-term memory. The host samples batches and does soft reads through
/// `len` and `get`.
pub trait Memory: Module {
    /// Width of a state.
    fn state_dim(&self) -> usize;
    /// Width of an action.
    fn action_dim(&self) -> usize;
    /// Maximum number of transitions kept.
    fn capacity(&self) -> usize;
    /// Number stored.
    fn len(&self) -> usize;
    /// Whether nothing is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Stores a transition (overwriting the oldest when full).
    fn push(&mut self, tr: &TransitionIn<'_>) -> Result<(), Error>;
    /// Writes the `i`-th transition (oldest first); `false` if there is none.
    fn get(&self, i: usize, out: &mut TransitionOut<'_>) -> Result<bool, Error>;
    /// Writes the most recent transition at time `t`; `false` if there is none.
    fn by_time(&self, t: u64, out: &mut TransitionOut<'_>) -> Result<bool, Error>;
    /// Saves to a file.
    fn save(&self, path: &str) -> Result<(), Error>;
    /// Forgets everything.
    fn clear(&mut self) -> Result<(), Error>;
}

// ---------------------------------------------------------------------------
// FFI structures.

/// One transition across the boundary (input of `push`, output of `get`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TransitionFfi {
    /// Time step.
    pub t: u64,
    /// State (1-D).
    pub state: TensorView,
    /// Action (1-D).
    pub action: TensorView,
    /// Cost.
    pub cost: f32,
    /// Next state (1-D).
    pub next_state: TensorView,
    /// 1 if imagined.
    pub imagined: u8,
}

/// Memory vtable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MemoryVTable {
    /// Common functions.
    pub header: VTableHeader,
    /// `len(out)`.
    pub len: unsafe extern "C" fn(this: *const c_void, out: *mut u64, err: Err) -> Status,
    /// `push(transition)`.
    pub push: unsafe extern "C" fn(this: *mut c_void, tr: *const TransitionFfi, err: Err) -> Status,
    /// `get(i, out, found)`.
    pub get: unsafe extern "C" fn(this: *const c_void, i: u64, out: *mut TransitionFfi, found: *mut u8, err: Err) -> Status,
    /// `by_time(t, out, found)`.
    pub by_time: unsafe extern "C" fn(this: *const c_void, t: u64, out: *mut TransitionFfi, found: *mut u8, err: Err) -> Status,
    /// `save(path)`.
    pub save: unsafe extern "C" fn(this: *const c_void, path: Str, err: Err) -> Status,
    /// `clear()`.
    pub clear: unsafe extern "C" fn(this: *mut c_void, err: Err) -> Status,
}

// ---------------------------------------------------------------------------
// Shims.

/// The vtable type.
pub type VTable = MemoryVTable;
/// The kind.
pub const KIND: ModuleKind = ModuleKind::MEMORY;
/// The vtable of `M`.
pub const fn vtable<M: Memory>() -> VTable {
    MemoryVTable {
        header: header::<M>(KIND, size_of::<VTable>(), dims::<M>),
        len: len::<M>,
        push: push::<M>,
        get: get::<M>,
        by_time: by_time::<M>,
        save: save::<M>,
        clear: clear::<M>,
    }
}
unsafe extern "C" fn dims<M: Memory>(this: *const c_void, out: *mut Dims, err: Err) -> Status {
    // SAFETY: `this` is a live `M`.
    unsafe {
        write_dims::<M>(this, out, err, |m| Dims {
            state_dim: m.state_dim() as u64,
            action_dim: m.action_dim() as u64,
            capacity: m.capacity() as u64,
            ..Dims::default()
        })
    }
}
unsafe extern "C" fn len<M: Memory>(this: *const c_void, out: *mut u64, err: Err) -> Status {
    // SAFETY: `this` is a live `M`; `out` is valid.
    unsafe {
        guard(err, || {
            *out = (*this.cast::<M>()).len() as u64;
            Ok(())
        })
    }
}
unsafe extern "C" fn push<M: Memory>(this: *mut c_void, tr: *const TransitionFfi, err: Err) -> Status {
    // SAFETY: `this` is a live `M` held exclusively; the transition's views are valid for the call.
    unsafe {
        guard(err, || {
            let t = tr.as_ref().ok_or_else(|| Error::new("null transition"))?;
            let tin = TransitionIn {
                t: t.t,
                state: TensorView::as_slice(&t.state, "state")?,
                action: TensorView::as_slice(&t.action, "action")?,
                cost: t.cost,
                next_state: TensorView::as_slice(&t.next_state, "next_state")?,
                imagined: t.imagined != 0,
            };
            (*this.cast::<M>()).push(&tin)
        })
    }
}
/// # Safety
/// `out` is a valid transition with writable views; `found` is valid.
unsafe fn read_into(out: *mut TransitionFfi, found: *mut u8, f: impl FnOnce(&mut TransitionOut<'_>) -> Result<bool, Error>) -> Result<(), Error> {
    // SAFETY: forwarded from the caller.
    unsafe {
        let o = out.as_mut().ok_or_else(|| Error::new("null output"))?;
        let mut to = TransitionOut {
            t: 0,
            state: TensorView::as_mut_slice(&o.state, "state")?,
            action: TensorView::as_mut_slice(&o.action, "action")?,
            cost: 0.0,
            next_state: TensorView::as_mut_slice(&o.next_state, "next_state")?,
            imagined: false,
        };
        let ok = f(&mut to)?;
        o.t = to.t;
        o.cost = to.cost;
        o.imagined = u8::from(to.imagined);
        *found = u8::from(ok);
        Ok(())
    }
}
unsafe extern "C" fn get<M: Memory>(this: *const c_void, i: u64, out: *mut TransitionFfi, found: *mut u8, err: Err) -> Status {
    // SAFETY: `this` is a live `M`; outputs are valid for the call.
    unsafe { guard(err, || read_into(out, found, |o| (*this.cast::<M>()).get(i as usize, o))) }
}
unsafe extern "C" fn by_time<M: Memory>(this: *const c_void, t: u64, out: *mut TransitionFfi, found: *mut u8, err: Err) -> Status {
    // SAFETY: `this` is a live `M`; outputs are valid for the call.
    unsafe { guard(err, || read_into(out, found, |o| (*this.cast::<M>()).by_time(t, o))) }
}
unsafe extern "C" fn save<M: Memory>(this: *const c_void, path: Str, err: Err) -> Status {
    // SAFETY: `this` is a live `M`; `path` is valid for the call.
    unsafe { guard(err, || (*this.cast::<M>()).save(path.as_str()?)) }
}
unsafe extern "C" fn clear<M: Memory>(this: *mut c_void, err: Err) -> Status {
    // SAFETY: `this` is a live `M` held exclusively.
    unsafe { guard(err, || (*this.cast::<M>()).clear()) }
}
