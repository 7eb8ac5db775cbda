//! # testkit — an ami plugin for ami's own tests
//!
//! One small module of every kind, so the host's adapters can be tested
//! end to end, and modules that fail or panic on purpose, so containment
//! and poisoning can be tested. Not meant for agents.
//!
//! | module | kind | behaviour |
//! |---|---|---|
//! | `shift` | world model | `s' = s + a` on `dim` dimensions (also differentiable) |
//! | `panicky` | world model | like `shift`, but panics on call number `panic_at` (0-based) |
//! | `failing` | world model | always returns an error |
//! | `square` | intrinsic cost | `sum (s' - goal)^2` |
//! | `panicky_cost` | intrinsic cost | panics |
//! | `scale` | perception | `s = factor * x` |
//! | `zero_critic` | critic | value `bias`, training counts calls |
//! | `greedy` | actor | picks the best of `{low, 0, high}` per dimension by the host's one-step energy |
//! | `goal_at_start` | configurator | emits a goal at tick 0 |
//! | `ring` | memory | a bounded store |
//! | `walk` | environment | a 1-D random walk, `panic_at_step` to panic |
//! | `faulty_model` | world model | `s' = s + a` on 1 dimension, failing on request (`fault`) |
//! | `faulty_cost` | intrinsic cost | `(s' - goal)^2` on 1 dimension, failing on request (`fault`) |
//!
//! The two faulty modules inject one fault, named by `fault`, from call
//! number `after` (0-based) on: `none`, `err` (an error with `message`),
//! `nan_rows` (NaN in every `every`-th row), `nan_all` (NaN in every row),
//! `panic`, `slow` (sleep `sleep_ms` per call) and, for the model only,
//! `wide` (reports a state width of 3, which the walk cannot feed).

use std::sync::atomic::{AtomicUsize, Ordering};

use ami_plugin_abi::prelude::*;

/// `s' = s + a`.
#[derive(Debug)]
pub struct Shift {
    dim: usize,
}

impl Module for Shift {
    const NAME: &'static str = "shift";
    const DESCRIPTION: &'static str = "s' = s + a";
    const PARAMS: &'static [Param] = &[Param::new("dim", "integer", "2", "state and action width")];
    fn create(config: &Config) -> Result<Self, Error> {
        Ok(Self { dim: config.usize_or("dim", 2)? })
    }
}

fn shift(states: Tensor<'_>, actions: Tensor<'_>, next: &mut TensorMut<'_>) {
    for i in 0..states.rows() {
        for ((n, s), a) in next.row_mut(i).iter_mut().zip(states.row(i)).zip(actions.row(i)) {
            *n = s + a;
        }
    }
}

impl WorldModel for Shift {
    fn state_dim(&self) -> usize {
        self.dim
    }
    fn action_dim(&self) -> usize {
        self.dim
    }
    fn predict(&self, states: Tensor<'_>, actions: Tensor<'_>, _latents: Option<Tensor<'_>>, mut next: TensorMut<'_>) -> Result<(), Error> {
        shift(states, actions, &mut next);
        Ok(())
    }
    const DIFFERENTIABLE: bool = true;
    fn vjp(&self, _s: Tensor<'_>, _a: Tensor<'_>, grad_next: Tensor<'_>, mut gs: TensorMut<'_>, mut ga: TensorMut<'_>) -> Result<(), Error> {
        for i in 0..grad_next.rows() {
            for (j, g) in grad_next.row(i).iter().enumerate() {
                gs.row_mut(i)[j] += g;
                ga.row_mut(i)[j] += g;
            }
        }
        Ok(())
    }
}

/// `s' = s + a`, panicking on call `panic_at`.
#[derive(Debug)]
pub struct Panicky {
    dim: usize,
    panic_at: usize,
    calls: AtomicUsize,
}

impl Module for Panicky {
    const NAME: &'static str = "panicky";
    const DESCRIPTION: &'static str = "s' = s + a, but panics on call number `panic_at`";
    const PARAMS: &'static [Param] =
        &[Param::new("dim", "integer", "2", "state and action width"), Param::new("panic_at", "integer", "0", "0-based call that panics")];
    fn create(config: &Config) -> Result<Self, Error> {
        Ok(Self { dim: config.usize_or("dim", 2)?, panic_at: config.usize_or("panic_at", 0)?, calls: AtomicUsize::new(0) })
    }
}

impl WorldModel for Panicky {
    fn state_dim(&self) -> usize {
        self.dim
    }
    fn action_dim(&self) -> usize {
        self.dim
    }
    fn predict(&self, states: Tensor<'_>, actions: Tensor<'_>, _latents: Option<Tensor<'_>>, mut next: TensorMut<'_>) -> Result<(), Error> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n == self.panic_at {
            panic!("deliberate panic on call {n}");
        }
        shift(states, actions, &mut next);
        Ok(())
    }
}

/// Always fails.
#[derive(Debug)]
pub struct Failing;

impl Module for Failing {
    const NAME: &'static str = "failing";
    const DESCRIPTION: &'static str = "a world model whose predict always returns an error";
    fn create(_config: &Config) -> Result<Self, Error> {
        Ok(Self)
    }
}

impl WorldModel for Failing {
    fn state_dim(&self) -> usize {
        1
    }
    fn action_dim(&self) -> usize {
        1
    }
    fn predict(&self, _s: Tensor<'_>, _a: Tensor<'_>, _l: Option<Tensor<'_>>, _n: TensorMut<'_>) -> Result<(), Error> {
        Err(Error::new("deliberate failure"))
    }
}

/// `sum (s' - goal)^2`.
#[derive(Debug)]
pub struct Square;

impl Module for Square {
    const NAME: &'static str = "square";
    const DESCRIPTION: &'static str = "sum over dimensions of (s' - goal)^2 (goal 0 when unset)";
    fn create(_config: &Config) -> Result<Self, Error> {
        Ok(Self)
    }
}

impl IntrinsicCost for Square {
    fn add_cost(&self, ctx: &CostContext<'_>, weight: f32, _s: Tensor<'_>, _a: Tensor<'_>, next: Tensor<'_>, out: &mut [f32]) -> Result<(), Error> {
        for (i, o) in out.iter_mut().enumerate() {
            let c: f32 = next.row(i).iter().enumerate().map(|(j, x)| (x - ctx.goal.and_then(|g| g.get(j).copied()).unwrap_or(0.0)).powi(2)).sum();
            *o += weight * c;
        }
        Ok(())
    }
}

/// Panics.
#[derive(Debug)]
pub struct PanickyCost;

impl Module for PanickyCost {
    const NAME: &'static str = "panicky_cost";
    const DESCRIPTION: &'static str = "an intrinsic cost that panics";
    fn create(_config: &Config) -> Result<Self, Error> {
        Ok(Self)
    }
}

impl IntrinsicCost for PanickyCost {
    fn add_cost(&self, _c: &CostContext<'_>, _w: f32, _s: Tensor<'_>, _a: Tensor<'_>, _n: Tensor<'_>, _o: &mut [f32]) -> Result<(), Error> {
        panic!("deliberate panic in a cost")
    }
}

/// `s = factor * x`.
#[derive(Debug)]
pub struct Scale {
    dim: usize,
    factor: f32,
}

impl Module for Scale {
    const NAME: &'static str = "scale";
    const DESCRIPTION: &'static str = "s = factor * x";
    const PARAMS: &'static [Param] = &[Param::new("dim", "integer", "2", "width"), Param::new("factor", "number", "2.0", "scale")];
    fn create(config: &Config) -> Result<Self, Error> {
        Ok(Self { dim: config.usize_or("dim", 2)?, factor: config.f32_or("factor", 2.0)? })
    }
}

impl Perception for Scale {
    fn obs_dim(&self) -> usize {
        self.dim
    }
    fn state_dim(&self) -> usize {
        self.dim
    }
    fn encode(&self, obs: Tensor<'_>, mut states: TensorMut<'_>) -> Result<(), Error> {
        for i in 0..obs.rows() {
            for (s, x) in states.row_mut(i).iter_mut().zip(obs.row(i)) {
                *s = self.factor * x;
            }
        }
        Ok(())
    }
}

/// A constant critic.
#[derive(Debug)]
pub struct ZeroCritic {
    bias: f32,
    trained: usize,
}

impl Module for ZeroCritic {
    const NAME: &'static str = "zero_critic";
    const DESCRIPTION: &'static str = "value `bias` everywhere; training returns the number of training calls as the loss";
    const PARAMS: &'static [Param] = &[Param::new("bias", "number", "0.0", "the constant value")];
    fn create(config: &Config) -> Result<Self, Error> {
        Ok(Self { bias: config.f32_or("bias", 0.0)?, trained: 0 })
    }
}

impl Critic for ZeroCritic {
    fn add_value(&self, _ctx: &CostContext<'_>, weight: f32, _states: Tensor<'_>, out: &mut [f32]) -> Result<(), Error> {
        out.iter_mut().for_each(|o| *o += weight * self.bias);
        Ok(())
    }
    fn train(&mut self, batch: &Batch<'_>, _discount: f32) -> Result<f32, Error> {
        if batch.costs.len() != batch.states.rows() {
            return Err(Error::new("inconsistent batch"));
        }
        self.trained += 1;
        Ok(self.trained as f32)
    }
}

/// A one-step greedy actor over `{low, 0, high}` per dimension.
#[derive(Debug)]
pub struct Greedy {
    dim: usize,
    limit: f32,
    last_modulation: String,
}

impl Module for Greedy {
    const NAME: &'static str = "greedy";
    const DESCRIPTION: &'static str = "one-step greedy choice among {-limit, 0, limit} per dimension, s' = s + a";
    const PARAMS: &'static [Param] = &[Param::new("dim", "integer", "2", "width"), Param::new("limit", "number", "1.0", "action magnitude")];
    fn create(config: &Config) -> Result<Self, Error> {
        Ok(Self { dim: config.usize_or("dim", 2)?, limit: config.f32_or("limit", 1.0)?, last_modulation: String::new() })
    }
}

impl Actor for Greedy {
    fn action_dim(&self) -> usize {
        self.dim
    }
    fn act(&mut self, state: &[f32], cost: &HostCostRef<'_>, action: &mut [f32]) -> Result<(), Error> {
        let d = self.dim;
        let choices = [-self.limit, 0.0, self.limit];
        let n = 3usize.pow(d as u32);
        let mut acts = vec![0.0f32; n * d];
        for k in 0..n {
            let mut r = k;
            for j in 0..d {
                acts[k * d + j] = choices[r % 3];
                r /= 3;
            }
        }
        let states: Vec<f32> = (0..n).flat_map(|_| state.iter().copied()).collect();
        let next: Vec<f32> = states.iter().zip(&acts).map(|(s, a)| s + a).collect();
        let mut e = vec![0.0f32; n];
        cost.step_energy(0, Tensor::from_slice(&states, n, d)?, Tensor::from_slice(&acts, n, d)?, Tensor::from_slice(&next, n, d)?, &mut e)?;
        let best = (0..n).min_by(|&x, &y| e[x].total_cmp(&e[y])).unwrap_or(0);
        action.copy_from_slice(&acts[best * d..(best + 1) * d]);
        Ok(())
    }
    fn modulate(&mut self, modulation: &str) -> Result<(), Error> {
        self.last_modulation = modulation.to_string();
        Ok(())
    }
}

/// Emits a goal at tick 0.
#[derive(Debug)]
pub struct GoalAtStart {
    goal: Vec<f32>,
}

impl Module for GoalAtStart {
    const NAME: &'static str = "goal_at_start";
    const DESCRIPTION: &'static str = "emits Goal(goal) and Horizon(horizon) at tick 0";
    const PARAMS: &'static [Param] = &[Param::new("goal", "array of numbers", "[1.0, 1.0]", "the goal")];
    fn create(config: &Config) -> Result<Self, Error> {
        Ok(Self { goal: config.f32s("goal")?.unwrap_or_else(|| vec![1.0, 1.0]) })
    }
}

impl Configurator for GoalAtStart {
    fn configure(&mut self, tick: u64, _state: &[f32]) -> Result<Vec<Modulation>, Error> {
        Ok(if tick == 0 {
            vec![
                Modulation::Goal(Some(self.goal.clone())),
                Modulation::CostWeight { term: "square".into(), weight: 2.0 },
                Modulation::Horizon(7),
                Modulation::Budget { iterations: 3, deadline: Some(std::time::Duration::from_millis(1500)) },
            ]
        } else {
            Vec::new()
        })
    }
}

#[derive(Debug, Clone)]
struct Stored {
    t: u64,
    state: Vec<f32>,
    action: Vec<f32>,
    cost: f32,
    next_state: Vec<f32>,
    imagined: bool,
}

/// A bounded store of transitions.
#[derive(Debug)]
pub struct Ring {
    state_dim: usize,
    action_dim: usize,
    capacity: usize,
    items: std::collections::VecDeque<Stored>,
}

impl Module for Ring {
    const NAME: &'static str = "ring";
    const DESCRIPTION: &'static str = "a bounded FIFO store of transitions";
    const PARAMS: &'static [Param] = &[
        Param::new("state_dim", "integer", "2", "state width"),
        Param::new("action_dim", "integer", "1", "action width"),
        Param::new("capacity", "integer", "4", "transitions kept"),
    ];
    fn create(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            state_dim: config.usize_or("state_dim", 2)?,
            action_dim: config.usize_or("action_dim", 1)?,
            capacity: config.usize_or("capacity", 4)?.max(1),
            items: Default::default(),
        })
    }
}

fn write_out(s: &Stored, out: &mut TransitionOut<'_>) {
    out.t = s.t;
    out.state.copy_from_slice(&s.state);
    out.action.copy_from_slice(&s.action);
    out.cost = s.cost;
    out.next_state.copy_from_slice(&s.next_state);
    out.imagined = s.imagined;
}

impl Memory for Ring {
    fn state_dim(&self) -> usize {
        self.state_dim
    }
    fn action_dim(&self) -> usize {
        self.action_dim
    }
    fn capacity(&self) -> usize {
        self.capacity
    }
    fn len(&self) -> usize {
        self.items.len()
    }
    fn push(&mut self, tr: &TransitionIn<'_>) -> Result<(), Error> {
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(Stored {
            t: tr.t,
            state: tr.state.to_vec(),
            action: tr.action.to_vec(),
            cost: tr.cost,
            next_state: tr.next_state.to_vec(),
            imagined: tr.imagined,
        });
        Ok(())
    }
    fn get(&self, i: usize, out: &mut TransitionOut<'_>) -> Result<bool, Error> {
        Ok(self.items.get(i).map(|s| write_out(s, out)).is_some())
    }
    fn by_time(&self, t: u64, out: &mut TransitionOut<'_>) -> Result<bool, Error> {
        Ok(self.items.iter().rev().find(|s| s.t == t).map(|s| write_out(s, out)).is_some())
    }
    fn save(&self, path: &str) -> Result<(), Error> {
        std::fs::write(path, format!("{} transitions\n", self.items.len())).map_err(|e| Error::new(format!("{path}: {e}")))
    }
    fn clear(&mut self) -> Result<(), Error> {
        self.items.clear();
        Ok(())
    }
}

/// A 1-D walk `x' = x + a`, reward `-|x'|`, 20 steps.
#[derive(Debug, Default)]
pub struct Walk {
    x: f32,
    steps: usize,
    panic_at_step: Option<usize>,
}

impl Module for Walk {
    const NAME: &'static str = "walk";
    const DESCRIPTION: &'static str = "x' = x + a on one dimension, reward -|x'|, 20 steps; start at x = 1 + seed";
    const PARAMS: &'static [Param] = &[
        Param::new("panic_at_step", "integer", "null", "panic when stepping this step (1-based)"),
        Param::new("goal", "array of numbers", "[0.0]", "the task's default goal: where the plugin's costs draw x"),
    ];
    fn create(config: &Config) -> Result<Self, Error> {
        let p = match config.get("panic_at_step") {
            None | Some(Json::Null) => None,
            Some(_) => Some(config.usize_or("panic_at_step", 0)?),
        };
        Ok(Self { x: 0.0, steps: 0, panic_at_step: p })
    }
}

impl Environment for Walk {
    fn obs_dim(&self) -> usize {
        1
    }
    fn action_dim(&self) -> usize {
        1
    }
    fn max_steps(&self) -> usize {
        20
    }
    fn action_bounds(&self) -> (Vec<f32>, Vec<f32>) {
        (vec![-1.0], vec![1.0])
    }
    fn reset_episode(&mut self, seed: u64, observation: &mut [f32]) -> Result<(), Error> {
        self.x = 1.0 + seed as f32;
        self.steps = 0;
        observation[0] = self.x;
        Ok(())
    }
    fn step(&mut self, action: &[f32], observation: &mut [f32]) -> Result<StepResult, Error> {
        self.steps += 1;
        if self.panic_at_step == Some(self.steps) {
            panic!("deliberate panic at step {}", self.steps);
        }
        self.x += action[0].clamp(-1.0, 1.0);
        observation[0] = self.x;
        Ok(StepResult { reward: -f64::from(self.x.abs()), terminated: false, truncated: self.steps >= 20 })
    }
}

/// The fault a `faulty_*` module injects.
#[derive(Debug, Clone, PartialEq)]
enum Fault {
    None,
    Err(String),
    NanRows(usize),
    NanAll,
    Panic,
    Slow(u64),
    Wide,
}

const FAULT_PARAMS: &[Param] = &[
    Param::new("fault", "string", "\"none\"", "none, err, nan_rows, nan_all, panic, slow (and wide for the model)"),
    Param::new("after", "integer", "0", "the 0-based call from which the fault happens"),
    Param::new("message", "string", "\"deliberate error\"", "the message of `err`"),
    Param::new("every", "integer", "2", "`nan_rows`: NaN in rows 0, every, 2*every, ..."),
    Param::new("sleep_ms", "integer", "1000", "`slow`: milliseconds per call"),
];

impl Fault {
    fn from_config(config: &Config, model: bool) -> Result<Fault, Error> {
        Ok(match config.str_or("fault", "none")?.as_str() {
            "none" => Fault::None,
            "err" => Fault::Err(config.str_or("message", "deliberate error")?),
            "nan_rows" => Fault::NanRows(config.usize_or("every", 2)?.max(1)),
            "nan_all" => Fault::NanAll,
            "panic" => Fault::Panic,
            "slow" => Fault::Slow(config.usize_or("sleep_ms", 1000)? as u64),
            "wide" if model => Fault::Wide,
            other => return Err(Error::new(format!("fault: unknown `{other}`"))),
        })
    }
    /// Injects the fault into `out` (rows of width `cols`) when it is due.
    fn inject(&self, calls: &AtomicUsize, after: usize, out: &mut [f32], cols: usize) -> Result<(), Error> {
        if calls.fetch_add(1, Ordering::SeqCst) < after {
            return Ok(());
        }
        match self {
            Fault::None | Fault::Wide => {}
            Fault::Err(m) => return Err(Error::new(m.clone())),
            Fault::NanRows(k) => {
                for (r, row) in out.chunks_mut(cols.max(1)).enumerate() {
                    if r % k == 0 {
                        row.fill(f32::NAN);
                    }
                }
            }
            Fault::NanAll => out.fill(f32::NAN),
            Fault::Panic => panic!("deliberate panic in a faulty module"),
            Fault::Slow(ms) => std::thread::sleep(std::time::Duration::from_millis(*ms)),
        }
        Ok(())
    }
}

/// `s' = s + a` on one dimension, with an injected fault.
#[derive(Debug)]
pub struct FaultyModel {
    fault: Fault,
    after: usize,
    calls: AtomicUsize,
}

impl Module for FaultyModel {
    const NAME: &'static str = "faulty_model";
    const DESCRIPTION: &'static str = "s' = s + a on 1 dimension; fails on request (fault, after)";
    const PARAMS: &'static [Param] = FAULT_PARAMS;
    fn create(config: &Config) -> Result<Self, Error> {
        Ok(Self { fault: Fault::from_config(config, true)?, after: config.usize_or("after", 0)?, calls: AtomicUsize::new(0) })
    }
}

impl WorldModel for FaultyModel {
    fn state_dim(&self) -> usize {
        if self.fault == Fault::Wide {
            3
        } else {
            1
        }
    }
    fn action_dim(&self) -> usize {
        1
    }
    fn predict(&self, states: Tensor<'_>, actions: Tensor<'_>, _latents: Option<Tensor<'_>>, mut next: TensorMut<'_>) -> Result<(), Error> {
        shift(states, actions, &mut next);
        let mut rows: Vec<f32> = (0..next.rows()).flat_map(|i| next.row(i).to_vec()).collect();
        let cols = next.cols();
        self.fault.inject(&self.calls, self.after, &mut rows, cols)?;
        for (i, chunk) in rows.chunks(cols.max(1)).enumerate() {
            next.row_mut(i).copy_from_slice(chunk);
        }
        Ok(())
    }
}

/// `(s' - goal)^2` on one dimension, with an injected fault.
#[derive(Debug)]
pub struct FaultyCost {
    fault: Fault,
    after: usize,
    calls: AtomicUsize,
}

impl Module for FaultyCost {
    const NAME: &'static str = "faulty_cost";
    const DESCRIPTION: &'static str = "(s' - goal)^2 on 1 dimension; fails on request (fault, after)";
    const PARAMS: &'static [Param] = FAULT_PARAMS;
    fn create(config: &Config) -> Result<Self, Error> {
        Ok(Self { fault: Fault::from_config(config, false)?, after: config.usize_or("after", 0)?, calls: AtomicUsize::new(0) })
    }
}

impl IntrinsicCost for FaultyCost {
    fn add_cost(&self, ctx: &CostContext<'_>, weight: f32, _s: Tensor<'_>, _a: Tensor<'_>, next: Tensor<'_>, out: &mut [f32]) -> Result<(), Error> {
        let g = ctx.goal.and_then(|g| g.first().copied()).unwrap_or(0.0);
        let mut mine: Vec<f32> = (0..out.len()).map(|i| weight * (next.row(i)[0] - g).powi(2)).collect();
        self.fault.inject(&self.calls, self.after, &mut mine, 1)?;
        for (o, m) in out.iter_mut().zip(mine) {
            *o += m;
        }
        Ok(())
    }
}

ami_plugin_abi::declare_plugin! {
    name: "testkit",
    version: env!("CARGO_PKG_VERSION"),
    modules: [
        world_model: Shift,
        world_model: Panicky,
        world_model: Failing,
        intrinsic_cost: Square,
        intrinsic_cost: PanickyCost,
        perception: Scale,
        critic: ZeroCritic,
        actor: Greedy,
        configurator: GoalAtStart,
        memory: Ring,
        environment: Walk,
        world_model: FaultyModel,
        intrinsic_cost: FaultyCost,
    ],
}
