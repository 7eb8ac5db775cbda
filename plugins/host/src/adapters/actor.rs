//! [`PluginActor`]: a plugin actor behind [`Actor`].

use ami_core::error::{CoreError, Result};
use ami_core::modules::{Actor, Modulation};
use ami_core::Cost;
use ami_plugin_abi::kinds::ActorVTable;
use ami_plugin_abi::{Dims, Str, TensorView};
use ndarray::{Array1, ArrayView1};

use super::callbacks::host_cost;
use super::common::usize_dim;
use super::tensor::input_vector;
use crate::error::PluginError;
use crate::instance::Instance;

/// A plugin actor.
#[derive(Debug)]
pub struct PluginActor {
    inst: Instance,
    dims: Dims,
}

impl PluginActor {
    pub(crate) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        let dims = inst.dims()?;
        Ok(Self { inst, dims })
    }
}

impl Actor for PluginActor {
    fn action_dim(&self) -> usize {
        usize_dim(self.dims.action_dim)
    }
    fn reset(&mut self, seed: u64) {
        if let Err(e) = self.inst.reset(seed) {
            tracing::error!("{e}");
        }
    }
    fn act(&mut self, state: ArrayView1<'_, f32>, cost: &Cost) -> Result<Array1<f32>> {
        let mut action = Array1::zeros(self.action_dim());
        let mut k = None;
        let s = input_vector(&state, &mut k);
        let hc = host_cost(cost);
        let out = TensorView::vector_mut(action.as_mut_ptr(), action.len());
        // SAFETY: the instance is an actor.
        let vt = unsafe { self.inst.vtable::<ActorVTable>() };
        let this = self.inst.this_mut();
        self.inst.call(|err| {
            // SAFETY: live instance held exclusively; views and the cost callbacks live across the call.
            unsafe { (vt.act)(this, &s, &hc, &out, err) }
        })?;
        Ok(action)
    }
    fn modulate(&mut self, m: &Modulation) -> Result<()> {
        let json = serde_json::to_string(m).map_err(|e| CoreError::module(self.inst.label(), format!("cannot encode modulation: {e}")))?;
        // SAFETY: the instance is an actor.
        let vt = unsafe { self.inst.vtable::<ActorVTable>() };
        let this = self.inst.this_mut();
        self.inst.call(|err| {
            // SAFETY: live instance held exclusively; the JSON text lives across the call.
            unsafe { (vt.modulate)(this, Str::borrow(&json), err) }
        })?;
        Ok(())
    }
}
