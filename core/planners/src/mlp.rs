//! Residual MLP world models loaded from safetensors (PyTorch `Linear`
//! layout), usable as an ordinary [`WorldModel`] and by the planners' fused
//! fast path, and the workload's quadratic goal energy.
//!
//! The model is `s' = s + W_n relu(... relu(W_1 [s, a] + b_1) ...) + b_n`:
//! tensors `W1`, `b1`, `W2`, `b2`, ... (`W_k` is `[out, in]`, f32), as many
//! layers as the file has; the state width is the last layer's output and
//! the action width the rest of the first layer's input. Optional `s0` and
//! `goal` tensors (`[S]`) and string metadata come along
//! ([`Workload`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ami_kernels::{Cpu, Layer, ResidualMlp};
use ndarray::{Array1, ArrayView2, ArrayViewMut2};

use ami_core::error::{CoreError, Result};
use ami_core::modules::{check_predict_shapes, Cost, DifferentiableWorldModel, QuadraticCost, WorldModel};

/// A residual MLP world model (see the module docs).
#[derive(Debug, Clone)]
pub struct MlpWorldModel {
    net: Arc<ResidualMlp>,
    cpu: Option<Arc<Cpu>>,
}

impl MlpWorldModel {
    /// Wraps a network.
    pub fn new(net: ResidualMlp) -> Self {
        Self { net: Arc::new(net), cpu: None }
    }
    /// A model from its layers (PyTorch `Linear` layout).
    pub fn from_layers(state_dim: usize, action_dim: usize, layers: Vec<Layer>) -> Result<Self> {
        let net = ResidualMlp::new(state_dim, action_dim, layers).map_err(|e| CoreError::config("mlp", e.to_string()))?;
        Ok(Self::new(net))
    }
    /// Loads the model of a safetensors file (see [`Workload::load`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Workload::load(path)?.model)
    }
    /// The network.
    pub fn net(&self) -> &ResidualMlp {
        &self.net
    }
    /// Runs `predict`/`vjp` on this backend instead of [`Cpu::shared`].
    pub fn set_backend(&mut self, cpu: Arc<Cpu>) {
        self.cpu = Some(cpu);
    }
    fn cpu(&self) -> Arc<Cpu> {
        self.cpu.clone().unwrap_or_else(Cpu::shared)
    }
}

fn kernel_err(context: &str, e: ami_kernels::KernelError) -> CoreError {
    CoreError::module(context, e.to_string())
}

impl WorldModel for MlpWorldModel {
    fn state_dim(&self) -> usize {
        self.net.state_dim()
    }
    fn action_dim(&self) -> usize {
        self.net.action_dim()
    }
    fn predict(&self, states: ArrayView2<'_, f32>, actions: ArrayView2<'_, f32>, mut next: ArrayViewMut2<'_, f32>) -> Result<()> {
        check_predict_shapes(self, "MlpWorldModel", &states, &actions, &next)?;
        let s = states.as_standard_layout();
        let a = actions.as_standard_layout();
        let (s, a) = (s.as_slice().expect("standard layout"), a.as_slice().expect("standard layout"));
        match next.as_slice_mut() {
            Some(out) => self.cpu().predict(&self.net, s, a, out).map_err(|e| kernel_err("MlpWorldModel", e)),
            None => {
                let mut out = vec![0.0; next.len()];
                self.cpu().predict(&self.net, s, a, &mut out).map_err(|e| kernel_err("MlpWorldModel", e))?;
                for (d, v) in next.iter_mut().zip(out) {
                    *d = v;
                }
                Ok(())
            }
        }
    }
    fn differentiable(&self) -> Option<&dyn DifferentiableWorldModel> {
        Some(self)
    }
    fn accelerated(&self) -> Option<&(dyn std::any::Any + Send + Sync)> {
        Some(self.net.as_ref())
    }
}

impl DifferentiableWorldModel for MlpWorldModel {
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
        ami_core::modules::check_vjp_shapes(self, "MlpWorldModel", &states, &actions, &grad_next, &grad_states, &grad_actions)?;
        let s = states.as_standard_layout();
        let a = actions.as_standard_layout();
        let g = grad_next.as_standard_layout();
        let mut gs = vec![0.0; b * sd];
        let mut ga = vec![0.0; b * ad];
        self.cpu()
            .vjp(&self.net, s.as_slice().expect("standard"), a.as_slice().expect("standard"), g.as_slice().expect("standard"), &mut gs, &mut ga)
            .map_err(|e| kernel_err("MlpWorldModel", e))?;
        for (d, v) in grad_states.iter_mut().zip(gs) {
            *d += v;
        }
        for (d, v) in grad_actions.iter_mut().zip(ga) {
            *d += v;
        }
        Ok(())
    }
}

/// The workload's energy of one step as an intrinsic cost term named
/// `goal_energy`: `||s' - goal||^2 + 0.01 ||a||^2` (the goal comes from the
/// [`Cost`]).
pub fn goal_energy(state_dim: usize, action_dim: usize) -> QuadraticCost {
    QuadraticCost::new("goal_energy", vec![1.0; state_dim], vec![0.01; action_dim])
}

/// Everything a workload safetensors file holds: the model, and the start
/// state, goal and metadata when present.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The world model.
    pub model: MlpWorldModel,
    /// `s0`, if the file has it.
    pub s0: Option<Array1<f32>>,
    /// `goal`, if the file has it.
    pub goal: Option<Array1<f32>>,
    /// The `__metadata__` strings.
    pub metadata: BTreeMap<String, String>,
    /// The file it came from.
    pub path: PathBuf,
}

impl Workload {
    /// Loads a safetensors file: `W1`, `b1`, `W2`, `b2`, ... as many layers
    /// as are present (at least one), optional `s0` and `goal`. Every
    /// problem (missing tensor, wrong dtype or shape, layers that do not
    /// chain, truncated data) is an error naming the file and the tensor.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let bytes = std::fs::read(&path).map_err(|source| CoreError::Io { path: path.clone(), source })?;
        let st = SafeTensors::parse(&path, &bytes)?;
        let bad = |reason: String| CoreError::CorruptFile { path: path.clone(), reason };
        let mut raw = Vec::new();
        for k in 1.. {
            let wname = format!("W{k}");
            if !st.has(&wname) {
                break;
            }
            let bname = format!("b{k}");
            if !st.has(&bname) {
                return Err(bad(format!("tensor `{bname}` is missing (the file has `{wname}`)")));
            }
            let (wshape, w) = st.f32(&wname)?;
            if wshape.len() != 2 {
                return Err(bad(format!("tensor `{wname}`: expected a 2-D [out, in] weight, found shape {wshape:?}")));
            }
            let (bshape, b) = st.f32(&bname)?;
            if bshape != [wshape[0]] {
                return Err(bad(format!("tensor `{bname}`: expected shape [{}] (the rows of `{wname}`), found {bshape:?}", wshape[0])));
            }
            raw.push((wshape[0], wshape[1], w, b));
        }
        if raw.is_empty() {
            return Err(bad(format!("tensor `W1` is missing (found: {})", st.names().join(", "))));
        }
        let s_dim = raw.last().map(|l| l.0).unwrap_or(0);
        let in0 = raw[0].1;
        if in0 <= s_dim {
            return Err(bad(format!("tensor `W1`: {in0} inputs leave no room for an action after the state width {s_dim} (the last layer's outputs)")));
        }
        let a_dim = in0 - s_dim;
        for k in 1..raw.len() {
            if raw[k].1 != raw[k - 1].0 {
                return Err(bad(format!(
                    "tensor `W{}`: expected {} inputs (the rows of `W{k}`), found shape [{}, {}]",
                    k + 1,
                    raw[k - 1].0,
                    raw[k].0,
                    raw[k].1
                )));
            }
        }
        for (key, want) in [("S", s_dim), ("A", a_dim)] {
            if let Some(v) = st.metadata.get(key) {
                if v.trim().parse::<usize>().ok() != Some(want) {
                    return Err(bad(format!("metadata {key} = {v:?} disagrees with the weights ({key} = {want})")));
                }
            }
        }
        let layers =
            raw.into_iter().map(|(out, inp, w, b)| Layer::new(out, inp, w, b)).collect::<std::result::Result<Vec<_>, _>>().map_err(|e| bad(e.to_string()))?;
        let net = ResidualMlp::new(s_dim, a_dim, layers).map_err(|e| bad(e.to_string()))?;
        let vec_of = |name: &str| -> Result<Option<Array1<f32>>> {
            if !st.has(name) {
                return Ok(None);
            }
            let (shape, v) = st.f32(name)?;
            if shape != [s_dim] {
                return Err(CoreError::CorruptFile { path: path.clone(), reason: format!("tensor `{name}`: expected shape [{s_dim}], found {shape:?}") });
            }
            Ok(Some(Array1::from(v)))
        };
        let s0 = vec_of("s0")?;
        let goal = vec_of("goal")?;
        Ok(Self { model: MlpWorldModel::new(net), s0, goal, metadata: st.metadata.clone(), path })
    }

    /// The workload's cost: [`goal_energy`] with weight 1 and the file's goal.
    pub fn cost(&self) -> Cost {
        let mut c = Cost::new();
        c.add_intrinsic(Arc::new(goal_energy(self.model.state_dim(), self.model.action_dim())), 1.0).expect("a fresh cost has no terms");
        c.set_goal(self.goal.clone());
        c
    }

    /// The horizon from the metadata (`T`), if given.
    pub fn horizon(&self) -> Option<usize> {
        self.metadata.get("T").and_then(|v| v.trim().parse().ok())
    }
}

/// A parsed safetensors file (header + data), borrowed from its bytes.
struct SafeTensors<'a> {
    path: &'a Path,
    header: serde_json::Map<String, serde_json::Value>,
    data: &'a [u8],
    metadata: BTreeMap<String, String>,
}

impl<'a> SafeTensors<'a> {
    fn parse(path: &'a Path, bytes: &'a [u8]) -> Result<Self> {
        let bad = |reason: String| CoreError::CorruptFile { path: path.to_path_buf(), reason };
        if bytes.len() < 8 {
            return Err(bad(format!("not a safetensors file: {} bytes, too short for the header length", bytes.len())));
        }
        let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        if n > (bytes.len() - 8) as u64 {
            return Err(bad(format!("not a safetensors file: header length {n} exceeds the file size {}", bytes.len())));
        }
        let n = n as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).map_err(|e| bad(format!("safetensors header is not valid JSON: {e}")))?;
        let serde_json::Value::Object(mut header) = header else {
            return Err(bad("safetensors header is not a JSON object".into()));
        };
        let mut metadata = BTreeMap::new();
        if let Some(serde_json::Value::Object(m)) = header.remove("__metadata__") {
            for (k, v) in m {
                if let serde_json::Value::String(s) = v {
                    metadata.insert(k, s);
                }
            }
        }
        Ok(Self { path, header, data: &bytes[8 + n..], metadata })
    }
    fn has(&self, name: &str) -> bool {
        self.header.contains_key(name)
    }
    fn names(&self) -> Vec<String> {
        self.header.keys().cloned().collect()
    }
    /// Shape and values of an f32 tensor.
    fn f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let bad = |reason: String| CoreError::CorruptFile { path: self.path.to_path_buf(), reason: format!("tensor `{name}`: {reason}") };
        let info = self.header.get(name).ok_or_else(|| bad("missing".into()))?;
        let dtype = info.get("dtype").and_then(|d| d.as_str()).ok_or_else(|| bad("no dtype".into()))?;
        if dtype != "F32" {
            return Err(bad(format!("dtype {dtype}, expected F32")));
        }
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| bad("no shape".into()))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("shape is not a list of sizes".into()))?;
        let offs: Vec<usize> = info
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect::<Option<Vec<_>>>())
            .filter(|o| o.len() == 2)
            .ok_or_else(|| bad("no valid data_offsets".into()))?;
        let (b, e) = (offs[0], offs[1]);
        let count: usize = shape.iter().product();
        if b > e || e > self.data.len() {
            return Err(bad(format!("data_offsets [{b}, {e}] lie outside the {} data bytes (truncated file?)", self.data.len())));
        }
        if e - b != count * 4 {
            return Err(bad(format!("shape {shape:?} needs {} bytes, data_offsets give {}", count * 4, e - b)));
        }
        let v = self.data[b..e].chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        Ok((shape, v))
    }
}
