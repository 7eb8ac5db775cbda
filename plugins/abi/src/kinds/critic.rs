//! Critic: the [`Critic`] trait and its training [`Batch`], the [`CriticVTable`] and [`BatchFfi`], and the shims between them.

use std::ffi::c_void;
use std::mem::size_of;

use super::{cost_ctx, header, write_dims, CostContext, CostCtxFfi, Err, Module, View};
use crate::guard::guard;
use crate::tensor::{Tensor, TensorView};
use crate::types::{Dims, Error, ModuleKind, Status, VTableHeader};

// ---------------------------------------------------------------------------
// Rust-side types.

/// A batch of transitions (critic training).
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// `[n, state_dim]`.
    pub states: Tensor<'a>,
    /// `[n, action_dim]`.
    pub actions: Tensor<'a>,
    /// `[n]`.
    pub costs: &'a [f32],
    /// `[n, state_dim]`.
    pub next_states: Tensor<'a>,
}

/// A trainable critic term: predicts future intrinsic cost.
pub trait Critic: Module + Sync {
    /// **Adds** `weight * V(s)` of every row to `out`.
    fn add_value(&self, ctx: &CostContext<'_>, weight: f32, states: Tensor<'_>, out: &mut [f32]) -> Result<(), Error>;
    /// One training step; returns the loss.
    fn train(&mut self, batch: &Batch<'_>, discount: f32) -> Result<f32, Error>;
}

// ---------------------------------------------------------------------------
// FFI structures.

/// A transition batch across the boundary.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BatchFfi {
    /// `[n, state_dim]`.
    pub states: TensorView,
    /// `[n, action_dim]`.
    pub actions: TensorView,
    /// `[n]`.
    pub costs: TensorView,
    /// `[n, state_dim]`.
    pub next_states: TensorView,
}

/// Critic vtable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CriticVTable {
    /// Common functions.
    pub header: VTableHeader,
    /// `add_value(ctx, weight, states, out_inout)`.
    pub add_value: unsafe extern "C" fn(this: *const c_void, ctx: *const CostCtxFfi, weight: f32, s: View, out: View, err: Err) -> Status,
    /// `train(batch, discount, loss_out)`.
    pub train: unsafe extern "C" fn(this: *mut c_void, batch: *const BatchFfi, discount: f32, loss: *mut f32, err: Err) -> Status,
}

// ---------------------------------------------------------------------------
// Shims.

/// The vtable type.
pub type VTable = CriticVTable;
/// The kind.
pub const KIND: ModuleKind = ModuleKind::CRITIC;
/// The vtable of `M`.
pub const fn vtable<M: Critic>() -> VTable {
    CriticVTable { header: header::<M>(KIND, size_of::<VTable>(), dims::<M>), add_value: add_value::<M>, train: train::<M> }
}
unsafe extern "C" fn dims<M: Critic>(this: *const c_void, out: *mut Dims, err: Err) -> Status {
    // SAFETY: `this` is a live `M`.
    unsafe { write_dims::<M>(this, out, err, |_| Dims::default()) }
}
unsafe extern "C" fn add_value<M: Critic>(this: *const c_void, ctx: *const CostCtxFfi, w: f32, s: View, out: View, err: Err) -> Status {
    // SAFETY: `this` is a live `M`; the views describe host buffers valid for the call.
    unsafe {
        guard(err, || {
            let m = &*this.cast::<M>();
            m.add_value(&cost_ctx(ctx)?, w, Tensor::from_view(s, "states")?, TensorView::as_mut_slice(out, "out")?)
        })
    }
}
unsafe extern "C" fn train<M: Critic>(this: *mut c_void, batch: *const BatchFfi, discount: f32, loss: *mut f32, err: Err) -> Status {
    // SAFETY: `this` is a live `M` held exclusively; the batch views are valid for the call.
    unsafe {
        guard(err, || {
            let m = &mut *this.cast::<M>();
            let b = batch.as_ref().ok_or_else(|| Error::new("null batch"))?;
            let batch = Batch {
                states: Tensor::from_view(&b.states, "states")?,
                actions: Tensor::from_view(&b.actions, "actions")?,
                costs: TensorView::as_slice(&b.costs, "costs")?,
                next_states: Tensor::from_view(&b.next_states, "next_states")?,
            };
            let l = m.train(&batch, discount)?;
            if !loss.is_null() {
                *loss = l;
            }
            Ok(())
        })
    }
}
