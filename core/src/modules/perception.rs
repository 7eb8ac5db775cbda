use ndarray::{Array2, ArrayView2};

use crate::error::{check_shape2, Result};

/// Perception [paper §3]: estimates the state of the world from an
/// observation, `s = Enc(x)`. Batched: observations `[batch, obs_dim]` to
/// states `[batch, state_dim]`.
pub trait Perception: Send + Sync {
    /// Width of one observation.
    fn obs_dim(&self) -> usize;
    /// Width of one state.
    fn state_dim(&self) -> usize;
    /// Encodes a batch of observations.
    fn encode(&self, observations: ArrayView2<'_, f32>) -> Result<Array2<f32>>;
}

/// Perception that passes the observation through unchanged (fully observed
/// tasks, where the world model works on the observation itself).
#[derive(Debug, Clone)]
pub struct IdentityPerception {
    dim: usize,
}

impl IdentityPerception {
    /// Identity on vectors of width `dim`.
    pub fn new(dim: usize) -> Self {
        Self { dim }
    }
}

impl Perception for IdentityPerception {
    fn obs_dim(&self) -> usize {
        self.dim
    }
    fn state_dim(&self) -> usize {
        self.dim
    }
    fn encode(&self, observations: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        check_shape2("IdentityPerception::encode(observations)", [observations.nrows(), self.dim], observations.shape())?;
        Ok(observations.to_owned())
    }
}
