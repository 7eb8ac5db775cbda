//! The planners' fused fast path: it is taken for residual MLPs with a
//! quadratic cost, agrees with the generic path, is bit-identical for any
//! thread count, and never returns NaN actions when the model blows up.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ami_core::*;
use ami_planners::kernels::{Cpu, Isa, Layer};
use ami_planners::mlp::{MlpWorldModel, Workload};
use ami_planners::*;
use ndarray::{Array1, Array2, Array3};

fn fixture(size: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/workload/workload_{size}.safetensors"))
}

fn planners(a: usize, cpu: &Arc<Cpu>, fast: bool) -> Vec<Box<dyn Planner>> {
    let b = Bounds::symmetric(a, 1.0);
    let mut cem = Cem::new(CemConfig::default(), b.clone()).unwrap();
    cem.set_backend(cpu.clone());
    cem.set_fast_path(fast);
    let mut mppi = Mppi::new(MppiConfig::default(), b.clone()).unwrap();
    mppi.set_backend(cpu.clone());
    mppi.set_fast_path(fast);
    let mut gd = Gd::new(GdConfig::default(), b).unwrap();
    gd.set_backend(cpu.clone());
    gd.set_fast_path(fast);
    vec![Box::new(cem), Box::new(mppi), Box::new(gd)]
}

#[test]
fn fused_energies_equal_the_generic_rollout() {
    let wl = Workload::load(fixture("small")).unwrap();
    let cost = wl.cost();
    let s0 = wl.s0.clone().unwrap();
    let n = 45;
    let acts = Array3::from_shape_fn((16, n, 2), |(t, i, j)| ((t * 13 + i * 5 + j) as f32 * 0.77).sin());
    let mut e_generic = Array1::zeros(n);
    Rollout::new().energies(&wl.model, &cost, s0.view(), acts.view(), &mut e_generic).unwrap();
    let (e_fused, _) = energy_gradient(&wl.model, &cost, s0.view(), acts.view()).unwrap();
    let q = ami_planners::kernels::QuadEnergy { q: vec![1.0; 8], r: vec![0.01; 2], goal: wl.goal.clone().unwrap().to_vec(), terminal: None };
    for isa in Isa::available() {
        let cpu = Cpu::new(isa, 2).unwrap();
        let mut batch = ami_planners::kernels::SeqBatch::new(16, 2, n);
        for ((t, i, j), &v) in acts.indexed_iter() {
            batch.set(t, j, i, v);
        }
        let mut e = vec![0.0; n];
        cpu.energies(wl.model.net(), &q, s0.as_slice().unwrap(), &batch, &mut e).unwrap();
        for i in 0..n {
            assert!((e[i] - e_generic[i]).abs() < 1e-4 * e_generic[i], "{isa}: {} vs {}", e[i], e_generic[i]);
            assert!((e_fused[i] - e_generic[i]).abs() < 1e-4 * e_generic[i]);
        }
    }
}

#[test]
fn fast_path_plans_are_good_deterministic_and_thread_count_independent() {
    let wl = Workload::load(fixture("small")).unwrap();
    let cost = wl.cost();
    let s0 = wl.s0.clone().unwrap();
    let zero = Rollout::energy_of(&wl.model, &cost, s0.view(), &Array2::zeros((16, 2))).unwrap();
    let one = Arc::new(Cpu::with_threads(1));
    let three = Arc::new(Cpu::with_threads(3));
    let scalar = Arc::new(Cpu::new(Isa::Scalar, 2).unwrap());
    let req = PlanRequest::new(&wl.model, &cost, s0.view());
    for ((mut p1, mut p3), (mut ps, mut pg)) in
        planners(2, &one, true).into_iter().zip(planners(2, &three, true)).zip(planners(2, &scalar, true).into_iter().zip(planners(2, &one, false)))
    {
        p1.reset(5);
        p3.reset(5);
        ps.reset(5);
        pg.reset(5);
        let (a, b, s, g) = (p1.plan(&req).unwrap(), p3.plan(&req).unwrap(), ps.plan(&req).unwrap(), pg.plan(&req).unwrap());
        let name = p1.name().to_string();
        assert_eq!(a.actions, b.actions, "{name}: the plan depends on the thread count");
        // The scalar reference follows the same noise: the plans agree closely.
        let diff = a.actions.iter().zip(s.actions.iter()).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff < 1e-2, "{name}: SIMD and scalar plans differ by {diff}");
        for p in [&a, &g] {
            assert!(p.actions.iter().all(|v| v.abs() <= 1.0));
            assert!(p.energy < 0.85 * zero, "{name}: energy {} vs zero-action {zero}", p.energy);
        }
        // Warm start: the second call starts from the shifted first plan.
        p1.reset(5);
        p1.plan(&req).unwrap();
        let second = p1.plan(&req).unwrap();
        assert!(second.energy.is_finite());
        // Repeating with the same seed gives the same plan.
        p3.reset(5);
        assert_eq!(p3.plan(&req).unwrap().actions, a.actions, "{name}: not deterministic");
    }
}

/// A ReLU MLP critic over the workload's 8-wide states, with a non-trivial
/// normalisation.
fn mlp_critic(seed: u64) -> ami_learn::MlpCritic {
    use rand::Rng;
    let c = ami_learn::MlpCritic::new("v", 8, vec![24, 24], ami_learn::Activation::Relu, seed).unwrap();
    let mut net = c.ensemble().clone();
    let mut rng = ami_core::rng::rng(seed);
    let x = Array2::from_shape_fn((64, 8), |_| rng.gen_range(-1.0f32..1.0));
    let y = Array2::from_shape_fn((64, 1), |_| rng.gen_range(0.0f32..20.0));
    net.set_norm(ami_learn::Normalizer::fit(x.view(), y.view()));
    ami_learn::MlpCritic::from_ensemble("v", net).unwrap()
}

#[test]
fn an_mlp_critic_stays_on_the_fused_path_with_the_generic_energies() {
    let wl = Workload::load(fixture("small")).unwrap();
    let mut cost = wl.cost();
    cost.add_critic(Box::new(mlp_critic(3)), 0.5).unwrap();
    let s0 = wl.s0.clone().unwrap();
    let n = 40;
    let acts = Array3::from_shape_fn((16, n, 2), |(t, i, j)| ((t * 7 + i * 3 + j) as f32 * 0.61).sin());
    let req = PlanRequest::new(&wl.model, &cost, s0.view());
    let fused = ami_planners::fast::fused_energies(&req, acts.view()).expect("an MLP critic has a fused form").unwrap();
    let mut generic = Array1::zeros(n);
    Rollout::new().energies(&wl.model, &cost, s0.view(), acts.view(), &mut generic).unwrap();
    let mut plain = Array1::zeros(n);
    Rollout::new().energies(&wl.model, &wl.cost(), s0.view(), acts.view(), &mut plain).unwrap();
    for i in 0..n {
        assert!((fused[i] - generic[i]).abs() < 1e-4 * generic[i].abs().max(1.0), "sequence {i}: fused {} vs generic {}", fused[i], generic[i]);
        assert!((generic[i] - plain[i]).abs() > 1e-3, "the critic is in the energy");
    }
    // Every planner plans as well on the fused path as on the generic one
    // (GD differentiates through the critic in the kernels).
    let one = Arc::new(Cpu::with_threads(1));
    let zero = Rollout::energy_of(&wl.model, &cost, s0.view(), &Array2::zeros((16, 2))).unwrap();
    for (mut f, mut g) in planners(2, &one, true).into_iter().zip(planners(2, &one, false)) {
        f.reset(1);
        g.reset(1);
        let (pf, pg) = (f.plan(&req).unwrap(), g.plan(&req).unwrap());
        let name = f.name().to_string();
        let ef = Rollout::energy_of(&wl.model, &cost, s0.view(), &pf.actions).unwrap();
        assert!((ef - pf.energy).abs() < 1e-3 * ef.abs().max(1.0), "{name}: the fused plan's energy {} is its generic energy {ef}", pf.energy);
        assert!(pf.energy < 0.9 * zero && pg.energy < 0.9 * zero, "{name}: fused {} generic {} zero-action {zero}", pf.energy, pg.energy);
        assert!((pf.energy - pg.energy).abs() < 0.05 * pg.energy.abs(), "{name}: fused {} vs generic {}", pf.energy, pg.energy);
    }
    // A critic the kernels cannot run, or two critics: the generic path.
    let mut quad = wl.cost();
    quad.add_critic(Box::new(QuadraticCritic::new("q", vec![1.0; 8])), 1.0).unwrap();
    assert!(ami_planners::fast::fused_energies(&PlanRequest::new(&wl.model, &quad, s0.view()), acts.view()).is_none());
    let mut two = wl.cost();
    two.add_critic(Box::new(mlp_critic(3)), 0.5).unwrap();
    two.add_critic(Box::new(ami_learn::MlpCritic::from_ensemble("w", mlp_critic(4).ensemble().clone()).unwrap()), 0.5).unwrap();
    assert!(ami_planners::fast::fused_energies(&PlanRequest::new(&wl.model, &two, s0.view()), acts.view()).is_none());
}

/// `s' = s + 1e30 * 1e30 * relu(a_0)`: infinite for positive first actions.
fn exploding(nan_everywhere: bool) -> MlpWorldModel {
    let (s, a) = (2, 2);
    let mut w1 = vec![0.0; 3 * (s + a)];
    w1[s] = 1e30; // hidden 0 <- a_0
    w1[(s + a) + 1] = 0.5; // hidden 1 <- s_1
    let b1 = vec![0.0, 0.1, 0.0];
    let mut w2 = vec![0.0; s * 3];
    w2[0] = 1e30;
    w2[3 + 1] = 0.1;
    let b2 = if nan_everywhere { vec![f32::NAN, 0.0] } else { vec![0.0, 0.0] };
    MlpWorldModel::from_layers(s, a, vec![Layer::new(3, s + a, w1, b1).unwrap(), Layer::new(s, 3, w2, b2).unwrap()]).unwrap()
}

#[test]
fn a_model_that_emits_inf_or_nan_never_yields_nan_actions() {
    let mut cost = Cost::new();
    cost.add_intrinsic(Arc::new(ami_planners::mlp::goal_energy(2, 2)), 1.0).unwrap();
    cost.set_goal(Some(ndarray::array![0.5, 0.5]));
    let s0 = ndarray::array![0.0, 0.0];
    let cpu = Arc::new(Cpu::with_threads(2));
    let half = exploding(false);
    let all = exploding(true);
    for fast in [true, false] {
        for mut p in planners(2, &cpu, fast) {
            p.reset(1);
            let name = p.name().to_string();
            match p.plan(&PlanRequest::new(&half, &cost, s0.view())) {
                Ok(plan) => {
                    assert!(plan.actions.iter().all(|v| v.is_finite()), "{name} (fast {fast}): NaN action");
                    assert!(plan.energy.is_finite(), "{name} (fast {fast}): energy {}", plan.energy);
                }
                Err(e) => assert!(matches!(e, CoreError::NonFinite { .. }), "{name}: {e}"),
            }
            p.reset(1);
            let err = p.plan(&PlanRequest::new(&all, &cost, s0.view())).unwrap_err();
            assert!(matches!(err, CoreError::NonFinite { .. }), "{name} (fast {fast}): {err}");
        }
    }
}
