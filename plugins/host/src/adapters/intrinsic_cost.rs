//! [`PluginIntrinsicCost`]: a plugin intrinsic cost term behind [`IntrinsicCost`].

use ami_core::error::Result;
use ami_core::modules::{CostContext, IntrinsicCost};
use ami_plugin_abi::kinds::IntrinsicCostVTable;
use ndarray::{ArrayView2, ArrayViewMut1};

use super::common::{cost_ctx, shape_err};
use super::tensor::{input_matrix, with_output_vector};
use crate::error::PluginError;
use crate::instance::Instance;

/// A plugin intrinsic cost term. Its term name is the module name unless
/// renamed with [`PluginIntrinsicCost::named`].
#[derive(Debug)]
pub struct PluginIntrinsicCost {
    inst: Instance,
    name: String,
}

// SAFETY: the intrinsic cost plugin trait requires `Sync`; `add_cost` takes the instance by shared pointer.
unsafe impl Sync for PluginIntrinsicCost {}

impl PluginIntrinsicCost {
    pub(crate) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        inst.dims()?;
        let name = inst.module.clone();
        Ok(Self { inst, name })
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
    /// The module's error (or panic) is returned with its own message,
    /// naming the plugin and module; a panic also poisons the module
    /// ([`PluginHost::poison_reports`](crate::PluginHost::poison_reports)).
    fn add_cost(
        &self,
        ctx: &CostContext<'_>,
        weight: f32,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        mut out: ArrayViewMut1<'_, f32>,
    ) -> Result<()> {
        let b = out.len();
        if states.nrows() != b || actions.nrows() != b || next_states.nrows() != b {
            let found = format!("{}, {}, {} rows", states.nrows(), actions.nrows(), next_states.nrows());
            return Err(shape_err(&self.inst, "add_cost batch", format!("{b} rows each"), found));
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
        r.map_err(Into::into)
    }
}
