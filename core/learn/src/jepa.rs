//! A JEPA world model from pixels (paper §4.4; PLDM, DINO-WM, LeWM): an
//! encoder `s = Enc(x)` (a [`ConvEncoder`]) and an action-conditioned
//! predictor `s' = s + Pred(s, a)` (a residual ReLU MLP, the layout of a
//! one-member [`Ensemble`], so planning runs on the fused kernels), trained
//! jointly in representation space.
//!
//! ## Training ([`JepaTrainer`])
//!
//! A batch is `B` windows of `H + 1` consecutive frames `x_0..x_H` and the
//! `H` actions between them. With `z_k = Enc(x_k)` and the targets `t_k`
//! (`z_k` with its gradient stopped, or the encoding by an EMA copy of the
//! encoder), the predictor rolls out from `z_0` alone, `ẑ_0 = z_0`, `ẑ_{k+1}
//! = ẑ_k + Pred(ẑ_k, a_k)`, and the loss is
//!
//! ```text
//! L = (1 / H) sum_{k=1..H} mean_{b,j} (ẑ_k - t_k)^2  +  (1 / (H + 1)) sum_k R(z_k)
//! ```
//!
//! where `R` is the anti-collapse term on each time slice's embeddings
//! (`[B, d]`): VICReg's variance and covariance ([`vicreg`]) or SIGReg
//! ([`sigreg`]) times its weight, or nothing (which lets the encoder
//! collapse: every frame to one point, predicted perfectly). The gradient
//! runs back through time into the encoder; Adam updates both.
//!
//! The encoder's batch is split into a fixed number of chunks
//! ([`CHUNKS`]) whose gradients are summed in order, so the weights are the
//! same with any thread count.

use std::path::Path;
use std::sync::Arc;

use ami_core::error::{CoreError, Result};
use ami_core::Perception;
use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::Rng;
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

use crate::anticollapse::{linear_probe, sigreg, vicreg, EmbeddingStats, SigRegConfig, VicRegConfig};
use crate::conv::{mat, product, ConvCache, ConvEncoder, ConvSpec};
use crate::ensemble::Ensemble;
use crate::model::{LearnedModel, Propagation};
use crate::norm::Normalizer;
use crate::spec::EnsembleSpec;
use crate::trajectories::Trajectory;
use ami_kernels::train::Mat;

/// Chunks an encoder batch is split into (fixed, so the gradient's sum
/// order, and the weights, do not depend on the thread count).
pub const CHUNKS: usize = 4;

/// The metadata `format` of a saved JEPA.
pub const FORMAT: &str = "ami.jepa.v1";

/// The predictor: a residual ReLU MLP `s' = s + f(s, a)`, parameters in the
/// [`Ensemble`] layout (per layer the weights `[out, in]`, then the bias).
#[derive(Debug, Clone, PartialEq)]
pub struct Predictor {
    dims: Vec<usize>,
    params: Vec<f32>,
}

/// What a predictor's forward pass keeps: each layer's input.
#[derive(Debug, Clone)]
pub struct PredictorCache {
    inputs: Vec<Array2<f32>>,
}

impl Predictor {
    /// A predictor over states of `state_dim` and actions of `action_dim`
    /// through `hidden` ReLU layers, initialised as PyTorch's `Linear`
    /// (uniform in `±1/sqrt(in)`) from `seed`, its last layer scaled by
    /// 0.1 (it starts near the identity).
    pub fn new(state_dim: usize, action_dim: usize, hidden: &[usize], seed: u64) -> Result<Self> {
        let spec = EnsembleSpec::new(state_dim, action_dim, hidden.to_vec());
        spec.validate()?;
        let dims = spec.dims();
        let mut rng = ami_core::rng::rng(seed);
        let mut params = Vec::with_capacity(spec.member_params());
        for (l, w) in dims.windows(2).enumerate() {
            let bound = 1.0 / (w[0] as f32).sqrt() * if l + 2 == dims.len() { 0.1 } else { 1.0 };
            for _ in 0..w[0] * w[1] + w[1] {
                params.push(rng.gen_range(-bound..bound));
            }
        }
        Ok(Self { dims, params })
    }
    /// State width.
    pub fn state_dim(&self) -> usize {
        *self.dims.last().expect("at least two layers")
    }
    /// Action width.
    pub fn action_dim(&self) -> usize {
        self.dims[0] - self.state_dim()
    }
    /// Hidden widths.
    pub fn hidden(&self) -> &[usize] {
        &self.dims[1..self.dims.len() - 1]
    }
    /// The parameters.
    pub fn params(&self) -> &[f32] {
        &self.params
    }
    /// The parameters, to update.
    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }
    fn layer(&self, l: usize) -> (Mat<'_>, &[f32]) {
        let mut at = 0;
        for w in self.dims.windows(2).take(l) {
            at += w[0] * w[1] + w[1];
        }
        let (i, o) = (self.dims[l], self.dims[l + 1]);
        (Mat::rows(&self.params[at..at + i * o], o, i), &self.params[at + i * o..at + i * o + o])
    }
    /// `s + f(s, a)` for rows of `states` `[n, S]` and `actions` `[n, A]`.
    pub fn forward(&self, states: ArrayView2<'_, f32>, actions: ArrayView2<'_, f32>) -> Result<(Array2<f32>, PredictorCache)> {
        let (s, a) = (self.state_dim(), self.action_dim());
        if states.ncols() != s || actions.ncols() != a || states.nrows() != actions.nrows() {
            return Err(CoreError::shape(
                "Predictor::forward",
                format!("[n, {s}] states and [n, {a}] actions"),
                format!("{:?} and {:?}", states.shape(), actions.shape()),
            ));
        }
        let n = states.nrows();
        let mut x = Array2::<f32>::zeros((n, s + a));
        x.slice_axis_mut(Axis(1), ndarray::Slice::from(..s)).assign(&states);
        x.slice_axis_mut(Axis(1), ndarray::Slice::from(s..)).assign(&actions);
        let layers = self.dims.len() - 1;
        let mut inputs = Vec::with_capacity(layers);
        for l in 0..layers {
            let (w, b) = self.layer(l);
            let mut y = product(mat(&x), w.t());
            let relu = l + 1 < layers;
            for row in y.rows_mut() {
                for (v, bias) in row.into_iter().zip(b) {
                    *v += bias;
                    if relu {
                        *v = v.max(0.0);
                    }
                }
            }
            inputs.push(x);
            x = y;
        }
        x += &states;
        Ok((x, PredictorCache { inputs }))
    }
    /// The gradients of the parameters and of the input states given
    /// `d loss / d s'` (`[n, S]`).
    pub fn backward(&self, cache: &PredictorCache, grad_out: ArrayView2<'_, f32>) -> Result<(Vec<f32>, Array2<f32>)> {
        let s = self.state_dim();
        let n = cache.inputs[0].nrows();
        if grad_out.dim() != (n, s) {
            return Err(CoreError::shape("Predictor::backward", format!("[{n}, {s}]"), format!("{:?}", grad_out.shape())));
        }
        let mut grads = vec![0.0f32; self.params.len()];
        let layers = self.dims.len() - 1;
        let mut offsets = Vec::with_capacity(layers);
        let mut at = 0;
        for w in self.dims.windows(2) {
            offsets.push(at);
            at += w[0] * w[1] + w[1];
        }
        let mut g = grad_out.as_standard_layout().into_owned();
        for l in (0..layers).rev() {
            let x = &cache.inputs[l];
            let (i, o) = (self.dims[l], self.dims[l + 1]);
            let gw = product(mat(&g).t(), mat(x));
            grads[offsets[l]..offsets[l] + i * o].copy_from_slice(gw.as_slice().expect("fresh"));
            for (d, v) in grads[offsets[l] + i * o..offsets[l] + i * o + o].iter_mut().zip(g.sum_axis(Axis(0))) {
                *d = v;
            }
            let (w, _) = self.layer(l);
            let mut gx = product(mat(&g), w);
            if l > 0 {
                // Through the ReLU that made this layer's input.
                gx.zip_mut_with(x, |gv, &xv| {
                    if xv <= 0.0 {
                        *gv = 0.0;
                    }
                });
            }
            g = gx;
        }
        let mut gs = g.slice_axis(Axis(1), ndarray::Slice::from(..s)).to_owned();
        gs += &grad_out;
        Ok((grads, gs))
    }
    /// As a one-member [`Ensemble`] (identity normalisation), the layout
    /// planners run on the fused kernels.
    pub fn to_ensemble(&self) -> Result<Ensemble> {
        let spec = EnsembleSpec::new(self.state_dim(), self.action_dim(), self.hidden().to_vec());
        Ensemble::from_params(spec, self.params.clone(), Normalizer::identity(self.dims[0], self.state_dim()))
    }
}

/// A trained JEPA: the encoder and the predictor.
#[derive(Debug, Clone, PartialEq)]
pub struct Jepa {
    /// `Enc`.
    pub encoder: ConvEncoder,
    /// `Pred`.
    pub predictor: Predictor,
}

impl Jepa {
    /// A fresh JEPA: the encoder of `spec`, a predictor of `hidden` layers
    /// over its embedding and actions of `action_dim`.
    pub fn new(spec: ConvSpec, action_dim: usize, hidden: &[usize], seed: u64) -> Result<Self> {
        let predictor = Predictor::new(spec.embed, action_dim, hidden, seed ^ 0x9e37_79b9)?;
        Ok(Self { encoder: ConvEncoder::new(spec, seed)?, predictor })
    }
    /// Embeddings of a batch of images, `chunk` rows at a time.
    pub fn encode(&self, images: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let mut out = Array2::<f32>::zeros((images.nrows(), self.encoder.spec().embed));
        let mut cache = ConvCache::default();
        for (i, rows) in images.axis_chunks_iter(Axis(0), 256).enumerate() {
            let z = self.encoder.forward_into(rows, &mut cache)?;
            out.slice_axis_mut(Axis(0), ndarray::Slice::from(i * 256..i * 256 + rows.nrows())).assign(&z);
        }
        Ok(out)
    }
    /// The predictor as a planner's world model (the fused kernels' path).
    pub fn world_model(&self) -> Result<LearnedModel> {
        Ok(LearnedModel::new(self.predictor.to_ensemble()?, Propagation::Mean, 0.0))
    }
    /// The encoder as the agent's perception (images -> embeddings).
    pub fn perception(self: &Arc<Self>) -> JepaPerception {
        JepaPerception { jepa: self.clone() }
    }

    /// Writes the JEPA to `path` as safetensors in PyTorch's layout
    /// (atomically: a temporary file renamed over it). Tensors:
    /// `encoder.{2 l}.weight` (`[out, in, 3, 3]`) and `.bias` for the
    /// convolutions of `nn.Sequential(Conv2d(in, out, 3, 2, 1), ReLU, ...,
    /// Flatten, Linear)`, the linear map as `encoder.{2 L + 1}.weight`
    /// (`[embed, C H W]`, PyTorch's channel-major flattening), and the
    /// predictor's layers `predictor.{2 l}.weight` / `.bias`. Metadata:
    /// `format`, `in_channels`, `size`, `channels`, `embed`, `action_dim`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let s = self.encoder.spec();
        let p = self.encoder.params();
        let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
        let mut at = 0;
        for l in 0..s.channels.len() {
            let (cin, cout) = (if l == 0 { s.in_channels } else { s.channels[l - 1] }, s.channels[l]);
            let w = &p[at..at + cout * 9 * cin];
            // ours [o][(3 ky + kx) cin + c] -> torch [o][c][ky][kx]
            let mut t = vec![0.0f32; w.len()];
            for o in 0..cout {
                for c in 0..cin {
                    for k in 0..9 {
                        t[((o * cin + c) * 9) + k] = w[o * 9 * cin + k * cin + c];
                    }
                }
            }
            tensors.push((format!("encoder.{}.weight", 2 * l), vec![cout, cin, 3, 3], t));
            at += cout * 9 * cin;
            tensors.push((format!("encoder.{}.bias", 2 * l), vec![cout], p[at..at + cout].to_vec()));
            at += cout;
        }
        let (c, side, flat) = (*s.channels.last().expect("checked"), s.size_after(), s.flat());
        let w = &p[at..at + s.embed * flat];
        // ours column p c + ch (HWC) -> torch ch side^2 + p (CHW)
        let mut t = vec![0.0f32; w.len()];
        for e in 0..s.embed {
            for px in 0..side * side {
                for ch in 0..c {
                    t[e * flat + ch * side * side + px] = w[e * flat + px * c + ch];
                }
            }
        }
        let lin = 2 * s.channels.len() + 1;
        tensors.push((format!("encoder.{lin}.weight"), vec![s.embed, flat], t));
        at += s.embed * flat;
        tensors.push((format!("encoder.{lin}.bias"), vec![s.embed], p[at..at + s.embed].to_vec()));
        let layers = self.predictor.dims.len() - 1;
        for l in 0..layers {
            let (w, b) = self.predictor.layer(l);
            tensors.push((format!("predictor.{}.weight", 2 * l), vec![w.rows, w.cols], w.data.to_vec()));
            tensors.push((format!("predictor.{}.bias", 2 * l), vec![b.len()], b.to_vec()));
        }
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> =
            tensors.into_iter().map(|(n, sh, v)| (n, sh, v.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
        let channels: Vec<String> = s.channels.iter().map(|c| c.to_string()).collect();
        let meta = [
            ("format", FORMAT.to_string()),
            ("in_channels", s.in_channels.to_string()),
            ("size", s.size.to_string()),
            ("channels", channels.join(",")),
            ("embed", s.embed.to_string()),
            ("action_dim", self.predictor.action_dim().to_string()),
        ];
        crate::io::write_safetensors(path, &bytes, &meta)
    }

    /// Reads a JEPA written by [`Jepa::save`] (or by PyTorch in that
    /// layout). Every problem is [`CoreError::CorruptFile`] naming the file
    /// and the tensor or metadata key.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| CoreError::Io { path: path.to_path_buf(), source })?;
        Self::from_bytes(&bytes, path)
    }

    /// [`Jepa::load`] from bytes; `path` names them in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let bad = |reason: String| CoreError::CorruptFile { path: path.to_path_buf(), reason };
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        match meta.get("format") {
            Some(f) if f == FORMAT => {}
            other => return Err(bad(format!("metadata format = {other:?}, a JEPA file has {FORMAT:?}"))),
        }
        let num = |key: &str| -> Result<usize> {
            let v = meta.get(key).ok_or_else(|| bad(format!("metadata `{key}` is missing")))?;
            v.parse::<usize>().ok().filter(|&n| n > 0 && n <= 1 << 20).ok_or_else(|| bad(format!("metadata `{key}` = {v:?} is not a width")))
        };
        let channels: Vec<usize> = meta
            .get("channels")
            .ok_or_else(|| bad("metadata `channels` is missing".into()))?
            .split(',')
            .map(|c| c.trim().parse::<usize>().ok().filter(|&n| n > 0 && n <= 4096))
            .collect::<Option<_>>()
            .ok_or_else(|| bad(format!("metadata `channels` = {:?} is not a list of widths", meta.get("channels"))))?;
        let spec = ConvSpec { in_channels: num("in_channels")?, size: num("size")?, channels, embed: num("embed")? };
        let action_dim = num("action_dim")?;
        let read = |name: &str, want: &[usize]| -> Result<Vec<f32>> {
            let t = st.tensor(name).map_err(|_| bad(format!("tensor `{name}` is missing")))?;
            if t.dtype() != Dtype::F32 {
                return Err(bad(format!("tensor `{name}`: dtype {:?}, expected F32", t.dtype())));
            }
            if t.shape() != want {
                return Err(bad(format!("tensor `{name}`: shape {:?}, expected {want:?}", t.shape())));
            }
            let v: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(bad(format!("tensor `{name}`: element {i} is {}", v[i])));
            }
            Ok(v)
        };
        let mut params = Vec::new();
        for l in 0..spec.channels.len() {
            let (cin, cout) = (if l == 0 { spec.in_channels } else { spec.channels[l - 1] }, spec.channels[l]);
            let t = read(&format!("encoder.{}.weight", 2 * l), &[cout, cin, 3, 3])?;
            let mut w = vec![0.0f32; t.len()];
            for o in 0..cout {
                for c in 0..cin {
                    for k in 0..9 {
                        w[o * 9 * cin + k * cin + c] = t[((o * cin + c) * 9) + k];
                    }
                }
            }
            params.extend(w);
            params.extend(read(&format!("encoder.{}.bias", 2 * l), &[cout])?);
        }
        let (c, side, flat) = (*spec.channels.last().expect("read"), spec.size_after(), spec.flat());
        let lin = 2 * spec.channels.len() + 1;
        let t = read(&format!("encoder.{lin}.weight"), &[spec.embed, flat])?;
        let mut w = vec![0.0f32; t.len()];
        for e in 0..spec.embed {
            for px in 0..side * side {
                for ch in 0..c {
                    w[e * flat + px * c + ch] = t[e * flat + ch * side * side + px];
                }
            }
        }
        params.extend(w);
        params.extend(read(&format!("encoder.{lin}.bias"), &[spec.embed])?);
        let encoder = ConvEncoder::from_params(spec.clone(), params).map_err(|e| bad(e.to_string()))?;
        // Predictor layers: as many as there are.
        let mut dims = vec![spec.embed + action_dim];
        let mut pp = Vec::new();
        let mut l = 0;
        while let Ok(t) = st.tensor(&format!("predictor.{}.weight", 2 * l)) {
            let shape = t.shape().to_vec();
            if shape.len() != 2 || shape[1] != *dims.last().expect("one") {
                return Err(bad(format!("tensor `predictor.{}.weight`: shape {shape:?}, expected [_, {}]", 2 * l, dims.last().expect("one"))));
            }
            pp.extend(read(&format!("predictor.{}.weight", 2 * l), &shape)?);
            pp.extend(read(&format!("predictor.{}.bias", 2 * l), &[shape[0]])?);
            dims.push(shape[0]);
            l += 1;
        }
        if dims.len() < 3 || *dims.last().expect("one") != spec.embed {
            return Err(bad(format!(
                "the predictor's layers (`predictor.0.weight`, ...) must map {} inputs through at least one hidden layer to {} outputs, found widths {dims:?}",
                spec.embed + action_dim,
                spec.embed
            )));
        }
        Ok(Self { encoder, predictor: Predictor { dims, params: pp } })
    }
}

/// A JEPA's encoder as [`Perception`]: images (flattened `[C, H, W]`) to
/// embeddings.
#[derive(Debug, Clone)]
pub struct JepaPerception {
    jepa: Arc<Jepa>,
}

impl Perception for JepaPerception {
    fn obs_dim(&self) -> usize {
        self.jepa.encoder.spec().input_dim()
    }
    fn state_dim(&self) -> usize {
        self.jepa.encoder.spec().embed
    }
    fn encode(&self, observations: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.jepa.encode(observations)
    }
}

/// The anti-collapse term.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Regulariser {
    /// None: the ablation (the encoder is free to collapse).
    None,
    /// VICReg's variance and covariance terms.
    VicReg(VicRegConfig),
    /// SIGReg, times `weight`.
    SigReg {
        /// The statistic's weight.
        weight: f32,
        /// Its settings.
        cfg: SigRegConfig,
    },
}

/// Where the prediction targets come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The online encoder's embeddings, gradient stopped.
    StopGradient,
    /// An exponential moving average of the encoder (`tau` per step).
    Ema(f32),
}

/// How [`JepaTrainer`] trains.
#[derive(Debug, Clone, PartialEq)]
pub struct JepaConfig {
    /// Predicted steps per window (`H`).
    pub horizon: usize,
    /// Windows per batch (`B`).
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f32,
    /// The anti-collapse term.
    pub regulariser: Regulariser,
    /// Where targets come from.
    pub target: Target,
    /// Threads of the encoder's passes (the weights do not depend on it).
    pub threads: usize,
    /// Seed of the initialisation and the batch order.
    pub seed: u64,
    /// Weight of the temporal smoothness term, `(1 / H) sum_k mean_{b,j}
    /// (z_{k+1} - z_k)^2` (PLDM's): consecutive frames embed close, so a
    /// distance in the embedding grows with the steps between two frames
    /// instead of saturating a few steps away (what a planner pursuing a
    /// goal embedding needs). 0: none.
    pub smoothness: f32,
}

impl Default for JepaConfig {
    fn default() -> Self {
        Self {
            horizon: 3,
            batch: 64,
            lr: 1e-3,
            regulariser: Regulariser::VicReg(VicRegConfig::default()),
            target: Target::StopGradient,
            threads: 1,
            seed: 0,
            smoothness: 0.0,
        }
    }
}

impl JepaConfig {
    /// Refuses settings that cannot train, naming the field.
    pub fn check(&self) -> Result<()> {
        if !(1..=64).contains(&self.horizon) {
            return Err(CoreError::config("horizon", format!("must be 1..=64, got {}", self.horizon)));
        }
        if !(2..=65_536).contains(&self.batch) {
            return Err(CoreError::config("batch", format!("must be 2..=65536, got {}", self.batch)));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(CoreError::config("lr", format!("must be positive, got {}", self.lr)));
        }
        if !(1..=256).contains(&self.threads) {
            return Err(CoreError::config("threads", format!("must be 1..=256, got {}", self.threads)));
        }
        if !(self.smoothness.is_finite() && self.smoothness >= 0.0) {
            return Err(CoreError::config("smoothness", format!("must be at least 0, got {}", self.smoothness)));
        }
        if let Target::Ema(t) = self.target {
            if !(0.0..1.0).contains(&t) {
                return Err(CoreError::config("ema", format!("tau must be in [0, 1), got {t}")));
            }
        }
        Ok(())
    }
}

/// Frames, actions and true positions of the windows a trainer draws from.
#[derive(Debug, Clone)]
pub struct JepaData {
    /// Every frame, trajectory after trajectory (`[frames, obs_dim]`).
    pub frames: Array2<f32>,
    /// Every action, aligned so action `i` follows frame `i` (`[frames, A]`;
    /// the row after a trajectory's last frame is unused).
    pub actions: Array2<f32>,
    /// Diagnostics per frame (true positions), `[frames, D]`.
    pub diagnostics: Array2<f32>,
    /// Window starts: frame indices `i` with `i..=i + H` in one trajectory.
    starts: Vec<usize>,
}

impl JepaData {
    /// The windows of `horizon` steps in `trajectories`.
    pub fn new(trajectories: &[Trajectory], horizon: usize) -> Result<Self> {
        let Some(first) = trajectories.first() else { return Err(CoreError::config("dataset", "holds no trajectory")) };
        let (o, a, d) = (first.observations.ncols(), first.actions.ncols(), first.diagnostics.ncols());
        let total: usize = trajectories.iter().map(|t| t.observations.nrows()).sum();
        let mut frames = Array2::<f32>::zeros((total, o));
        let mut actions = Array2::<f32>::zeros((total, a));
        let mut diagnostics = Array2::<f32>::zeros((total, d));
        let mut starts = Vec::new();
        let mut at = 0;
        for t in trajectories {
            let n = t.observations.nrows();
            frames.slice_axis_mut(Axis(0), ndarray::Slice::from(at..at + n)).assign(&t.observations);
            actions.slice_axis_mut(Axis(0), ndarray::Slice::from(at..at + t.len())).assign(&t.actions);
            diagnostics.slice_axis_mut(Axis(0), ndarray::Slice::from(at..at + n)).assign(&t.diagnostics);
            starts.extend((0..(t.len() + 1).saturating_sub(horizon)).map(|i| at + i));
            at += n;
        }
        if starts.is_empty() {
            return Err(CoreError::config("horizon", format!("no trajectory has {horizon} steps")));
        }
        Ok(Self { frames, actions, diagnostics, starts })
    }
    /// Windows.
    pub fn windows(&self) -> usize {
        self.starts.len()
    }
}

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct JepaEpoch {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean prediction loss over the epoch's batches.
    pub prediction: f64,
    /// Mean regulariser loss (weighted).
    pub regulariser: f64,
    /// Held-out prediction error over the horizon, relative to the
    /// embeddings' variance (1: no better than predicting the mean).
    pub heldout_error: f64,
    /// Held-out embeddings' per-dimension standard deviations: min, mean.
    pub std_min: f64,
    /// Mean of them.
    pub std_mean: f64,
    /// Held-out embeddings' effective rank.
    pub effective_rank: f64,
    /// Linear probe R^2 of each diagnostic (true position) on held-out
    /// frames, fitted on training frames.
    pub probe_r2: Vec<f64>,
    /// Frames through the encoder (forward and backward) per second.
    pub frames_per_s: f64,
}

/// Trains a [`Jepa`] (see the module docs).
#[derive(Debug)]
pub struct JepaTrainer {
    jepa: Jepa,
    target: Option<ConvEncoder>,
    cfg: JepaConfig,
    m: Vec<f32>,
    v: Vec<f32>,
    steps: u64,
    caches: Vec<ConvCache>,
    /// The EMA target encoder's buffers, reused batch after batch like
    /// the online encoder's.
    target_caches: Vec<ConvCache>,
    rng: ami_core::rng::AmiRng,
}

/// Splits `0..n` into [`CHUNKS`] contiguous ranges (the first ones one
/// longer).
fn chunks(n: usize) -> Vec<std::ops::Range<usize>> {
    let (q, r) = (n / CHUNKS, n % CHUNKS);
    let mut out = Vec::with_capacity(CHUNKS);
    let mut at = 0;
    for c in 0..CHUNKS {
        let len = q + usize::from(c < r);
        out.push(at..at + len);
        at += len;
    }
    out
}

/// Runs `f(i, &mut caches[i])` for every chunk on up to `threads` threads;
/// results in chunk order.
fn par_chunks<T: Send>(threads: usize, caches: &mut [ConvCache], f: impl Fn(usize, &mut ConvCache) -> Result<T> + Sync) -> Result<Vec<T>> {
    if threads <= 1 {
        return caches.iter_mut().enumerate().map(|(i, c)| f(i, c)).collect();
    }
    let per = caches.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = caches
            .chunks_mut(per)
            .enumerate()
            .map(|(g, group)| {
                let f = &f;
                s.spawn(move || group.iter_mut().enumerate().map(|(j, c)| f(g * per + j, c)).collect::<Result<Vec<T>>>())
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.extend(h.join().map_err(|_| CoreError::module("jepa", "an encoder thread panicked"))??);
        }
        Ok(out)
    })
}

impl JepaTrainer {
    /// A trainer of `jepa` under `cfg`.
    pub fn new(jepa: Jepa, cfg: JepaConfig) -> Result<Self> {
        cfg.check()?;
        let n = jepa.encoder.params().len() + jepa.predictor.params().len();
        let target = matches!(cfg.target, Target::Ema(_)).then(|| jepa.encoder.clone());
        let rng = ami_core::rng::rng(cfg.seed ^ 0x5eed);
        Ok(Self {
            jepa,
            target,
            cfg,
            m: vec![0.0; n],
            v: vec![0.0; n],
            steps: 0,
            caches: vec![ConvCache::default(); CHUNKS],
            target_caches: vec![ConvCache::default(); CHUNKS],
            rng,
        })
    }
    /// The model so far.
    pub fn jepa(&self) -> &Jepa {
        &self.jepa
    }
    /// The settings.
    pub fn config(&self) -> &JepaConfig {
        &self.cfg
    }
    /// Batches stepped.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The batch of windows `starts` as time-major frames
    /// (`[(H + 1) B, obs]`, row `k B + b`) and actions (`H` blocks `[B, A]`).
    fn gather(&self, data: &JepaData, starts: &[usize]) -> (Array2<f32>, Vec<Array2<f32>>) {
        let (h, b) = (self.cfg.horizon, starts.len());
        let mut frames = Array2::<f32>::zeros(((h + 1) * b, data.frames.ncols()));
        for k in 0..=h {
            for (j, &s) in starts.iter().enumerate() {
                frames.row_mut(k * b + j).assign(&data.frames.row(s + k));
            }
        }
        let actions = (0..h).map(|k| Array2::from_shape_fn((b, data.actions.ncols()), |(j, c)| data.actions[[starts[j] + k, c]])).collect();
        (frames, actions)
    }

    /// The losses (prediction, regulariser) of one batch and, with
    /// `train`, one Adam step on them.
    pub fn step(&mut self, data: &JepaData, starts: &[usize]) -> Result<(f64, f64)> {
        let (h, b) = (self.cfg.horizon, starts.len());
        let d = self.jepa.encoder.spec().embed;
        let (frames, actions) = self.gather(data, starts);
        let ranges = chunks(frames.nrows());
        let enc = &self.jepa.encoder;
        let parts = par_chunks(self.cfg.threads, &mut self.caches, |i, cache| {
            enc.forward_into(frames.slice_axis(Axis(0), ndarray::Slice::from(ranges[i].clone())), cache)
        })?;
        let mut z = Array2::<f32>::zeros((frames.nrows(), d));
        for (r, p) in ranges.iter().zip(&parts) {
            z.slice_axis_mut(Axis(0), ndarray::Slice::from(r.clone())).assign(p);
        }
        let targets = match &self.target {
            None => z.clone(),
            Some(t) => {
                let parts = par_chunks(self.cfg.threads, &mut self.target_caches, |i, cache| {
                    t.forward_into(frames.slice_axis(Axis(0), ndarray::Slice::from(ranges[i].clone())), cache)
                })?;
                let mut out = Array2::<f32>::zeros(z.dim());
                for (r, p) in ranges.iter().zip(&parts) {
                    out.slice_axis_mut(Axis(0), ndarray::Slice::from(r.clone())).assign(p);
                }
                out
            }
        };
        let slice = |m: &Array2<f32>, k: usize| m.slice_axis(Axis(0), ndarray::Slice::from(k * b..(k + 1) * b)).to_owned();
        // Roll the predictor out from z_0.
        let mut gz = Array2::<f32>::zeros(z.dim());
        let mut states = vec![slice(&z, 0)];
        let mut pcaches = Vec::with_capacity(h);
        for (k, a) in actions.iter().enumerate() {
            let (next, c) = self.jepa.predictor.forward(states[k].view(), a.view())?;
            states.push(next);
            pcaches.push(c);
        }
        let scale = 1.0 / (b * d * h) as f32;
        let mut pred_loss = 0.0f64;
        let mut gpred = vec![0.0f32; self.jepa.predictor.params().len()];
        let mut g = Array2::<f32>::zeros((b, d));
        for k in (0..h).rev() {
            let diff = &states[k + 1] - &slice(&targets, k + 1);
            pred_loss += diff.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() * f64::from(scale);
            g.scaled_add(2.0 * scale, &diff);
            let (gp, gs) = self.jepa.predictor.backward(&pcaches[k], g.view())?;
            gpred.iter_mut().zip(&gp).for_each(|(a, v)| *a += v);
            g = gs;
        }
        gz.slice_axis_mut(Axis(0), ndarray::Slice::from(0..b)).scaled_add(1.0, &g);
        // The anti-collapse term on each time slice.
        let mut reg_loss = 0.0;
        for k in 0..=h {
            let zk = slice(&z, k);
            let r = match self.cfg.regulariser {
                Regulariser::None => continue,
                Regulariser::VicReg(c) => vicreg(zk.view(), &c)?,
                Regulariser::SigReg { weight, cfg } => {
                    let mut r = sigreg(zk.view(), &cfg)?;
                    r.loss *= f64::from(weight);
                    r.grad *= weight;
                    r
                }
            };
            reg_loss += r.loss / (h + 1) as f64;
            gz.slice_axis_mut(Axis(0), ndarray::Slice::from(k * b..(k + 1) * b)).scaled_add(1.0 / (h + 1) as f32, &r.grad);
        }
        // Temporal smoothness: consecutive embeddings close.
        if self.cfg.smoothness > 0.0 {
            let w = self.cfg.smoothness;
            for k in 0..h {
                let diff = &slice(&z, k + 1) - &slice(&z, k);
                reg_loss += f64::from(w) * diff.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() * f64::from(scale);
                gz.slice_axis_mut(Axis(0), ndarray::Slice::from((k + 1) * b..(k + 2) * b)).scaled_add(2.0 * w * scale, &diff);
                gz.slice_axis_mut(Axis(0), ndarray::Slice::from(k * b..(k + 1) * b)).scaled_add(-2.0 * w * scale, &diff);
            }
        }
        // Back through the encoder, chunk by chunk, summed in order.
        let genc =
            par_chunks(self.cfg.threads, &mut self.caches, |i, cache| enc.backward(cache, gz.slice_axis(Axis(0), ndarray::Slice::from(ranges[i].clone()))))?;
        let ne = self.jepa.encoder.params().len();
        let mut grad = vec![0.0f32; ne + gpred.len()];
        for ge in &genc {
            grad[..ne].iter_mut().zip(ge.iter()).for_each(|(a, v)| *a += v);
        }
        grad[ne..].copy_from_slice(&gpred);
        if !(pred_loss.is_finite() && reg_loss.is_finite()) || grad.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::module(
                "jepa",
                format!("a non-finite loss or gradient at step {} (prediction {pred_loss}, regulariser {reg_loss}): lower the learning rate", self.steps),
            ));
        }
        self.adam(&grad);
        if let (Some(t), Target::Ema(tau)) = (&mut self.target, self.cfg.target) {
            for (tp, &p) in t.params_mut().iter_mut().zip(self.jepa.encoder.params()) {
                *tp = tau * *tp + (1.0 - tau) * p;
            }
        }
        Ok((pred_loss, reg_loss))
    }

    fn adam(&mut self, grad: &[f32]) {
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        self.steps += 1;
        let t = self.steps as i32;
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        let lr = self.cfg.lr;
        let ne = self.jepa.encoder.params().len();
        let (enc, pred) = (self.jepa.encoder.params_mut(), self.jepa.predictor.params_mut());
        for (i, g) in grad.iter().enumerate() {
            let p = if i < ne { &mut enc[i] } else { &mut pred[i - ne] };
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * g;
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * g * g;
            *p -= lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + eps);
        }
    }

    /// One pass over `train`'s windows in a fresh random order, then the
    /// diagnostics on `heldout` (at most `probe` frames each for the probe
    /// and the statistics). `progress` is called after every batch with
    /// (batches done, batches in all, prediction loss).
    pub fn epoch(
        &mut self,
        epoch: usize,
        train: &JepaData,
        heldout: &JepaData,
        probe: usize,
        mut progress: impl FnMut(usize, usize, f64),
    ) -> Result<JepaEpoch> {
        let mut order = train.starts.clone();
        order.shuffle(&mut self.rng);
        let batches = order.len() / self.cfg.batch;
        if batches == 0 {
            return Err(CoreError::config("batch", format!("{} windows, fewer than one batch of {}", order.len(), self.cfg.batch)));
        }
        let t0 = std::time::Instant::now();
        let (mut pl, mut rl) = (0.0, 0.0);
        for i in 0..batches {
            let (p, r) = self.step(train, &order[i * self.cfg.batch..(i + 1) * self.cfg.batch])?;
            pl += p;
            rl += r;
            progress(i + 1, batches, p);
        }
        let secs = t0.elapsed().as_secs_f64().max(1e-9);
        let frames = (batches * self.cfg.batch * (self.cfg.horizon + 1)) as f64;
        let diag = self.diagnose(train, heldout, probe)?;
        Ok(JepaEpoch { epoch, prediction: pl / batches as f64, regulariser: rl / batches as f64, frames_per_s: frames / secs, ..diag })
    }

    /// The held-out diagnostics (see [`JepaEpoch`]; the loss and speed
    /// fields are zero).
    pub fn diagnose(&self, train: &JepaData, heldout: &JepaData, probe: usize) -> Result<JepaEpoch> {
        let pick = |n: usize| -> Vec<usize> { (0..probe.min(n)).map(|i| i * n / probe.min(n).max(1)).collect() };
        let rows = |m: &Array2<f32>, idx: &[usize]| Array2::from_shape_fn((idx.len(), m.ncols()), |(i, c)| m[[idx[i], c]]);
        let (ti, hi) = (pick(train.frames.nrows()), pick(heldout.frames.nrows()));
        let zt = self.jepa.encode(rows(&train.frames, &ti).view())?;
        let zh = self.jepa.encode(rows(&heldout.frames, &hi).view())?;
        let stats = EmbeddingStats::of(zh.view())?;
        let probe_r2 = if train.diagnostics.ncols() > 0 {
            linear_probe(zt.view(), rows(&train.diagnostics, &ti).view(), zh.view(), rows(&heldout.diagnostics, &hi).view(), 1e-3)?
        } else {
            Vec::new()
        };
        // Held-out multi-step error, relative to the embeddings' variance.
        let ws: Vec<usize> = {
            let n = heldout.starts.len();
            (0..probe.min(n)).map(|i| heldout.starts[i * n / probe.min(n).max(1)]).collect()
        };
        let (frames, actions) = self.gather(heldout, &ws);
        let z = self.jepa.encode(frames.view())?;
        let b = ws.len();
        let mut s = z.slice_axis(Axis(0), ndarray::Slice::from(0..b)).to_owned();
        let mut err = 0.0;
        for (k, a) in actions.iter().enumerate() {
            s = self.jepa.predictor.forward(s.view(), a.view())?.0;
            let t = z.slice_axis(Axis(0), ndarray::Slice::from((k + 1) * b..(k + 2) * b));
            err += (&s - &t).iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
        }
        let var: f64 = stats.std.iter().map(|s| s * s).sum::<f64>() * (b * actions.len()) as f64;
        let heldout_error = if var > 0.0 { err / var } else { f64::INFINITY };
        let std_min = stats.std.iter().cloned().fold(f64::INFINITY, f64::min);
        let std_mean = stats.std.mean().unwrap_or(0.0);
        Ok(JepaEpoch {
            epoch: 0,
            prediction: 0.0,
            regulariser: 0.0,
            heldout_error,
            std_min,
            std_mean,
            effective_rank: stats.effective_rank,
            probe_r2,
            frames_per_s: 0.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_rel(num: f64, ana: f32) -> f64 {
        (num - f64::from(ana)).abs() / (1.0 + num.abs())
    }

    #[test]
    fn predictor_gradients_match_central_differences() {
        let p = Predictor::new(4, 2, &[8, 6], 1).unwrap();
        let mut rng = ami_core::rng::rng(2);
        let s = Array2::<f32>::from_shape_fn((3, 4), |_| rng.gen_range(-1.0..1.0));
        let a = Array2::<f32>::from_shape_fn((3, 2), |_| rng.gen_range(-1.0..1.0));
        let w = Array2::<f32>::from_shape_fn((3, 4), |_| rng.gen_range(-1.0..1.0));
        let loss = |p: &Predictor, s: &Array2<f32>| -> f64 { (&p.forward(s.view(), a.view()).unwrap().0 * &w).iter().map(|&v| f64::from(v)).sum() };
        let (_, cache) = p.forward(s.view(), a.view()).unwrap();
        let (gp, gs) = p.backward(&cache, w.view()).unwrap();
        let h = 1e-3;
        let mut worst = 0.0f64;
        for (k, &g) in gp.iter().enumerate() {
            let (mut up, mut dn) = (p.clone(), p.clone());
            up.params_mut()[k] += h;
            dn.params_mut()[k] -= h;
            worst = worst.max(max_rel((loss(&up, &s) - loss(&dn, &s)) / (2.0 * f64::from(h)), g));
        }
        for i in 0..3 {
            for j in 0..4 {
                let (mut up, mut dn) = (s.clone(), s.clone());
                up[[i, j]] += h;
                dn[[i, j]] -= h;
                worst = worst.max(max_rel((loss(&p, &up) - loss(&p, &dn)) / (2.0 * f64::from(h)), gs[[i, j]]));
            }
        }
        assert!(worst < 2e-3, "worst relative error {worst}");
        // The export plans what the predictor predicts.
        let ens = p.to_ensemble().unwrap();
        let mut next = Array2::<f32>::zeros((3, 4));
        ens.predict_member(0, s.view(), a.view(), next.view_mut(), None);
        let (mine, _) = p.forward(s.view(), a.view()).unwrap();
        assert!(next.iter().zip(mine.iter()).all(|(x, y)| (x - y).abs() < 1e-5), "{next} vs {mine}");
    }

    /// A whole training step's gradient (encoder and predictor, through
    /// time, with VICReg) against central differences of its loss.
    #[test]
    fn a_training_steps_gradient_matches_central_differences() {
        let spec = ConvSpec { in_channels: 1, size: 6, channels: vec![2], embed: 3 };
        let jepa = Jepa::new(spec, 2, &[5], 4).unwrap();
        let mut rng = ami_core::rng::rng(9);
        let traj = |rng: &mut ami_core::rng::AmiRng| Trajectory {
            observations: Array2::from_shape_fn((4, 36), |_| rng.gen_range(0.0..1.0)),
            actions: Array2::from_shape_fn((3, 2), |_| rng.gen_range(-1.0..1.0)),
            diagnostics: Array2::zeros((4, 0)),
        };
        let trajs: Vec<Trajectory> = (0..3).map(|_| traj(&mut rng)).collect();
        let cfg = JepaConfig {
            horizon: 2,
            batch: 4,
            lr: 1e-3,
            smoothness: 0.7,
            regulariser: Regulariser::VicReg(VicRegConfig { variance: 1.0, covariance: 0.5, gamma: 3.0, eps: 1e-4 }),
            ..JepaConfig::default()
        };
        let data = JepaData::new(&trajs, 2).unwrap();
        let starts = [0usize, 1, 4, 9];
        // Targets from a fixed copy of the encoder (an EMA target that has
        // not moved): the loss's gradient is then what the trainer computes.
        let cfg = JepaConfig { target: Target::Ema(0.5), lr: 1e-30, ..cfg };
        let loss_of = |j: &Jepa| -> f64 {
            let mut t = JepaTrainer::new(j.clone(), cfg.clone()).unwrap();
            t.target = Some(jepa.encoder.clone());
            let (p, r) = t.step(&data, &starts).unwrap();
            p + r
        };
        // The analytic gradient: one step of plain SGD recovered from Adam
        // is awkward, so take it from a trainer step with tiny lr and read
        // Adam's first moment: m = (1 - b1) g after one step.
        let mut t = JepaTrainer::new(jepa.clone(), cfg.clone()).unwrap();
        t.step(&data, &starts).unwrap();
        let g: Vec<f32> = t.m.iter().map(|m| m / 0.1).collect();
        let ne = jepa.encoder.params().len();
        let h = 1e-3f32;
        let mut worst = 0.0f64;
        for (k, &gk) in g.iter().enumerate() {
            let (mut up, mut dn) = (jepa.clone(), jepa.clone());
            if k < ne {
                up.encoder.params_mut()[k] += h;
                dn.encoder.params_mut()[k] -= h;
            } else {
                up.predictor.params_mut()[k - ne] += h;
                dn.predictor.params_mut()[k - ne] -= h;
            }
            worst = worst.max(max_rel((loss_of(&up) - loss_of(&dn)) / (2.0 * f64::from(h)), gk));
        }
        assert!(worst < 5e-3, "worst relative error {worst}");
    }

    #[test]
    fn the_file_round_trips_in_pytorchs_layout() {
        let spec = ConvSpec { in_channels: 2, size: 8, channels: vec![3, 4], embed: 5 };
        let jepa = Jepa::new(spec, 2, &[7], 3).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.safetensors");
        jepa.save(&path).unwrap();
        let back = Jepa::load(&path).unwrap();
        assert_eq!(back, jepa);
        let first = std::fs::read(&path).unwrap();
        for _ in 0..8 {
            jepa.save(&path).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), first, "the same weights give the same bytes");
        }
        // Damage is refused with the file's name.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() / 2);
        let err = Jepa::from_bytes(&bytes, &path).unwrap_err().to_string();
        assert!(err.contains("j.safetensors"), "{err}");
    }

    /// Trajectories of a dot moving in a `side x side` image (no walls):
    /// position `p' = clamp(p + 0.08 a)`, actions held 3 steps; the true
    /// position as the diagnostics.
    fn dots(n: usize, len: usize, side: usize, seed: u64) -> Vec<Trajectory> {
        let mut rng = ami_core::rng::rng(seed);
        let render = |x: f32, y: f32| -> Vec<f32> {
            (0..side * side)
                .map(|i| {
                    let (r, c) = ((i / side) as f32 + 0.5, (i % side) as f32 + 0.5);
                    let (dx, dy) = (c - x * side as f32, r - (1.0 - y) * side as f32);
                    (-(dx * dx + dy * dy) / 2.0).exp()
                })
                .collect()
        };
        (0..n)
            .map(|_| {
                let mut p = [rng.gen_range(0.1..0.9f32), rng.gen_range(0.1..0.9f32)];
                let mut obs = Vec::new();
                let mut pos = Vec::new();
                let mut act = Vec::new();
                let mut a = [0.0f32; 2];
                for t in 0..=len {
                    obs.extend(render(p[0], p[1]));
                    pos.extend(p);
                    if t == len {
                        break;
                    }
                    if t % 3 == 0 {
                        a = [rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0)];
                    }
                    act.extend(a);
                    p = [(p[0] + 0.08 * a[0]).clamp(0.05, 0.95), (p[1] + 0.08 * a[1]).clamp(0.05, 0.95)];
                }
                Trajectory {
                    observations: Array2::from_shape_vec((len + 1, side * side), obs).unwrap(),
                    actions: Array2::from_shape_vec((len, 2), act).unwrap(),
                    diagnostics: Array2::from_shape_vec((len + 1, 2), pos).unwrap(),
                }
            })
            .collect()
    }

    /// Trains on moving-dot images for a few seconds' worth of steps and
    /// returns the held-out diagnostics before and after.
    fn train_dots(regulariser: Regulariser) -> (JepaEpoch, JepaEpoch) {
        let trajs = dots(48, 20, 16, 1);
        let (train, held) = (JepaData::new(&trajs[..40], 2).unwrap(), JepaData::new(&trajs[40..], 2).unwrap());
        let spec = ConvSpec { in_channels: 1, size: 16, channels: vec![8, 8], embed: 4 };
        let cfg = JepaConfig { horizon: 2, batch: 32, lr: 2e-3, regulariser, smoothness: 1.0, threads: 2, ..JepaConfig::default() };
        let mut t = JepaTrainer::new(Jepa::new(spec, 2, &[32], 0).unwrap(), cfg).unwrap();
        let before = t.diagnose(&train, &held, 400).unwrap();
        for e in 0..8 {
            t.epoch(e + 1, &train, &held, 400, |_, _, _| {}).unwrap();
        }
        (before, t.diagnose(&train, &held, 400).unwrap())
    }

    /// A seconds-sized training run: with VICReg the held-out prediction
    /// error (relative to the embeddings' spread) falls and the embedding
    /// keeps the position (probe R^2 high, full rank); without an
    /// anti-collapse term the same run collapses: the spread vanishes and
    /// with it what a probe can read of the position.
    #[test]
    fn the_regulariser_keeps_training_from_collapsing() {
        let (before, kept) = train_dots(Regulariser::VicReg(VicRegConfig { variance: 1.0, covariance: 0.04, ..VicRegConfig::default() }));
        let (_, collapsed) = train_dots(Regulariser::None);
        assert!(kept.heldout_error < 0.3 * before.heldout_error, "the held-out error fell from {} to {} only", before.heldout_error, kept.heldout_error);
        assert!(kept.probe_r2.iter().all(|&r| r > 0.8), "{kept:?}");
        assert!(kept.std_min > 0.5 && kept.effective_rank > 3.0, "{kept:?}");
        assert!(collapsed.std_mean < 0.02 * kept.std_mean, "no collapse without the regulariser: {collapsed:?}");
        assert!(collapsed.probe_r2.iter().all(|&r| r < 0.5), "the collapsed embedding still shows the position: {collapsed:?}");
    }
}
