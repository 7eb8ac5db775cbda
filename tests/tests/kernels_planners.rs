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
    let q = ami_planners::kernels::QuadEnergy { q: vec![1.0; 8], r: vec![0.01; 2], goal: wl.goal.clone().unwrap().to_vec() };
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
