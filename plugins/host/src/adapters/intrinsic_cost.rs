//! [`PluginIntrinsicCost`]: a plugin intrinsic cost term behind [`IntrinsicCost`].

use std::sync::atomic::AtomicBool;

use ami_core::modules::{CostContext, IntrinsicCost};
use ami_plugin_abi::kinds::IntrinsicCostVTable;
use ndarray::{ArrayView2, ArrayViewMut1};

use super::common::{cost_ctx, report_once};
use super::tensor::{input_matrix, with_output_vector};
use crate::error::PluginError;
use crate::instance::Instance;

/// A plugin intrinsic cost term. Its term name is the module name unless
/// renamed with [`PluginIntrinsicCost::named`].
#[derive(Debug)]
pub struct PluginIntrinsicCost {
    inst: Instance,
    name: String,
    reported: AtomicBool,
}

// SAFETY: the intrinsic cost plugin trait requires `Sync`; `add_cost` takes the instance by shared pointer.
unsafe impl Sync for PluginIntrinsicCost {}

impl PluginIntrinsicCost {
    pub(crate) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        inst.dims()?;
        let name = inst.module.clone();
        Ok(Self { inst, name, reported: AtomicBool::new(false) })
    }
    /// Renames the term (the name cost modulations address).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    /// Whether the module panicked and is poisoned.
    pub fn is_poisoned(&self) -> bool {
        self.inst.is_poisoned()
    }
}

impl IntrinsicCost for PluginIntrinsicCost {
    fn name(&self) -> &str {
        &self.name
    }
    /// On failure (error or panic) writes NaN, so planners see non-finite
    /// energies; the error is logged once and the host's
    /// [`PluginHost::poison_reports`](crate::PluginHost::poison_reports) names the module.
    fn add_cost(
        &self,
        ctx: &CostContext<'_>,
        weight: f32,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        mut out: ArrayViewMut1<'_, f32>,
    ) {
        let b = out.len();
        if states.nrows() != b || actions.nrows() != b || next_states.nrows() != b {
            out.fill(f32::NAN);
            return;
        }
        let (mut k1, mut k2, mut k3, mut kg) = (None, None, None, None);
        let (s, a, n) = (input_matrix(&states, &mut k1), input_matrix(&actions, &mut k2), input_matrix(&next_states, &mut k3));
        let c = cost_ctx(ctx, &mut kg);
        // SAFETY: the instance is an intrinsic cost.
        let vt = unsafe { self.inst.vtable::<IntrinsicCostVTable>() };
        let this = self.inst.this();
        let r = with_output_vector(&mut out, |o| {
            self.inst.call(|err| {
                // SAFETY: live instance; views over buffers borrowed for the call.
                unsafe { (vt.add_cost)(this, &c, weight, &s, &a, &n, &o, err) }
            })
        });
        if let Err(e) = r {
            report_once(&self.reported, &e);
            out.fill(f32::NAN);
        }
    }
}
