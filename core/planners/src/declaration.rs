//! [`PlannerDecl`]: how a planner is named, documented and built, written
//! once next to each planner (its `declaration()`).

use std::sync::Arc;

use ami_core::{ActionSpace, ParamSpec, Params, Planner, Result, Settings};
use ami_kernels::Cpu;

/// A planner's constructor: validated parameters, the action space (a
/// continuous planner refuses a discrete one, and the other way round, with
/// [`ActionSpace::require_box`]-style errors) and an optional kernels
/// backend for its fused fast path.
pub type BuildPlanner = fn(&Params, &ActionSpace, Option<Arc<Cpu>>) -> Result<Box<dyn Planner>>;

/// How a planner is named, documented and built (see the module docs).
#[derive(Clone, Copy)]
pub struct PlannerDecl {
    /// The name agent files and the command line use (`cem`).
    pub name: &'static str,
    /// One line for listings and docs.
    pub summary: &'static str,
    /// The parameters, with types, ranges, defaults and docs.
    pub schema: fn() -> Vec<ParamSpec>,
    /// Builds the planner from validated parameters and the action space;
    /// `backend` runs its fused fast path (default: [`Cpu::shared`]).
    pub build: BuildPlanner,
    /// World-model steps one planning call evaluates, in forward-pass
    /// equivalents (a backward pass counts 2), for FLOP figures.
    pub work: fn(&Params) -> Result<f64>,
}

impl std::fmt::Debug for PlannerDecl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannerDecl").field("name", &self.name).field("summary", &self.summary).finish()
    }
}

impl PlannerDecl {
    /// Whether the planner searches `space` (a continuous planner a box, a
    /// discrete one a set of choices): whether it builds on it with its
    /// defaults.
    pub fn searches(&self, space: &ActionSpace) -> bool {
        self.build_with(&[], space, None).is_ok()
    }
    /// Builds the planner with its defaults over `values`.
    pub fn build_with(&self, values: &[(String, ami_core::ParamValue)], space: &ActionSpace, backend: Option<Arc<Cpu>>) -> Result<Box<dyn Planner>> {
        let p = Params::validate(&(self.schema)(), values)
            .map_err(|issues| ami_core::CoreError::config(self.name, issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; ")))?;
        (self.build)(&p, space, backend)
    }
}

/// A planner built from a [`Settings`] struct that can run its fused path on
/// a kernels backend: what [`build_from_settings`] needs to be a planner's
/// [`PlannerDecl::build`].
pub trait FromSettings: Planner + Sized + 'static {
    /// Its settings.
    type Settings: Settings;
    /// The planner with `settings` over `space` (or why it cannot search
    /// that kind of space).
    fn from_settings(settings: Self::Settings, space: &ActionSpace) -> Result<Self>;
    /// Runs the fused path on `cpu`. Default: ignored (a planner without
    /// a fused path).
    fn use_backend(&mut self, _cpu: Arc<Cpu>) {}
}

/// The [`PlannerDecl::build`] of a [`FromSettings`] planner: settings from
/// the parameters, then the backend if one is given.
pub fn build_from_settings<P: FromSettings>(params: &Params, space: &ActionSpace, backend: Option<Arc<Cpu>>) -> Result<Box<dyn Planner>> {
    let mut planner = P::from_settings(P::Settings::from_params(params)?, space)?;
    if let Some(cpu) = backend {
        planner.use_backend(cpu);
    }
    Ok(Box::new(planner))
}
