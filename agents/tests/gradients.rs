//! The built-in tasks' true models and costs are differentiable: their
//! vector-Jacobian products and cost gradients match central finite
//! differences, so the gradient planner (GD) runs on every task.

use ami_agents::tasks::TaskKind;
use ami_core::Cost;
use ndarray::{Array1, Array2};

/// A reproducible pseudo-random number in [-1, 1).
fn noise(i: usize) -> f32 {
    let x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17) ^ 0x2545_f491_4f6c_dd1d;
    ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

/// States inside each task's smooth region (away from clipping and walls).
fn states(task: TaskKind, n: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, 4.min(3 + usize::from(task != TaskKind::Pendulum))), |(b, j)| {
        let r = noise(b * 7 + j);
        match (task, j) {
            (TaskKind::Pendulum, 0) => (r * 3.0).cos(),
            (TaskKind::Pendulum, 1) => (r * 3.0).sin(),
            (TaskKind::Pendulum, _) => r * 3.0,
            (TaskKind::CartPole, 0) => r,
            (TaskKind::CartPole, 2) => r * 0.15,
            (TaskKind::CartPole, _) => r * 0.5,
            (TaskKind::PointMass, 0 | 1) => r * 1.5,
            (TaskKind::PointMass, _) => r * 0.5,
        }
    })
}

fn actions(task: TaskKind, n: usize) -> Array2<f32> {
    let (a, scale) = match task {
        TaskKind::Pendulum => (1, 1.5),
        TaskKind::CartPole => (1, 8.0),
        TaskKind::PointMass => (2, 0.8),
    };
    Array2::from_shape_fn((n, a), |(b, j)| noise(1000 + b * 3 + j) * scale)
}

fn close(what: &str, analytic: f32, numeric: f64) {
    let tol = 2e-3 + 2e-2 * numeric.abs();
    assert!((f64::from(analytic) - numeric).abs() <= tol, "{what}: analytic {analytic}, finite difference {numeric}");
}

#[test]
fn task_models_vjp_matches_finite_differences() {
    for task in TaskKind::ALL {
        let spec = task.spec();
        let model = spec.model;
        let diff = model.differentiable().unwrap_or_else(|| panic!("{task}: not differentiable"));
        let n = 8;
        let (s, a) = (states(task, n), actions(task, n));
        let (sd, ad) = (model.state_dim(), model.action_dim());
        let g = Array2::from_shape_fn((n, sd), |(b, j)| noise(5000 + b * 5 + j));
        let (mut gs, mut ga) = (Array2::zeros((n, sd)), Array2::zeros((n, ad)));
        diff.vjp(s.view(), a.view(), g.view(), gs.view_mut(), ga.view_mut()).unwrap();
        // L(s, a) = sum g * f(s, a); dL/dx by central differences in f64.
        let loss = |s: &Array2<f32>, a: &Array2<f32>| -> f64 {
            let mut next = Array2::zeros((n, sd));
            model.predict(s.view(), a.view(), next.view_mut()).unwrap();
            next.iter().zip(g.iter()).map(|(&x, &w)| f64::from(x) * f64::from(w)).sum()
        };
        let h = 1e-2f32;
        for b in 0..n {
            for j in 0..sd {
                let (mut p, mut m) = (s.clone(), s.clone());
                p[[b, j]] += h;
                m[[b, j]] -= h;
                close(&format!("{task}: d/ds[{b},{j}]"), gs[[b, j]], (loss(&p, &a) - loss(&m, &a)) / (2.0 * f64::from(h)));
            }
            for j in 0..ad {
                let (mut p, mut m) = (a.clone(), a.clone());
                p[[b, j]] += h;
                m[[b, j]] -= h;
                close(&format!("{task}: d/da[{b},{j}]"), ga[[b, j]], (loss(&s, &p) - loss(&s, &m)) / (2.0 * f64::from(h)));
            }
        }
    }
}

#[test]
fn task_costs_have_gradients_that_match_finite_differences() {
    for task in TaskKind::ALL {
        let spec = task.spec();
        let cost: Cost = spec.cost;
        assert!(cost.is_differentiable(), "{task}");
        let n = 6;
        let (s, a) = (states(task, n), actions(task, n));
        let next = states(task, 2 * n).slice(ndarray::s![n.., ..]).to_owned();
        let (sd, ad) = (s.ncols(), a.ncols());
        let (mut gs, mut ga, mut gn) = (Array2::zeros((n, sd)), Array2::zeros((n, ad)), Array2::zeros((n, sd)));
        cost.add_step_gradient(0, s.view(), a.view(), next.view(), gs.view_mut(), ga.view_mut(), gn.view_mut()).unwrap();
        let energy = |s: &Array2<f32>, a: &Array2<f32>, x: &Array2<f32>| -> f64 {
            let mut e = Array1::zeros(n);
            cost.step_energy(0, s.view(), a.view(), x.view(), e.view_mut()).unwrap();
            e.iter().map(|&v| f64::from(v)).sum()
        };
        let h = 1e-2f32;
        for b in 0..n {
            for j in 0..sd {
                for (which, grad) in [("s", &gs), ("next", &gn)] {
                    let (mut sp, mut sm, mut xp, mut xm) = (s.clone(), s.clone(), next.clone(), next.clone());
                    if which == "s" {
                        sp[[b, j]] += h;
                        sm[[b, j]] -= h;
                    } else {
                        xp[[b, j]] += h;
                        xm[[b, j]] -= h;
                    }
                    let fd = (energy(&sp, &a, &xp) - energy(&sm, &a, &xm)) / (2.0 * f64::from(h));
                    close(&format!("{task}: d/d{which}[{b},{j}]"), grad[[b, j]], fd);
                }
            }
            for j in 0..ad {
                let (mut p, mut m) = (a.clone(), a.clone());
                p[[b, j]] += h;
                m[[b, j]] -= h;
                close(&format!("{task}: d/da[{b},{j}]"), ga[[b, j]], (energy(&s, &p, &next) - energy(&s, &m, &next)) / (2.0 * f64::from(h)));
            }
        }
    }
}
