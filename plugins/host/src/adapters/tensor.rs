//! ndarray <-> [`TensorView`] in both directions.
//!
//! * Host to plugin (arguments of calls into a plugin): [`input_matrix`] and
//!   [`input_vector`] lend an array to the plugin, copying it only when its
//!   layout cannot be described by a view; [`with_output_matrix`] and
//!   [`with_output_vector`] lend a writable array the same way and copy the
//!   results back.
//! * Plugin to host (arguments of host callbacks): [`plugin_matrix`],
//!   [`plugin_matrix_mut`] and [`plugin_vector_mut`] turn a plugin's view
//!   into an ndarray view after checking it.

use ami_plugin_abi::{TensorView, DEVICE_CPU, DTYPE_F32};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, ShapeBuilder};

use crate::error::PluginError;

// ---------------------------------------------------------------------------
// Host arrays lent to a plugin.

/// A view of a 2-D array whose rows are contiguous, or `None`.
fn matrix_view(a: &ArrayView2<'_, f32>) -> Option<TensorView> {
    let (r, c) = a.dim();
    if r == 0 || c == 0 {
        return Some(TensorView::matrix(std::ptr::NonNull::dangling().as_ptr(), r, c, c));
    }
    let s = a.strides();
    let col_ok = c == 1 || s[1] == 1;
    let row_ok = r == 1 || s[0] >= c as isize;
    (col_ok && row_ok).then(|| TensorView::matrix(a.as_ptr(), r, c, if r == 1 { c } else { s[0] as usize }))
}

/// A writable view of a 2-D array whose rows are contiguous, or `None`.
fn matrix_view_mut(a: &mut ArrayViewMut2<'_, f32>) -> Option<TensorView> {
    let v = matrix_view(&a.view())?;
    Some(TensorView::matrix_mut(a.as_mut_ptr(), v.shape[0] as usize, v.shape[1] as usize, v.strides[0] as usize))
}

/// An input view of a 2-D array, copying into `keep` when the layout cannot
/// be passed. The view borrows `a` (or `keep`): both must outlive its use.
pub(super) fn input_matrix(a: &ArrayView2<'_, f32>, keep: &mut Option<Array2<f32>>) -> TensorView {
    if let Some(v) = matrix_view(a) {
        return v;
    }
    let o = keep.insert(a.as_standard_layout().into_owned());
    matrix_view(&o.view()).unwrap_or_else(|| unreachable!("standard layout is contiguous"))
}

/// An input view of a 1-D array, copying into `keep` when it is not
/// contiguous. The view borrows `a` (or `keep`): both must outlive its use.
pub(super) fn input_vector(a: &ArrayView1<'_, f32>, keep: &mut Option<Array1<f32>>) -> TensorView {
    if let Some(s) = a.as_slice() {
        return TensorView::vector(if s.is_empty() { std::ptr::NonNull::dangling().as_ptr() } else { s.as_ptr() }, s.len());
    }
    // `to_vec` is in logical order (an owned copy may keep a negative stride).
    let o = keep.insert(Array1::from(a.to_vec()));
    TensorView::vector(o.as_ptr(), o.len())
}

/// Runs `f` with a writable 2-D view of `out`, through a temporary holding
/// `out`'s values when its layout cannot be passed.
pub(super) fn with_output_matrix(
    out: &mut ArrayViewMut2<'_, f32>,
    f: impl FnOnce(TensorView) -> std::result::Result<(), PluginError>,
) -> std::result::Result<(), PluginError> {
    if let Some(v) = matrix_view_mut(out) {
        return f(v);
    }
    let mut tmp = out.view().as_standard_layout().into_owned();
    let v = matrix_view_mut(&mut tmp.view_mut()).unwrap_or_else(|| unreachable!("owned arrays are contiguous"));
    f(v)?;
    out.assign(&tmp);
    Ok(())
}

/// Runs `f` with a writable 1-D view of `out`, through a temporary holding
/// `out`'s values when it is not contiguous.
pub(super) fn with_output_vector(
    out: &mut ArrayViewMut1<'_, f32>,
    f: impl FnOnce(TensorView) -> std::result::Result<(), PluginError>,
) -> std::result::Result<(), PluginError> {
    if let Some(s) = out.as_slice_mut() {
        let ptr = if s.is_empty() { std::ptr::NonNull::dangling().as_ptr() } else { s.as_mut_ptr() };
        return f(TensorView::vector_mut(ptr, s.len()));
    }
    let mut tmp = Array1::from(out.to_vec());
    f(TensorView::vector_mut(tmp.as_mut_ptr(), tmp.len()))?;
    out.assign(&tmp);
    Ok(())
}

// ---------------------------------------------------------------------------
// Plugin views read by the host (callbacks).

/// Reads a host-bound 2-D view from a plugin (callbacks): rows, columns, row
/// stride and data pointer.
///
/// # Safety
/// `v` is null or a valid view over memory that lives for `'a`.
unsafe fn plugin_matrix_parts(v: *const TensorView, what: &str) -> std::result::Result<(usize, usize, usize, *mut f32), String> {
    // SAFETY: forwarded.
    let t = unsafe { ami_plugin_abi::Tensor::from_view(v, what) }.map_err(|e| e.0)?;
    // SAFETY: `from_view` checked it non-null.
    let v = unsafe { &*v };
    let (r, c) = (t.rows(), t.cols());
    let stride = if r > 1 { v.strides[0] as usize } else { c };
    let ptr = if r == 0 || c == 0 || v.data.is_null() { std::ptr::NonNull::<f32>::dangling().as_ptr() } else { v.data.cast::<f32>() };
    Ok((r, c, stride, ptr))
}

/// A plugin's 2-D view as an ndarray view, for reading.
///
/// # Safety
/// As [`plugin_matrix_parts`], for reading.
pub(super) unsafe fn plugin_matrix<'a>(v: *const TensorView, what: &str) -> std::result::Result<ArrayView2<'a, f32>, String> {
    // SAFETY: forwarded.
    let (r, c, s, p) = unsafe { plugin_matrix_parts(v, what) }?;
    // SAFETY: the view was checked to cover `r` rows of `c` floats `s` apart.
    Ok(unsafe { ArrayView2::from_shape_ptr((r, c).strides((s, 1)), p) })
}

/// A plugin's writable 2-D view as a mutable ndarray view.
///
/// # Safety
/// As [`plugin_matrix_parts`], writable and not aliased.
pub(super) unsafe fn plugin_matrix_mut<'a>(v: *const TensorView, what: &str) -> std::result::Result<ArrayViewMut2<'a, f32>, String> {
    // SAFETY: forwarded.
    if unsafe { v.as_ref() }.is_some_and(|v| v.flags & TensorView::WRITABLE == 0) {
        return Err(format!("{what}: output view is not writable"));
    }
    // SAFETY: forwarded.
    let (r, c, s, p) = unsafe { plugin_matrix_parts(v, what) }?;
    // SAFETY: the view was checked to cover `r` rows of `c` floats `s` apart; the plugin lends it exclusively.
    Ok(unsafe { ArrayViewMut2::from_shape_ptr((r, c).strides((s, 1)), p) })
}

/// A plugin's writable 1-D view as a mutable ndarray view.
///
/// # Safety
/// `v` is null or a valid writable 1-D view, not aliased, living for `'a`.
pub(super) unsafe fn plugin_vector_mut<'a>(v: *const TensorView, what: &str) -> std::result::Result<ArrayViewMut1<'a, f32>, String> {
    // SAFETY: forwarded.
    let s = unsafe { TensorView::as_mut_slice(v, what) }.map_err(|e| e.0)?;
    Ok(ArrayViewMut1::from(s))
}

#[allow(dead_code)]
const _: () = {
    // The views built here are what the abi crate checks.
    assert!(DTYPE_F32 == 1 && DEVICE_CPU == 0);
};
