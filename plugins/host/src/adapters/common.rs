//! Small helpers shared by the adapters.

use ami_core::error::CoreError;
use ami_core::modules::CostContext;
use ami_plugin_abi::kinds::CostCtxFfi;
use ami_plugin_abi::TensorView;
use ndarray::Array1;

use super::tensor::input_vector;
use crate::instance::Instance;

/// The cost context of a call as the ABI passes it; the goal is borrowed
/// (or copied into `keep`).
pub(super) fn cost_ctx(ctx: &CostContext<'_>, keep: &mut Option<Array1<f32>>) -> CostCtxFfi {
    CostCtxFfi { goal: ctx.goal.as_ref().map_or_else(TensorView::none, |g| input_vector(g, keep)), step: ctx.step as u64 }
}

/// A dimension reported by a plugin as a `usize` (saturating).
pub(super) fn usize_dim(d: u64) -> usize {
    usize::try_from(d).unwrap_or(usize::MAX)
}

/// A shape error naming the instance (`plugin:NAME/MODULE: what`).
pub(super) fn shape_err(inst: &Instance, what: &str, expected: String, found: String) -> CoreError {
    CoreError::shape(format!("{}: {what}", inst.label()), expected, found)
}
