//! A new planner in one file: random shooting. It declares its settings
//! (`settings!`), implements the `Planner` contract, and says how it is
//! named and built (`declaration()`). Registering it is one line:
//! `registry.register_planner(Shooting::declaration())`.

use ami_core::rng::{rng, AmiRng};
use ami_core::{Bounds, Budget, CoreError, Plan, PlanRequest, Planner, Result, Settings};
use ami_planners::decl::PlannerDecl;
use ami_planners::Rollout;
use ndarray::{Array1, Array2, Array3, Axis};
use rand::Rng;

/// Settings of random shooting.
#[derive(Debug, Clone, PartialEq)]
pub struct ShootingConfig {
    /// Planning horizon.
    pub horizon: usize,
    /// Sequences drawn per call.
    pub samples: usize,
}

impl Default for ShootingConfig {
    fn default() -> Self {
        Self { horizon: 10, samples: 256 }
    }
}

ami_core::settings!(ShootingConfig {
    horizon [1, 1000]: "planning horizon in steps",
    samples [1, 65_536]: "action sequences drawn uniformly in the bounds per call",
});

/// Random shooting: draw `samples` sequences uniformly in the bounds and
/// return the one of lowest energy.
pub struct Shooting {
    cfg: ShootingConfig,
    bounds: Bounds,
    rng: AmiRng,
    rollout: Rollout,
    energies: Array1<f32>,
}

impl Shooting {
    /// A planner with `cfg` in `bounds`.
    pub fn new(cfg: ShootingConfig, bounds: Bounds) -> Result<Self> {
        cfg.check("shooting")?;
        Ok(Self { cfg, bounds, rng: rng(0), rollout: Rollout::new(), energies: Array1::zeros(0) })
    }

    /// How agent files, the CLI and the docs know it.
    pub fn declaration() -> PlannerDecl {
        PlannerDecl {
            name: "shooting",
            summary: "Mode-2 planning by random shooting",
            schema: ShootingConfig::schema,
            build: |p, space, _backend| Ok(Box::new(Shooting::new(ShootingConfig::from_params(p)?, space.require_box("shooting")?.clone())?)),
            work: |p| ShootingConfig::from_params(p).map(|c| (c.horizon * c.samples) as f64),
        }
    }
}

impl Planner for Shooting {
    fn name(&self) -> &str {
        "shooting"
    }
    fn horizon(&self) -> usize {
        self.cfg.horizon
    }
    fn action_dim(&self) -> usize {
        self.bounds.dim()
    }
    fn reset(&mut self, seed: u64) {
        self.rng = rng(seed);
    }
    fn plan(&mut self, req: &PlanRequest<'_>) -> Result<Plan> {
        let (t, n, a) = (self.cfg.horizon, self.cfg.samples, self.bounds.dim());
        let mut samples = Array3::<f32>::zeros((t, n, a));
        for ((_, _, j), v) in samples.indexed_iter_mut() {
            *v = self.rng.gen_range(self.bounds.low[j]..=self.bounds.high[j]);
        }
        self.rollout.energies(req.model, req.cost, req.state, samples.view(), &mut self.energies)?;
        let best = (0..n).filter(|&i| self.energies[i].is_finite()).min_by(|&x, &y| self.energies[x].total_cmp(&self.energies[y]));
        let best = best.ok_or_else(|| CoreError::non_finite("shooting", n, &Default::default()))?;
        let actions: Array2<f32> = samples.index_axis(Axis(1), best).to_owned();
        Ok(Plan { actions, energy: self.energies[best], iterations: 1, evaluated: n, non_finite: Default::default() })
    }
    fn set_budget(&mut self, budget: Budget) -> Result<()> {
        let mut next = self.cfg.clone();
        next.samples = budget.iterations.max(1) * 64;
        next.check("shooting")?;
        self.cfg = next;
        Ok(())
    }
    fn set_horizon(&mut self, horizon: usize) -> Result<()> {
        let next = ShootingConfig { horizon, ..self.cfg.clone() };
        next.check("shooting")?;
        self.cfg = next;
        Ok(())
    }
}
