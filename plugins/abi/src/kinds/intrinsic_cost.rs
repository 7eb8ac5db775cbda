//! Intrinsic cost: the [`IntrinsicCost`] trait, its [`IntrinsicCostVTable`] and the shims between them.

use std::ffi::c_void;
use std::mem::size_of;

use super::{cost_ctx, header, write_dims, CostContext, CostCtxFfi, Err, Module, View};
use crate::guard::guard;
use crate::tensor::{Tensor, TensorView};
use crate::types::{Dims, Error, ModuleKind, Status, VTableHeader};

// ---------------------------------------------------------------------------
// Rust-side types.

/// An immutable intrinsic cost term: only `&self`, no trainable parameters.
pub trait IntrinsicCost: Module + Sync {
    /// **Adds** `weight * IC(s, a, s')` of every row to `out` (`[batch]`).
    fn add_cost(
        &self,
        ctx: &CostContext<'_>,
        weight: f32,
        states: Tensor<'_>,
        actions: Tensor<'_>,
        next_states: Tensor<'_>,
        out: &mut [f32],
    ) -> Result<(), Error>;
}

// ---------------------------------------------------------------------------
// FFI structures.

/// Intrinsic cost vtable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct IntrinsicCostVTable {
    /// Common functions.
    pub header: VTableHeader,
    /// `add_cost(ctx, weight, states, actions, next_states, out_inout)`.
    pub add_cost: unsafe extern "C" fn(this: *const c_void, ctx: *const CostCtxFfi, weight: f32, s: View, a: View, n: View, out: View, err: Err) -> Status,
}

// ---------------------------------------------------------------------------
// Shims.

/// The vtable type.
pub type VTable = IntrinsicCostVTable;
/// The kind.
pub const KIND: ModuleKind = ModuleKind::INTRINSIC_COST;
/// The vtable of `M`.
pub const fn vtable<M: IntrinsicCost>() -> VTable {
    IntrinsicCostVTable { header: header::<M>(KIND, size_of::<VTable>(), dims::<M>), add_cost: add_cost::<M> }
}
unsafe extern "C" fn dims<M: IntrinsicCost>(this: *const c_void, out: *mut Dims, err: Err) -> Status {
    // SAFETY: `this` is a live `M`.
    unsafe { write_dims::<M>(this, out, err, |_| Dims::default()) }
}
unsafe extern "C" fn add_cost<M: IntrinsicCost>(this: *const c_void, ctx: *const CostCtxFfi, w: f32, s: View, a: View, n: View, out: View, err: Err) -> Status {
    // SAFETY: `this` is a live `M`; the views describe host buffers valid for the call.
    unsafe {
        guard(err, || {
            let m = &*this.cast::<M>();
            let c = cost_ctx(ctx)?;
            let o = TensorView::as_mut_slice(out, "out")?;
            m.add_cost(&c, w, Tensor::from_view(s, "states")?, Tensor::from_view(a, "actions")?, Tensor::from_view(n, "next_states")?, o)
        })
    }
}
