//! The module kinds: for each, the Rust trait a plugin implements, the
//! `#[repr(C)]` vtable the host calls (it starts with a [`VTableHeader`] and
//! only ever grows at the end), and the `catch_unwind` shims between them.
//!
//! The submodules (`kinds::world_model`, ...) are what [`declare_plugin!`]
//! names: each has the `VTable` type, the `KIND` and `vtable::<M>()`.
//!
//! [`declare_plugin!`]: crate::declare_plugin

use std::ffi::c_void;
use std::mem::size_of;
use std::time::Duration;

use crate::json::{Config, Json};
use crate::tensor::{Tensor, TensorMut, TensorView};
use crate::{guard, Dims, ErrBuf, Error, ModuleKind, Param, Status, Str, VTableHeader};

// ---------------------------------------------------------------------------
// Rust-side traits.

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

/// Perception: `s = Enc(x)`, batched.
pub trait Perception: Module + Sync {
    /// Width of an observation.
    fn obs_dim(&self) -> usize;
    /// Width of a state.
    fn state_dim(&self) -> usize;
    /// Writes the states `[batch, state_dim]` of `observations` `[batch, obs_dim]`.
    fn encode(&self, observations: Tensor<'_>, states: TensorMut<'_>) -> Result<(), Error>;
}

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

/// What a cost term may read besides the batch.
#[derive(Debug, Clone, Copy)]
pub struct CostContext<'a> {
    /// The configurator's goal, if any.
    pub goal: Option<&'a [f32]>,
    /// Step within the rollout (0 = first predicted step).
    pub step: usize,
}

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

/// An actor: the action to take in a state.
pub trait Actor: Module {
    /// Width of an action.
    fn action_dim(&self) -> usize;
    /// Writes the action for `state` into `action`; `cost` is the host's energy.
    fn act(&mut self, state: &[f32], cost: &HostCostRef<'_>, action: &mut [f32]) -> Result<(), Error>;
    /// A configurator modulation, as JSON text (see [`Modulation::to_json`]).
    fn modulate(&mut self, _modulation: &str) -> Result<(), Error> {
        Ok(())
    }
}

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

/// A transition given to [`Memory::push`].
#[derive(Debug, Clone, Copy)]
pub struct TransitionIn<'a> {
    /// Time step.
    pub t: u64,
    /// State before the action.
    pub state: &'a [f32],
    /// The action.
    pub action: &'a [f32],
    /// Intrinsic cost.
    pub cost: f32,
    /// State after the action.
    pub next_state: &'a [f32],
    /// Imagined rather than perceived.
    pub imagined: bool,
}

/// Where [`Memory::get`] writes a transition (buffers sized by the host).
#[derive(Debug)]
pub struct TransitionOut<'a> {
    /// Time step.
    pub t: u64,
    /// `[state_dim]`.
    pub state: &'a mut [f32],
    /// `[action_dim]`.
    pub action: &'a mut [f32],
    /// Intrinsic cost.
    pub cost: f32,
    /// `[state_dim]`.
    pub next_state: &'a mut [f32],
    /// Imagined rather than perceived.
    pub imagined: bool,
}

/// Short-term memory. The host samples batches and does soft reads through
/// `len` and `get`.
pub trait Memory: Module {
    /// Width of a state.
    fn state_dim(&self) -> usize;
    /// Width of an action.
    fn action_dim(&self) -> usize;
    /// Maximum number of transitions kept.
    fn capacity(&self) -> usize;
    /// Number stored.
    fn len(&self) -> usize;
    /// Whether nothing is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Stores a transition (overwriting the oldest when full).
    fn push(&mut self, tr: &TransitionIn<'_>) -> Result<(), Error>;
    /// Writes the `i`-th transition (oldest first); `false` if there is none.
    fn get(&self, i: usize, out: &mut TransitionOut<'_>) -> Result<bool, Error>;
    /// Writes the most recent transition at time `t`; `false` if there is none.
    fn by_time(&self, t: u64, out: &mut TransitionOut<'_>) -> Result<bool, Error>;
    /// Saves to a file.
    fn save(&self, path: &str) -> Result<(), Error>;
    /// Forgets everything.
    fn clear(&mut self) -> Result<(), Error>;
}

/// A modulation a plugin configurator emits (the host's `Modulation`).
#[derive(Debug, Clone, PartialEq)]
pub enum Modulation {
    /// Set the weight of a cost term.
    CostWeight {
        /// Term name.
        term: String,
        /// New weight.
        weight: f32,
    },
    /// Set or clear the goal.
    Goal(Option<Vec<f32>>),
    /// Set the planner's horizon.
    Horizon(usize),
    /// Set the planner's budget.
    Budget {
        /// Iterations.
        iterations: usize,
        /// Optional wall-clock limit per call.
        deadline: Option<Duration>,
    },
}

impl Modulation {
    /// The JSON the host parses (externally tagged, snake_case).
    pub fn to_json(&self) -> Json {
        let num = |x: f64| Json::Number(x);
        let obj = |k: &str, v: Json| Json::Object(vec![(k.to_string(), v)]);
        match self {
            Modulation::CostWeight { term, weight } => {
                obj("cost_weight", Json::Object(vec![("term".into(), Json::String(term.clone())), ("weight".into(), num(f64::from(*weight)))]))
            }
            Modulation::Goal(g) => obj("goal", g.as_ref().map_or(Json::Null, |g| Json::Array(g.iter().map(|&x| num(f64::from(x))).collect()))),
            Modulation::Horizon(h) => obj("horizon", num(*h as f64)),
            Modulation::Budget { iterations, deadline } => obj(
                "budget",
                Json::Object(vec![
                    ("iterations".into(), num(*iterations as f64)),
                    (
                        "deadline".into(),
                        deadline.map_or(Json::Null, |d| {
                            Json::Object(vec![("secs".into(), num(d.as_secs() as f64)), ("nanos".into(), num(f64::from(d.subsec_nanos())))])
                        }),
                    ),
                ]),
            ),
        }
    }
}

/// A configurator: modulations to apply at each tick.
pub trait Configurator: Module {
    /// The modulations for this tick (usually none).
    fn configure(&mut self, tick: u64, state: &[f32]) -> Result<Vec<Modulation>, Error>;
}

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

/// Cost context across the boundary.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CostCtxFfi {
    /// The goal (1-D), or a view with `ndim == 0` when there is none.
    pub goal: TensorView,
    /// Rollout step.
    pub step: u64,
}

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

/// One transition across the boundary (input of `push`, output of `get`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TransitionFfi {
    /// Time step.
    pub t: u64,
    /// State (1-D).
    pub state: TensorView,
    /// Action (1-D).
    pub action: TensorView,
    /// Cost.
    pub cost: f32,
    /// Next state (1-D).
    pub next_state: TensorView,
    /// 1 if imagined.
    pub imagined: u8,
}

/// A host callback receiving text (configurator output).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrSink {
    /// Opaque host state.
    pub ctx: *mut c_void,
    /// Receives one string; the host copies it.
    pub write: unsafe extern "C" fn(ctx: *mut c_void, s: Str),
}

type Err = *mut ErrBuf;
type View = *const TensorView;

/// Perception vtable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PerceptionVTable {
    /// Common functions.
    pub header: VTableHeader,
    /// `encode(observations, states_out)`.
    pub encode: unsafe extern "C" fn(this: *const c_void, obs: View, out: View, err: Err) -> Status,
}

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

/// Intrinsic cost vtable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct IntrinsicCostVTable {
    /// Common functions.
    pub header: VTableHeader,
    /// `add_cost(ctx, weight, states, actions, next_states, out_inout)`.
    pub add_cost: unsafe extern "C" fn(this: *const c_void, ctx: *const CostCtxFfi, weight: f32, s: View, a: View, n: View, out: View, err: Err) -> Status,
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

/// Actor vtable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ActorVTable {
    /// Common functions.
    pub header: VTableHeader,
    /// `act(state, cost, action_out)`.
    pub act: unsafe extern "C" fn(this: *mut c_void, state: View, cost: *const HostCost, action: View, err: Err) -> Status,
    /// `modulate(json)`.
    pub modulate: unsafe extern "C" fn(this: *mut c_void, json: Str, err: Err) -> Status,
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

/// Memory vtable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MemoryVTable {
    /// Common functions.
    pub header: VTableHeader,
    /// `len(out)`.
    pub len: unsafe extern "C" fn(this: *const c_void, out: *mut u64, err: Err) -> Status,
    /// `push(transition)`.
    pub push: unsafe extern "C" fn(this: *mut c_void, tr: *const TransitionFfi, err: Err) -> Status,
    /// `get(i, out, found)`.
    pub get: unsafe extern "C" fn(this: *const c_void, i: u64, out: *mut TransitionFfi, found: *mut u8, err: Err) -> Status,
    /// `by_time(t, out, found)`.
    pub by_time: unsafe extern "C" fn(this: *const c_void, t: u64, out: *mut TransitionFfi, found: *mut u8, err: Err) -> Status,
    /// `save(path)`.
    pub save: unsafe extern "C" fn(this: *const c_void, path: Str, err: Err) -> Status,
    /// `clear()`.
    pub clear: unsafe extern "C" fn(this: *mut c_void, err: Err) -> Status,
}

/// Configurator vtable.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ConfiguratorVTable {
    /// Common functions.
    pub header: VTableHeader,
    /// `configure(tick, state, sink)`: writes one JSON array of modulations to `sink`.
    pub configure: unsafe extern "C" fn(this: *mut c_void, tick: u64, state: View, sink: *const StrSink, err: Err) -> Status,
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

/// Perception.
pub mod perception {
    use super::*;
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
}

/// World model.
pub mod world_model {
    use super::*;
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
}

/// Intrinsic cost.
pub mod intrinsic_cost {
    use super::*;
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
    unsafe extern "C" fn add_cost<M: IntrinsicCost>(
        this: *const c_void,
        ctx: *const CostCtxFfi,
        w: f32,
        s: View,
        a: View,
        n: View,
        out: View,
        err: Err,
    ) -> Status {
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
}

/// Critic.
pub mod critic {
    use super::*;
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
}

/// Actor.
pub mod actor {
    use super::*;
    /// The vtable type.
    pub type VTable = ActorVTable;
    /// The kind.
    pub const KIND: ModuleKind = ModuleKind::ACTOR;
    /// The vtable of `M`.
    pub const fn vtable<M: Actor>() -> VTable {
        ActorVTable { header: header::<M>(KIND, size_of::<VTable>(), dims::<M>), act: act::<M>, modulate: modulate::<M> }
    }
    unsafe extern "C" fn dims<M: Actor>(this: *const c_void, out: *mut Dims, err: Err) -> Status {
        // SAFETY: `this` is a live `M`.
        unsafe { write_dims::<M>(this, out, err, |m| Dims { action_dim: m.action_dim() as u64, ..Dims::default() }) }
    }
    unsafe extern "C" fn act<M: Actor>(this: *mut c_void, state: View, cost: *const HostCost, action: View, err: Err) -> Status {
        // SAFETY: `this` is a live `M` held exclusively; views and callbacks are valid for the call.
        unsafe {
            guard(err, || {
                let m = &mut *this.cast::<M>();
                let cost = HostCostRef { ffi: cost.as_ref().ok_or_else(|| Error::new("null cost"))? };
                m.act(TensorView::as_slice(state, "state")?, &cost, TensorView::as_mut_slice(action, "action")?)
            })
        }
    }
    unsafe extern "C" fn modulate<M: Actor>(this: *mut c_void, json: Str, err: Err) -> Status {
        // SAFETY: `this` is a live `M` held exclusively; `json` is valid for the call.
        unsafe { guard(err, || (*this.cast::<M>()).modulate(json.as_str()?)) }
    }
}

/// Planner.
pub mod planner {
    use super::*;
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
}

/// Short-term memory.
pub mod memory {
    use super::*;
    /// The vtable type.
    pub type VTable = MemoryVTable;
    /// The kind.
    pub const KIND: ModuleKind = ModuleKind::MEMORY;
    /// The vtable of `M`.
    pub const fn vtable<M: Memory>() -> VTable {
        MemoryVTable {
            header: header::<M>(KIND, size_of::<VTable>(), dims::<M>),
            len: len::<M>,
            push: push::<M>,
            get: get::<M>,
            by_time: by_time::<M>,
            save: save::<M>,
            clear: clear::<M>,
        }
    }
    unsafe extern "C" fn dims<M: Memory>(this: *const c_void, out: *mut Dims, err: Err) -> Status {
        // SAFETY: `this` is a live `M`.
        unsafe {
            write_dims::<M>(this, out, err, |m| Dims {
                state_dim: m.state_dim() as u64,
                action_dim: m.action_dim() as u64,
                capacity: m.capacity() as u64,
                ..Dims::default()
            })
        }
    }
    unsafe extern "C" fn len<M: Memory>(this: *const c_void, out: *mut u64, err: Err) -> Status {
        // SAFETY: `this` is a live `M`; `out` is valid.
        unsafe {
            guard(err, || {
                *out = (*this.cast::<M>()).len() as u64;
                Ok(())
            })
        }
    }
    unsafe extern "C" fn push<M: Memory>(this: *mut c_void, tr: *const TransitionFfi, err: Err) -> Status {
        // SAFETY: `this` is a live `M` held exclusively; the transition's views are valid for the call.
        unsafe {
            guard(err, || {
                let t = tr.as_ref().ok_or_else(|| Error::new("null transition"))?;
                let tin = TransitionIn {
                    t: t.t,
                    state: TensorView::as_slice(&t.state, "state")?,
                    action: TensorView::as_slice(&t.action, "action")?,
                    cost: t.cost,
                    next_state: TensorView::as_slice(&t.next_state, "next_state")?,
                    imagined: t.imagined != 0,
                };
                (*this.cast::<M>()).push(&tin)
            })
        }
    }
    /// # Safety
    /// `out` is a valid transition with writable views; `found` is valid.
    unsafe fn read_into(out: *mut TransitionFfi, found: *mut u8, f: impl FnOnce(&mut TransitionOut<'_>) -> Result<bool, Error>) -> Result<(), Error> {
        // SAFETY: forwarded from the caller.
        unsafe {
            let o = out.as_mut().ok_or_else(|| Error::new("null output"))?;
            let mut to = TransitionOut {
                t: 0,
                state: TensorView::as_mut_slice(&o.state, "state")?,
                action: TensorView::as_mut_slice(&o.action, "action")?,
                cost: 0.0,
                next_state: TensorView::as_mut_slice(&o.next_state, "next_state")?,
                imagined: false,
            };
            let ok = f(&mut to)?;
            o.t = to.t;
            o.cost = to.cost;
            o.imagined = u8::from(to.imagined);
            *found = u8::from(ok);
            Ok(())
        }
    }
    unsafe extern "C" fn get<M: Memory>(this: *const c_void, i: u64, out: *mut TransitionFfi, found: *mut u8, err: Err) -> Status {
        // SAFETY: `this` is a live `M`; outputs are valid for the call.
        unsafe { guard(err, || read_into(out, found, |o| (*this.cast::<M>()).get(i as usize, o))) }
    }
    unsafe extern "C" fn by_time<M: Memory>(this: *const c_void, t: u64, out: *mut TransitionFfi, found: *mut u8, err: Err) -> Status {
        // SAFETY: `this` is a live `M`; outputs are valid for the call.
        unsafe { guard(err, || read_into(out, found, |o| (*this.cast::<M>()).by_time(t, o))) }
    }
    unsafe extern "C" fn save<M: Memory>(this: *const c_void, path: Str, err: Err) -> Status {
        // SAFETY: `this` is a live `M`; `path` is valid for the call.
        unsafe { guard(err, || (*this.cast::<M>()).save(path.as_str()?)) }
    }
    unsafe extern "C" fn clear<M: Memory>(this: *mut c_void, err: Err) -> Status {
        // SAFETY: `this` is a live `M` held exclusively.
        unsafe { guard(err, || (*this.cast::<M>()).clear()) }
    }
}

/// Configurator.
pub mod configurator {
    use super::*;
    /// The vtable type.
    pub type VTable = ConfiguratorVTable;
    /// The kind.
    pub const KIND: ModuleKind = ModuleKind::CONFIGURATOR;
    /// The vtable of `M`.
    pub const fn vtable<M: Configurator>() -> VTable {
        ConfiguratorVTable { header: header::<M>(KIND, size_of::<VTable>(), dims::<M>), configure: configure::<M> }
    }
    unsafe extern "C" fn dims<M: Configurator>(this: *const c_void, out: *mut Dims, err: Err) -> Status {
        // SAFETY: `this` is a live `M`.
        unsafe { write_dims::<M>(this, out, err, |_| Dims::default()) }
    }
    unsafe extern "C" fn configure<M: Configurator>(this: *mut c_void, tick: u64, state: View, sink: *const StrSink, err: Err) -> Status {
        // SAFETY: `this` is a live `M` held exclusively; the state view and sink are valid for the call.
        unsafe {
            guard(err, || {
                let ms = (*this.cast::<M>()).configure(tick, TensorView::as_slice(state, "state")?)?;
                let text = Json::Array(ms.iter().map(Modulation::to_json).collect()).to_text();
                let s = sink.as_ref().ok_or_else(|| Error::new("null sink"))?;
                (s.write)(s.ctx, Str::borrow(&text));
                Ok(())
            })
        }
    }
}

/// Environment.
pub mod environment {
    use super::*;
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
}
