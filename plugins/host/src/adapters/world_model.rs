//! [`PluginWorldModel`]: a plugin world model behind [`WorldModel`] and
//! [`DifferentiableWorldModel`].

use ami_core::error::{CoreError, Result};
use ami_core::modules::{DifferentiableWorldModel, WorldModel};
use ami_plugin_abi::kinds::WorldModelVTable;
use ami_plugin_abi::{Dims, TensorView};
use ndarray::{ArrayView2, ArrayViewMut2};

use super::common::{shape_err, usize_dim};
use super::tensor::{input_matrix, with_output_matrix};
use crate::error::PluginError;
use crate::instance::Instance;

/// A plugin world model, used like any [`WorldModel`].
#[derive(Debug)]
pub struct PluginWorldModel {
    inst: Instance,
    dims: Dims,
    differentiable: bool,
}

// SAFETY: the world model plugin trait requires `Sync` (`WorldModel: Module +
// Sync`), and `predict`/`vjp` take the instance by shared pointer.
unsafe impl Sync for PluginWorldModel {}

impl PluginWorldModel {
    pub(crate) fn new(inst: Instance) -> std::result::Result<Self, PluginError> {
        let dims = inst.dims()?;
        // SAFETY: the instance is a world model.
        let differentiable = unsafe { inst.vtable::<WorldModelVTable>() }.vjp.is_some();
        Ok(Self { inst, dims, differentiable })
    }
    /// `plugin:NAME/MODULE`.
    pub fn label(&self) -> String {
        self.inst.label()
    }
    /// Whether the module panicked and is poisoned.
    pub fn is_poisoned(&self) -> bool {
        self.inst.is_poisoned()
    }

    fn call_predict(&self, states: &ArrayView2<'_, f32>, actions: &ArrayView2<'_, f32>, latents: TensorView, next: &mut ArrayViewMut2<'_, f32>) -> Result<()> {
        let b = states.nrows();
        let (sd, ad) = (self.state_dim(), self.action_dim());
        if states.ncols() != sd || actions.dim() != (b, ad) || next.dim() != (b, sd) {
            return Err(ami_core::check_predict_shapes(self, &self.inst.label(), states, actions, &next.view_mut())
                .err()
                .unwrap_or_else(|| shape_err(&self.inst, "predict", format!("[{b}, {sd}]"), format!("{:?}", next.dim()))));
        }
        let (mut ks, mut ka) = (None, None);
        let (s, a) = (input_matrix(states, &mut ks), input_matrix(actions, &mut ka));
        // SAFETY: the instance is a world model.
        let vt = unsafe { self.inst.vtable::<WorldModelVTable>() };
        let this = self.inst.this();
        with_output_matrix(next, |n| {
            self.inst.call(|err| {
                // SAFETY: live instance; views over buffers borrowed for the call, shapes checked.
                unsafe { (vt.predict)(this, &s, &a, &latents, &n, err) }
            })
        })?;
        Ok(())
    }
}

impl WorldModel for PluginWorldModel {
    fn state_dim(&self) -> usize {
        usize_dim(self.dims.state_dim)
    }
    fn action_dim(&self) -> usize {
        usize_dim(self.dims.action_dim)
    }
    fn latent_dim(&self) -> usize {
        usize_dim(self.dims.latent_dim)
    }
    #[inline]
    fn predict(&self, states: ArrayView2<'_, f32>, actions: ArrayView2<'_, f32>, mut next: ArrayViewMut2<'_, f32>) -> Result<()> {
        self.call_predict(&states, &actions, TensorView::none(), &mut next)
    }
    fn predict_with_latents(
        &self,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        latents: ArrayView2<'_, f32>,
        mut next: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        if self.latent_dim() == 0 && latents.ncols() == 0 {
            return self.predict(states, actions, next);
        }
        if latents.dim() != (states.nrows(), self.latent_dim()) {
            return Err(shape_err(&self.inst, "predict(latents)", format!("[{}, {}]", states.nrows(), self.latent_dim()), format!("{:?}", latents.dim())));
        }
        let mut kl = None;
        let l = input_matrix(&latents, &mut kl);
        self.call_predict(&states, &actions, l, &mut next)
    }
    fn differentiable(&self) -> Option<&dyn DifferentiableWorldModel> {
        if self.differentiable {
            Some(self)
        } else {
            None
        }
    }
}

impl DifferentiableWorldModel for PluginWorldModel {
    fn vjp(
        &self,
        states: ArrayView2<'_, f32>,
        actions: ArrayView2<'_, f32>,
        grad_next: ArrayView2<'_, f32>,
        mut grad_states: ArrayViewMut2<'_, f32>,
        mut grad_actions: ArrayViewMut2<'_, f32>,
    ) -> Result<()> {
        let b = states.nrows();
        let (sd, ad) = (self.state_dim(), self.action_dim());
        for (what, found, want) in [
            ("vjp(states)", states.dim(), (b, sd)),
            ("vjp(actions)", actions.dim(), (b, ad)),
            ("vjp(grad_next)", grad_next.dim(), (b, sd)),
            ("vjp(grad_states)", grad_states.dim(), (b, sd)),
            ("vjp(grad_actions)", grad_actions.dim(), (b, ad)),
        ] {
            if found != want {
                return Err(shape_err(&self.inst, what, format!("{want:?}"), format!("{found:?}")));
            }
        }
        // SAFETY: the instance is a world model.
        let vt = unsafe { self.inst.vtable::<WorldModelVTable>() };
        let Some(vjp) = vt.vjp else {
            return Err(CoreError::module(self.inst.label(), "not differentiable"));
        };
        let (mut k1, mut k2, mut k3) = (None, None, None);
        let (s, a, g) = (input_matrix(&states, &mut k1), input_matrix(&actions, &mut k2), input_matrix(&grad_next, &mut k3));
        let this = self.inst.this();
        with_output_matrix(&mut grad_states, |gs| {
            with_output_matrix(&mut grad_actions, |ga| {
                self.inst.call(|err| {
                    // SAFETY: live instance; views over buffers borrowed for the call, shapes checked.
                    unsafe { vjp(this, &s, &a, &g, &gs, &ga, err) }
                })
            })
        })?;
        Ok(())
    }
}
