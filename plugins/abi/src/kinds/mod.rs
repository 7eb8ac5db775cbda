//! The module kinds: for each, the Rust trait a plugin implements, the
//! `#[repr(C)]` vtable the host calls (it starts with a [`VTableHeader`] and
//! only ever grows at the end), and the `catch_unwind` shims between them.
//!
//! The submodules (`kinds::world_model`, ...) are what [`declare_plugin!`]
//! names: each has the `VTable` type, the `KIND` and `vtable::<M>()`. Each
//! kind lives in its own file (`kinds/world_model.rs`, ...) with its trait,
//! its vtable and the types only it uses; all of them are re-exported here.
//! This file holds what several kinds share: [`Module`], the host's cost,
//! the cost context and the vtable header shims.
//!
//! [`declare_plugin!`]: crate::declare_plugin

use std::ffi::c_void;

use crate::guard::guard;
use crate::json::Config;
use crate::tensor::{Tensor, TensorMut, TensorView};
use crate::types::{Dims, ErrBuf, Error, ModuleKind, Param, Status, Str, VTableHeader};

pub mod actor;
pub mod configurator;
pub mod critic;
pub mod environment;
pub mod intrinsic_cost;
pub mod memory;
pub mod perception;
pub mod planner;
pub mod world_model;

#[doc(inline)]
pub use actor::{Actor, ActorVTable};
#[doc(inline)]
pub use configurator::{Configurator, ConfiguratorVTable, Modulation, StrSink};
#[doc(inline)]
pub use critic::{Batch, BatchFfi, Critic, CriticVTable};
#[doc(inline)]
pub use environment::{Environment, EnvironmentVTable, StepOut, StepResult};
#[doc(inline)]
pub use intrinsic_cost::{IntrinsicCost, IntrinsicCostVTable};
#[doc(inline)]
pub use memory::{Memory, MemoryVTable, TransitionFfi, TransitionIn, TransitionOut};
#[doc(inline)]
pub use perception::{Perception, PerceptionVTable};
#[doc(inline)]
pub use planner::{HostModel, PlanInfo, PlanInfoFfi, PlanProblemFfi, Planner, PlannerVTable, Problem};
#[doc(inline)]
pub use world_model::{WorldModel, WorldModelVTable};

// ---------------------------------------------------------------------------
// Rust-side types shared by several kinds.

/// What every module is: a named type created from its JSON configuration.
/// `Send` because the host may move instances between threads.
pub trait Module: Sized + Send + 'static {
    /// Module name, unique within the plugin (addressed as `plugin/NAME`).
    const NAME: &'static str;
    /// One-line description (shown by `ami plugin inspect`).
    const DESCRIPTION: &'static str = "";
    /// Configuration keys the module accepts; any other key is refused.
    const PARAMS: &'static [Param] = &[];
    /// Creates an instance; `config` holds only declared keys.
    fn create(config: &Config) -> Result<Self, Error>;
    /// Starts a new episode with `seed` (default: nothing to do).
    fn reset(&mut self, _seed: u64) -> Result<(), Error> {
        Ok(())
    }
}

/// What a cost term may read besides the batch.
#[derive(Debug, Clone, Copy)]
pub struct CostContext<'a> {
    /// The configurator's goal, if any.
    pub goal: Option<&'a [f32]>,
    /// Step within the rollout (0 = first predicted step).
    pub step: usize,
}

/// The host's cost, as seen from a plugin actor or planner.
#[derive(Clone, Copy)]
pub struct HostCostRef<'a> {
    ffi: &'a HostCost,
}

impl<'a> HostCostRef<'a> {
    /// Whether the cost has terminal (critic) terms.
    pub fn has_terminal(&self) -> bool {
        self.ffi.has_terminal != 0
    }
    /// Writes the weighted intrinsic energy of each transition into `out`.
    pub fn step_energy(&self, step: usize, states: Tensor<'_>, actions: Tensor<'_>, next_states: Tensor<'_>, out: &mut [f32]) -> Result<(), Error> {
        let (s, a, n) = (states.view(), actions.view(), next_states.view());
        let o = TensorView::vector_mut(out.as_mut_ptr(), out.len());
        call_host(|err| {
            // SAFETY: the host's callback with views over live, correctly sized buffers.
            unsafe { (self.ffi.step_energy)(self.ffi.ctx, step as u64, &s, &a, &n, &o, err) }
        })
    }
    /// **Adds** the weighted terminal energy of final states to `out`.
    pub fn terminal_energy(&self, step: usize, states: Tensor<'_>, out: &mut [f32]) -> Result<(), Error> {
        let s = states.view();
        let o = TensorView::vector_mut(out.as_mut_ptr(), out.len());
        call_host(|err| {
            // SAFETY: the host's callback with views over live, correctly sized buffers.
            unsafe { (self.ffi.terminal_energy)(self.ffi.ctx, step as u64, &s, &o, err) }
        })
    }
}

fn call_host(f: impl FnOnce(*mut ErrBuf) -> Status) -> Result<(), Error> {
    let mut mem = [0u8; 512];
    let mut err = ErrBuf { ptr: mem.as_mut_ptr(), cap: mem.len(), len: 0 };
    let st = f(&mut err);
    if st == Status::OK {
        Ok(())
    } else {
        let n = err.len.min(mem.len());
        Err(Error::new(format!("host: {}", String::from_utf8_lossy(&mem[..n]))))
    }
}

// ---------------------------------------------------------------------------
// FFI structures shared by several kinds.

/// Cost context across the boundary.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CostCtxFfi {
    /// The goal (1-D), or a view with `ndim == 0` when there is none.
    pub goal: TensorView,
    /// Rollout step.
    pub step: u64,
}

/// The host's cost, for plugin actors and planners.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HostCost {
    /// Opaque host state.
    pub ctx: *const c_void,
    /// 1 if the cost has terminal terms.
    pub has_terminal: u32,
    /// Writes the per-step energy `[batch]` of transitions.
    pub step_energy: unsafe extern "C" fn(
        ctx: *const c_void,
        step: u64,
        states: *const TensorView,
        actions: *const TensorView,
        next: *const TensorView,
        out: *const TensorView,
        err: *mut ErrBuf,
    ) -> Status,
    /// Adds the terminal energy `[batch]` of final states.
    pub terminal_energy: unsafe extern "C" fn(ctx: *const c_void, step: u64, states: *const TensorView, out: *const TensorView, err: *mut ErrBuf) -> Status,
}

type Err = *mut ErrBuf;
type View = *const TensorView;

// ---------------------------------------------------------------------------
// Shims shared by every kind.

impl Tensor<'_> {
    pub(crate) fn view(&self) -> TensorView {
        let (rows, cols) = (self.rows(), self.cols());
        let stride = if rows > 1 { self.stride_elems() } else { cols };
        let ptr = if rows > 0 && cols > 0 { self.row(0).as_ptr() } else { std::ptr::NonNull::<f32>::dangling().as_ptr() };
        TensorView::matrix(ptr, rows, cols, stride)
    }
}

impl TensorMut<'_> {
    pub(crate) fn view(&mut self) -> TensorView {
        let (rows, cols) = (self.rows(), self.cols());
        let stride = if rows > 1 { self.as_tensor().stride_elems() } else { cols };
        let ptr = if rows > 0 && cols > 0 { self.row_mut(0).as_mut_ptr() } else { std::ptr::NonNull::<f32>::dangling().as_ptr() };
        TensorView::matrix_mut(ptr, rows, cols, stride)
    }
}

fn check_params<M: Module>(cfg: &Config) -> Result<(), Error> {
    for key in cfg.keys() {
        // SAFETY: `PARAMS` strings are built from `&'static str` by `Param::new`.
        let known = M::PARAMS.iter().any(|p| unsafe { p.name.as_str() }.is_ok_and(|n| n == key));
        if !known {
            // SAFETY: as above.
            let names: Vec<&str> = M::PARAMS.iter().filter_map(|p| unsafe { p.name.as_str() }.ok()).collect();
            let list = if names.is_empty() { "none".to_string() } else { names.join(", ") };
            return Err(Error::new(format!("unknown parameter `{key}` (known: {list})")));
        }
    }
    Ok(())
}

unsafe extern "C" fn create<M: Module>(config: Str, out: *mut *mut c_void, err: *mut ErrBuf) -> Status {
    // SAFETY: the host passes valid config text, output slot and error buffer.
    unsafe {
        guard(err, || {
            let cfg = Config::parse(config.as_str()?)?;
            check_params::<M>(&cfg)?;
            let m = M::create(&cfg)?;
            if out.is_null() {
                return Err(Error::new("null output slot"));
            }
            *out = Box::into_raw(Box::new(m)).cast();
            Ok(())
        })
    }
}

unsafe extern "C" fn destroy<M: Module>(this: *mut c_void) {
    if this.is_null() {
        return;
    }
    // A panicking Drop must not unwind into the host.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `this` came from `Box::into_raw` in `create::<M>` and the host destroys it once.
        drop(unsafe { Box::from_raw(this.cast::<M>()) });
    }));
}

unsafe extern "C" fn reset<M: Module>(this: *mut c_void, seed: u64, err: *mut ErrBuf) -> Status {
    // SAFETY: `this` is a live instance of `M` the host holds exclusively.
    unsafe { guard(err, || (*this.cast::<M>()).reset(seed)) }
}

type DimsFn = unsafe extern "C" fn(this: *const c_void, out: *mut Dims, err: *mut ErrBuf) -> Status;

const fn header<M: Module>(kind: ModuleKind, size: usize, dims: DimsFn) -> VTableHeader {
    VTableHeader { size: size as u32, kind, create: create::<M>, destroy: destroy::<M>, reset: reset::<M>, dims }
}

/// # Safety
/// `this` is a live `M`; `out` is valid.
unsafe fn write_dims<M>(this: *const c_void, out: *mut Dims, err: *mut ErrBuf, f: impl FnOnce(&M) -> Dims) -> Status {
    // SAFETY: forwarded from the caller.
    unsafe {
        guard(err, || {
            let d = f(&*this.cast::<M>());
            if out.is_null() {
                return Err(Error::new("null dims output"));
            }
            *out = d;
            Ok(())
        })
    }
}

/// # Safety
/// `ctx` is null or a valid context whose goal view is readable.
unsafe fn cost_ctx<'a>(ctx: *const CostCtxFfi) -> Result<CostContext<'a>, Error> {
    // SAFETY: forwarded from the caller.
    let c = unsafe { ctx.as_ref() }.ok_or_else(|| Error::new("null cost context"))?;
    let goal = if c.goal.ndim == 0 {
        None
    } else {
        // SAFETY: forwarded from the caller.
        Some(unsafe { TensorView::as_slice(&c.goal, "goal") }?)
    };
    Ok(CostContext { goal, step: c.step as usize })
}
