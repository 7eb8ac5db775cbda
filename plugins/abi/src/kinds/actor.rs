//! Actor: the [`Actor`] trait, its [`ActorVTable`] and the shims between them.

use std::ffi::c_void;
use std::mem::size_of;

use super::{header, write_dims, Err, HostCost, HostCostRef, Module, View};
use crate::guard::guard;
use crate::tensor::TensorView;
use crate::types::{Dims, Error, ModuleKind, Status, Str, VTableHeader};

// ---------------------------------------------------------------------------
// Rust-side types.

/// An actor: the action to take in a state.
pub trait Actor: Module {
    /// Width of an action.
    fn action_dim(&self) -> usize;
    /// Writes the action for `state` into `action`; `cost` is the host's energy.
    fn act(&mut self, state: &[f32], cost: &HostCostRef<'_>, action: &mut [f32]) -> Result<(), Error>;
    /// A configurator modulation, as JSON text (see [`Modulation::to_json`](super::Modulation::to_json)).
    fn modulate(&mut self, _modulation: &str) -> Result<(), Error> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// FFI structures.

/// Actor vtable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ActorVTable {
    /// Common functions.
    pub header: VTableHeader,
    /// `act(state, cost, action_out)`.
    pub act: unsafe extern "C" fn(this: *mut c_void, state: View, cost: *const HostCost, action: View, err: Err) -> Status,
    /// `modulate(json)`.
    pub modulate: unsafe extern "C" fn(this: *mut c_void, json: Str, err: Err) -> Status,
}

// ---------------------------------------------------------------------------
// Shims.

/// The vtable type.
pub type VTable = ActorVTable;
/// The kind.
pub const KIND: ModuleKind = ModuleKind::ACTOR;
/// The vtable of `M`.
pub const fn vtable<M: Actor>() -> VTable {
    ActorVTable { header: header::<M>(KIND, size_of::<VTable>(), dims::<M>), act: act::<M>, modulate: modulate::<M> }
}
unsafe extern "C" fn dims<M: Actor>(this: *const c_void, out: *mut Dims, err: Err) -> Status {
    // SAFETY: `this` is a live `M`.
    unsafe { write_dims::<M>(this, out, err, |m| Dims { action_dim: m.action_dim() as u64, ..Dims::default() }) }
}
unsafe extern "C" fn act<M: Actor>(this: *mut c_void, state: View, cost: *const HostCost, action: View, err: Err) -> Status {
    // SAFETY: `this` is a live `M` held exclusively; views and callbacks are valid for the call.
    unsafe {
        guard(err, || {
            let m = &mut *this.cast::<M>();
            let cost = HostCostRef { ffi: cost.as_ref().ok_or_else(|| Error::new("null cost"))? };
            m.act(TensorView::as_slice(state, "state")?, &cost, TensorView::as_mut_slice(action, "action")?)
        })
    }
}
unsafe extern "C" fn modulate<M: Actor>(this: *mut c_void, json: Str, err: Err) -> Status {
    // SAFETY: `this` is a live `M` held exclusively; `json` is valid for the call.
    unsafe { guard(err, || (*this.cast::<M>()).modulate(json.as_str()?)) }
}
