//! The trainable ensemble: gradients against finite differences, thread
//! invariance, the fast-path export, save/load, fitting and the NaN guard.

use ami_core::WorldModel;
use ami_learn::{fit, io, Activation, AdamConfig, Dataset, Ensemble, EnsembleSpec, FitConfig, LearnedModel, Propagation, Trainer};
use ndarray::{Array2, Array3};
use rand::Rng;

fn spec(act: Activation, prob: bool, members: usize) -> EnsembleSpec {
    EnsembleSpec { activation: act, probabilistic: prob, members, ..EnsembleSpec::new(3, 2, vec![7, 6]) }
}

fn batch(k: usize, b: usize, seed: u64) -> (Array3<f32>, Array3<f32>) {
    let mut rng = ami_core::rng::rng(seed);
    (Array3::from_shape_fn((k, b, 5), |_| rng.gen_range(-1.5f32..1.5)), Array3::from_shape_fn((k, b, 3), |_| rng.gen_range(-1.0f32..1.0)))
}

#[test]
fn gradients_match_central_finite_differences() {
    for act in [Activation::Relu, Activation::Silu] {
        for prob in [false, true] {
            let ens = Ensemble::new(spec(act, prob, 2), 3).unwrap();
            let (x, y) = batch(2, 5, 9);
            let tr = Trainer::new(ens.clone(), AdamConfig::default(), 1);
            let (_, g) = tr.gradient(x.view(), y.view()).unwrap();
            let mut worst = 0.0f64;
            for i in (0..ens.params().len()).step_by(7) {
                let h = 2e-3f32;
                let mut up = ens.params().to_vec();
                up[i] += h;
                let mut dn = ens.params().to_vec();
                dn[i] -= h;
                let l = |p: Vec<f32>| {
                    Trainer::new(Ensemble::from_params(ens.spec().clone(), p, ens.norm().clone()).unwrap(), AdamConfig::default(), 1)
                        .loss(x.view(), y.view())
                        .unwrap()
                };
                let fd = (l(up) - l(dn)) / (2.0 * f64::from(h));
                let err = (fd - f64::from(g[i])).abs() / fd.abs().max(0.05);
                worst = worst.max(err);
            }
            assert!(worst < 2e-2, "{act:?} probabilistic={prob}: worst relative error {worst}");
        }
    }
}

#[test]
fn learned_weights_do_not_depend_on_the_thread_count() {
    let (x, y) = batch(3, 33, 1);
    let run = |threads| {
        let mut tr = Trainer::new(Ensemble::new(spec(Activation::Silu, true, 3), 5).unwrap(), AdamConfig::default(), threads);
        for _ in 0..5 {
            tr.step(x.view(), y.view()).unwrap();
        }
        tr.ensemble().params().to_vec()
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(3));
}

#[test]
fn relu_members_export_to_the_fused_kernels_with_normalisation_folded_in() {
    let (x, y) = batch(1, 64, 2);
    let mut ens = Ensemble::new(spec(Activation::Relu, true, 1), 4).unwrap();
    let d = Dataset { inputs: x.index_axis(ndarray::Axis(0), 0).to_owned() * 3.0 + 1.0, targets: y.index_axis(ndarray::Axis(0), 0).to_owned() * 0.1 };
    ens.set_norm(ami_learn::Normalizer::fit(d.inputs.view(), d.targets.view()));
    let states = d.inputs.slice(ndarray::s![..10, ..3]).to_owned();
    let actions = d.inputs.slice(ndarray::s![..10, 3..]).to_owned();
    let mut want = Array2::zeros((10, 3));
    ens.predict_member(0, states.view(), actions.view(), want.view_mut(), None);
    let model = LearnedModel::new(ens, Propagation::TrajectorySampling, 0.0);
    assert!(model.accelerated().is_some(), "a single ReLU member is a fast-path model");
    let mut got = Array2::zeros((10, 3));
    model.predict(states.view(), actions.view(), got.view_mut()).unwrap();
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn save_and_load_round_trip_bit_for_bit_and_refuse_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let mut ens = Ensemble::new(spec(Activation::Silu, true, 2), 8).unwrap();
    let (x, y) = batch(1, 20, 3);
    ens.set_norm(ami_learn::Normalizer::fit(x.index_axis(ndarray::Axis(0), 0), y.index_axis(ndarray::Axis(0), 0)));
    io::save(&ens, &path).unwrap();
    assert_eq!(io::load(&path).unwrap(), ens);
    // The same weights give the same file, byte for byte (the metadata's
    // keys are sorted, not in hash order).
    let first = std::fs::read(&path).unwrap();
    for _ in 0..8 {
        io::save(&ens, &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), first);
    }
    // A truncated file, and one whose bias has the wrong length.
    let bytes = std::fs::read(&path).unwrap();
    let err = io::from_bytes(&bytes[..bytes.len() - 10], &path).unwrap_err().to_string();
    assert!(err.contains("m.safetensors") && err.contains("not a safetensors file"), "{err}");
    // A file of another shape loads as that shape, not as this one.
    let other = Ensemble::new(EnsembleSpec { hidden: vec![7, 5], ..spec(Activation::Silu, true, 2) }, 1).unwrap();
    let p2 = dir.path().join("other.safetensors");
    io::save(&other, &p2).unwrap();
    assert_eq!(io::load(&p2).unwrap().spec().hidden, vec![7, 5]);
    let err = io::load(&dir.path().join("missing.safetensors")).unwrap_err().to_string();
    assert!(err.contains("missing.safetensors"), "{err}");
}

#[test]
fn fitting_lowers_held_out_error_and_keeps_a_finite_model() {
    // s' = s + 0.1 * tanh(W [s, a]): a smooth map to learn.
    let mut rng = ami_core::rng::rng(11);
    let n = 600;
    let states = Array2::from_shape_fn((n, 3), |_| rng.gen_range(-1.0f32..1.0));
    let actions = Array2::from_shape_fn((n, 2), |_| rng.gen_range(-1.0f32..1.0));
    let next = Array2::from_shape_fn((n, 3), |(i, j)| states[[i, j]] + 0.1 * (states[[i, (j + 1) % 3]] * 2.0 + actions[[i, j % 2]]).tanh());
    let data = Dataset::new(states.view(), actions.view(), next.view()).unwrap();
    let mut tr = Trainer::new(Ensemble::new(spec(Activation::Silu, false, 2), 0).unwrap(), AdamConfig { lr: 3e-3, ..AdamConfig::default() }, 2);
    let cfg = FitConfig { epochs: 1, batch: 32, seed: 1, ..FitConfig::default() };
    let first = fit(&mut tr, &data, &cfg, &mut |_, _, _| {}).unwrap();
    let cfg = FitConfig { epochs: 60, ..cfg };
    let mut epochs = 0;
    let later = fit(&mut tr, &data, &cfg, &mut |_, _, _| epochs += 1).unwrap();
    assert_eq!(epochs, 60);
    let (a, b) = (first.val_mse.unwrap(), later.val_mse.unwrap());
    assert!(b < 0.05 * a && b < 0.01, "held-out mse {a} -> {b}");
    assert!(tr.ensemble().is_finite() && later.rejected.is_none());
}

#[test]
fn a_non_finite_batch_never_replaces_the_last_good_model() {
    let ens = Ensemble::new(spec(Activation::Relu, false, 1), 0).unwrap();
    let mut tr = Trainer::new(ens.clone(), AdamConfig::default(), 1);
    let (x, mut y) = batch(1, 8, 0);
    y[[0, 3, 1]] = f32::NAN;
    let err = tr.step(x.view(), y.view()).unwrap_err().to_string();
    assert!(err.contains("non-finite loss") && err.contains("not updated"), "{err}");
    assert_eq!(tr.ensemble(), &ens);
    // Through fit: a dataset with an infinite target stops with the model kept.
    let states = Array2::from_shape_fn((40, 3), |(i, j)| (i + j) as f32 * 0.01);
    let actions = Array2::zeros((40, 2));
    let mut next = states.clone();
    next[[5, 0]] = f32::INFINITY;
    let data = Dataset::new(states.view(), actions.view(), next.view()).unwrap();
    let r = fit(&mut tr, &data, &FitConfig { epochs: 3, batch: 8, holdout: 0.0, ..FitConfig::default() }, &mut |_, _, _| {}).unwrap();
    assert_eq!(r.dropped, 1, "{r:?}");
    assert!(r.rejected.is_none() && r.steps > 0, "{r:?}");
    assert!(tr.ensemble().is_finite());
    // A learning rate that blows the weights up: the fit reports it and
    // keeps the last finite epoch.
    let mut wild = Trainer::new(ens.clone(), AdamConfig { lr: 1e30, ..AdamConfig::default() }, 1);
    let next = Array2::from_shape_fn((40, 3), |(i, j)| ((i * j) as f32).sin() * 1e20);
    let data = Dataset::new(states.view(), actions.view(), next.view()).unwrap();
    let r = fit(&mut wild, &data, &FitConfig { epochs: 20, batch: 8, holdout: 0.0, ..FitConfig::default() }, &mut |_, _, _| {}).unwrap();
    assert!(r.rejected.is_some(), "{r:?}");
    assert!(wild.ensemble().is_finite());
}

#[test]
fn propagation_names_parse_and_a_wrong_one_lists_the_choices() {
    assert_eq!(Propagation::parse("ts1").unwrap(), Propagation::TrajectorySampling1);
    assert_eq!(Propagation::parse("ts_inf").unwrap(), Propagation::TrajectorySampling);
    assert_eq!(Propagation::parse("ts").unwrap(), Propagation::TrajectorySampling, "`ts` is kept as TS-inf's older name");
    assert_eq!(Propagation::parse("mean").unwrap(), Propagation::Mean);
    assert_eq!(Propagation::default(), Propagation::TrajectorySampling1);
    let err = Propagation::parse("ts2").unwrap_err().to_string();
    assert!(err.contains("propagation") && err.contains("`ts2`") && err.contains("ts1, ts_inf or mean"), "{err}");
}
