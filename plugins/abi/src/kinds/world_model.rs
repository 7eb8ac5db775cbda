//! World model: the [`WorldModel`] trait, its [`WorldModelVTable`] and the shims between them.

use std::ffi::c_void;
use std::mem::size_of;

use super::{header, write_dims, Err, Module, View};
use crate::guard::guard;
use crate::tensor::{Tensor, TensorMut};
use crate::types::{Dims, Error, ModuleKind, Status, VTableHeader};

// ---------------------------------------------------------------------------
// Rust-side types.

/// World model: `next[b] = f(states[b], actions[b], latents[b])`, batched.
/// Called from several threads at once (`&self`, `Sync`).
pub trait WorldModel: Module + Sync {
    /// Width of a state.
    fn state_dim(&self) -> usize;
    /// Width of an action.
    fn action_dim(&self) -> usize;
    /// Width of the latent variable (0: deterministic).
    fn latent_dim(&self) -> usize {
        0
    }
    /// Writes the predicted next states. `latents` is `Some` only for a model
    /// with `latent_dim() > 0`. The host checked all shapes.
    fn predict(&self, states: Tensor<'_>, actions: Tensor<'_>, latents: Option<Tensor<'_>>, next: TensorMut<'_>) -> Result<(), Error>;
    /// Whether [`WorldModel::vjp`] is implemented.
    const DIFFERENTIABLE: bool = false;
    /// **Adds** `dL/d states` and `dL/d actions` given `dL/d next`.
    fn vjp(
        &self,
        _states: Tensor<'_>,
        _actions: Tensor<'_>,
        _grad_next: Tensor<'_>,
        _grad_states: TensorMut<'_>,
        _grad_actions: TensorMut<'_>,
    ) -> Result<(), Error> {
        Err(Error::new("this world model is not differentiable"))
    }
}

// ---------------------------------------------------------------------------
// FFI structures.

/// World model vtable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct WorldModelVTable {
    /// Common functions.
    pub header: VTableHeader,
    /// `predict(states, actions, latents or null, next_out)`.
    pub predict: unsafe extern "C" fn(this: *const c_void, states: View, actions: View, latents: View, next: View, err: Err) -> Status,
    /// `vjp(states, actions, grad_next, grad_states_inout, grad_actions_inout)`; absent if not differentiable.
    pub vjp: Option<unsafe extern "C" fn(this: *const c_void, states: View, actions: View, grad_next: View, gs: View, ga: View, err: Err) -> Status>,
}

// ---------------------------------------------------------------------------
// Shims.

/// The vtable type.
pub type VTable = WorldModelVTable;
/// The kind.
pub const KIND: ModuleKind = ModuleKind::WORLD_MODEL;
/// The vtable of `M`.
pub const fn vtable<M: WorldModel>() -> VTable {
    WorldModelVTable {
        header: header::<M>(KIND, size_of::<VTable>(), dims::<M>),
        predict: predict::<M>,
        vjp: if M::DIFFERENTIABLE { Some(vjp::<M>) } else { None },
    }
}
unsafe extern "C" fn dims<M: WorldModel>(this: *const c_void, out: *mut Dims, err: Err) -> Status {
    // SAFETY: `this` is a live `M`.
    unsafe {
        write_dims::<M>(this, out, err, |m| Dims {
            state_dim: m.state_dim() as u64,
            action_dim: m.action_dim() as u64,
            latent_dim: m.latent_dim() as u64,
            ..Dims::default()
        })
    }
}
unsafe extern "C" fn predict<M: WorldModel>(this: *const c_void, states: View, actions: View, latents: View, next: View, err: Err) -> Status {
    // SAFETY: `this` is a live `M`; the views describe host buffers valid for the call.
    unsafe {
        guard(err, || {
            let m = &*this.cast::<M>();
            let l = if latents.is_null() || (*latents).ndim == 0 { None } else { Some(Tensor::from_view(latents, "latents")?) };
            m.predict(Tensor::from_view(states, "states")?, Tensor::from_view(actions, "actions")?, l, TensorMut::from_view(next, "next")?)
        })
    }
}
unsafe extern "C" fn vjp<M: WorldModel>(this: *const c_void, s: View, a: View, gn: View, gs: View, ga: View, err: Err) -> Status {
    // SAFETY: `this` is a live `M`; the views describe host buffers valid for the call.
    unsafe {
        guard(err, || {
            let m = &*this.cast::<M>();
            m.vjp(
                Tensor::from_view(s, "states")?,
                Tensor::from_view(a, "actions")?,
                Tensor::from_view(gn, "grad_next")?,
                TensorMut::from_view(gs, "grad_states")?,
                TensorMut::from_view(ga, "grad_actions")?,
            )
        })
    }
}
