//! [`GymEnv`]: a Gymnasium environment behind [`Environment`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use ndarray::{Array1, ArrayView1};
use serde::Deserialize;

use ami_core::{ActionSpace, Bounds, Choices, Environment, Result, Step};

use crate::error::GymError;
use crate::process::{Raised, Server};

/// How to make a Gymnasium environment.
#[derive(Debug, Clone, PartialEq)]
pub struct GymConfig {
    /// The id, as `gymnasium.make` takes it (`Pendulum-v1`).
    pub id: String,
    /// Keyword arguments of `gymnasium.make`, as a JSON object.
    pub kwargs: serde_json::Map<String, serde_json::Value>,
    /// The interpreter ([`python`] resolves the default).
    pub python: PathBuf,
    /// Longest wait for one reset or step before the process is killed (a
    /// process holding several copies of a [`GymVecEnv`] gets this times
    /// its copies for a step of all of them).
    pub step_timeout: Duration,
    /// Longest wait for Python to start and make the environment (times
    /// the copies, for a process holding several).
    pub make_timeout: Duration,
    /// For a `Discrete(n)` action space: the action each discrete action
    /// stands for in the agent's world model (`n` rows of one width, e.g.
    /// CartPole's forces `[[-10], [10]]`); they are the choices of
    /// [`Environment::action_space`], and the bridge sends the index of the
    /// row nearest the agent's action. Empty: the choices are the indices
    /// themselves (`[[start], ..., [start + n - 1]]`), and an action is
    /// rounded to the nearest integer.
    pub discrete_actions: Vec<Vec<f32>>,
    /// Extra environment variables of the child (`MUJOCO_GL`,
    /// `PYTHONPATH` for a module that registers environments).
    pub env: Vec<(String, String)>,
    /// Pin the child to this CPU (Linux). Lock-step stepping is bound by
    /// the latency of a request and its reply, and on small or virtual
    /// machines a wake-up on another CPU costs more than the step: a child
    /// on the CPU of the thread that waits for it (pinned too, by the
    /// caller) answers several times faster. `None` (default): no pinning.
    pub cpu: Option<usize>,
}

impl GymConfig {
    /// `id` with no kwargs, the default interpreter and timeouts (30 s a
    /// step, 120 s to start).
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            kwargs: serde_json::Map::new(),
            python: python(None),
            step_timeout: Duration::from_secs(30),
            make_timeout: Duration::from_secs(120),
            discrete_actions: Vec::new(),
            env: Vec::new(),
            cpu: None,
        }
    }
}

/// The interpreter: `explicit` if given, else `$AMI_PYTHON`, else
/// `python3` (looked up on PATH).
pub fn python(explicit: Option<&Path>) -> PathBuf {
    match explicit {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os("AMI_PYTHON").filter(|v| !v.is_empty()).map_or_else(|| PathBuf::from("python3"), PathBuf::from),
    }
}

/// The interpreter a checkout's tests use: `$AMI_PYTHON` if set, else the
/// `.venv-gym` that `scripts/gym-venv.sh` makes under `root`, if it exists.
pub fn checkout_python(root: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("AMI_PYTHON").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    Some(root.join(".venv-gym/bin/python")).filter(|p| p.exists())
}

/// A Gymnasium space as the server describes it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SpaceInfo {
    /// `Box`: low and high per entry (`None`: infinite).
    Box {
        /// Shape.
        shape: Vec<usize>,
        /// numpy dtype name.
        dtype: String,
        /// Lower bounds, flattened.
        low: Vec<Option<f64>>,
        /// Upper bounds, flattened.
        high: Vec<Option<f64>>,
    },
    /// `Discrete(n, start)`.
    Discrete {
        /// Number of actions.
        n: i64,
        /// The first action.
        start: i64,
    },
    /// `MultiDiscrete(nvec, start)`.
    MultiDiscrete {
        /// Actions per entry.
        nvec: Vec<i64>,
        /// First action per entry.
        start: Vec<i64>,
    },
    /// Any other space (observations are flattened).
    Other {
        /// The space, as Python prints it.
        repr: String,
    },
}

/// What the server says about an environment once made.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EnvInfo {
    /// The observation space.
    pub observation_space: SpaceInfo,
    /// The observation space as Python prints it.
    pub obs_repr: String,
    /// Width of a flattened observation.
    pub obs_dim: usize,
    /// The action space.
    pub action_space: SpaceInfo,
    /// The spec's step limit.
    pub max_episode_steps: Option<usize>,
    /// gymnasium's version.
    pub gymnasium: String,
    /// Python's version.
    pub python: String,
}

/// How an ami action becomes a Gymnasium action.
#[derive(Debug, Clone)]
enum ActionMap {
    /// Box: the values, checked against the bounds (the space's own f64).
    Box { low: Vec<f64>, high: Vec<f64> },
    /// Discrete: the nearest row of a table, or the rounded index.
    Discrete { n: i64, start: i64, table: Vec<Vec<f32>> },
    /// MultiDiscrete: each entry rounded.
    MultiDiscrete { nvec: Vec<i64>, start: Vec<i64> },
}

/// A Gymnasium environment in a Python child process.
///
/// Observations are flattened (`gymnasium.spaces.flatten` order for Dict
/// and other composite spaces) and converted to `f32`; actions go back in
/// the action space's dtype. `reset(seed)` is Gymnasium's `reset(seed=seed)`,
/// so an episode depends only on its seed; `terminated` and `truncated`
/// are Gymnasium's own (the spec's `max_episode_steps` is
/// [`Environment::max_steps`]). Every failure is a [`GymError`] naming the
/// id; after a crash or a timeout the process is gone and every later call
/// fails with [`GymError::Gone`].
pub struct GymEnv {
    cfg: GymConfig,
    name: String,
    info: EnvInfo,
    server: Server,
    action: ActionMap,
    space: ActionSpace,
    /// Copies of the environment the process steps together (1 for an
    /// `Environment`; more inside a [`GymVecEnv`]).
    copies: usize,
    payload: Vec<u8>,
    /// Per copy, since its reset: whether the step infos reported
    /// `success` (or `is_success`), and whether one was true.
    success: Vec<Option<bool>>,
}

/// `MultiDiscrete` spaces with at most this many combinations are a
/// discrete [`ActionSpace`] of every combination; larger ones a box of
/// integers (each entry rounded, for the continuous planners). A
/// `Discrete` space with more actions is refused.
pub const MAX_CHOICES: i64 = 4096;

fn raised(id: &str, python: &Path, r: Raised, kwargs: &serde_json::Map<String, serde_json::Value>) -> GymError {
    let id = id.to_string();
    match r.kind.as_str() {
        "import" => GymError::GymnasiumMissing { id, python: python.into(), message: r.message },
        "unknown_id" => GymError::UnknownId { id, message: r.message },
        "bad_kwargs" => GymError::BadKwargs { id, kwargs: serde_json::Value::Object(kwargs.clone()).to_string(), message: r.message },
        "make" => GymError::Make { id, message: r.message },
        "space" => GymError::Space { id, message: r.message },
        "reset" => GymError::Raised { id, op: "reset", message: r.message, traceback: r.traceback },
        "step" => GymError::Raised { id, op: "step", message: r.message, traceback: r.traceback },
        _ => GymError::Protocol { id, op: "a request", message: r.message },
    }
}

impl GymEnv {
    /// Starts Python and makes the environment.
    pub fn make(cfg: GymConfig) -> std::result::Result<Self, GymError> {
        Self::make_copies(cfg, 1, 0)
    }

    /// Starts Python and makes `copies` copies of the environment in it,
    /// stepped together ([`GymVecEnv`]).
    /// Errors name copies from `first_copy` on (the copy's index in its
    /// [`GymVecEnv`]).
    fn make_copies(cfg: GymConfig, copies: usize, first_copy: usize) -> std::result::Result<Self, GymError> {
        let mut vars = cfg.env.clone();
        if let Some(cpu) = cfg.cpu {
            vars.push(("AMI_GYM_CPU".into(), cpu.to_string()));
        }
        let mut server = Server::start(&cfg.python, &cfg.id, &vars)?;
        let req = serde_json::json!({ "id": cfg.id, "kwargs": cfg.kwargs, "copies": copies, "first_copy": first_copy }).to_string();
        let reply =
            server.call(b'M', req.as_bytes(), "make", cfg.make_timeout * copies.max(1) as u32)?.map_err(|r| raised(&cfg.id, &cfg.python, r, &cfg.kwargs))?;
        let info: EnvInfo = serde_json::from_slice(&reply).map_err(|e| GymError::Protocol {
            id: cfg.id.clone(),
            op: "make",
            message: format!("a reply that is not the spaces ({e})"),
        })?;
        let space_err = |message: String| GymError::Space { id: cfg.id.clone(), message };
        let (action, space) = match &info.action_space {
            SpaceInfo::Box { low, high, .. } => {
                let finite = |v: &[Option<f64>], what: &str| -> std::result::Result<Vec<f32>, GymError> {
                    v.iter()
                        .enumerate()
                        .map(|(i, x)| {
                            x.map(|x| x as f32).ok_or_else(|| space_err(format!("the action space's {what}[{i}] is infinite; planners need a bounded box")))
                        })
                        .collect()
                };
                let (lo, hi) = (finite(low, "low")?, finite(high, "high")?);
                let bounds = Bounds::new(lo, hi).map_err(|e| space_err(e.to_string()))?;
                let exact = |v: &[Option<f64>]| v.iter().map(|x| x.unwrap_or(0.0)).collect();
                (ActionMap::Box { low: exact(low), high: exact(high) }, ActionSpace::Box(bounds))
            }
            SpaceInfo::Discrete { n, start } => {
                let table = cfg.discrete_actions.clone();
                if *n > MAX_CHOICES && table.is_empty() {
                    return Err(space_err(format!("Discrete({n}) has more than {MAX_CHOICES} actions, more than the discrete planners search")));
                }
                let choices = if table.is_empty() {
                    Choices::new((*start..start + n).map(|k| vec![k as f32]).collect())
                } else {
                    if table.len() as i64 != *n {
                        return Err(space_err(format!("Discrete({n}) needs {n} discrete actions, got {}: {table:?}", table.len())));
                    }
                    Choices::new(table.clone())
                };
                (ActionMap::Discrete { n: *n, start: *start, table }, ActionSpace::Discrete(choices.map_err(|e| space_err(e.to_string()))?))
            }
            SpaceInfo::MultiDiscrete { nvec, start } => {
                let map = ActionMap::MultiDiscrete { nvec: nvec.clone(), start: start.clone() };
                let product = nvec.iter().try_fold(1i64, |acc, &n| acc.checked_mul(n)).filter(|&p| p <= MAX_CHOICES);
                let space = match product {
                    // Every combination, the last entry varying fastest.
                    Some(total) => {
                        let rows = (0..total)
                            .map(|mut c| {
                                let mut row = vec![0.0f32; nvec.len()];
                                for j in (0..nvec.len()).rev() {
                                    row[j] = (start[j] + c % nvec[j]) as f32;
                                    c /= nvec[j];
                                }
                                row
                            })
                            .collect();
                        ActionSpace::Discrete(Choices::new(rows).map_err(|e| space_err(e.to_string()))?)
                    }
                    // Too many combinations to enumerate: a box of integers,
                    // each entry rounded.
                    None => {
                        let lo = start.iter().map(|&s| s as f32).collect();
                        let hi = nvec.iter().zip(start).map(|(&n, &s)| (s + n - 1) as f32).collect();
                        ActionSpace::Box(Bounds::new(lo, hi).map_err(|e| space_err(e.to_string()))?)
                    }
                };
                (map, space)
            }
            SpaceInfo::Other { repr } => return Err(space_err(format!("action space {repr} is not Box, Discrete or MultiDiscrete"))),
        };
        Ok(Self { name: format!("gym:{}", cfg.id), cfg, info, server, action, space, copies, payload: Vec::new(), success: vec![None; copies] })
    }

    /// What the server reported about the environment.
    pub fn info(&self) -> &EnvInfo {
        &self.info
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.cfg.id
    }

    /// The child's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    fn err(&self, r: Raised) -> GymError {
        raised(&self.cfg.id, &self.cfg.python, r, &self.cfg.kwargs)
    }

    /// Appends the wire action (f64 per Gymnasium entry) for `action` to the
    /// payload, or says why it is outside the space.
    fn encode(&mut self, action: ArrayView1<'_, f32>) -> std::result::Result<(), GymError> {
        let out = |reason: String, me: &Self| GymError::ActionOutOfSpace {
            id: me.cfg.id.clone(),
            action: action.to_vec(),
            space: space_words(&me.info.action_space),
            reason,
        };
        if action.len() != self.space.dim() {
            return Err(out(format!("{} entries, the space has {}", action.len(), self.space.dim()), self));
        }
        if let Some(i) = action.iter().position(|v| !v.is_finite()) {
            return Err(out(format!("entry {i} is not finite"), self));
        }
        match &self.action {
            ActionMap::Box { low, high } => {
                for (i, &v) in action.iter().enumerate() {
                    // Planners clamp into the f32 bounds; allow their
                    // rounding, then clamp into the space's own.
                    let v = f64::from(v);
                    let slack = 1e-5 * (high[i] - low[i]).abs().max(1.0);
                    if v < low[i] - slack || v > high[i] + slack {
                        return Err(out(format!("entry {i} = {v} is outside [{}, {}]", low[i], high[i]), self));
                    }
                    self.payload.extend_from_slice(&v.clamp(low[i], high[i]).to_le_bytes());
                }
            }
            ActionMap::Discrete { n, start, table } => {
                let k = if table.is_empty() {
                    let k = action[0].round() as i64;
                    if k < *start || k >= start + n {
                        return Err(out(format!("{} rounds to {k}, not one of {start}..{}", action[0], start + n - 1), self));
                    }
                    k
                } else {
                    let d = |r: &Vec<f32>| r.iter().zip(action.iter()).map(|(a, b)| (a - b) * (a - b)).sum::<f32>();
                    let best = (0..table.len()).min_by(|&i, &j| d(&table[i]).total_cmp(&d(&table[j]))).expect("the table has n >= 1 rows");
                    start + best as i64
                };
                self.payload.extend_from_slice(&(k as f64).to_le_bytes());
            }
            ActionMap::MultiDiscrete { nvec, start } => {
                for (i, &v) in action.iter().enumerate() {
                    let k = v.round() as i64;
                    if k < start[i] || k >= start[i] + nvec[i] {
                        return Err(out(format!("entry {i} = {v} rounds to {k}, not one of {}..{}", start[i], start[i] + nvec[i] - 1), self));
                    }
                    self.payload.extend_from_slice(&(k as f64).to_le_bytes());
                }
            }
        }
        Ok(())
    }

    fn observation(&mut self, bytes: &[u8], op: &'static str) -> std::result::Result<Array1<f32>, GymError> {
        if bytes.len() != 8 * self.info.obs_dim {
            let message = format!("an observation of {} bytes, expected {} ({} f64)", bytes.len(), 8 * self.info.obs_dim, self.info.obs_dim);
            return Err(self.server.protocol(op, message));
        }
        let values: Vec<f64> = bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
        let obs: Array1<f32> = values.iter().map(|&v| v as f32).collect();
        // Checked after the cast: a value beyond f32's range is no state.
        if obs.iter().any(|v| !v.is_finite()) {
            return Err(GymError::NonFinite { id: self.cfg.id.clone(), op, what: "observation", values });
        }
        Ok(obs)
    }

    /// `reset(seed)`, with the Gymnasium error.
    pub fn try_reset(&mut self, seed: Option<u64>) -> std::result::Result<Array1<f32>, GymError> {
        self.reset_copy(0, seed)
    }

    /// `reset(seed)` of copy `copy`.
    fn reset_copy(&mut self, copy: usize, seed: Option<u64>) -> std::result::Result<Array1<f32>, GymError> {
        let mut p = [0u8; 13];
        p[0] = u8::from(seed.is_some());
        p[1..9].copy_from_slice(&seed.unwrap_or(0).to_le_bytes());
        p[9..].copy_from_slice(&(copy as u32).to_le_bytes());
        let reply = self.server.call(b'R', &p, "reset", self.cfg.step_timeout)?.map_err(|r| self.err(r))?;
        if let Some(s) = self.success.get_mut(copy) {
            *s = None;
        }
        self.observation(&reply, "reset")
    }

    /// `step(action)`, with the Gymnasium error.
    pub fn try_step(&mut self, action: ArrayView1<'_, f32>) -> std::result::Result<Step, GymError> {
        self.send_step(action)?;
        self.receive_step()
    }

    /// Sends `step(action)` without waiting: the child steps while the
    /// caller does other work (another environment's step).
    pub fn send_step(&mut self, action: ArrayView1<'_, f32>) -> std::result::Result<(), GymError> {
        self.send_steps(action.insert_axis(ndarray::Axis(0)))
    }

    /// The outcome of the step [`GymEnv::send_step`] sent.
    pub fn receive_step(&mut self) -> std::result::Result<Step, GymError> {
        Ok(self.receive_steps()?.swap_remove(0))
    }

    /// The limit of one step of every copy.
    fn step_timeout(&self) -> Duration {
        self.cfg.step_timeout * self.copies.max(1) as u32
    }

    /// Sends one step of every copy: row `i` of `actions` to copy `i`.
    fn send_steps(&mut self, actions: ndarray::ArrayView2<'_, f32>) -> std::result::Result<(), GymError> {
        self.encode_steps(actions)?;
        self.send_encoded()
    }

    /// Checks and encodes one step of every copy, sending nothing.
    fn encode_steps(&mut self, actions: ndarray::ArrayView2<'_, f32>) -> std::result::Result<(), GymError> {
        if actions.nrows() != self.copies {
            return Err(GymError::ActionOutOfSpace {
                id: self.cfg.id.clone(),
                action: Vec::new(),
                space: space_words(&self.info.action_space),
                reason: format!("{} actions for {} copies in one process", actions.nrows(), self.copies),
            });
        }
        self.payload.clear();
        for a in actions.rows() {
            self.encode(a)?;
        }
        Ok(())
    }

    /// Sends what [`GymEnv::encode_steps`] encoded.
    fn send_encoded(&mut self) -> std::result::Result<(), GymError> {
        let payload = std::mem::take(&mut self.payload);
        let sent = self.server.send(b'S', &payload, "step", self.step_timeout());
        self.payload = payload;
        sent
    }

    /// The outcomes of the steps [`GymEnv::send_steps`] sent, one per copy.
    fn receive_steps(&mut self) -> std::result::Result<Vec<Step>, GymError> {
        let reply = self.server.receive("step", self.step_timeout())?.map_err(|r| self.err(r))?;
        let record = 11 + 8 * self.info.obs_dim;
        if reply.len() != record * self.copies {
            return Err(self.server.protocol("step", format!("a step reply of {} bytes for {} copies of {record}", reply.len(), self.copies)));
        }
        let mut steps = Vec::with_capacity(self.copies);
        self.success.resize(self.copies, None);
        for (i, r) in reply.chunks_exact(record).enumerate() {
            let reward = f64::from_le_bytes(r[..8].try_into().expect("8 bytes"));
            if !reward.is_finite() {
                return Err(GymError::NonFinite { id: self.cfg.id.clone(), op: "step", what: "reward", values: vec![reward] });
            }
            if r[10] != 0 {
                let s = &mut self.success[i];
                *s = Some(s.unwrap_or(false) || r[10] == 2);
            }
            let observation = self.observation(&r[11..], "step")?;
            steps.push(Step { observation, reward, terminated: r[8] != 0, truncated: r[9] != 0 });
        }
        Ok(steps)
    }
}

/// Several copies of one Gymnasium environment stepped in lock step, in
/// one or more Python processes: [`GymVecEnv::step`] sends every process
/// its copies' actions before it waits for any reply, so the processes
/// step at once on as many cores, and a process holding several copies
/// steps them in one request (one round trip and two context switches for
/// all of them, where the per-step cost of a pipe is that of the round
/// trip).
pub struct GymVecEnv {
    /// The processes, each with its copies (`GymEnv::copies`).
    procs: Vec<GymEnv>,
}

impl GymVecEnv {
    /// `n` copies over `min(n, the cores)` processes (started in
    /// parallel).
    pub fn make(cfg: &GymConfig, n: usize) -> std::result::Result<Self, GymError> {
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        Self::make_in(cfg, n, n.min(cores), &[])
    }
    /// `n` copies spread evenly over `processes` processes (the first ones
    /// take one more when `n` does not divide). With `cpus`, process `p`
    /// is pinned to `cpus[p % cpus.len()]` ([`GymConfig::cpu`]).
    pub fn make_in(cfg: &GymConfig, n: usize, processes: usize, cpus: &[usize]) -> std::result::Result<Self, GymError> {
        if n == 0 {
            return Err(GymError::Make { id: cfg.id.clone(), message: "a vector of 0 environments".into() });
        }
        let processes = processes.clamp(1, n);
        let sizes: Vec<usize> = (0..processes).map(|p| n / processes + usize::from(p < n % processes)).collect();
        let firsts: Vec<usize> = sizes.iter().scan(0, |acc, &k| Some(std::mem::replace(acc, *acc + k))).collect();
        let procs = std::thread::scope(|s| {
            let handles: Vec<_> = sizes
                .iter()
                .enumerate()
                .map(|(p, &k)| {
                    let mut cfg = cfg.clone();
                    if !cpus.is_empty() {
                        cfg.cpu = Some(cpus[p % cpus.len()]);
                    }
                    let first = firsts[p];
                    s.spawn(move || GymEnv::make_copies(cfg, k, first))
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("GymEnv::make does not panic")).collect::<std::result::Result<Vec<_>, _>>()
        })?;
        Ok(Self { procs })
    }
    /// Number of copies.
    pub fn len(&self) -> usize {
        self.procs.iter().map(|p| p.copies).sum()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of Python processes.
    pub fn processes(&self) -> usize {
        self.procs.len()
    }
    /// The processes' ids, while they run.
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.procs.iter().map(GymEnv::pid).collect()
    }
    /// The action space (every copy's).
    pub fn action_space(&self) -> ActionSpace {
        self.procs[0].space.clone()
    }
    /// `reset(seed)` of copy `i`.
    pub fn reset(&mut self, i: usize, seed: Option<u64>) -> std::result::Result<Array1<f32>, GymError> {
        let n = self.len();
        let mut i = i;
        for p in &mut self.procs {
            if i < p.copies {
                return p.reset_copy(i, seed);
            }
            i -= p.copies;
        }
        Err(GymError::Protocol { id: self.procs[0].cfg.id.clone(), op: "reset", message: format!("no copy {} (there are {n})", n + i) })
    }
    /// Steps copy `i` with row `i` of `actions` (`[n, action_dim]`), all
    /// at once. An action outside the space steps no copy. Once sent,
    /// every copy steps once even when one raises (the error names the
    /// first copy that did), and every process's reply is read, so none is
    /// left a step behind; the first error is returned, and the copies'
    /// episodes should be reset after it.
    pub fn step(&mut self, actions: ndarray::ArrayView2<'_, f32>) -> std::result::Result<Vec<Step>, GymError> {
        let n = self.len();
        if actions.nrows() != n {
            let env = &self.procs[0];
            return Err(GymError::ActionOutOfSpace {
                id: env.cfg.id.clone(),
                action: Vec::new(),
                space: space_words(&env.info.action_space),
                reason: format!("{} actions for {n} environments", actions.nrows()),
            });
        }
        // Every action is checked before any is sent: a refused action
        // steps no copy, whatever the layout.
        let mut row = 0;
        for p in self.procs.iter_mut() {
            let rows = actions.slice_axis(ndarray::Axis(0), ndarray::Slice::from(row..row + p.copies));
            row += p.copies;
            p.encode_steps(rows)?;
        }
        let mut first = None;
        let mut sent = vec![false; self.procs.len()];
        for (i, p) in self.procs.iter_mut().enumerate() {
            match p.send_encoded() {
                Ok(()) => sent[i] = true,
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        let mut steps = Vec::with_capacity(n);
        for (p, was_sent) in self.procs.iter_mut().zip(sent) {
            if !was_sent {
                continue;
            }
            match p.receive_steps() {
                Ok(s) => steps.extend(s),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(steps), Err)
    }
}

/// A space in words, for errors.
pub fn space_words(s: &SpaceInfo) -> String {
    match s {
        SpaceInfo::Box { shape, dtype, .. } => format!("Box({shape:?}, {dtype})"),
        SpaceInfo::Discrete { n, start } if *start == 0 => format!("Discrete({n})"),
        SpaceInfo::Discrete { n, start } => format!("Discrete({n}, start={start})"),
        SpaceInfo::MultiDiscrete { nvec, .. } => format!("MultiDiscrete({nvec:?})"),
        SpaceInfo::Other { repr } => repr.clone(),
    }
}

impl Environment for GymEnv {
    fn name(&self) -> &str {
        &self.name
    }
    fn obs_dim(&self) -> usize {
        self.info.obs_dim
    }
    fn action_dim(&self) -> usize {
        self.space.dim()
    }
    fn action_bounds(&self) -> Bounds {
        self.space.bounds().clone()
    }
    fn action_space(&self) -> ActionSpace {
        self.space.clone()
    }
    fn max_steps(&self) -> usize {
        self.info.max_episode_steps.unwrap_or(usize::MAX)
    }
    fn reset(&mut self, seed: u64) -> Result<Array1<f32>> {
        Ok(self.try_reset(Some(seed))?)
    }
    fn step(&mut self, action: ArrayView1<'_, f32>) -> Result<Step> {
        Ok(self.try_step(action)?)
    }
    /// Whether a step's info reported `success` (or `is_success`, as
    /// Gymnasium-Robotics does) true since the reset; `None` if no info
    /// reported either.
    fn success(&self) -> Option<bool> {
        self.success.first().copied().flatten()
    }
}

/// The registered ids whose name contains `pattern` (all for ""), each
/// with its spaces or why it cannot be made, as JSON objects.
pub fn list(python: &Path, pattern: &str, timeout: Duration) -> std::result::Result<Vec<serde_json::Value>, GymError> {
    let mut server = Server::start(python, "*", &[])?;
    let reply = server.call(b'L', pattern.as_bytes(), "list", timeout)?.map_err(|r| raised("*", python, r, &serde_json::Map::new()))?;
    serde_json::from_slice(&reply).map_err(|e| GymError::Protocol { id: "*".into(), op: "list", message: e.to_string() })
}
