//! Perception: the [`Perception`] trait, its [`PerceptionVTable`] and the shims between them.

use std::ffi::c_void;
use std::mem::size_of;

use super::{header, write_dims, Err, Module, View};
use crate::guard::guard;
use crate::tensor::{Tensor, TensorMut};
use crate::types::{Dims, Error, ModuleKind, Status, VTableHeader};

// ---------------------------------------------------------------------------
// Rust-side types.

/// Perception: `s = Enc(x)`, batched.
pub trait Perception: Module + Sync {
    /// Width of an observation.
    fn obs_dim(&self) -> usize;
    /// Width of a state.
    fn state_dim(&self) -> usize;
    /// Writes the states `[batch, state_dim]` of `observations` `[batch, obs_dim]`.
    fn encode(&self, observations: Tensor<'_>, states: TensorMut<'_>) -> Result<(), Error>;
}

// ---------------------------------------------------------------------------
// FFI structures.

/// Perception vtable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PerceptionVTable {
    /// Common functions.
    pub header: VTableHeader,
    /// `encode(observations, states_out)`.
    pub encode: unsafe extern "C" fn(this: *const c_void, obs: View, out: View, err: Err) -> Status,
}

// ---------------------------------------------------------------------------
// Shims.

/// The vtable type.
pub type VTable = PerceptionVTable;
/// The kind.
pub const KIND: ModuleKind = ModuleKind::PERCEPTION;
/// The vtable of `M`.
pub const fn vtable<M: Perception>() -> VTable {
    PerceptionVTable { header: header::<M>(KIND, size_of::<VTable>(), dims::<M>), encode: encode::<M> }
}
unsafe extern "C" fn dims<M: Perception>(this: *const c_void, out: *mut Dims, err: Err) -> Status {
    // SAFETY: `this` is a live `M`.
    unsafe { write_dims::<M>(this, out, err, |m| Dims { obs_dim: m.obs_dim() as u64, state_dim: m.state_dim() as u64, ..Dims::default() }) }
}
unsafe extern "C" fn encode<M: Perception>(this: *const c_void, obs: View, out: View, err: Err) -> Status {
    // SAFETY: `this` is a live `M`; the views describe host buffers valid for the call.
    unsafe {
        guard(err, || {
            let m = &*this.cast::<M>();
            m.encode(Tensor::from_view(obs, "observations")?, TensorMut::from_view(out, "states")?)
        })
    }
}
