//! [`PluginEnvironment`]: a plugin environment behind [`Environment`].

use ami_core::error::Result;
use ami_core::{Bounds, Environment, Step};
use ami_plugin_abi::kinds::{EnvironmentVTable, StepOut};
use ami_plugin_abi::{Dims, TensorView};
use ndarray::{Array1, ArrayView1};

use super::common::{shape_err, usize_dim};
use super::tensor::input_vector;
use crate::error::PluginError;
use crate::instance::Instance;

/// A plugin environment behind the [`Environment`] contract: a failing or
/// panicking call is an error naming `plugin:NAME/MODULE`.
#[derive(Debug)]
pub struct PluginEnvironment {
    inst: Instance,
    dims: Dims,
    bounds: Bounds,
    label: String,
}

impl PluginEnvironment {
    pub(crate) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        let dims = inst.dims()?;
        let ad = usize_dim(dims.action_dim);
        let (mut low, mut high) = (vec![0.0f32; ad], vec![0.0f32; ad]);
        let (l, h) = (TensorView::vector_mut(low.as_mut_ptr(), ad), TensorView::vector_mut(high.as_mut_ptr(), ad));
        // SAFETY: the instance is an environment.
        let vt = unsafe { inst.vtable::<EnvironmentVTable>() };
        let this = inst.this();
        // SAFETY: live instance; outputs live across the call.
        inst.call(|err| unsafe { (vt.bounds)(this, &l, &h, err) })?;
        let bounds = Bounds::new(low, high).map_err(|e| PluginError::Module {
            plugin: inst.plugin.name().into(),
            module: inst.module.clone(),
            message: format!("invalid action bounds: {e}"),
        })?;
        let label = inst.label();
        Ok(Self { inst, dims, bounds, label })
    }
    /// `plugin:NAME/MODULE`.
    pub fn label(&self) -> String {
        self.inst.label()
    }
    /// The plugin's name.
    pub fn plugin_name(&self) -> &str {
        self.inst.plugin.name()
    }
    /// Whether the module panicked and is poisoned.
    pub fn is_poisoned(&self) -> bool {
        self.inst.is_poisoned()
    }
}

impl Environment for PluginEnvironment {
    fn name(&self) -> &str {
        &self.label
    }
    fn obs_dim(&self) -> usize {
        usize_dim(self.dims.obs_dim)
    }
    fn action_dim(&self) -> usize {
        usize_dim(self.dims.action_dim)
    }
    fn action_bounds(&self) -> Bounds {
        self.bounds.clone()
    }
    fn max_steps(&self) -> usize {
        usize_dim(self.dims.max_steps)
    }
    fn reset(&mut self, seed: u64) -> Result<Array1<f32>> {
        let mut obs = Array1::zeros(self.obs_dim());
        let o = TensorView::vector_mut(obs.as_mut_ptr(), obs.len());
        // SAFETY: the instance is an environment.
        let vt = unsafe { self.inst.vtable::<EnvironmentVTable>() };
        let this = self.inst.this_mut();
        // SAFETY: live instance held exclusively; the output lives across the call.
        self.inst.call(|err| unsafe { (vt.reset_episode)(this, seed, &o, err) })?;
        Ok(obs)
    }
    fn step(&mut self, action: ArrayView1<'_, f32>) -> Result<Step> {
        if action.len() != self.action_dim() {
            return Err(shape_err(&self.inst, "step(action)", format!("length {}", self.action_dim()), format!("length {}", action.len())));
        }
        let mut obs = Array1::zeros(self.obs_dim());
        let o = TensorView::vector_mut(obs.as_mut_ptr(), obs.len());
        let mut k = None;
        let a = input_vector(&action, &mut k);
        let mut out = StepOut::default();
        // SAFETY: the instance is an environment.
        let vt = unsafe { self.inst.vtable::<EnvironmentVTable>() };
        let this = self.inst.this_mut();
        // SAFETY: live instance held exclusively; views and output live across the call.
        self.inst.call(|err| unsafe { (vt.step)(this, &a, &o, &mut out, err) })?;
        Ok(Step { observation: obs, reward: out.reward, terminated: out.terminated != 0, truncated: out.truncated != 0 })
    }
}
