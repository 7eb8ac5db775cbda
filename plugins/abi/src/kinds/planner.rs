//! Planner: the [`Planner`] trait with its [`Problem`] and [`PlanInfo`], the [`PlannerVTable`] and the FFI types of a planning call, and the shims between them.

use std::ffi::c_void;
use std::mem::size_of;
use std::time::Duration;

use super::{call_host, header, write_dims, Err, HostCost, HostCostRef, Module, View};
use crate::guard::guard;
use crate::tensor::{Tensor, TensorMut, TensorView};
use crate::types::{Dims, ErrBuf, Error, ModuleKind, Status, VTableHeader};

// ---------------------------------------------------------------------------
// Rust-side types.

/// A planning problem handed to a plugin [`Planner`]: the current state, the
/// action bounds, and the host's world model and cost to call back.
pub struct Problem<'a> {
    ffi: &'a PlanProblemFfi,
    state: &'a [f32],
    low: &'a [f32],
    high: &'a [f32],
}

impl<'a> Problem<'a> {
    /// The state to plan from.
    pub fn state(&self) -> &'a [f32] {
        self.state
    }
    /// Lower action bounds.
    pub fn low(&self) -> &'a [f32] {
        self.low
    }
    /// Upper action bounds.
    pub fn high(&self) -> &'a [f32] {
        self.high
    }
    /// Width of a state.
    pub fn state_dim(&self) -> usize {
        self.ffi.model.state_dim as usize
    }
    /// Width of an action.
    pub fn action_dim(&self) -> usize {
        self.ffi.model.action_dim as usize
    }
    /// Predicts a batch through the host's world model.
    pub fn predict(&self, states: Tensor<'_>, actions: Tensor<'_>, next: &mut TensorMut<'_>) -> Result<(), Error> {
        let (s, a, n) = (states.view(), actions.view(), next.view());
        call_host(|err| {
            // SAFETY: the host's callback with views over live buffers; `next` is borrowed mutably.
            unsafe { (self.ffi.model.predict)(self.ffi.model.ctx, &s, &a, &n, err) }
        })
    }
    /// The host's cost.
    pub fn cost(&self) -> HostCostRef<'a> {
        HostCostRef { ffi: &self.ffi.cost }
    }
}

/// Statistics of a planning call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PlanInfo {
    /// Energy of the returned plan.
    pub energy: f32,
    /// Iterations done.
    pub iterations: usize,
    /// Action sequences evaluated.
    pub evaluated: usize,
}

/// A Mode-2 planner that rolls out the host's world model and cost.
pub trait Planner: Module {
    /// Planning horizon.
    fn horizon(&self) -> usize;
    /// Writes the plan `[horizon, action_dim]` into `plan`.
    fn plan(&mut self, problem: &Problem<'_>, plan: TensorMut<'_>) -> Result<PlanInfo, Error>;
    /// Changes the horizon.
    fn set_horizon(&mut self, horizon: usize) -> Result<(), Error>;
    /// Changes the budget (default: ignored).
    fn set_budget(&mut self, _iterations: usize, _deadline: Option<Duration>) -> Result<(), Error> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// FFI structures.

/// Planning statistics across the boundary.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanInfoFfi {
    /// Energy of the plan.
    pub energy: f32,
    /// Iterations.
    pub iterations: u64,
    /// Sequences evaluated.
    pub evaluated: u64,
}

/// The host's world model, for plugin planners.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HostModel {
    /// Opaque host state.
    pub ctx: *const c_void,
    /// Width of a state.
    pub state_dim: u64,
    /// Width of an action.
    pub action_dim: u64,
    /// Predicts a batch (views 2-D; `next` writable).
    pub predict:
        unsafe extern "C" fn(ctx: *const c_void, states: *const TensorView, actions: *const TensorView, next: *const TensorView, err: *mut ErrBuf) -> Status,
}

/// A planning problem across the boundary.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PlanProblemFfi {
    /// Current state (1-D).
    pub state: TensorView,
    /// Lower bounds (1-D).
    pub low: TensorView,
    /// Upper bounds (1-D).
    pub high: TensorView,
    /// World model callbacks.
    pub model: HostModel,
    /// Cost callbacks.
    pub cost: HostCost,
}

/// Planner vtable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PlannerVTable {
    /// Common functions.
    pub header: VTableHeader,
    /// `plan(problem, plan_out [horizon, action_dim], info_out)`.
    pub plan: unsafe extern "C" fn(this: *mut c_void, problem: *const PlanProblemFfi, plan: View, info: *mut PlanInfoFfi, err: Err) -> Status,
    /// `set_horizon(h)`.
    pub set_horizon: unsafe extern "C" fn(this: *mut c_void, horizon: u64, err: Err) -> Status,
    /// `set_budget(iterations, deadline_ns or 0)`.
    pub set_budget: unsafe extern "C" fn(this: *mut c_void, iterations: u64, deadline_ns: u64, err: Err) -> Status,
}

// ---------------------------------------------------------------------------
// Shims.

/// The vtable type.
pub type VTable = PlannerVTable;
/// The kind.
pub const KIND: ModuleKind = ModuleKind::PLANNER;
/// The vtable of `M`.
pub const fn vtable<M: Planner>() -> VTable {
    PlannerVTable { header: header::<M>(KIND, size_of::<VTable>(), dims::<M>), plan: plan::<M>, set_horizon: set_horizon::<M>, set_budget: set_budget::<M> }
}
unsafe extern "C" fn dims<M: Planner>(this: *const c_void, out: *mut Dims, err: Err) -> Status {
    // SAFETY: `this` is a live `M`.
    unsafe { write_dims::<M>(this, out, err, |m| Dims { horizon: m.horizon() as u64, ..Dims::default() }) }
}
unsafe extern "C" fn plan<M: Planner>(this: *mut c_void, problem: *const PlanProblemFfi, out: View, info: *mut PlanInfoFfi, err: Err) -> Status {
    // SAFETY: `this` is a live `M` held exclusively; the problem's views and callbacks are valid for the call.
    unsafe {
        guard(err, || {
            let m = &mut *this.cast::<M>();
            let ffi = problem.as_ref().ok_or_else(|| Error::new("null problem"))?;
            let p = Problem {
                ffi,
                state: TensorView::as_slice(&ffi.state, "state")?,
                low: TensorView::as_slice(&ffi.low, "low")?,
                high: TensorView::as_slice(&ffi.high, "high")?,
            };
            let r = m.plan(&p, TensorMut::from_view(out, "plan")?)?;
            if !info.is_null() {
                *info = PlanInfoFfi { energy: r.energy, iterations: r.iterations as u64, evaluated: r.evaluated as u64 };
            }
            Ok(())
        })
    }
}
unsafe extern "C" fn set_horizon<M: Planner>(this: *mut c_void, h: u64, err: Err) -> Status {
    // SAFETY: `this` is a live `M` held exclusively.
    unsafe { guard(err, || (*this.cast::<M>()).set_horizon(h as usize)) }
}
unsafe extern "C" fn set_budget<M: Planner>(this: *mut c_void, iterations: u64, deadline_ns: u64, err: Err) -> Status {
    let d = (deadline_ns > 0).then(|| Duration::from_nanos(deadline_ns));
    // SAFETY: `this` is a live `M` held exclusively.
    unsafe { guard(err, || (*this.cast::<M>()).set_budget(iterations as usize, d)) }
}
