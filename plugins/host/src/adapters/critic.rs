//! [`PluginCritic`]: a plugin critic term behind [`Critic`].

use ami_core::error::Result;
use ami_core::modules::{CostContext, Critic, TransitionBatch};
use ami_plugin_abi::kinds::{BatchFfi, CriticVTable};
use ndarray::{ArrayView2, ArrayViewMut1};

use super::common::{cost_ctx, shape_err};
use super::tensor::{input_matrix, input_vector, with_output_vector};
use crate::error::PluginError;
use crate::instance::Instance;

/// A plugin critic term.
#[derive(Debug)]
pub struct PluginCritic {
    inst: Instance,
}

// SAFETY: the critic plugin trait requires `Sync`; `add_value` takes the
// instance by shared pointer and `train` needs `&mut self`.
unsafe impl Sync for PluginCritic {}

impl PluginCritic {
    pub(crate) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        inst.dims()?;
        Ok(Self { inst })
    }
}

impl Critic for PluginCritic {
    fn name(&self) -> &str {
        &self.inst.module
    }
    fn add_value(&self, ctx: &CostContext<'_>, weight: f32, states: ArrayView2<'_, f32>, mut out: ArrayViewMut1<'_, f32>) -> Result<()> {
        if states.nrows() != out.len() {
            return Err(shape_err(&self.inst, "add_value batch", format!("{} rows", out.len()), format!("{} rows", states.nrows())));
        }
        let (mut k1, mut kg) = (None, None);
        let s = input_matrix(&states, &mut k1);
        let c = cost_ctx(ctx, &mut kg);
        // SAFETY: the instance is a critic.
        let vt = unsafe { self.inst.vtable::<CriticVTable>() };
        let this = self.inst.this();
        let r = with_output_vector(&mut out, |o| {
            self.inst.call(|err| {
                // SAFETY: live instance; views over buffers borrowed for the call.
                unsafe { (vt.add_value)(this, &c, weight, &s, &o, err) }
            })
        });
        r.map_err(Into::into)
    }
    fn train(&mut self, batch: &TransitionBatch, discount: f32) -> Result<f32> {
        let (mut k1, mut k2, mut k3, mut k4) = (None, None, None, None);
        let b = BatchFfi {
            states: input_matrix(&batch.states.view(), &mut k1),
            actions: input_matrix(&batch.actions.view(), &mut k2),
            costs: input_vector(&batch.costs.view(), &mut k4),
            next_states: input_matrix(&batch.next_states.view(), &mut k3),
        };
        let mut loss = f32::NAN;
        // SAFETY: the instance is a critic.
        let vt = unsafe { self.inst.vtable::<CriticVTable>() };
        let this = self.inst.this_mut();
        self.inst.call(|err| {
            // SAFETY: live instance held exclusively; views over the batch borrowed for the call.
            unsafe { (vt.train)(this, &b, discount, &mut loss, err) }
        })?;
        Ok(loss)
    }
}
