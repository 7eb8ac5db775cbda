//! The residual MLP world model the fused kernels run, the quadratic
//! energy they evaluate inside the rollout, and the MLP value of the final
//! state (a learned critic) they can add to it.
//!
//! The model is `s' = s + L_{n-1}(relu(... relu(L_0([s, a]))))` with dense
//! layers `L_l(x) = W_l x + b_l`, `W_l` in PyTorch `Linear` layout
//! (`[out, in]`, row-major). The energy of one step is
//! `sum_i q_i (s'_i - g_i)^2 + sum_j r_j a_j^2`.

use std::sync::Arc;

use crate::KernelError;

/// Rows per packed weight panel (the microkernels' register block).
pub(crate) const PANEL: usize = 8;

/// One dense layer `y = W x + b`, `W` is `[out, inp]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Output width.
    pub out: usize,
    /// Input width.
    pub inp: usize,
    /// Weights, `out * inp` floats, row-major `[out, inp]`.
    pub w: Vec<f32>,
    /// Bias, `out` floats.
    pub b: Vec<f32>,
}

impl Layer {
    /// A layer from its weights (`[out, inp]` row-major) and bias.
    pub fn new(out: usize, inp: usize, w: Vec<f32>, b: Vec<f32>) -> Result<Self, KernelError> {
        if w.len() != out * inp {
            return Err(KernelError::Shape(format!("layer weights: expected {out}x{inp} = {} floats, found {}", out * inp, w.len())));
        }
        if b.len() != out {
            return Err(KernelError::Shape(format!("layer bias: expected {out} floats, found {}", b.len())));
        }
        if out == 0 || inp == 0 {
            return Err(KernelError::Shape(format!("layer of shape [{out}, {inp}]: widths must be at least 1")));
        }
        Ok(Self { out, inp, w, b })
    }
}

/// One dense layer with its weights packed for the microkernels (see
/// [`Cpu::dense`](crate::Cpu::dense)).
#[derive(Debug, Clone)]
pub struct PackedDense {
    layer: Layer,
    pub(crate) panels: Vec<f32>,
    pub(crate) bias: Vec<f32>,
}

impl PackedDense {
    /// Packs a layer.
    pub fn new(layer: Layer) -> Self {
        let panels = pack(&layer.w, layer.out, layer.inp);
        let mut bias = layer.b.clone();
        bias.resize(layer.out.div_ceil(PANEL) * PANEL, 0.0);
        Self { layer, panels, bias }
    }
    /// The layer.
    pub fn layer(&self) -> &Layer {
        &self.layer
    }
}

/// A residual MLP world model with its weights packed for the SIMD
/// microkernels: forward panels (`W` rows in blocks of 8, `[in][8]` per
/// block) and backward panels (the same for `W^T`).
#[derive(Debug, Clone)]
pub struct ResidualMlp {
    state_dim: usize,
    action_dim: usize,
    layers: Vec<Layer>,
    pub(crate) fwd: Vec<Vec<f32>>,
    pub(crate) fwd_bias: Vec<Vec<f32>>,
    pub(crate) bwd: Vec<Vec<f32>>,
    /// Offset (in rows) of each hidden layer's activations in the stacked
    /// hidden buffer, and the total.
    pub(crate) hid_off: Vec<usize>,
    pub(crate) hid_total: usize,
    pub(crate) max_width: usize,
}

/// Packs `rows x cols` row-major `m` into panels of [`PANEL`] rows:
/// panel `p` is `[cols][PANEL]` with `panel[k][r] = m[p*PANEL + r][k]`
/// (zero for rows past the end).
fn pack(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let np = rows.div_ceil(PANEL);
    let mut out = vec![0.0; np * cols * PANEL];
    for p in 0..np {
        for k in 0..cols {
            for r in 0..PANEL {
                let row = p * PANEL + r;
                if row < rows {
                    out[(p * cols + k) * PANEL + r] = m[row * cols + k];
                }
            }
        }
    }
    out
}

fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

impl ResidualMlp {
    /// Builds the model. The layers must chain: layer 0 takes
    /// `state_dim + action_dim` inputs, each layer takes the previous one's
    /// output, and the last one outputs `state_dim`.
    pub fn new(state_dim: usize, action_dim: usize, layers: Vec<Layer>) -> Result<Self, KernelError> {
        if state_dim == 0 || action_dim == 0 {
            return Err(KernelError::Shape(format!("state_dim {state_dim} and action_dim {action_dim} must be at least 1")));
        }
        if layers.is_empty() {
            return Err(KernelError::Shape("a residual MLP needs at least one layer".into()));
        }
        let mut inp = state_dim + action_dim;
        for (l, layer) in layers.iter().enumerate() {
            if layer.inp != inp {
                return Err(KernelError::Shape(format!("layer {l}: expected {inp} inputs, found {}", layer.inp)));
            }
            if layer.out == 0 || layer.w.len() != layer.out * layer.inp || layer.b.len() != layer.out {
                return Err(KernelError::Shape(format!(
                    "layer {l}: [{}, {}] needs {} weights and {} biases, found {} and {}",
                    layer.out,
                    layer.inp,
                    layer.out * layer.inp,
                    layer.out,
                    layer.w.len(),
                    layer.b.len()
                )));
            }
            inp = layer.out;
        }
        if inp != state_dim {
            return Err(KernelError::Shape(format!("last layer: expected {state_dim} outputs (the state width), found {inp}")));
        }
        let fwd = layers.iter().map(|l| pack(&l.w, l.out, l.inp)).collect();
        let fwd_bias = layers
            .iter()
            .map(|l| {
                let mut b = l.b.clone();
                b.resize(l.out.div_ceil(PANEL) * PANEL, 0.0);
                b
            })
            .collect();
        let bwd = layers.iter().map(|l| pack(&transpose(&l.w, l.out, l.inp), l.inp, l.out)).collect();
        let mut hid_off = Vec::new();
        let mut hid_total = 0;
        for l in &layers[..layers.len() - 1] {
            hid_off.push(hid_total);
            hid_total += l.out;
        }
        let max_width = layers.iter().map(|l| l.out.max(l.inp)).max().unwrap_or(0);
        Ok(Self { state_dim, action_dim, layers, fwd, fwd_bias, bwd, hid_off, hid_total, max_width })
    }
    /// Width of a state.
    pub fn state_dim(&self) -> usize {
        self.state_dim
    }
    /// Width of an action.
    pub fn action_dim(&self) -> usize {
        self.action_dim
    }
    /// The layers.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }
    /// Forward FLOPs of one sample-step, `2 * sum_l out_l * in_l`
    /// (WORKLOAD.md's count).
    pub fn flops_per_step(&self) -> f64 {
        self.layers.iter().map(|l| 2.0 * (l.out * l.inp) as f64).sum()
    }
    /// One step of one sample in f64 (a reference for tests and checks):
    /// returns `s'`.
    pub fn step_f64(&self, s: &[f64], a: &[f64]) -> Vec<f64> {
        let mut x: Vec<f64> = s.iter().chain(a).copied().collect();
        let n = self.layers.len();
        for (l, layer) in self.layers.iter().enumerate() {
            let mut y = vec![0.0; layer.out];
            for (o, yo) in y.iter_mut().enumerate() {
                let row = &layer.w[o * layer.inp..(o + 1) * layer.inp];
                let v: f64 = row.iter().zip(&x).map(|(&w, &xi)| f64::from(w) * xi).sum::<f64>() + f64::from(layer.b[o]);
                *yo = if l + 1 < n { v.max(0.0) } else { v };
            }
            x = y;
        }
        s.iter().zip(&x).map(|(a, b)| a + b).collect()
    }
}

/// An MLP value of a state, `V(s) = L_{n-1}(relu(... relu(L_0(s))))` with
/// one output: a learned critic with its normalisation folded into the
/// first and last layers, which the fused kernels evaluate at the final
/// state of every rollout (and differentiate, for gradient planning).
#[derive(Debug, Clone, PartialEq)]
pub struct ValueMlp {
    state_dim: usize,
    layers: Vec<Layer>,
    pub(crate) fwd: Vec<Vec<f32>>,
    pub(crate) fwd_bias: Vec<Vec<f32>>,
    /// The transposed layers (zero bias), for the backward pass.
    pub(crate) bwd_layers: Vec<Layer>,
    pub(crate) bwd: Vec<Vec<f32>>,
    pub(crate) bwd_bias: Vec<Vec<f32>>,
    /// Offset (in rows) of each hidden layer's activations, and the total.
    pub(crate) hid_off: Vec<usize>,
    pub(crate) hid_total: usize,
    pub(crate) max_width: usize,
}

fn padded(b: &[f32]) -> Vec<f32> {
    let mut b = b.to_vec();
    b.resize(b.len().div_ceil(PANEL) * PANEL, 0.0);
    b
}

impl ValueMlp {
    /// Builds the value. The layers must chain from `state_dim` inputs to
    /// one output.
    pub fn new(state_dim: usize, layers: Vec<Layer>) -> Result<Self, KernelError> {
        if state_dim == 0 || layers.is_empty() {
            return Err(KernelError::Shape(format!("a value MLP needs a state at least 1 wide and a layer (found {state_dim} and {})", layers.len())));
        }
        let mut inp = state_dim;
        for (l, layer) in layers.iter().enumerate() {
            if layer.inp != inp || layer.w.len() != layer.out * layer.inp || layer.b.len() != layer.out || layer.out == 0 {
                return Err(KernelError::Shape(format!(
                    "value layer {l}: expected [out, {inp}] with out * {inp} weights, found [{}, {}]",
                    layer.out, layer.inp
                )));
            }
            inp = layer.out;
        }
        if inp != 1 {
            return Err(KernelError::Shape(format!("value: the last layer must have one output, found {inp}")));
        }
        let fwd = layers.iter().map(|l| pack(&l.w, l.out, l.inp)).collect();
        let fwd_bias = layers.iter().map(|l| padded(&l.b)).collect();
        let bwd_layers: Vec<Layer> = layers.iter().map(|l| Layer { out: l.inp, inp: l.out, w: transpose(&l.w, l.out, l.inp), b: vec![0.0; l.inp] }).collect();
        let bwd = bwd_layers.iter().map(|l| pack(&l.w, l.out, l.inp)).collect();
        let bwd_bias = bwd_layers.iter().map(|l| padded(&l.b)).collect();
        let mut hid_off = Vec::new();
        let mut hid_total = 0;
        for l in &layers[..layers.len() - 1] {
            hid_off.push(hid_total);
            hid_total += l.out;
        }
        let max_width = layers.iter().map(|l| l.out.max(l.inp)).max().unwrap_or(1).div_ceil(PANEL) * PANEL;
        Ok(Self { state_dim, layers, fwd, fwd_bias, bwd_layers, bwd, bwd_bias, hid_off, hid_total, max_width })
    }
    /// Width of a state.
    pub fn state_dim(&self) -> usize {
        self.state_dim
    }
    /// The layers.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }
    /// `V(s)` in f64 (a reference for tests).
    pub fn value_f64(&self, s: &[f64]) -> f64 {
        let mut x = s.to_vec();
        let n = self.layers.len();
        for (l, layer) in self.layers.iter().enumerate() {
            x = (0..layer.out)
                .map(|o| {
                    let row = &layer.w[o * layer.inp..(o + 1) * layer.inp];
                    let v = row.iter().zip(&x).map(|(&w, &xi)| f64::from(w) * xi).sum::<f64>() + f64::from(layer.b[o]);
                    if l + 1 < n {
                        v.max(0.0)
                    } else {
                        v
                    }
                })
                .collect();
        }
        x[0]
    }
}

/// A weighted value of the final state added to a rollout's energy (the
/// planners' terminal cost).
#[derive(Debug, Clone, PartialEq)]
pub struct Terminal {
    /// The value.
    pub value: Arc<ValueMlp>,
    /// Its weight.
    pub weight: f32,
}

/// The energy of a rollout: per step `sum_i q_i (s'_i - g_i)^2 + sum_j r_j
/// a_j^2`, plus, with a terminal value, `weight * V(s_T)`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuadEnergy {
    /// Weights on `s' - goal` (length `state_dim`).
    pub q: Vec<f32>,
    /// Weights on the action (length `action_dim`).
    pub r: Vec<f32>,
    /// The goal (length `state_dim`).
    pub goal: Vec<f32>,
    /// The terminal value, if any.
    pub terminal: Option<Terminal>,
}

impl QuadEnergy {
    /// The quadratic energy with no terminal value.
    pub fn new(q: Vec<f32>, r: Vec<f32>, goal: Vec<f32>) -> Self {
        Self { q, r, goal, terminal: None }
    }
    /// Checks the widths against a model.
    pub fn check(&self, m: &ResidualMlp) -> Result<(), KernelError> {
        if let Some(t) = &self.terminal {
            if t.value.state_dim() != m.state_dim() || !t.weight.is_finite() {
                return Err(KernelError::Shape(format!(
                    "terminal value: reads states {} wide with weight {}; the model's states are {} wide (and the weight must be finite)",
                    t.value.state_dim(),
                    t.weight,
                    m.state_dim()
                )));
            }
        }
        if self.q.len() != m.state_dim() || self.goal.len() != m.state_dim() || self.r.len() != m.action_dim() {
            return Err(KernelError::Shape(format!(
                "quadratic energy: q {}, goal {}, r {} floats; the model needs {} / {} / {}",
                self.q.len(),
                self.goal.len(),
                self.r.len(),
                m.state_dim(),
                m.state_dim(),
                m.action_dim()
            )));
        }
        Ok(())
    }

    /// Energy of one sequence (`[T][A]` row-major) from `s0`, in f64.
    pub fn sequence_energy_f64(&self, m: &ResidualMlp, s0: &[f32], actions: &[f32]) -> f64 {
        let a_dim = m.action_dim();
        let mut s: Vec<f64> = s0.iter().map(|&v| f64::from(v)).collect();
        let mut e = 0.0;
        for a in actions.chunks(a_dim) {
            let a: Vec<f64> = a.iter().map(|&v| f64::from(v)).collect();
            s = m.step_f64(&s, &a);
            for ((si, &g), &q) in s.iter().zip(&self.goal).zip(&self.q) {
                let d = si - f64::from(g);
                e += f64::from(q) * d * d;
            }
            for (j, aj) in a.iter().enumerate() {
                e += f64::from(self.r[j]) * aj * aj;
            }
        }
        if let Some(t) = &self.terminal {
            e += f64::from(t.weight) * t.value.value_f64(&s);
        }
        e
    }
}
