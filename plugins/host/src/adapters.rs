//! Adapters: plugin module instances behind the ordinary module traits.

use std::ffi::c_void;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use ami_plugin_abi::kinds::{
    ActorVTable, BatchFfi, ConfiguratorVTable, CostCtxFfi, CriticVTable, EnvironmentVTable, HostCost, HostModel, IntrinsicCostVTable, MemoryVTable,
    PerceptionVTable, PlanInfoFfi, PlanProblemFfi, PlannerVTable, StepOut, StrSink, TransitionFfi, WorldModelVTable,
};
use ami_plugin_abi::{Dims, ErrBuf, Status, Str, TensorView, DEVICE_CPU, DTYPE_F32};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, ShapeBuilder};
use rand::Rng;

use crate::{Instance, PluginError};
use ami_core::error::{CoreError, Result};
use ami_core::modules::{
    Actor, Configurator, Cost, CostContext, Critic, DifferentiableWorldModel, IntrinsicCost, Modulation, Perception, ShortTermMemory, SoftRead, Transition,
    TransitionBatch, TransitionRef, WorldModel,
};
use ami_core::rng::AmiRng;
use ami_core::{Bounds, Budget, Environment, Plan, PlanRequest, Planner, Step};

// ---------------------------------------------------------------------------
// ndarray <-> TensorView.

/// A view of a 2-D array whose rows are contiguous, or `None`.
fn view2(a: &ArrayView2<'_, f32>) -> Option<TensorView> {
    let (r, c) = a.dim();
    if r == 0 || c == 0 {
        return Some(TensorView::matrix(std::ptr::NonNull::dangling().as_ptr(), r, c, c));
    }
    let s = a.strides();
    let col_ok = c == 1 || s[1] == 1;
    let row_ok = r == 1 || s[0] >= c as isize;
    (col_ok && row_ok).then(|| TensorView::matrix(a.as_ptr(), r, c, if r == 1 { c } else { s[0] as usize }))
}

fn view2_mut(a: &mut ArrayViewMut2<'_, f32>) -> Option<TensorView> {
    let v = view2(&a.view())?;
    Some(TensorView::matrix_mut(a.as_mut_ptr(), v.shape[0] as usize, v.shape[1] as usize, v.strides[0] as usize))
}

/// An input view, copying into `keep` when the layout cannot be passed.
fn in2(a: &ArrayView2<'_, f32>, keep: &mut Option<Array2<f32>>) -> TensorView {
    if let Some(v) = view2(a) {
        return v;
    }
    let o = keep.insert(a.as_standard_layout().into_owned());
    view2(&o.view()).unwrap_or_else(|| unreachable!("standard layout is contiguous"))
}

fn in1(a: &ArrayView1<'_, f32>, keep: &mut Option<Array1<f32>>) -> TensorView {
    if let Some(s) = a.as_slice() {
        return TensorView::vector(if s.is_empty() { std::ptr::NonNull::dangling().as_ptr() } else { s.as_ptr() }, s.len());
    }
    // `to_vec` is in logical order (an owned copy may keep a negative stride).
    let o = keep.insert(Array1::from(a.to_vec()));
    TensorView::vector(o.as_ptr(), o.len())
}

/// Runs `f` with a writable 2-D view of `out`, through a temporary holding
/// `out`'s values when its layout cannot be passed.
fn with_out2(out: &mut ArrayViewMut2<'_, f32>, f: impl FnOnce(TensorView) -> std::result::Result<(), PluginError>) -> std::result::Result<(), PluginError> {
    if let Some(v) = view2_mut(out) {
        return f(v);
    }
    let mut tmp = out.view().as_standard_layout().into_owned();
    let v = view2_mut(&mut tmp.view_mut()).unwrap_or_else(|| unreachable!("owned arrays are contiguous"));
    f(v)?;
    out.assign(&tmp);
    Ok(())
}

fn with_out1(out: &mut ArrayViewMut1<'_, f32>, f: impl FnOnce(TensorView) -> std::result::Result<(), PluginError>) -> std::result::Result<(), PluginError> {
    if let Some(s) = out.as_slice_mut() {
        let ptr = if s.is_empty() { std::ptr::NonNull::dangling().as_ptr() } else { s.as_mut_ptr() };
        return f(TensorView::vector_mut(ptr, s.len()));
    }
    let mut tmp = Array1::from(out.to_vec());
    f(TensorView::vector_mut(tmp.as_mut_ptr(), tmp.len()))?;
    out.assign(&tmp);
    Ok(())
}

/// Reads a host-bound 2-D view from a plugin (callbacks).
///
/// # Safety
/// `v` is null or a valid view over memory that lives for `'a`.
unsafe fn nd2(v: *const TensorView, what: &str) -> std::result::Result<(usize, usize, usize, *mut f32), String> {
    // SAFETY: forwarded.
    let t = unsafe { ami_plugin_abi::Tensor::from_view(v, what) }.map_err(|e| e.0)?;
    // SAFETY: `from_view` checked it non-null.
    let v = unsafe { &*v };
    let (r, c) = (t.rows(), t.cols());
    let stride = if r > 1 { v.strides[0] as usize } else { c };
    let ptr = if r == 0 || c == 0 || v.data.is_null() { std::ptr::NonNull::<f32>::dangling().as_ptr() } else { v.data.cast::<f32>() };
    Ok((r, c, stride, ptr))
}

/// # Safety
/// As [`nd2`], for reading.
unsafe fn nd_view2<'a>(v: *const TensorView, what: &str) -> std::result::Result<ArrayView2<'a, f32>, String> {
    // SAFETY: forwarded.
    let (r, c, s, p) = unsafe { nd2(v, what) }?;
    // SAFETY: the view was checked to cover `r` rows of `c` floats `s` apart.
    Ok(unsafe { ArrayView2::from_shape_ptr((r, c).strides((s, 1)), p) })
}

/// # Safety
/// As [`nd2`], writable and not aliased.
unsafe fn nd_view2_mut<'a>(v: *const TensorView, what: &str) -> std::result::Result<ArrayViewMut2<'a, f32>, String> {
    // SAFETY: forwarded.
    if unsafe { v.as_ref() }.is_some_and(|v| v.flags & TensorView::WRITABLE == 0) {
        return Err(format!("{what}: output view is not writable"));
    }
    // SAFETY: forwarded.
    let (r, c, s, p) = unsafe { nd2(v, what) }?;
    // SAFETY: the view was checked to cover `r` rows of `c` floats `s` apart; the plugin lends it exclusively.
    Ok(unsafe { ArrayViewMut2::from_shape_ptr((r, c).strides((s, 1)), p) })
}

/// # Safety
/// `v` is null or a valid writable 1-D view, not aliased, living for `'a`.
unsafe fn nd_view1_mut<'a>(v: *const TensorView, what: &str) -> std::result::Result<ArrayViewMut1<'a, f32>, String> {
    // SAFETY: forwarded.
    let s = unsafe { TensorView::as_mut_slice(v, what) }.map_err(|e| e.0)?;
    Ok(ArrayViewMut1::from(s))
}

/// Runs a host callback for a plugin, containing panics.
fn host_guard(err: *mut ErrBuf, f: impl FnOnce() -> std::result::Result<(), String>) -> Status {
    let (st, msg) = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(())) => return Status::OK,
        Ok(Err(m)) => (Status::ERROR, m),
        Err(_) => (Status::ERROR, "the host panicked in a callback".to_string()),
    };
    // SAFETY: the plugin passes its error buffer (or null).
    unsafe { ErrBuf::write(err, &msg) };
    st
}

unsafe extern "C" fn host_predict(
    ctx: *const c_void,
    states: *const TensorView,
    actions: *const TensorView,
    next: *const TensorView,
    err: *mut ErrBuf,
) -> Status {
    host_guard(err, || {
        // SAFETY: `ctx` is the `&dyn WorldModel` the adapter put in `HostModel`, alive across `plan`.
        let model = unsafe { *ctx.cast::<&dyn WorldModel>() };
        // SAFETY: the plugin's views are valid for the call.
        let (s, a, n) = unsafe { (nd_view2(states, "states")?, nd_view2(actions, "actions")?, nd_view2_mut(next, "next")?) };
        model.predict(s, a, n).map_err(|e| e.to_string())
    })
}

unsafe extern "C" fn host_step_energy(
    ctx: *const c_void,
    step: u64,
    states: *const TensorView,
    actions: *const TensorView,
    next: *const TensorView,
    out: *const TensorView,
    err: *mut ErrBuf,
) -> Status {
    host_guard(err, || {
        // SAFETY: `ctx` is the `&Cost` the adapter put in `HostCost`, alive across the call into the plugin.
        let cost = unsafe { &*ctx.cast::<Cost>() };
        // SAFETY: the plugin's views are valid for the call.
        let (s, a, n, o) = unsafe { (nd_view2(states, "states")?, nd_view2(actions, "actions")?, nd_view2(next, "next_states")?, nd_view1_mut(out, "out")?) };
        let b = s.nrows();
        if a.nrows() != b || n.dim() != s.dim() || o.len() != b {
            return Err(format!("step_energy: inconsistent batch: states {:?}, actions {:?}, next {:?}, out {}", s.dim(), a.dim(), n.dim(), o.len()));
        }
        cost.step_energy(step as usize, s, a, n, o);
        Ok(())
    })
}

unsafe extern "C" fn host_terminal_energy(ctx: *const c_void, step: u64, states: *const TensorView, out: *const TensorView, err: *mut ErrBuf) -> Status {
    host_guard(err, || {
        // SAFETY: as in `host_step_energy`.
        let cost = unsafe { &*ctx.cast::<Cost>() };
        // SAFETY: the plugin's views are valid for the call.
        let (s, o) = unsafe { (nd_view2(states, "states")?, nd_view1_mut(out, "out")?) };
        if o.len() != s.nrows() {
            return Err(format!("terminal_energy: {} states but out has {}", s.nrows(), o.len()));
        }
        cost.add_terminal_energy(step as usize, s, o);
        Ok(())
    })
}

fn host_cost(cost: &Cost) -> HostCost {
    HostCost {
        ctx: (cost as *const Cost).cast(),
        has_terminal: u32::from(cost.has_terminal()),
        step_energy: host_step_energy,
        terminal_energy: host_terminal_energy,
    }
}

fn cost_ctx(ctx: &CostContext<'_>, keep: &mut Option<Array1<f32>>) -> CostCtxFfi {
    CostCtxFfi { goal: ctx.goal.as_ref().map_or_else(TensorView::none, |g| in1(g, keep)), step: ctx.step as u64 }
}

fn usize_dim(d: u64) -> usize {
    usize::try_from(d).unwrap_or(usize::MAX)
}

fn shape_err(inst: &Instance, what: &str, expected: String, found: String) -> CoreError {
    CoreError::shape(format!("{}: {what}", inst.label()), expected, found)
}

// ---------------------------------------------------------------------------
// World model.

/// A plugin world model, used like any [`WorldModel`].
#[derive(Debug)]
pub struct PluginWorldModel {
    inst: Instance,
    dims: Dims,
    differentiable: bool,
}

// SAFETY: the world model plugin trait requires `Sync` (`WorldModel: Module +
// Sync`), and `predict`/`vjp` take the instance by shared pointer.
unsafe impl Sync for PluginWorldModel {}

impl PluginWorldModel {
    pub(super) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        let dims = inst.dims()?;
        // SAFETY: the instance is a world model.
        let differentiable = unsafe { inst.vtable::<WorldModelVTable>() }.vjp.is_some();
        Ok(Self { inst, dims, differentiable })
    }
    /// `plugin:NAME/MODULE`.
    pub fn label(&self) -> String {
        self.inst.label()
    }
    /// Whether the module panicked and is poisoned.
    pub fn is_poisoned(&self) -> bool {
        self.inst.is_poisoned()
    }

    fn call_predict(&self, states: &ArrayView2<'_, f32>, actions: &ArrayView2<'_, f32>, latents: TensorView, next: &mut ArrayViewMut2<'_, f32>) -> Result<()> {
        let b = states.nrows();
        let (sd, ad) = (self.state_dim(), self.action_dim());
        if states.ncols() != sd || actions.dim() != (b, ad) || next.dim() != (b, sd) {
            return Err(ami_core::check_predict_shapes(self, &self.inst.label(), states, actions, &next.view_mut())
                .err()
                .unwrap_or_else(|| shape_err(&self.inst, "predict", format!("[{b}, {sd}]"), format!("{:?}", next.dim()))));
        }
        let (mut ks, mut ka) = (None, None);
        let (s, a) = (in2(states, &mut ks), in2(actions, &mut ka));
        // SAFETY: the instance is a world model.
        let vt = unsafe { self.inst.vtable::<WorldModelVTable>() };
        let this = self.inst.this();
        with_out2(next, |n| {
            self.inst.call(|err| {
                // SAFETY: live instance; views over buffers borrowed for the call, shapes checked.
                unsafe { (vt.predict)(this, &s, &a, &latents, &n, err) }
            })
        })?;
        Ok(())
    }
}

impl WorldModel for PluginWorldModel {
    fn state_dim(&self) -> usize {
        usize_dim(self.dims.state_dim)
    }
    fn action_dim(&self) -> usize {
        usize_dim(self.dims.action_dim)
    }
    fn latent_dim(&self) -> usize {
        usize_dim(self.dims.latent_dim)
    }
    #[inline]
    fn predict(&self, states: ArrayView2<'_, f32>, actions: ArrayView2<'_, f32>, mut next: ArrayViewMut2<'_, f32>) -> Result<()> {
        self.call_predict(&states, &actions, TensorView::none(), &mut next)
    }
    fn predict_with_latents(
        &self,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        latents: ArrayView2<'_, f32>,
        mut next: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        if self.latent_dim() == 0 && latents.ncols() == 0 {
            return self.predict(states, actions, next);
        }
        if latents.dim() != (states.nrows(), self.latent_dim()) {
            return Err(shape_err(&self.inst, "predict(latents)", format!("[{}, {}]", states.nrows(), self.latent_dim()), format!("{:?}", latents.dim())));
        }
        let mut kl = None;
        let l = in2(&latents, &mut kl);
        self.call_predict(&states, &actions, l, &mut next)
    }
    fn differentiable(&self) -> Option<&dyn DifferentiableWorldModel> {
        if self.differentiable {
            Some(self)
        } else {
            None
        }
    }
}

impl DifferentiableWorldModel for PluginWorldModel {
    fn vjp(
        &self,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        grad_next: ArrayView2<'_, f32>,
        mut grad_states: ArrayViewMut2<'_, f32>,
        mut grad_actions: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        let b = states.nrows();
        let (sd, ad) = (self.state_dim(), self.action_dim());
        for (what, found, want) in [
            ("vjp(states)", states.dim(), (b, sd)),
            ("vjp(actions)", actions.dim(), (b, ad)),
            ("vjp(grad_next)", grad_next.dim(), (b, sd)),
            ("vjp(grad_states)", grad_states.dim(), (b, sd)),
            ("vjp(grad_actions)", grad_actions.dim(), (b, ad)),
        ] {
            if found != want {
                return Err(shape_err(&self.inst, what, format!("{want:?}"), format!("{found:?}")));
            }
        }
        // SAFETY: the instance is a world model.
        let vt = unsafe { self.inst.vtable::<WorldModelVTable>() };
        let Some(vjp) = vt.vjp else {
            return Err(CoreError::module(self.inst.label(), "not differentiable"));
        };
        let (mut k1, mut k2, mut k3) = (None, None, None);
        let (s, a, g) = (in2(&states, &mut k1), in2(&actions, &mut k2), in2(&grad_next, &mut k3));
        let this = self.inst.this();
        with_out2(&mut grad_states, |gs| {
            with_out2(&mut grad_actions, |ga| {
                self.inst.call(|err| {
                    // SAFETY: live instance; views over buffers borrowed for the call, shapes checked.
                    unsafe { vjp(this, &s, &a, &g, &gs, &ga, err) }
                })
            })
        })?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Intrinsic cost and critic.

/// A plugin intrinsic cost term. Its term name is the module name unless
/// renamed with [`PluginIntrinsicCost::named`].
#[derive(Debug)]
pub struct PluginIntrinsicCost {
    inst: Instance,
    name: String,
    reported: AtomicBool,
}

// SAFETY: the intrinsic cost plugin trait requires `Sync`; `add_cost` takes the instance by shared pointer.
unsafe impl Sync for PluginIntrinsicCost {}

impl PluginIntrinsicCost {
    pub(super) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        inst.dims()?;
        let name = inst.module.clone();
        Ok(Self { inst, name, reported: AtomicBool::new(false) })
    }
    /// Renames the term (the name cost modulations address).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    /// Whether the module panicked and is poisoned.
    pub fn is_poisoned(&self) -> bool {
        self.inst.is_poisoned()
    }
}

fn report_once(flag: &AtomicBool, e: &PluginError) {
    if !flag.swap(true, Ordering::Relaxed) {
        tracing::error!("{e}; its energies are NaN from now on");
    }
}

impl IntrinsicCost for PluginIntrinsicCost {
    fn name(&self) -> &str {
        &self.name
    }
    /// On failure (error or panic) writes NaN, so planners see non-finite
    /// energies; the error is logged once and the host's
    /// [`super::PluginHost::poison_reports`] names the module.
    fn add_cost(
        &self,
        ctx: &CostContext<'_>,
        weight: f32,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        mut out: ArrayViewMut1<'_, f32>,
    ) {
        let b = out.len();
        if states.nrows() != b || actions.nrows() != b || next_states.nrows() != b {
            out.fill(f32::NAN);
            return;
        }
        let (mut k1, mut k2, mut k3, mut kg) = (None, None, None, None);
        let (s, a, n) = (in2(&states, &mut k1), in2(&actions, &mut k2), in2(&next_states, &mut k3));
        let c = cost_ctx(ctx, &mut kg);
        // SAFETY: the instance is an intrinsic cost.
        let vt = unsafe { self.inst.vtable::<IntrinsicCostVTable>() };
        let this = self.inst.this();
        let r = with_out1(&mut out, |o| {
            self.inst.call(|err| {
                // SAFETY: live instance; views over buffers borrowed for the call.
                unsafe { (vt.add_cost)(this, &c, weight, &s, &a, &n, &o, err) }
            })
        });
        if let Err(e) = r {
            report_once(&self.reported, &e);
            out.fill(f32::NAN);
        }
    }
}

/// A plugin critic term.
#[derive(Debug)]
pub struct PluginCritic {
    inst: Instance,
    reported: AtomicBool,
}

// SAFETY: the critic plugin trait requires `Sync`; `add_value` takes the
// instance by shared pointer and `train` needs `&mut self`.
unsafe impl Sync for PluginCritic {}

impl PluginCritic {
    pub(super) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        inst.dims()?;
        Ok(Self { inst, reported: AtomicBool::new(false) })
    }
}

impl Critic for PluginCritic {
    fn name(&self) -> &str {
        &self.inst.module
    }
    fn add_value(&self, ctx: &CostContext<'_>, weight: f32, states: ArrayView2<'_, f32>, mut out: ArrayViewMut1<'_, f32>) {
        if states.nrows() != out.len() {
            out.fill(f32::NAN);
            return;
        }
        let (mut k1, mut kg) = (None, None);
        let s = in2(&states, &mut k1);
        let c = cost_ctx(ctx, &mut kg);
        // SAFETY: the instance is a critic.
        let vt = unsafe { self.inst.vtable::<CriticVTable>() };
        let this = self.inst.this();
        let r = with_out1(&mut out, |o| {
            self.inst.call(|err| {
                // SAFETY: live instance; views over buffers borrowed for the call.
                unsafe { (vt.add_value)(this, &c, weight, &s, &o, err) }
            })
        });
        if let Err(e) = r {
            report_once(&self.reported, &e);
            out.fill(f32::NAN);
        }
    }
    fn train(&mut self, batch: &TransitionBatch, discount: f32) -> Result<f32> {
        let (mut k1, mut k2, mut k3, mut k4) = (None, None, None, None);
        let b = BatchFfi {
            states: in2(&batch.states.view(), &mut k1),
            actions: in2(&batch.actions.view(), &mut k2),
            costs: in1(&batch.costs.view(), &mut k4),
            next_states: in2(&batch.next_states.view(), &mut k3),
        };
        let mut loss = f32::NAN;
        // SAFETY: the instance is a critic.
        let vt = unsafe { self.inst.vtable::<CriticVTable>() };
        let this = self.inst.this_mut();
        self.inst.call(|err| {
            // SAFETY: live instance held exclusively; views over the batch borrowed for the call.
            unsafe { (vt.train)(this, &b, discount, &mut loss, err) }
        })?;
        Ok(loss)
    }
}

// ---------------------------------------------------------------------------
// Perception.

/// A plugin perception module.
#[derive(Debug)]
pub struct PluginPerception {
    inst: Instance,
    dims: Dims,
}

// SAFETY: the perception plugin trait requires `Sync`; `encode` takes the instance by shared pointer.
unsafe impl Sync for PluginPerception {}

impl PluginPerception {
    pub(super) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        let dims = inst.dims()?;
        Ok(Self { inst, dims })
    }
}

impl Perception for PluginPerception {
    fn obs_dim(&self) -> usize {
        usize_dim(self.dims.obs_dim)
    }
    fn state_dim(&self) -> usize {
        usize_dim(self.dims.state_dim)
    }
    fn encode(&self, observations: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        if observations.ncols() != self.obs_dim() {
            return Err(shape_err(&self.inst, "encode(observations)", format!("width {}", self.obs_dim()), format!("{:?}", observations.dim())));
        }
        let mut out = Array2::zeros((observations.nrows(), self.state_dim()));
        let mut k = None;
        let o = in2(&observations, &mut k);
        // SAFETY: the instance is a perception module.
        let vt = unsafe { self.inst.vtable::<PerceptionVTable>() };
        let this = self.inst.this();
        with_out2(&mut out.view_mut(), |s| {
            self.inst.call(|err| {
                // SAFETY: live instance; views borrowed for the call, shapes checked.
                unsafe { (vt.encode)(this, &o, &s, err) }
            })
        })?;
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// Actor and planner.

/// A plugin actor.
#[derive(Debug)]
pub struct PluginActor {
    inst: Instance,
    dims: Dims,
}

impl PluginActor {
    pub(super) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        let dims = inst.dims()?;
        Ok(Self { inst, dims })
    }
}

impl Actor for PluginActor {
    fn action_dim(&self) -> usize {
        usize_dim(self.dims.action_dim)
    }
    fn reset(&mut self, seed: u64) {
        if let Err(e) = self.inst.reset(seed) {
            tracing::error!("{e}");
        }
    }
    fn act(&mut self, state: ArrayView1<'_, f32>, cost: &Cost) -> Result<Array1<f32>> {
        let mut action = Array1::zeros(self.action_dim());
        let mut k = None;
        let s = in1(&state, &mut k);
        let hc = host_cost(cost);
        let out = TensorView::vector_mut(action.as_mut_ptr(), action.len());
        // SAFETY: the instance is an actor.
        let vt = unsafe { self.inst.vtable::<ActorVTable>() };
        let this = self.inst.this_mut();
        self.inst.call(|err| {
            // SAFETY: live instance held exclusively; views and the cost callbacks live across the call.
            unsafe { (vt.act)(this, &s, &hc, &out, err) }
        })?;
        Ok(action)
    }
    fn modulate(&mut self, m: &Modulation) -> Result<()> {
        let json = serde_json::to_string(m).map_err(|e| CoreError::module(self.inst.label(), format!("cannot encode modulation: {e}")))?;
        // SAFETY: the instance is an actor.
        let vt = unsafe { self.inst.vtable::<ActorVTable>() };
        let this = self.inst.this_mut();
        self.inst.call(|err| {
            // SAFETY: live instance held exclusively; the JSON text lives across the call.
            unsafe { (vt.modulate)(this, Str::borrow(&json), err) }
        })?;
        Ok(())
    }
}

/// A plugin Mode-2 planner: it rolls out the host's world model and cost
/// through callbacks.
#[derive(Debug)]
pub struct PluginPlanner {
    inst: Instance,
    label: String,
    horizon: usize,
    bounds: Bounds,
}

impl PluginPlanner {
    pub(super) fn new(inst: Instance, bounds: Bounds) -> std::result::Result<Self, PluginError> {
        let dims = inst.dims()?;
        let label = inst.label();
        Ok(Self { inst, label, horizon: usize_dim(dims.horizon), bounds })
    }
}

impl Planner for PluginPlanner {
    fn name(&self) -> &str {
        &self.label
    }
    fn horizon(&self) -> usize {
        self.horizon
    }
    fn action_dim(&self) -> usize {
        self.bounds.dim()
    }
    fn reset(&mut self, seed: u64) {
        if let Err(e) = self.inst.reset(seed) {
            tracing::error!("{e}");
        }
    }
    fn plan(&mut self, req: &PlanRequest<'_>) -> Result<Plan> {
        let (sd, ad) = (req.model.state_dim(), req.model.action_dim());
        if ad != self.bounds.dim() {
            return Err(shape_err(&self.inst, "world model action_dim", format!("{} (the bounds' dimension)", self.bounds.dim()), ad.to_string()));
        }
        if req.state.len() != sd {
            return Err(shape_err(&self.inst, "state", format!("length {sd}"), format!("length {}", req.state.len())));
        }
        let model: &dyn WorldModel = req.model;
        let mut ks = None;
        let problem = PlanProblemFfi {
            state: in1(&req.state, &mut ks),
            low: TensorView::vector(self.bounds.low.as_ptr(), self.bounds.low.len()),
            high: TensorView::vector(self.bounds.high.as_ptr(), self.bounds.high.len()),
            model: HostModel { ctx: (&model as *const &dyn WorldModel).cast(), state_dim: sd as u64, action_dim: ad as u64, predict: host_predict },
            cost: host_cost(req.cost),
        };
        let mut actions = Array2::zeros((self.horizon, ad));
        let out = TensorView::matrix_mut(actions.as_mut_ptr(), self.horizon, ad, ad);
        let mut info = PlanInfoFfi::default();
        // SAFETY: the instance is a planner.
        let vt = unsafe { self.inst.vtable::<PlannerVTable>() };
        let this = self.inst.this_mut();
        self.inst.call(|err| {
            // SAFETY: live instance held exclusively; the problem (views, model and
            // cost callbacks with their contexts) and outputs live across the call.
            unsafe { (vt.plan)(this, &problem, &out, &mut info, err) }
        })?;
        for mut row in actions.rows_mut() {
            if let Some(r) = row.as_slice_mut() {
                self.bounds.clamp(r);
            }
        }
        Ok(Plan { actions, energy: info.energy, iterations: usize_dim(info.iterations), evaluated: usize_dim(info.evaluated) })
    }
    fn set_budget(&mut self, budget: Budget) -> Result<()> {
        let ns = budget.deadline.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1));
        // SAFETY: the instance is a planner.
        let vt = unsafe { self.inst.vtable::<PlannerVTable>() };
        let this = self.inst.this_mut();
        // SAFETY: live instance held exclusively.
        self.inst.call(|err| unsafe { (vt.set_budget)(this, budget.iterations as u64, ns, err) })?;
        Ok(())
    }
    fn set_horizon(&mut self, horizon: usize) -> Result<()> {
        // SAFETY: the instance is a planner.
        let vt = unsafe { self.inst.vtable::<PlannerVTable>() };
        let this = self.inst.this_mut();
        // SAFETY: live instance held exclusively.
        self.inst.call(|err| unsafe { (vt.set_horizon)(this, horizon as u64, err) })?;
        self.horizon = usize_dim(self.inst.dims()?.horizon);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Memory.

/// A plugin short-term memory. Sampling and soft reads are done by the host
/// through `len` and `get`.
#[derive(Debug)]
pub struct PluginMemory {
    inst: Instance,
    dims: Dims,
}

impl PluginMemory {
    pub(super) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        let dims = inst.dims()?;
        Ok(Self { inst, dims })
    }

    fn read(&self, by_time: bool, key: u64) -> std::result::Result<Option<Transition>, PluginError> {
        let (sd, ad) = (self.state_dim(), self.action_dim());
        let (mut s, mut a, mut n) = (vec![0.0f32; sd], vec![0.0f32; ad], vec![0.0f32; sd]);
        let mut out = TransitionFfi {
            t: 0,
            state: TensorView::vector_mut(s.as_mut_ptr(), sd),
            action: TensorView::vector_mut(a.as_mut_ptr(), ad),
            cost: 0.0,
            next_state: TensorView::vector_mut(n.as_mut_ptr(), sd),
            imagined: 0,
        };
        let mut found = 0u8;
        // SAFETY: the instance is a memory.
        let vt = unsafe { self.inst.vtable::<MemoryVTable>() };
        let f = if by_time { vt.by_time } else { vt.get };
        let this = self.inst.this();
        // SAFETY: live instance (memory calls are serialised by `&self`/`&mut self`
        // of a `Send`-only adapter); outputs live across the call.
        self.inst.call(|err| unsafe { f(this, key, &mut out, &mut found, err) })?;
        Ok((found != 0).then_some(Transition { t: out.t, state: s, action: a, cost: out.cost, next_state: n, imagined: out.imagined != 0 }))
    }

    fn log_err<T>(&self, r: std::result::Result<T, PluginError>) -> Option<T> {
        r.map_err(|e| tracing::error!("{e}")).ok()
    }
}

impl ShortTermMemory for PluginMemory {
    fn state_dim(&self) -> usize {
        usize_dim(self.dims.state_dim)
    }
    fn action_dim(&self) -> usize {
        usize_dim(self.dims.action_dim)
    }
    fn capacity(&self) -> usize {
        usize_dim(self.dims.capacity)
    }
    fn len(&self) -> usize {
        let mut n = 0u64;
        // SAFETY: the instance is a memory.
        let vt = unsafe { self.inst.vtable::<MemoryVTable>() };
        let this = self.inst.this();
        // SAFETY: live instance; `n` lives across the call.
        let r = self.inst.call(|err| unsafe { (vt.len)(this, &mut n, err) });
        self.log_err(r).map_or(0, |_| usize_dim(n))
    }
    fn push(&mut self, tr: &TransitionRef<'_>) -> Result<()> {
        let (sd, ad) = (self.state_dim(), self.action_dim());
        if tr.state.len() != sd || tr.next_state.len() != sd || tr.action.len() != ad {
            return Err(shape_err(
                &self.inst,
                "push",
                format!("state/next_state {sd}, action {ad}"),
                format!("{}/{}, {}", tr.state.len(), tr.next_state.len(), tr.action.len()),
            ));
        }
        let (mut k1, mut k2, mut k3) = (None, None, None);
        let t = TransitionFfi {
            t: tr.t,
            state: in1(&tr.state, &mut k1),
            action: in1(&tr.action, &mut k2),
            cost: tr.cost,
            next_state: in1(&tr.next_state, &mut k3),
            imagined: u8::from(tr.imagined),
        };
        // SAFETY: the instance is a memory.
        let vt = unsafe { self.inst.vtable::<MemoryVTable>() };
        let this = self.inst.this_mut();
        // SAFETY: live instance held exclusively; the transition's views live across the call.
        self.inst.call(|err| unsafe { (vt.push)(this, &t, err) })?;
        Ok(())
    }
    fn get(&self, i: usize) -> Option<Transition> {
        self.log_err(self.read(false, i as u64)).flatten()
    }
    fn by_time(&self, t: u64) -> Option<Transition> {
        self.log_err(self.read(true, t)).flatten()
    }
    fn sample(&self, n: usize, rng: &mut AmiRng) -> Result<TransitionBatch> {
        let len = self.len();
        if len == 0 {
            return Err(CoreError::module(self.inst.label(), "cannot sample from an empty memory"));
        }
        let (sd, ad) = (self.state_dim(), self.action_dim());
        let mut b = TransitionBatch {
            t: Vec::with_capacity(n),
            states: Array2::zeros((n, sd)),
            actions: Array2::zeros((n, ad)),
            costs: Array1::zeros(n),
            next_states: Array2::zeros((n, sd)),
            imagined: Vec::with_capacity(n),
        };
        for row in 0..n {
            let i = rng.gen_range(0..len);
            let tr =
                self.read(false, i as u64)?.ok_or_else(|| CoreError::module(self.inst.label(), format!("get({i}) found nothing though len() is {len}")))?;
            b.t.push(tr.t);
            b.imagined.push(tr.imagined);
            b.costs[row] = tr.cost;
            b.states.row_mut(row).assign(&ArrayView1::from(&tr.state));
            b.actions.row_mut(row).assign(&ArrayView1::from(&tr.action));
            b.next_states.row_mut(row).assign(&ArrayView1::from(&tr.next_state));
        }
        Ok(b)
    }
    fn read_soft(&self, key: ArrayView1<'_, f32>, temperature: f32) -> Result<SoftRead> {
        let len = self.len();
        if len == 0 {
            return Err(CoreError::module(self.inst.label(), "cannot read from an empty memory"));
        }
        if key.len() != self.state_dim() {
            return Err(shape_err(&self.inst, "read_soft(key)", format!("length {}", self.state_dim()), format!("length {}", key.len())));
        }
        if !(temperature > 0.0 && temperature.is_finite()) {
            return Err(CoreError::config("read_soft.temperature", format!("must be positive and finite, got {temperature}")));
        }
        let mut items = Vec::with_capacity(len);
        for i in 0..len {
            if let Some(t) = self.read(false, i as u64)? {
                items.push(t);
            }
        }
        let logits: Vec<f32> = items.iter().map(|t| -t.state.iter().zip(key.iter()).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / temperature).collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let w: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let z: f32 = w.iter().sum();
        let mut next_state = Array1::zeros(self.state_dim());
        let mut cost = 0.0;
        for (t, &wk) in items.iter().zip(&w) {
            let p = wk / z;
            next_state.scaled_add(p, &ArrayView1::from(&t.next_state));
            cost += p * t.cost;
        }
        Ok(SoftRead { next_state, cost })
    }
    fn save(&self, path: &Path) -> Result<()> {
        let p = path.to_str().ok_or_else(|| CoreError::module(self.inst.label(), format!("{}: path is not UTF-8", path.display())))?;
        // SAFETY: the instance is a memory.
        let vt = unsafe { self.inst.vtable::<MemoryVTable>() };
        let this = self.inst.this();
        // SAFETY: live instance; the path text lives across the call.
        self.inst.call(|err| unsafe { (vt.save)(this, Str::borrow(p), err) })?;
        Ok(())
    }
    fn clear(&mut self) {
        // SAFETY: the instance is a memory.
        let vt = unsafe { self.inst.vtable::<MemoryVTable>() };
        let this = self.inst.this_mut();
        // SAFETY: live instance held exclusively.
        let r = self.inst.call(|err| unsafe { (vt.clear)(this, err) });
        self.log_err(r);
    }
}

// ---------------------------------------------------------------------------
// Configurator.

/// A plugin configurator. If the module fails, it emits no modulations and
/// the failure is logged (and, for a panic, reported by the host).
#[derive(Debug)]
pub struct PluginConfigurator {
    inst: Instance,
}

impl PluginConfigurator {
    pub(super) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        inst.dims()?;
        Ok(Self { inst })
    }
    /// The modulations for a tick, or the module's error.
    pub fn try_configure(&mut self, tick: u64, state: ArrayView1<'_, f32>) -> Result<Vec<Modulation>> {
        unsafe extern "C" fn sink(ctx: *mut c_void, s: Str) {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // SAFETY: `ctx` is the `String` below; `s` is valid for the call.
                unsafe { (*ctx.cast::<String>()).push_str(s.as_str().unwrap_or("")) };
            }));
        }
        let mut text = String::new();
        let snk = StrSink { ctx: (&mut text as *mut String).cast(), write: sink };
        let mut k = None;
        let s = in1(&state, &mut k);
        // SAFETY: the instance is a configurator.
        let vt = unsafe { self.inst.vtable::<ConfiguratorVTable>() };
        let this = self.inst.this_mut();
        // SAFETY: live instance held exclusively; the view and sink live across the call.
        self.inst.call(|err| unsafe { (vt.configure)(this, tick, &s, &snk, err) })?;
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_str(&text).map_err(|e| CoreError::module(self.inst.label(), format!("invalid modulations `{text}`: {e}")))
    }
}

impl Configurator for PluginConfigurator {
    fn configure(&mut self, tick: u64, state: ArrayView1<'_, f32>) -> Vec<Modulation> {
        self.try_configure(tick, state).unwrap_or_else(|e| {
            tracing::error!("{e}");
            Vec::new()
        })
    }
    fn reset(&mut self, seed: u64) {
        if let Err(e) = self.inst.reset(seed) {
            tracing::error!("{e}");
        }
    }
}

// ---------------------------------------------------------------------------
// Environment.

/// A plugin environment behind the [`Environment`] contract: a failing or
/// panicking call is an error naming `plugin:NAME/MODULE`.
#[derive(Debug)]
pub struct PluginEnvironment {
    inst: Instance,
    dims: Dims,
    bounds: Bounds,
    label: String,
}

impl PluginEnvironment {
    pub(super) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        let dims = inst.dims()?;
        let ad = usize_dim(dims.action_dim);
        let (mut low, mut high) = (vec![0.0f32; ad], vec![0.0f32; ad]);
        let (l, h) = (TensorView::vector_mut(low.as_mut_ptr(), ad), TensorView::vector_mut(high.as_mut_ptr(), ad));
        // SAFETY: the instance is an environment.
        let vt = unsafe { inst.vtable::<EnvironmentVTable>() };
        let this = inst.this();
        // SAFETY: live instance; outputs live across the call.
        inst.call(|err| unsafe { (vt.bounds)(this, &l, &h, err) })?;
        let bounds = Bounds::new(low, high).map_err(|e| PluginError::Module {
            plugin: inst.plugin.name().into(),
            module: inst.module.clone(),
            message: format!("invalid action bounds: {e}"),
        })?;
        let label = inst.label();
        Ok(Self { inst, dims, bounds, label })
    }
    /// `plugin:NAME/MODULE`.
    pub fn label(&self) -> String {
        self.inst.label()
    }
    /// The plugin's name.
    pub fn plugin_name(&self) -> &str {
        self.inst.plugin.name()
    }
    /// Whether the module panicked and is poisoned.
    pub fn is_poisoned(&self) -> bool {
        self.inst.is_poisoned()
    }
}

impl Environment for PluginEnvironment {
    fn name(&self) -> &str {
        &self.label
    }
    fn obs_dim(&self) -> usize {
        usize_dim(self.dims.obs_dim)
    }
    fn action_dim(&self) -> usize {
        usize_dim(self.dims.action_dim)
    }
    fn action_bounds(&self) -> Bounds {
        self.bounds.clone()
    }
    fn max_steps(&self) -> usize {
        usize_dim(self.dims.max_steps)
    }
    fn reset(&mut self, seed: u64) -> Result<Array1<f32>> {
        let mut obs = Array1::zeros(self.obs_dim());
        let o = TensorView::vector_mut(obs.as_mut_ptr(), obs.len());
        // SAFETY: the instance is an environment.
        let vt = unsafe { self.inst.vtable::<EnvironmentVTable>() };
        let this = self.inst.this_mut();
        // SAFETY: live instance held exclusively; the output lives across the call.
        self.inst.call(|err| unsafe { (vt.reset_episode)(this, seed, &o, err) })?;
        Ok(obs)
    }
    fn step(&mut self, action: ArrayView1<'_, f32>) -> Result<Step> {
        if action.len() != self.action_dim() {
            return Err(shape_err(&self.inst, "step(action)", format!("length {}", self.action_dim()), format!("length {}", action.len())));
        }
        let mut obs = Array1::zeros(self.obs_dim());
        let o = TensorView::vector_mut(obs.as_mut_ptr(), obs.len());
        let mut k = None;
        let a = in1(&action, &mut k);
        let mut out = StepOut::default();
        // SAFETY: the instance is an environment.
        let vt = unsafe { self.inst.vtable::<EnvironmentVTable>() };
        let this = self.inst.this_mut();
        // SAFETY: live instance held exclusively; views and output live across the call.
        self.inst.call(|err| unsafe { (vt.step)(this, &a, &o, &mut out, err) })?;
        Ok(Step { observation: obs, reward: out.reward, terminated: out.terminated != 0, truncated: out.truncated != 0 })
    }
}

#[allow(dead_code)]
const _: () = {
    // The views built here are what the abi crate checks.
    assert!(DTYPE_F32 == 1 && DEVICE_CPU == 0);
};
