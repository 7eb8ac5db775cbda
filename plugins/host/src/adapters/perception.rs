//! [`PluginPerception`]: a plugin perception module behind [`Perception`].

use ami_core::error::Result;
use ami_core::modules::Perception;
use ami_plugin_abi::kinds::PerceptionVTable;
use ami_plugin_abi::Dims;
use ndarray::{Array2, ArrayView2};

use super::common::{shape_err, usize_dim};
use super::tensor::{input_matrix, with_output_matrix};
use crate::error::PluginError;
use crate::instance::Instance;

/// A plugin perception module.
#[derive(Debug)]
pub struct PluginPerception {
    inst: Instance,
    dims: Dims,
}

// SAFETY: the perception plugin trait requires `Sync`; `encode` takes the instance by shared pointer.
unsafe impl Sync for PluginPerception {}

impl PluginPerception {
    pub(crate) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
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
        let o = input_matrix(&observations, &mut k);
        // SAFETY: the instance is a perception module.
        let vt = unsafe { self.inst.vtable::<PerceptionVTable>() };
        let this = self.inst.this();
        with_output_matrix(&mut out.view_mut(), |s| {
            self.inst.call(|err| {
                // SAFETY: live instance; views borrowed for the call, shapes checked.
                unsafe { (vt.encode)(this, &o, &s, err) }
            })
        })?;
        Ok(out)
    }
}
