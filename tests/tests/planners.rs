//! Mode-2 planners against problems with a known optimum, determinism and
//! failure handling.

use std::sync::Arc;

use ami_core::*;
use ami_planners::*;
use ami_tests::solve;
use ndarray::{array, Array1, Array2, ArrayView2, ArrayViewMut2};

const T: usize = 8;
const R: f32 = 0.1;

/// A double integrator s = [p, v], a = force: linear dynamics.
fn problem() -> (LinearModel, Cost, Array1<f32>) {
    let dt = 0.1;
    let a = array![[1.0, dt], [0.0, 1.0]];
    let b = array![[0.5 * dt * dt], [dt]];
    let model = LinearModel::new(a, b).unwrap();
    let mut cost = Cost::new();
    cost.add_intrinsic(Arc::new(QuadraticCost::new("goal", vec![1.0, 0.1], vec![])), 1.0).unwrap();
    cost.add_intrinsic(Arc::new(ActionPenalty::new(1)), R).unwrap();
    cost.set_goal(Some(array![0.3, 0.0]));
    (model, cost, array![0.0, 0.0])
}

/// Exact minimum energy of the unconstrained quadratic problem, solved in f64.
fn optimum(model: &LinearModel, s0: &Array1<f32>, goal: &Array1<f32>, q: &[f64]) -> (f64, Array1<f64>) {
    let a = model.a().mapv(f64::from);
    let b = model.b().mapv(f64::from);
    let (s, na) = (a.nrows(), b.ncols());
    let n = T * na;
    // s_t = A^t s0 + sum_k<=t A^(t-k) B a_k  (t = 1..T, a_k applied at step k)
    let mut h = Array2::<f64>::zeros((n, n));
    let mut g = Array1::<f64>::zeros(n);
    let mut c = s0.mapv(f64::from);
    let qm = Array2::from_diag(&Array1::from(q.to_vec()));
    let mut m = Array2::<f64>::zeros((s, n)); // d s_t / d a
    for t in 0..T {
        c = a.dot(&c);
        m = a.dot(&m);
        for i in 0..s {
            for j in 0..na {
                m[[i, t * na + j]] += b[[i, j]];
            }
        }
        let resid = &c - &goal.mapv(f64::from);
        h = h + m.t().dot(&qm).dot(&m);
        g = g - m.t().dot(&qm).dot(&resid);
    }
    for i in 0..n {
        h[[i, i]] += f64::from(R);
    }
    let x = solve(h, g);
    let plan = Array2::from_shape_vec((T, na), x.mapv(|v| v as f32).to_vec()).unwrap();
    let e = Rollout::energy_of(model, &problem().1, s0.view(), &plan).unwrap();
    (f64::from(e), x)
}

fn check_near_optimum(planner: &mut dyn Planner) {
    let (model, cost, s0) = problem();
    let (e_opt, x) = optimum(&model, &s0, &array![0.3, 0.0], &[1.0, 0.1]);
    assert!(x.iter().all(|v| v.abs() < 5.0), "optimum inside the bounds");
    planner.reset(3);
    let plan = planner.plan(&PlanRequest::new(&model, &cost, s0.view())).unwrap();
    let e = f64::from(plan.energy);
    assert!(e >= e_opt * (1.0 - 1e-4), "planner beat the optimum? {e} < {e_opt}");
    assert!(e <= e_opt * 1.01, "{}: energy {e} not within 1% of the optimum {e_opt}", planner.name());
}

#[test]
fn cem_reaches_the_known_optimum_within_one_percent() {
    let cfg = CemConfig { horizon: T, samples: 512, iterations: 30, elites: Some(32), init_std: 3.0, ..CemConfig::default() };
    let mut cem = Cem::new(cfg, Bounds::symmetric(1, 5.0)).unwrap();
    check_near_optimum(&mut cem);
}

#[test]
fn mppi_reaches_the_known_optimum_within_one_percent() {
    let cfg = MppiConfig { horizon: T, samples: 1024, iterations: 60, temperature: 0.001, noise_std: 0.3, ..MppiConfig::default() };
    let mut mppi = Mppi::new(cfg, Bounds::symmetric(1, 5.0)).unwrap();
    check_near_optimum(&mut mppi);
}

fn actions_of(planner: &mut dyn Planner, seed: u64) -> Vec<u32> {
    let (model, cost, s0) = problem();
    planner.reset(seed);
    let mut bits = Vec::new();
    let mut s = s0.clone();
    for _ in 0..5 {
        let plan = planner.plan(&PlanRequest::new(&model, &cost, s.view())).unwrap();
        bits.extend(plan.actions.iter().map(|v| v.to_bits()));
        let mut next = Array2::zeros((1, 2));
        model.predict(s.view().insert_axis(ndarray::Axis(0)), plan.actions.slice(ndarray::s![0..1, ..]), next.view_mut()).unwrap();
        s = next.row(0).to_owned();
    }
    bits
}

#[test]
fn same_seed_gives_bit_identical_actions() {
    for make in [
        || Box::new(Cem::new(CemConfig { horizon: T, ..CemConfig::default() }, Bounds::symmetric(1, 1.0)).unwrap()) as Box<dyn Planner>,
        || Box::new(Mppi::new(MppiConfig { horizon: T, ..MppiConfig::default() }, Bounds::symmetric(1, 1.0)).unwrap()) as Box<dyn Planner>,
        || Box::new(Gd::new(GdConfig { horizon: T, ..GdConfig::default() }, Bounds::symmetric(1, 1.0)).unwrap()) as Box<dyn Planner>,
    ] {
        // Iteration-only budgets (no deadline_ms): bit-exact.
        let (mut p1, mut p2) = (make(), make());
        let a = actions_of(p1.as_mut(), 42);
        assert_eq!(a, actions_of(p2.as_mut(), 42), "{}", p1.name());
        assert_eq!(a, actions_of(p1.as_mut(), 42), "{}: reset must restore the stream", p1.name());
        assert_ne!(a, actions_of(p2.as_mut(), 43), "{}: another seed, other actions", p1.name());
    }
}

#[test]
fn plans_respect_the_bounds_and_warm_start() {
    let (model, cost, s0) = problem();
    let bounds = Bounds::new(vec![-0.2], vec![0.1]).unwrap();
    let mut cem = Cem::new(CemConfig { horizon: T, ..CemConfig::default() }, bounds.clone()).unwrap();
    let mut mppi = Mppi::new(MppiConfig { horizon: T, ..MppiConfig::default() }, bounds).unwrap();
    for p in [&mut cem as &mut dyn Planner, &mut mppi] {
        p.reset(0);
        for _ in 0..3 {
            let plan = p.plan(&PlanRequest::new(&model, &cost, s0.view())).unwrap();
            assert!(plan.actions.iter().all(|&a| (-0.2..=0.1).contains(&a)), "{}: {:?}", p.name(), plan.actions);
        }
    }
}

/// A model that emits NaN for actions above a threshold.
struct Poisoned {
    inner: LinearModel,
    nan_above: f32,
}

impl WorldModel for Poisoned {
    fn state_dim(&self) -> usize {
        2
    }
    fn action_dim(&self) -> usize {
        1
    }
    fn predict(&self, s: ArrayView2<'_, f32>, a: ArrayView2<'_, f32>, mut next: ArrayViewMut2<'_, f32>) -> ami_core::Result<()> {
        self.inner.predict(s, a, next.view_mut())?;
        for (mut row, act) in next.rows_mut().into_iter().zip(a.rows()) {
            if act[0] > self.nan_above {
                row.fill(f32::NAN);
            }
        }
        Ok(())
    }
}

#[test]
fn non_finite_samples_are_skipped_and_all_nan_is_an_error() {
    let (model, cost, s0) = problem();
    let half = Poisoned { inner: model.clone(), nan_above: 0.0 };
    let all = Poisoned { inner: model, nan_above: -10.0 };
    let mut cem = Cem::new(CemConfig { horizon: T, ..CemConfig::default() }, Bounds::symmetric(1, 1.0)).unwrap();
    let mut mppi = Mppi::new(MppiConfig { horizon: T, ..MppiConfig::default() }, Bounds::symmetric(1, 1.0)).unwrap();
    for p in [&mut cem as &mut dyn Planner, &mut mppi] {
        p.reset(1);
        let plan = p.plan(&PlanRequest::new(&half, &cost, s0.view())).unwrap();
        assert!(plan.actions.iter().all(|a| a.is_finite() && *a <= 0.0), "{}: {:?}", p.name(), plan.actions);
        let err = p.plan(&PlanRequest::new(&all, &cost, s0.view())).unwrap_err();
        assert!(matches!(err, CoreError::NonFinite { .. }), "{err}");
        assert!(err.to_string().contains("non-finite energy"), "{err}");
    }
}

#[test]
fn bad_configs_are_refused_with_the_field_name() {
    let err = Cem::new(CemConfig { elites: Some(0), ..CemConfig::default() }, Bounds::symmetric(1, 1.0)).err().unwrap();
    assert!(err.to_string().contains("cem.elites"), "{err}");
    let err = Mppi::new(MppiConfig { temperature: 0.0, ..MppiConfig::default() }, Bounds::symmetric(1, 1.0)).err().unwrap();
    assert!(err.to_string().contains("mppi.temperature"), "{err}");
    let err = Bounds::new(vec![1.0], vec![0.0]).unwrap_err();
    assert!(err.to_string().contains("bounds[0]"), "{err}");
}

/// A critic that values states by their distance to 0 (terminal cost).
struct DistCritic;
impl Critic for DistCritic {
    fn name(&self) -> &str {
        "critic"
    }
    fn add_value(&self, _ctx: &CostContext<'_>, w: f32, states: ArrayView2<'_, f32>, mut out: ndarray::ArrayViewMut1<'_, f32>) -> Result<()> {
        for (o, s) in out.iter_mut().zip(states.rows()) {
            *o += w * s.iter().map(|x| x * x).sum::<f32>();
        }
        Ok(())
    }
    fn train(&mut self, _b: &TransitionBatch, _d: f32) -> ami_core::Result<f32> {
        Ok(0.0)
    }
}

#[test]
fn terminal_cost_hook_adds_the_critic_on_the_final_state() {
    let (model, mut cost, s0) = problem();
    let plan = Array2::from_elem((T, 1), 0.5f32);
    let base = Rollout::energy_of(&model, &cost, s0.view(), &plan).unwrap();
    cost.add_critic(Box::new(DistCritic), 2.0).unwrap();
    let with = Rollout::energy_of(&model, &cost, s0.view(), &plan).unwrap();
    // Final state of constant force 0.5 for T steps: v = 0.5*0.1*T, p = 0.5*0.5*(0.1*T)^2.
    let v = 0.5 * 0.1 * T as f32;
    let p = 0.5 * 0.5 * (0.1 * T as f32).powi(2);
    assert!((with - base - 2.0 * (p * p + v * v)).abs() < 1e-4, "{with} - {base}");
}

#[test]
fn a_deadline_bounds_the_call_and_still_returns_a_valid_plan() {
    // `deadline_ms` trades bit-exactness for a wall-clock bound: how many
    // iterations run depends on the machine, but the plan is always finite,
    // in bounds, and at least one iteration is done.
    let (model, cost, s0) = problem();
    let mut cem =
        Cem::new(CemConfig { horizon: T, iterations: 1000, samples: 4096, deadline_ms: Some(1e-3), ..CemConfig::default() }, Bounds::symmetric(1, 1.0))
            .unwrap();
    cem.reset(1);
    let plan = cem.plan(&PlanRequest::new(&model, &cost, s0.view())).unwrap();
    assert!(plan.iterations >= 1 && plan.iterations < 1000, "{} iterations", plan.iterations);
    assert!(plan.actions.iter().all(|a| a.is_finite() && a.abs() <= 1.0));
}

#[test]
fn a_smaller_samples_does_not_inherit_too_many_elites() {
    // `elites` defaults to samples / 8: `..CemConfig::default()` with 32 samples plans.
    let cfg = CemConfig { horizon: T, samples: 32, ..CemConfig::default() };
    assert_eq!(cfg.elite_count(), 4);
    let mut cem = Cem::new(cfg, Bounds::symmetric(1, 1.0)).unwrap();
    let (model, cost, s0) = problem();
    cem.reset(0);
    assert!(cem.plan(&PlanRequest::new(&model, &cost, s0.view())).is_ok());
    // An explicit elites above samples is still refused, naming the field.
    let err = Cem::new(CemConfig { samples: 32, elites: Some(64), ..CemConfig::default() }, Bounds::symmetric(1, 1.0)).err().unwrap().to_string();
    assert!(err.contains("cem.elites: must be in 1..=32 (samples), got 64"), "{err}");
}

#[test]
fn mppi_relative_temperature_does_not_depend_on_the_cost_scale() {
    // With `relative_temperature` the temperature is a multiple of the
    // energies' spread, so scaling the cost by 100 barely moves the plan;
    // with an absolute temperature it changes how greedy MPPI is.
    let plan = |scale: f32, relative: bool| {
        let (model, mut cost, s0) = problem();
        cost.set_weight("goal", scale).unwrap();
        cost.set_weight("effort", R * scale).unwrap();
        let cfg =
            MppiConfig { horizon: T, samples: 256, iterations: 4, temperature: 0.5, noise_std: 0.5, relative_temperature: relative, ..MppiConfig::default() };
        let mut m = Mppi::new(cfg, Bounds::symmetric(1, 5.0)).unwrap();
        m.reset(7);
        m.plan(&PlanRequest::new(&model, &cost, s0.view())).unwrap().actions
    };
    let gap = |a: &Array2<f32>, b: &Array2<f32>| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    let relative_gap = gap(&plan(1.0, true), &plan(100.0, true));
    let absolute_gap = gap(&plan(1.0, false), &plan(100.0, false));
    assert!(relative_gap < 1e-3, "relative temperature: plans differ by {relative_gap}");
    assert!(absolute_gap > 10.0 * relative_gap.max(1e-4), "absolute temperature: plans differ by only {absolute_gap}");
}
