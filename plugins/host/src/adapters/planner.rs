//! [`PluginPlanner`]: a plugin Mode-2 planner behind [`Planner`], rolling
//! out the host's world model and cost through callbacks.

use ami_core::error::Result;
use ami_core::modules::WorldModel;
use ami_core::{Bounds, Budget, Plan, PlanRequest, Planner};
use ami_plugin_abi::kinds::{HostModel, PlanInfoFfi, PlanProblemFfi, PlannerVTable};
use ami_plugin_abi::TensorView;
use ndarray::Array2;

use super::callbacks::{host_cost, host_predict};
use super::common::{shape_err, usize_dim};
use super::tensor::input_vector;
use crate::error::PluginError;
use crate::instance::Instance;

/// A plugin Mode-2 planner: it rolls out the host's world model and cost
/// through callbacks.
#[derive(Debug)]
pub struct PluginPlanner {
    inst: Instance,
    label: String,
    horizon: usize,
    bounds: Bounds,
}

impl PluginPlanner {
    pub(crate) fn new(inst: Instance, bounds: Bounds) -> std::result::Result<Self, PluginError> {
        let dims = inst.dims()?;
        let label = inst.label();
        Ok(Self { inst, label, horizon: usize_dim(dims.horizon), bounds })
    }
}

impl Planner for PluginPlanner {
    fn name(&self) -> &str {
        &self.label
    }
    fn horizon(&self) -> usize {
        self.horizon
    }
    fn action_dim(&self) -> usize {
        self.bounds.dim()
    }
    fn reset(&mut self, seed: u64) {
        if let Err(e) = self.inst.reset(seed) {
            tracing::error!("{e}");
        }
    }
    fn plan(&mut self, req: &PlanRequest<'_>) -> Result<Plan> {
        let (sd, ad) = (req.model.state_dim(), req.model.action_dim());
        if ad != self.bounds.dim() {
            return Err(shape_err(&self.inst, "world model action_dim", format!("{} (the bounds' dimension)", self.bounds.dim()), ad.to_string()));
        }
        if req.state.len() != sd {
            return Err(shape_err(&self.inst, "state", format!("length {sd}"), format!("length {}", req.state.len())));
        }
        let model: &dyn WorldModel = req.model;
        let mut ks = None;
        let problem = PlanProblemFfi {
            state: input_vector(&req.state, &mut ks),
            low: TensorView::vector(self.bounds.low.as_ptr(), self.bounds.low.len()),
            high: TensorView::vector(self.bounds.high.as_ptr(), self.bounds.high.len()),
            model: HostModel { ctx: (&model as *const &dyn WorldModel).cast(), state_dim: sd as u64, action_dim: ad as u64, predict: host_predict },
            cost: host_cost(req.cost),
        };
        let mut actions = Array2::zeros((self.horizon, ad));
        let out = TensorView::matrix_mut(actions.as_mut_ptr(), self.horizon, ad, ad);
        let mut info = PlanInfoFfi::default();
        // SAFETY: the instance is a planner.
        let vt = unsafe { self.inst.vtable::<PlannerVTable>() };
        let this = self.inst.this_mut();
        self.inst.call(|err| {
            // SAFETY: live instance held exclusively; the problem (views, model and
            // cost callbacks with their contexts) and outputs live across the call.
            unsafe { (vt.plan)(this, &problem, &out, &mut info, err) }
        })?;
        for mut row in actions.rows_mut() {
            if let Some(r) = row.as_slice_mut() {
                self.bounds.clamp(r);
            }
        }
        Ok(Plan { actions, energy: info.energy, iterations: usize_dim(info.iterations), evaluated: usize_dim(info.evaluated), non_finite: Default::default() })
    }
    fn set_budget(&mut self, budget: Budget) -> Result<()> {
        let ns = budget.deadline.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1));
        // SAFETY: the instance is a planner.
        let vt = unsafe { self.inst.vtable::<PlannerVTable>() };
        let this = self.inst.this_mut();
        // SAFETY: live instance held exclusively.
        self.inst.call(|err| unsafe { (vt.set_budget)(this, budget.iterations as u64, ns, err) })?;
        Ok(())
    }
    fn set_horizon(&mut self, horizon: usize) -> Result<()> {
        // SAFETY: the instance is a planner.
        let vt = unsafe { self.inst.vtable::<PlannerVTable>() };
        let this = self.inst.this_mut();
        // SAFETY: live instance held exclusively.
        self.inst.call(|err| unsafe { (vt.set_horizon)(this, horizon as u64, err) })?;
        self.horizon = usize_dim(self.inst.dims()?.horizon);
        Ok(())
    }
}
