//! Closed loop: CEM planning through each task's true-dynamics model and
//! intrinsic cost solves the task in the real environment.

use ami_agents::tasks::{TaskKind, TaskSpec};
use ami_core::{PlanRequest, Planner};
use ami_planners::{Cem, CemConfig};

/// Runs `steps` receding-horizon steps; returns the summed reward and
/// whether the episode terminated.
fn run(spec: &mut TaskSpec, cfg: CemConfig, seed: u64, steps: usize) -> (f64, bool, ndarray::Array1<f32>) {
    let mut cem = Cem::new(cfg, spec.env.action_bounds()).unwrap();
    cem.reset(seed);
    let mut obs = spec.env.reset(seed).unwrap();
    let mut total = 0.0;
    for _ in 0..steps {
        let plan = cem.plan(&PlanRequest::new(spec.model.as_ref(), &spec.cost, obs.view())).unwrap();
        let step = spec.env.step(plan.actions.row(0)).unwrap();
        total += step.reward;
        obs = step.observation;
        if step.terminated {
            return (total, true, obs);
        }
    }
    (total, false, obs)
}

#[test]
fn cem_balances_the_cartpole() {
    let mut spec = TaskKind::CartPole.spec();
    let cfg = CemConfig { horizon: 15, samples: 128, iterations: 3, elites: Some(16), init_std: 5.0, ..CemConfig::default() };
    let (total, terminated, obs) = run(&mut spec, cfg, 1, 300);
    assert!(!terminated && total == 300.0, "fell after {total} steps");
    assert!(obs[0].abs() < 1.0 && obs[2].abs() < 0.1, "{obs}");
}

#[test]
fn cem_swings_the_pendulum_up() {
    let mut spec = TaskKind::Pendulum.spec();
    let cfg = CemConfig { horizon: 30, samples: 256, iterations: 4, elites: Some(24), init_std: 1.5, ..CemConfig::default() };
    let (_, _, obs) = run(&mut spec, cfg, 2, 150);
    // Upright (cos th near 1) and nearly still at the end.
    assert!(obs[0] > 0.95 && obs[2].abs() < 1.0, "{obs}");
}

#[test]
fn cem_drives_the_point_mass_to_the_goal() {
    let mut spec = TaskKind::PointMass.spec();
    let cfg = CemConfig { horizon: 15, samples: 128, iterations: 3, elites: Some(16), init_std: 0.8, ..CemConfig::default() };
    let (_, _, obs) = run(&mut spec, cfg, 3, 80);
    let d = ((obs[0] - 1.0).powi(2) + (obs[1] - 1.0).powi(2)).sqrt();
    assert!(d < 0.15, "distance {d} at {obs}");
}
