//! Planner declarations: each planner says, next to its type, its name, a
//! one-line summary, its parameter schema and its constructor, in one
//! [`PlannerDecl`] value. Agent files (`implementation = "cem"`), `ami run
//! --planner`, `ami bench --planner`, `ami check` messages and the docs'
//! implementation table all read these values, so adding a planner is one
//! new file with its `declaration()` plus one line in [`builtin`].

use std::sync::Arc;

use ami_core::{Bounds, ParamSpec, Params, Planner, Result, Settings};
use ami_kernels::Cpu;

use crate::{Cem, CemConfig, Gd, GdConfig, Mppi, MppiConfig};

/// A planner's constructor: validated parameters, the action bounds and an
/// optional kernels backend for its fused fast path.
pub type BuildPlanner = fn(&Params, Bounds, Option<Arc<Cpu>>) -> Result<Box<dyn Planner>>;

/// How a planner is named, documented and built (see the module docs).
#[derive(Clone, Copy)]
pub struct PlannerDecl {
    /// The name agent files and the command line use (`cem`).
    pub name: &'static str,
    /// One line for listings and docs.
    pub summary: &'static str,
    /// The parameters, with types, ranges, defaults and docs.
    pub schema: fn() -> Vec<ParamSpec>,
    /// Builds the planner from validated parameters and the action bounds;
    /// `backend` runs its fused fast path (default: [`Cpu::shared`]).
    pub build: BuildPlanner,
    /// World-model steps one planning call evaluates, in forward-pass
    /// equivalents (a backward pass counts 2), for FLOP figures.
    pub work: fn(&Params) -> Result<f64>,
    /// Whether the planner needs gradients: a differentiable world model
    /// and a cost with a gradient (checked when an agent is built).
    pub needs_gradients: bool,
}

impl std::fmt::Debug for PlannerDecl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannerDecl").field("name", &self.name).field("summary", &self.summary).finish()
    }
}

impl PlannerDecl {
    /// Builds the planner with its defaults over `values`.
    pub fn build_with(&self, values: &[(String, ami_core::ParamValue)], bounds: Bounds, backend: Option<Arc<Cpu>>) -> Result<Box<dyn Planner>> {
        let p = Params::validate(&(self.schema)(), values)
            .map_err(|issues| ami_core::CoreError::config(self.name, issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; ")))?;
        (self.build)(&p, bounds, backend)
    }
}

/// The planners built into ami, in the order listings show them.
pub fn builtin() -> Vec<PlannerDecl> {
    vec![Cem::declaration(), Mppi::declaration(), Gd::declaration()]
}

/// The built-in planner called `name`.
pub fn find(name: &str) -> Option<PlannerDecl> {
    builtin().into_iter().find(|d| d.name == name)
}

/// The names of the built-in planners, comma-separated (for messages).
pub fn names() -> String {
    builtin().iter().map(|d| d.name).collect::<Vec<_>>().join(", ")
}

impl Cem {
    /// CEM's declaration.
    pub fn declaration() -> PlannerDecl {
        fn build(p: &Params, b: Bounds, cpu: Option<Arc<Cpu>>) -> Result<Box<dyn Planner>> {
            let mut c = Cem::new(CemConfig::from_params(p)?, b)?;
            if let Some(cpu) = cpu {
                c.set_backend(cpu);
            }
            Ok(Box::new(c))
        }
        fn work(p: &Params) -> Result<f64> {
            let c = CemConfig::from_params(p)?;
            Ok((c.samples * c.iterations * c.horizon) as f64)
        }
        PlannerDecl { name: "cem", summary: "Mode-2 planning with the cross-entropy method", schema: CemConfig::schema, build, work, needs_gradients: false }
    }
}

impl Mppi {
    /// MPPI's declaration.
    pub fn declaration() -> PlannerDecl {
        fn build(p: &Params, b: Bounds, cpu: Option<Arc<Cpu>>) -> Result<Box<dyn Planner>> {
            let mut m = Mppi::new(MppiConfig::from_params(p)?, b)?;
            if let Some(cpu) = cpu {
                m.set_backend(cpu);
            }
            Ok(Box::new(m))
        }
        fn work(p: &Params) -> Result<f64> {
            let c = MppiConfig::from_params(p)?;
            Ok((c.samples * c.iterations * c.horizon) as f64)
        }
        PlannerDecl {
            name: "mppi",
            summary: "Mode-2 planning with model-predictive path integral control",
            schema: MppiConfig::schema,
            build,
            work,
            needs_gradients: false,
        }
    }
}

impl Gd {
    /// GD's declaration.
    pub fn declaration() -> PlannerDecl {
        fn build(p: &Params, b: Bounds, cpu: Option<Arc<Cpu>>) -> Result<Box<dyn Planner>> {
            let mut g = Gd::new(GdConfig::from_params(p)?, b)?;
            if let Some(cpu) = cpu {
                g.set_backend(cpu);
            }
            Ok(Box::new(g))
        }
        fn work(p: &Params) -> Result<f64> {
            let c = GdConfig::from_params(p)?;
            Ok(3.0 * (c.samples * c.steps * c.horizon) as f64)
        }
        PlannerDecl {
            name: "gd",
            summary: "Mode-2 planning by gradient descent (Adam) on the action sequences through a differentiable world model",
            schema: GdConfig::schema,
            build,
            work,
            needs_gradients: true,
        }
    }
}
