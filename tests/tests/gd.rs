//! The gradient planner: the dfdx path and the fused kernel give the same
//! action gradients, the generic and fused paths plan alike, and GD reaches
//! a known optimum.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ami_core::*;
use ami_learn::DfdxMlp;
use ami_planners::kernels::{Cpu, Isa, SeqBatch};
use ami_planners::mlp::Workload;
use ami_planners::*;
use ndarray::{array, Array3};

fn fixture(size: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/workload/workload_{size}.safetensors"))
}

fn actions(t: usize, b: usize, a: usize) -> Array3<f32> {
    Array3::from_shape_fn((t, b, a), |(t, i, j)| ((t * 31 + i * 7 + j * 3) as f32 * 0.37).sin() * 0.8)
}

#[test]
fn dfdx_and_the_fused_kernel_give_the_same_action_gradients() {
    for size in ["small", "medium"] {
        let wl = Workload::load(fixture(size)).unwrap();
        let net = wl.model.net();
        let (t, b, a) = (16, 5, net.action_dim());
        let acts = actions(t, b, a);
        let cost = wl.cost();
        let s0 = wl.s0.clone().unwrap();
        let dfdx = DfdxMlp::from_net(net);
        let (e_d, g_d) = energy_gradient(&dfdx, &cost, s0.view(), acts.view()).unwrap();
        let gmax = g_d.iter().fold(0.0f32, |m, g| m.max(g.abs()));
        for isa in Isa::available() {
            let cpu = Cpu::new(isa, 2).unwrap();
            let mut batch = SeqBatch::new(t, a, b);
            for ((tt, i, j), &v) in acts.indexed_iter() {
                batch.set(tt, j, i, v);
            }
            let q =
                ami_planners::kernels::QuadEnergy { q: vec![1.0; net.state_dim()], r: vec![0.01; a], goal: wl.goal.clone().unwrap().to_vec(), terminal: None };
            let mut e = vec![0.0; b];
            let mut g = SeqBatch::new(t, a, b);
            cpu.energies_grad(net, &q, s0.as_slice().unwrap(), &batch, &mut e, &mut g).unwrap();
            for i in 0..b {
                assert!((e[i] - e_d[i]).abs() <= 1e-4 * e_d[i].abs(), "{size} {isa}: energy {} vs dfdx {}", e[i], e_d[i]);
            }
            for ((tt, i, j), &gd) in g_d.indexed_iter() {
                let gk = g.get(tt, j, i);
                assert!((gk - gd).abs() <= 1e-4 * gmax, "{size} {isa}: d E / d a[{tt}][{i}][{j}] = {gk} (kernel) vs {gd} (dfdx), max |g| {gmax}");
            }
        }
    }
}

fn gd_plan(model: &dyn WorldModel, cost: &Cost, s0: ndarray::ArrayView1<'_, f32>, fast: bool, threads: usize) -> Plan {
    let mut gd = Gd::new(GdConfig::default(), Bounds::symmetric(model.action_dim(), 1.0)).unwrap();
    gd.set_fast_path(fast);
    gd.set_backend(Arc::new(Cpu::with_threads(threads)));
    gd.reset(3);
    gd.plan(&PlanRequest::new(model, cost, s0)).unwrap()
}

#[test]
fn gd_generic_dfdx_and_fused_paths_plan_alike() {
    let wl = Workload::load(fixture("small")).unwrap();
    let cost = wl.cost();
    let s0 = wl.s0.clone().unwrap();
    let fused = gd_plan(&wl.model, &cost, s0.view(), true, 2);
    let generic = gd_plan(&wl.model, &cost, s0.view(), false, 2);
    let dfdx = DfdxMlp::from_net(wl.model.net());
    let via_dfdx = gd_plan(&dfdx, &cost, s0.view(), true, 2);
    let zero = Rollout::energy_of(&wl.model, &cost, s0.view(), &ndarray::Array2::zeros((16, 2))).unwrap();
    for p in [&fused, &generic, &via_dfdx] {
        assert!(p.actions.iter().all(|v| v.abs() <= 1.0));
        assert!(p.energy < 0.8 * zero, "GD lowered the energy: {} vs zero-action {zero}", p.energy);
        assert!((p.energy - fused.energy).abs() < 1e-3 * fused.energy, "{} vs fused {}", p.energy, fused.energy);
    }
    // Same seed, any thread count: bit-identical fused plans.
    let one = gd_plan(&wl.model, &cost, s0.view(), true, 1);
    assert_eq!(one.actions, fused.actions);
    assert_eq!(fused.iterations, 25);
}

#[test]
fn gd_reaches_the_optimum_of_a_linear_quadratic_problem() {
    // s' = s + a (1-D), cost (s' - 1)^2 over 2 steps: the optimum puts the
    // state at 1 after the first step: a = [1, 0].
    let model = LinearModel::new(array![[1.0]], array![[1.0]]).unwrap();
    let mut cost = Cost::new();
    cost.add_intrinsic(Arc::new(GoalDistance::new(1)), 1.0).unwrap();
    cost.set_goal(Some(array![1.0]));
    let mut gd = Gd::new(GdConfig { horizon: 2, samples: 4, steps: 300, ..GdConfig::default() }, Bounds::symmetric(1, 2.0)).unwrap();
    gd.reset(0);
    let s0 = array![0.0];
    let p = gd.plan(&PlanRequest::new(&model, &cost, s0.view())).unwrap();
    assert!((p.actions[[0, 0]] - 1.0).abs() < 1e-2 && p.actions[[1, 0]].abs() < 1e-2, "{:?}", p.actions);
    assert!(p.energy < 1e-3);
    // A model without gradients and no fast path is a clear error.
    struct Opaque(LinearModel);
    impl WorldModel for Opaque {
        fn state_dim(&self) -> usize {
            1
        }
        fn action_dim(&self) -> usize {
            1
        }
        fn predict(&self, s: ndarray::ArrayView2<'_, f32>, a: ndarray::ArrayView2<'_, f32>, n: ndarray::ArrayViewMut2<'_, f32>) -> ami_core::Result<()> {
            self.0.predict(s, a, n)
        }
    }
    let err = gd.plan(&PlanRequest::new(&Opaque(model), &cost, s0.view())).unwrap_err();
    assert!(err.to_string().contains("not differentiable"), "{err}");
    assert!(Gd::new(GdConfig { lr: 0.0, ..GdConfig::default() }, Bounds::symmetric(1, 1.0)).err().unwrap().to_string().contains("gd.lr"));
}
