//! Environment: the [`Environment`] trait and its [`StepResult`], the [`EnvironmentVTable`] and [`StepOut`], and the shims between them.

use std::ffi::c_void;
use std::mem::size_of;

use super::{header, write_dims, Err, Module, View};
use crate::guard::guard;
use crate::tensor::TensorView;
use crate::types::{Dims, Error, ModuleKind, Status, VTableHeader};

// ---------------------------------------------------------------------------
// Rust-side types.

/// The outcome of an environment step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepResult {
    /// Reward (higher is better).
    pub reward: f64,
    /// Ended in a terminal state.
    pub terminated: bool,
    /// Cut off by the step limit.
    pub truncated: bool,
}

/// An environment with Gymnasium's reset/step semantics.
pub trait Environment: Module {
    /// Width of an observation.
    fn obs_dim(&self) -> usize;
    /// Width of an action.
    fn action_dim(&self) -> usize;
    /// Steps after which an episode is truncated.
    fn max_steps(&self) -> usize;
    /// `(low, high)` action bounds, each `action_dim` long.
    fn action_bounds(&self) -> (Vec<f32>, Vec<f32>);
    /// Starts an episode drawn with `seed`; writes the first observation.
    fn reset_episode(&mut self, seed: u64, observation: &mut [f32]) -> Result<(), Error>;
    /// Applies `action` (clip it to the bounds) and writes the next observation.
    fn step(&mut self, action: &[f32], observation: &mut [f32]) -> Result<StepResult, Error>;
}

// ---------------------------------------------------------------------------
// FFI structures.

/// An environment step's outcome across the boundary.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct StepOut {
    /// Reward.
    pub reward: f64,
    /// 1 if terminated.
    pub terminated: u8,
    /// 1 if truncated.
    pub truncated: u8,
    /// Reserved, 0.
    pub reserved: [u8; 6],
}

/// Environment vtable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct EnvironmentVTable {
    /// Common functions.
    pub header: VTableHeader,
    /// `bounds(low_out, high_out)`.
    pub bounds: unsafe extern "C" fn(this: *const c_void, low: View, high: View, err: Err) -> Status,
    /// `reset_episode(seed, obs_out)`.
    pub reset_episode: unsafe extern "C" fn(this: *mut c_void, seed: u64, obs: View, err: Err) -> Status,
    /// `step(action, obs_out, step_out)`.
    pub step: unsafe extern "C" fn(this: *mut c_void, action: View, obs: View, out: *mut StepOut, err: Err) -> Status,
}

// ---------------------------------------------------------------------------
// Shims.

/// The vtable type.
pub type VTable = EnvironmentVTable;
/// The kind.
pub const KIND: ModuleKind = ModuleKind::ENVIRONMENT;
/// The vtable of `M`.
pub const fn vtable<M: Environment>() -> VTable {
    EnvironmentVTable { header: header::<M>(KIND, size_of::<VTable>(), dims::<M>), bounds: bounds::<M>, reset_episode: reset_episode::<M>, step: step::<M> }
}
unsafe extern "C" fn dims<M: Environment>(this: *const c_void, out: *mut Dims, err: Err) -> Status {
    // SAFETY: `this` is a live `M`.
    unsafe {
        write_dims::<M>(this, out, err, |m| Dims {
            obs_dim: m.obs_dim() as u64,
            action_dim: m.action_dim() as u64,
            max_steps: m.max_steps() as u64,
            ..Dims::default()
        })
    }
}
unsafe extern "C" fn bounds<M: Environment>(this: *const c_void, low: View, high: View, err: Err) -> Status {
    // SAFETY: `this` is a live `M`; the output views are valid for the call.
    unsafe {
        guard(err, || {
            let (l, h) = (*this.cast::<M>()).action_bounds();
            let lo = TensorView::as_mut_slice(low, "low")?;
            let hi = TensorView::as_mut_slice(high, "high")?;
            if l.len() != lo.len() || h.len() != hi.len() {
                return Err(Error::new(format!("action_bounds: expected {} values each, found {} and {}", lo.len(), l.len(), h.len())));
            }
            lo.copy_from_slice(&l);
            hi.copy_from_slice(&h);
            Ok(())
        })
    }
}
unsafe extern "C" fn reset_episode<M: Environment>(this: *mut c_void, seed: u64, obs: View, err: Err) -> Status {
    // SAFETY: `this` is a live `M` held exclusively; the view is valid for the call.
    unsafe { guard(err, || (*this.cast::<M>()).reset_episode(seed, TensorView::as_mut_slice(obs, "observation")?)) }
}
unsafe extern "C" fn step<M: Environment>(this: *mut c_void, action: View, obs: View, out: *mut StepOut, err: Err) -> Status {
    // SAFETY: `this` is a live `M` held exclusively; views and `out` are valid for the call.
    unsafe {
        guard(err, || {
            let r = (*this.cast::<M>()).step(TensorView::as_slice(action, "action")?, TensorView::as_mut_slice(obs, "observation")?)?;
            let o = out.as_mut().ok_or_else(|| Error::new("null step output"))?;
            *o = StepOut { reward: r.reward, terminated: u8::from(r.terminated), truncated: u8::from(r.truncated), reserved: [0; 6] };
            Ok(())
        })
    }
}
