//! What a trainable MLP ensemble is: widths, activation, head, members.

use ami_core::error::{CoreError, Result};

/// The hidden layers' activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// `max(x, 0)`: the activation of ami's fused SIMD kernels, so a
    /// trained single model plans on the fast path.
    #[default]
    Relu,
    /// `x * sigmoid(x)` (swish), PETS' and the training yardstick's choice.
    Silu,
}

impl Activation {
    /// The name in agent files and safetensors metadata.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Silu => "silu",
        }
    }
    /// Parses a name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "relu" => Ok(Activation::Relu),
            "silu" | "swish" => Ok(Activation::Silu),
            other => Err(CoreError::config("activation", format!("`{other}` is not an activation (relu or silu)"))),
        }
    }
}

/// The most parameters an ensemble may have (all members): 2^28 floats,
/// 1 GiB, 3 GiB with Adam's moments.
pub const MAX_PARAMS: usize = 1 << 28;

/// The shape of an ensemble of residual MLPs `s' = s + f_k(s, a)`: each
/// member maps the normalised `[s, a]` through `hidden` layers to the
/// normalised state change (deterministic) or to its mean and raw
/// log-variance (probabilistic, `2 * state_dim` outputs).
#[derive(Debug, Clone, PartialEq)]
pub struct EnsembleSpec {
    /// Width of a state.
    pub state_dim: usize,
    /// Width of an action.
    pub action_dim: usize,
    /// Widths of the hidden layers (at least one).
    pub hidden: Vec<usize>,
    /// Activation of the hidden layers.
    pub activation: Activation,
    /// Number of members (1: a single model).
    pub members: usize,
    /// Whether members predict a log-variance too (Gaussian NLL).
    pub probabilistic: bool,
    /// Lower soft bound of the log-variance (normalised target units).
    pub min_logvar: f32,
    /// Upper soft bound of the log-variance.
    pub max_logvar: f32,
}

impl EnsembleSpec {
    /// A deterministic single model with ReLU hidden layers.
    pub fn new(state_dim: usize, action_dim: usize, hidden: Vec<usize>) -> Self {
        Self { state_dim, action_dim, hidden, activation: Activation::Relu, members: 1, probabilistic: false, min_logvar: -10.0, max_logvar: 0.5 }
    }
    /// Input width `state_dim + action_dim`.
    pub fn input_dim(&self) -> usize {
        self.state_dim + self.action_dim
    }
    /// Output width of a member: `state_dim`, or twice it when probabilistic.
    pub fn output_dim(&self) -> usize {
        if self.probabilistic {
            2 * self.state_dim
        } else {
            self.state_dim
        }
    }
    /// Layer widths from input to output.
    pub fn dims(&self) -> Vec<usize> {
        let mut d = vec![self.input_dim()];
        d.extend(&self.hidden);
        d.push(self.output_dim());
        d
    }
    /// Number of dense layers.
    pub fn layers(&self) -> usize {
        self.hidden.len() + 1
    }
    /// Floats of one member's parameters.
    pub fn member_params(&self) -> usize {
        self.dims().windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }
    /// Offsets of layer `l`'s weights `[out, in]` and bias `[out]` inside a
    /// member's parameters.
    pub fn offsets(&self) -> Vec<(usize, usize)> {
        let mut off = 0;
        self.dims()
            .windows(2)
            .map(|w| {
                let wo = off;
                off += w[0] * w[1];
                let bo = off;
                off += w[1];
                (wo, bo)
            })
            .collect()
    }
    /// Forward FLOPs of one sample through one member, `2 * sum in * out`.
    pub fn flops_per_sample(&self) -> f64 {
        self.dims().windows(2).map(|w| 2.0 * (w[0] * w[1]) as f64).sum()
    }
    /// Checks the widths and bounds; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if self.state_dim == 0 || self.action_dim == 0 {
            return Err(CoreError::config("state_dim", format!("state {} and action {} widths must be at least 1", self.state_dim, self.action_dim)));
        }
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err(CoreError::config("hidden", format!("needs at least one hidden layer, each at least 1 wide (found {:?})", self.hidden)));
        }
        if self.members == 0 {
            return Err(CoreError::config("members", "must be at least 1"));
        }
        let total = self.dims().windows(2).try_fold(0usize, |acc, w| w[0].checked_mul(w[1]).and_then(|x| x.checked_add(w[1])).and_then(|x| acc.checked_add(x)));
        if total.and_then(|t| t.checked_mul(self.members)).is_none_or(|t| t > MAX_PARAMS) {
            return Err(CoreError::config(
                "width",
                format!("{} members of hidden layers {:?} exceed {MAX_PARAMS} parameters: use fewer or narrower layers or members", self.members, self.hidden),
            ));
        }
        if !(self.min_logvar.is_finite() && self.max_logvar.is_finite() && self.min_logvar < self.max_logvar) {
            return Err(CoreError::config("min_logvar", format!("needs finite min_logvar < max_logvar (found {} and {})", self.min_logvar, self.max_logvar)));
        }
        Ok(())
    }
}
