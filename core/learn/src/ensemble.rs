//! An ensemble of residual MLPs held as flat parameters, with the forward
//! and backward passes of one block of rows that training and prediction
//! share. Matrix products and element-wise steps are ami-kernels'
//! training kernels ([`ami_kernels::train`]): the `gemm` crate's packed
//! SIMD GEMM and vectorised loops dispatched to the CPU's SIMD width.

use ami_core::error::{CoreError, Result};
use ami_kernels::{Layer, ResidualMlp, ValueMlp};
use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, Slice};
use rand::Rng;

use ami_kernels::train::{self as kt, Act, LogvarBounds, Mat};
use ami_kernels::Isa;

use crate::norm::Normalizer;
use crate::spec::{Activation, EnsembleSpec};

/// An ensemble of `members` residual MLPs (see [`EnsembleSpec`]) and the
/// normalisation they were trained under. Member `k`'s parameters are the
/// `k`-th block of [`Ensemble::params`]: layer by layer, the weights
/// `[out, in]` row-major (PyTorch `Linear` layout), then the bias.
#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    spec: EnsembleSpec,
    params: Vec<f32>,
    norm: Normalizer,
}

impl Ensemble {
    /// Fresh members initialised as PyTorch initialises `Linear` layers
    /// (weights and biases uniform in `±1/sqrt(in)`), from `seed`, with the
    /// identity normalisation.
    pub fn new(spec: EnsembleSpec, seed: u64) -> Result<Self> {
        spec.validate()?;
        let mut rng = ami_core::rng::rng(seed);
        let dims = spec.dims();
        let mut params = Vec::with_capacity(spec.members * spec.member_params());
        for _ in 0..spec.members {
            for w in dims.windows(2) {
                let bound = 1.0 / (w[0] as f32).sqrt();
                for _ in 0..w[0] * w[1] + w[1] {
                    params.push(rng.gen_range(-bound..bound));
                }
            }
        }
        let norm = Normalizer::identity(spec.input_dim(), spec.state_dim);
        Ok(Self { spec, params, norm })
    }

    /// An ensemble from its parameters (layout of [`Ensemble::params`]).
    pub fn from_params(spec: EnsembleSpec, params: Vec<f32>, norm: Normalizer) -> Result<Self> {
        spec.validate()?;
        let want = spec.members * spec.member_params();
        if params.len() != want {
            return Err(CoreError::shape("Ensemble::from_params(params)", format!("{want} floats"), format!("{}", params.len())));
        }
        if norm.input_mean.len() != spec.input_dim() || norm.input_std.len() != spec.input_dim() {
            return Err(CoreError::shape("Ensemble::from_params(norm inputs)", format!("{} columns", spec.input_dim()), format!("{}", norm.input_mean.len())));
        }
        if norm.target_mean.len() != spec.state_dim || norm.target_std.len() != spec.state_dim {
            return Err(CoreError::shape("Ensemble::from_params(norm targets)", format!("{} columns", spec.state_dim), format!("{}", norm.target_mean.len())));
        }
        Ok(Self { spec, params, norm })
    }

    /// The shape.
    pub fn spec(&self) -> &EnsembleSpec {
        &self.spec
    }
    /// All members' parameters.
    pub fn params(&self) -> &[f32] {
        &self.params
    }
    pub(crate) fn params_mut(&mut self) -> &mut Vec<f32> {
        &mut self.params
    }
    /// Member `k`'s parameters.
    pub fn member(&self, k: usize) -> &[f32] {
        let n = self.spec.member_params();
        &self.params[k * n..(k + 1) * n]
    }
    /// The normalisation.
    pub fn norm(&self) -> &Normalizer {
        &self.norm
    }
    /// Replaces the normalisation (the weights are kept).
    pub fn set_norm(&mut self, norm: Normalizer) {
        self.norm = norm;
    }
    /// Layer `l` of member `k`: weights `[out, in]` and bias `[out]`.
    pub fn layer(&self, k: usize, l: usize) -> (ArrayView2<'_, f32>, ArrayView1<'_, f32>) {
        layer_views(&self.spec, self.member(k), l)
    }
    /// Whether every parameter and statistic is finite.
    pub fn is_finite(&self) -> bool {
        self.params.iter().all(|v| v.is_finite()) && self.norm.is_finite()
    }

    /// Predicts with member `k` in state units: `next = s + delta` and,
    /// for a probabilistic model, `logvar` (bounded, normalised target
    /// units). Rows of `states` `[n, S]` and `actions` `[n, A]`.
    pub fn predict_member(
        &self,
        k: usize,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        mut next: ArrayViewMut2<'_, f32>,
        logvar: Option<ArrayViewMut2<'_, f32>>,
    ) {
        let (s_dim, a_dim) = (self.spec.state_dim, self.spec.action_dim);
        let n = states.nrows();
        let mut x = Array2::<f32>::zeros((n, s_dim + a_dim));
        x.slice_axis_mut(Axis(1), Slice::from(..s_dim)).assign(&states);
        x.slice_axis_mut(Axis(1), Slice::from(s_dim..)).assign(&actions);
        self.norm.normalize_inputs(&mut x.view_mut());
        let mut acts = Acts::default();
        forward(Isa::detect(), &self.spec, self.member(k), None, x.view(), &mut acts);
        let out = acts.output();
        for (b, mut row) in next.rows_mut().into_iter().enumerate() {
            for j in 0..s_dim {
                row[j] = states[[b, j]] + out[[b, j]] * self.norm.target_std[j] + self.norm.target_mean[j];
            }
        }
        if let Some(mut lv) = logvar {
            if self.spec.probabilistic {
                for b in 0..n {
                    for j in 0..s_dim {
                        lv[[b, j]] = bounded_logvar(&self.spec, out[[b, s_dim + j]]).0;
                    }
                }
            } else {
                lv.fill(0.0);
            }
        }
    }

    /// Member `k` as the kernels' [`ResidualMlp`] (the normalisation folded
    /// into the first and last layers, the mean head only), so it plans on
    /// the fused SIMD path; `None` unless the activation is ReLU.
    pub fn to_residual_mlp(&self, k: usize) -> Option<ResidualMlp> {
        ResidualMlp::new(self.spec.state_dim, self.spec.action_dim, self.folded_layers(k)?).ok()
    }

    /// Member `k` of a one-output network (a critic: `state_dim` 1, all its
    /// inputs a state) as the kernels' [`ValueMlp`], the normalisation
    /// folded in, so planners evaluate it inside their fused rollouts;
    /// `None` unless the activation is ReLU and there is one output.
    pub fn to_value_mlp(&self, k: usize) -> Option<ValueMlp> {
        if self.spec.state_dim != 1 {
            return None;
        }
        ValueMlp::new(self.spec.input_dim(), self.folded_layers(k)?).ok()
    }

    /// Member `k`'s layers with the input normalisation folded into the
    /// first and the target normalisation into the last (mean head only);
    /// `None` unless the activation is ReLU (the kernels' activation).
    fn folded_layers(&self, k: usize) -> Option<Vec<Layer>> {
        if self.spec.activation != Activation::Relu {
            return None;
        }
        let (s_dim, nl) = (self.spec.state_dim, self.spec.layers());
        let mut layers = Vec::with_capacity(nl);
        for l in 0..nl {
            let (w, b) = self.layer(k, l);
            let (mut w, mut b) = (w.to_owned(), b.to_owned());
            if l == 0 {
                // W (x - mu) / sd + b = (W / sd) x + (b - W (mu / sd)).
                for o in 0..w.nrows() {
                    let mut shift = 0.0f64;
                    for i in 0..w.ncols() {
                        let sd = self.norm.input_std[i];
                        shift += f64::from(w[[o, i]]) * f64::from(self.norm.input_mean[i] / sd);
                        w[[o, i]] /= sd;
                    }
                    b[o] -= shift as f32;
                }
            }
            if l + 1 == nl {
                // out = (W h + b)[:S] * sd_t + mu_t.
                let mut w2 = w.slice_axis(Axis(0), Slice::from(..s_dim)).to_owned();
                let mut b2 = b.slice_axis(Axis(0), Slice::from(..s_dim)).to_owned();
                for j in 0..s_dim {
                    let sd = self.norm.target_std[j];
                    w2.row_mut(j).mapv_inplace(|v| v * sd);
                    b2[j] = b2[j] * sd + self.norm.target_mean[j];
                }
                w = w2;
                b = b2;
            }
            let (out, inp) = w.dim();
            layers.push(Layer::new(out, inp, w.into_iter().collect(), b.to_vec()).ok()?);
        }
        Some(layers)
    }
}

/// Member `k`'s raw outputs (normalised units) for normalised inputs.
pub(crate) fn forward_normalized(ens: &Ensemble, k: usize, x: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut acts = Acts::default();
    forward(Isa::detect(), ens.spec(), ens.member(k), None, x, &mut acts);
    acts.output().clone()
}

/// Layer `l`'s weights `[out, in]` and bias of one member's parameters.
pub(crate) fn layer_views<'a>(spec: &EnsembleSpec, p: &'a [f32], l: usize) -> (ArrayView2<'a, f32>, ArrayView1<'a, f32>) {
    let dims = spec.dims();
    let (inp, out) = (dims[l], dims[l + 1]);
    let (wo, bo) = spec.offsets()[l];
    let w = ArrayView2::from_shape((out, inp), &p[wo..wo + out * inp]).expect("layout of EnsembleSpec::offsets");
    let b = ArrayView1::from(&p[bo..bo + out]);
    (w, b)
}

/// The soft-bounded log-variance of a raw output and its derivative:
/// `lv1 = max - softplus(max - raw)`, `lv = min + softplus(lv1 - min)`.
pub(crate) fn bounded_logvar(spec: &EnsembleSpec, raw: f32) -> (f32, f32) {
    logvar_bounds(spec).apply(raw)
}

fn logvar_bounds(spec: &EnsembleSpec) -> LogvarBounds {
    LogvarBounds { min: spec.min_logvar, max: spec.max_logvar }
}

fn act_of(a: Activation) -> Act {
    match a {
        Activation::Relu => Act::Relu,
        Activation::Silu => Act::Silu,
    }
}

/// Activations of one block of rows kept for the backward pass: `h[l]` is
/// layer `l`'s input (`h[0]` the block's inputs), `z[l]` its output before
/// the activation (the last one is the member's output).
#[derive(Debug, Default, Clone)]
pub(crate) struct Acts {
    pub h: Vec<Array2<f32>>,
    pub z: Vec<Array2<f32>>,
    /// SiLU: the sigmoid of each hidden layer's pre-activation.
    pub sig: Vec<Array2<f32>>,
}

impl Acts {
    pub(crate) fn output(&self) -> &Array2<f32> {
        self.z.last().expect("a forward pass ran")
    }
    fn ensure(&mut self, dims: &[usize], n: usize) {
        let nl = dims.len() - 1;
        if self.h.len() != nl || self.h[0].nrows() != n || (0..nl).any(|l| self.h[l].ncols() != dims[l] || self.z[l].ncols() != dims[l + 1]) {
            self.h = (0..nl).map(|l| Array2::zeros((n, dims[l]))).collect();
            self.z = (0..nl).map(|l| Array2::zeros((n, dims[l + 1]))).collect();
            self.sig = (0..nl).map(|l| Array2::zeros((n, dims[l + 1]))).collect();
        }
    }
}

/// Writes one member's weights transposed into `wt` (same offsets as `p`:
/// layer `l`'s `[in, out]` where `p` holds its `[out, in]`; the biases are
/// left alone), the layout [`forward`] multiplies fastest.
pub(crate) fn transpose_weights(isa: Isa, spec: &EnsembleSpec, p: &[f32], wt: &mut [f32]) {
    let dims = spec.dims();
    for (l, &(wo, _)) in spec.offsets().iter().enumerate() {
        let (inp, out) = (dims[l], dims[l + 1]);
        kt::transpose(isa, &p[wo..wo + out * inp], out, inp, &mut wt[wo..wo + out * inp]).expect("layout of EnsembleSpec::offsets");
    }
}

/// Forward pass of one member (parameters `p`) over the rows of `x`
/// (normalised inputs), keeping every layer's input and pre-activation.
/// `wt`, if given, holds the same weights transposed
/// ([`transpose_weights`]), so every product runs on the kernels'
/// register-blocked path.
pub(crate) fn forward(isa: Isa, spec: &EnsembleSpec, p: &[f32], wt: Option<&[f32]>, x: ArrayView2<'_, f32>, acts: &mut Acts) {
    let dims = spec.dims();
    let nl = dims.len() - 1;
    acts.ensure(&dims, x.nrows());
    acts.h[0].assign(&x);
    let act = act_of(spec.activation);
    let offsets = spec.offsets();
    for l in 0..nl {
        let (inp, cols) = (dims[l], dims[l + 1]);
        let (wo, bo) = offsets[l];
        let (w, b) = (&p[wo..wo + cols * inp], &p[bo..bo + cols]);
        let n = acts.h[l].nrows();
        let wm = match wt {
            Some(t) => Mat::rows(&t[wo..wo + cols * inp], inp, cols),
            None => Mat::rows(w, cols, inp).t(),
        };
        kt::matmul(isa, Mat::rows(acts.h[l].as_slice().expect("standard layout"), n, inp), wm, 0.0, acts.z[l].as_slice_mut().expect("standard layout"))
            .expect("shapes of EnsembleSpec::dims");
        if l + 1 < nl {
            let z = acts.z[l].as_slice_mut().expect("standard layout");
            let h = acts.h[l + 1].as_slice_mut().expect("standard layout");
            match act {
                Act::Silu => kt::bias_silu_keep(isa, z, cols, b, h, acts.sig[l].as_slice_mut().expect("standard layout")),
                _ => kt::bias_act(isa, z, cols, b, act, h),
            }
        } else {
            let z = acts.z[l].as_slice_mut().expect("standard layout");
            for zr in z.chunks_exact_mut(cols) {
                for (v, bi) in zr.iter_mut().zip(b) {
                    *v += bi;
                }
            }
        }
    }
}

/// Backward pass of one member: from `g` = dL/d output (`[n, out]`,
/// overwritten as scratch), writes dL/d parameters into `grad` (one
/// member's worth, overwritten). `tmp` is scratch.
pub(crate) fn backward(isa: Isa, spec: &EnsembleSpec, p: &[f32], acts: &Acts, g: &mut Array2<f32>, tmp: &mut Array2<f32>, grad: &mut [f32]) {
    let dims = spec.dims();
    let nl = dims.len() - 1;
    let offsets = spec.offsets();
    for l in (0..nl).rev() {
        let (inp, out) = (dims[l], dims[l + 1]);
        let (wo, bo) = offsets[l];
        {
            let (gw, gb) = grad[wo..bo + out].split_at_mut(out * inp);
            let n = g.nrows();
            let gs = g.as_slice().expect("standard layout");
            kt::matmul(isa, Mat::rows(gs, n, out).t(), Mat::rows(acts.h[l].as_slice().expect("standard layout"), n, inp), 0.0, gw)
                .expect("shapes of EnsembleSpec::dims");
            kt::col_sums(isa, gs, out, gb);
        }
        if l == 0 {
            break;
        }
        back_through_layer(isa, spec, &p[wo..wo + out * inp], (inp, out), acts, l, g, tmp);
        std::mem::swap(g, tmp);
    }
}

/// `tmp = g W` for layer `l`'s weights `w` (`[out, in]`; the gradient at
/// the layer's input, `[n, in]`) and, for `l > 0`, through the activation
/// of layer `l - 1`'s output: one step of the backward pass shared by
/// [`backward`] and [`input_gradient`].
#[allow(clippy::too_many_arguments)] // one step's inputs and outputs
fn back_through_layer(isa: Isa, spec: &EnsembleSpec, w: &[f32], (inp, out): (usize, usize), acts: &Acts, l: usize, g: &Array2<f32>, tmp: &mut Array2<f32>) {
    let n = g.nrows();
    if tmp.dim() != (n, inp) {
        *tmp = Array2::zeros((n, inp));
    }
    kt::matmul(isa, Mat::rows(g.as_slice().expect("standard layout"), n, out), Mat::rows(w, out, inp), 0.0, tmp.as_slice_mut().expect("standard layout"))
        .expect("shapes of EnsembleSpec::dims");
    if l > 0 {
        let (t, z) = (tmp.as_slice_mut().expect("standard layout"), acts.z[l - 1].as_slice().expect("standard layout"));
        match act_of(spec.activation) {
            Act::Silu => kt::silu_backward_kept(isa, t, z, acts.sig[l - 1].as_slice().expect("standard layout")),
            act => kt::act_backward(isa, t, z, act),
        }
    }
}

/// The gradient with respect to the (normalised) inputs of one member's
/// outputs weighted by `g` (`[n, out]`, overwritten as scratch): `g J`,
/// `[n, in]`, after a [`forward`] that filled `acts`.
pub(crate) fn input_gradient(isa: Isa, spec: &EnsembleSpec, p: &[f32], acts: &Acts, g: &mut Array2<f32>) -> Array2<f32> {
    let (dims, offsets) = (spec.dims(), spec.offsets());
    let mut tmp = Array2::zeros((0, 0));
    for l in (0..dims.len() - 1).rev() {
        let (inp, out, wo) = (dims[l], dims[l + 1], offsets[l].0);
        back_through_layer(isa, spec, &p[wo..wo + out * inp], (inp, out), acts, l, g, &mut tmp);
        if l > 0 {
            std::mem::swap(g, &mut tmp);
        }
    }
    tmp
}

/// Rows `[n, S]` of the loss at the output of one block: writes dL/d output
/// (scaled by `scale`, e.g. `1 / (K B S)` for a mean) into `g` and returns
/// the block's unscaled loss sum. Deterministic: squared error; else the
/// Gaussian NLL without constants, `(mean - y)^2 e^-lv + lv`.
pub(crate) fn loss_grad(isa: Isa, spec: &EnsembleSpec, out: &Array2<f32>, y: ArrayView2<'_, f32>, scale: f32, g: &mut Array2<f32>) -> f64 {
    if g.dim() != out.dim() {
        *g = Array2::zeros(out.dim());
    }
    let y = y.as_standard_layout();
    let bounds = spec.probabilistic.then(|| logvar_bounds(spec));
    kt::nll(
        isa,
        out.as_slice().expect("standard layout"),
        y.as_slice().expect("standard layout"),
        spec.state_dim,
        scale,
        bounds,
        g.as_slice_mut().expect("standard layout"),
    )
}
