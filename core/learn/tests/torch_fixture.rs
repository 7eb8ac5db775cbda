//! ami-learn against PyTorch: the fixtures of
//! `scripts/fixtures/torch_ensemble.py` (a K=2, S=3, A=1, SiLU [8, 8]
//! probabilistic ensemble saved by `safetensors.torch`, its float64
//! predictions, and one float32 Adam step of it and of a deterministic
//! twin). Loading, prediction, gradients, the Adam step and saving must
//! agree with PyTorch, and the file layout must round-trip both ways.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use ami_learn::{io, Activation, AdamConfig, Ensemble, EnsembleSpec, Normalizer, Trainer};
use ndarray::{Array1, Array2, Array3};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use serde_json::Value;

const K: usize = 2;
const S: usize = 3;
const A: usize = 1;
const H: usize = 8;
const NORM_KEYS: [&str; 4] = ["norm.input_mean", "norm.input_std", "norm.target_mean", "norm.target_std"];

fn fixture(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures")).join(name)
}

fn json(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every number of a (nested) JSON array, row-major.
fn numbers(v: &Value) -> Vec<f64> {
    fn walk(v: &Value, out: &mut Vec<f64>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Number(n) => out.push(n.as_f64().expect("a finite number")),
            other => panic!("expected numbers, found {other}"),
        }
    }
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

/// Numbers that the fixture documents as float32-exact.
fn f32s(v: &Value) -> Vec<f32> {
    numbers(v)
        .into_iter()
        .map(|x| {
            let f = x as f32;
            assert_eq!(f64::from(f), x, "{x} is not float32-exact");
            f
        })
        .collect()
}

fn array2(v: &Value, shape: (usize, usize)) -> Array2<f32> {
    Array2::from_shape_vec(shape, f32s(v)).expect("shape of the fixture")
}

fn array3(v: &Value, shape: (usize, usize, usize)) -> Array3<f32> {
    Array3::from_shape_vec(shape, f32s(v)).expect("shape of the fixture")
}

/// The state_dict key names in ami's flat order: member k, layer l,
/// `{k}.{2 l}.weight` then `{k}.{2 l}.bias`.
fn keys(spec: &EnsembleSpec) -> Vec<String> {
    (0..spec.members).flat_map(|k| (0..spec.layers()).flat_map(move |l| ["weight", "bias"].map(|s| format!("{k}.{}.{s}", 2 * l)))).collect()
}

/// The shape PyTorch gives tensor `key` (`{k}.{2 l}.weight|bias`) of `spec`.
fn torch_shape(spec: &EnsembleSpec, key: &str) -> Vec<usize> {
    let parts: Vec<&str> = key.split('.').collect();
    let l: usize = parts[1].parse::<usize>().unwrap() / 2;
    let dims = spec.dims();
    match parts[2] {
        "weight" => vec![dims[l + 1], dims[l]],
        _ => vec![dims[l + 1]],
    }
}

/// A `{key: flat list}` map (or `{key: {"shape", "data"}}` with `data`) as
/// ami's flat parameters, checking the key set is exactly the spec's.
fn flat_params(map: &Value, spec: &EnsembleSpec) -> Vec<f64> {
    let map = map.as_object().expect("an object keyed by state_dict key");
    let want = keys(spec);
    let mut have: Vec<&String> = map.keys().collect();
    have.sort();
    let mut sorted: Vec<&String> = want.iter().collect();
    sorted.sort();
    assert_eq!(have, sorted, "state_dict keys");
    let mut out = Vec::with_capacity(spec.members * spec.member_params());
    for key in &want {
        let entry = &map[key.as_str()];
        let data = match entry.get("data") {
            Some(d) => {
                let shape: Vec<usize> = numbers(&entry["shape"]).into_iter().map(|x| x as usize).collect();
                assert_eq!(shape, torch_shape(spec, key), "shape of {key}");
                d
            }
            None => entry,
        };
        let v = numbers(data);
        assert_eq!(v.len(), torch_shape(spec, key).iter().product::<usize>(), "length of {key}");
        out.extend(v);
    }
    assert_eq!(out.len(), spec.members * spec.member_params());
    out
}

/// The name of flat parameter `i` of `spec` (for failure messages).
fn param_name(spec: &EnsembleSpec, i: usize) -> String {
    let per = spec.member_params();
    let (k, j) = (i / per, i % per);
    let offsets = spec.offsets();
    let dims = spec.dims();
    for (l, &(wo, bo)) in offsets.iter().enumerate() {
        if j >= wo && j < bo {
            let (r, c) = ((j - wo) / dims[l], (j - wo) % dims[l]);
            return format!("{k}.{}.weight[{r}, {c}]", 2 * l);
        }
        if j >= bo && j < bo + dims[l + 1] {
            return format!("{k}.{}.bias[{}]", 2 * l, j - bo);
        }
    }
    unreachable!("parameter {i} outside the layout")
}

/// Worst `|got - want| - (abs + rel |want|)` over the elements: the test
/// passes when no element exceeds its tolerance.
fn assert_close(what: &str, spec: &EnsembleSpec, got: &[f32], want: &[f64], abs: f64, rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(g) - w).abs();
        let excess = err - (abs + rel * w.abs());
        if excess > 0.0 && worst.is_none_or(|(_, e)| excess > e) {
            worst = Some((i, excess));
        }
    }
    if let Some((i, _)) = worst {
        let bad = got.iter().zip(want).filter(|(&g, &w)| (f64::from(g) - w).abs() > abs + rel * w.abs()).count();
        panic!(
            "{what}: {bad} of {} elements outside {abs} abs + {rel} rel; worst {} = {} vs torch {} (error {:e})",
            got.len(),
            param_name(spec, i),
            got[i],
            want[i],
            (f64::from(got[i]) - want[i]).abs()
        );
    }
}

fn torch_file() -> Ensemble {
    io::load(&fixture("torch_ensemble.safetensors")).expect("the torch file loads")
}

#[test]
fn the_torch_file_loads_with_its_spec_and_normalisation() {
    let ens = torch_file();
    let spec = ens.spec();
    assert_eq!(
        *spec,
        EnsembleSpec {
            state_dim: S,
            action_dim: A,
            hidden: vec![H, H],
            activation: Activation::Silu,
            members: K,
            probabilistic: true,
            min_logvar: -10.0,
            max_logvar: 0.5,
        }
    );

    // The normalisation is the file's tensors (and the generator's values).
    let bytes = std::fs::read(fixture("torch_ensemble.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let tensor = |name: &str| -> Array1<f32> {
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), Dtype::F32, "{name}");
        t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    };
    let n = ens.norm();
    assert_eq!(n.input_mean, tensor("norm.input_mean"));
    assert_eq!(n.input_std, tensor("norm.input_std"));
    assert_eq!(n.target_mean, tensor("norm.target_mean"));
    assert_eq!(n.target_std, tensor("norm.target_std"));
    assert_eq!(n.input_mean.to_vec(), [0.25, -0.5, 1.0, 0.125]);
    assert_eq!(n.input_std.to_vec(), [1.5, 0.75, 2.0, 0.5]);
    assert_eq!(n.target_mean.to_vec(), [0.0625, -0.125, 0.03125]);
    assert_eq!(n.target_std.to_vec(), [0.5, 0.25, 2.0]);

    // Every layer is the file's tensor, [out, in] row-major.
    for k in 0..K {
        for l in 0..spec.layers() {
            let (w, b) = ens.layer(k, l);
            let tw = st.tensor(&format!("{k}.{}.weight", 2 * l)).unwrap();
            assert_eq!(w.shape(), tw.shape(), "{k}.{}.weight", 2 * l);
            assert_eq!(w.iter().copied().collect::<Array1<f32>>(), tensor(&format!("{k}.{}.weight", 2 * l)));
            assert_eq!(b.to_owned(), tensor(&format!("{k}.{}.bias", 2 * l)));
        }
    }
}

#[test]
fn member_predictions_match_torch_in_float64() {
    let ens = torch_file();
    let fx = json("torch_ensemble.json");
    let states = array2(&fx["states"], (5, S));
    let actions = array2(&fx["actions"], (5, A));
    let members = fx["members"].as_array().unwrap();
    assert_eq!(members.len(), K);
    let tol = 1e-5;
    for (k, m) in members.iter().enumerate() {
        let mut next = Array2::<f32>::zeros((5, S));
        let mut logvar = Array2::<f32>::zeros((5, S));
        ens.predict_member(k, states.view(), actions.view(), next.view_mut(), Some(logvar.view_mut()));
        for (name, got, want) in [("next_mean", &next, numbers(&m["next_mean"])), ("logvar", &logvar, numbers(&m["logvar"]))] {
            assert_eq!(want.len(), 5 * S);
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                let err = (f64::from(g) - w).abs() / w.abs().max(1.0);
                assert!(err <= tol, "member {k} {name}[{}, {}]: ami {g} vs torch {w} (relative/absolute error {err:e})", i / S, i % S);
            }
        }
    }
}

/// Gradient and one Adam step of `ens` on the fixture batch against
/// `loss`, `grads` and `params_after` of `fx`.
fn check_step(what: &str, ens: Ensemble, fx: &Value, step: &Value) {
    let spec = ens.spec().clone();
    let (b, i) = (step["B"].as_u64().unwrap() as usize, spec.input_dim());
    let xb = array3(&step["xb"], (K, b, i));
    let yb = array3(&step["yb"], (K, b, S));
    let adam = &step["adam"];
    assert_eq!((adam["lr"].as_f64(), adam["beta1"].as_f64(), adam["beta2"].as_f64(), adam["eps"].as_f64()), (Some(1e-3), Some(0.9), Some(0.999), Some(1e-8)));
    let cfg = AdamConfig { lr: 1e-3, ..AdamConfig::default() };
    assert_eq!((cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay), (0.9, 0.999, 1e-8, 0.0));

    let mut tr = Trainer::new(ens, cfg, 2);
    let (loss, grads) = tr.gradient(xb.view(), yb.view()).unwrap();
    let want_loss = fx["loss"].as_f64().unwrap();
    assert!((loss - want_loss).abs() <= 1e-5 + 1e-4 * want_loss.abs(), "{what}: loss {loss} vs torch {want_loss}");
    assert_close(&format!("{what}: gradient"), &spec, &grads, &flat_params(&fx["grads"], &spec), 1e-5, 1e-4);

    let step_loss = tr.step(xb.view(), yb.view()).unwrap();
    assert_eq!(step_loss, loss, "{what}: the step's loss is the loss before it");
    assert_eq!(tr.steps(), 1);
    assert_close(&format!("{what}: parameters after one Adam step"), &spec, tr.ensemble().params(), &flat_params(&fx["params_after"], &spec), 1e-6, 0.0);
}

#[test]
fn probabilistic_gradient_and_adam_step_match_torch() {
    let step = json("torch_ensemble_step.json");
    let ens = torch_file();
    assert_eq!(step["K"].as_u64(), Some(K as u64));
    assert_eq!(step["state_dim"].as_u64(), Some(S as u64));
    assert_eq!(step["action_dim"].as_u64(), Some(A as u64));
    assert_eq!(numbers(&step["hidden"]), [H as f64, H as f64]);
    assert_eq!((step["min_logvar"].as_f64(), step["max_logvar"].as_f64()), (Some(-10.0), Some(0.5)));
    // params_before (in ami's flat order by key) is the safetensors file.
    let before: Vec<f32> = flat_params(&step["params_before"], ens.spec()).into_iter().map(|x| x as f32).collect();
    assert_eq!(before, ens.params(), "params_before is the safetensors file");
    check_step("probabilistic", ens, &step, &step);
}

#[test]
fn deterministic_gradient_and_adam_step_match_torch() {
    let step = json("torch_ensemble_step.json");
    let det = &step["deterministic"];
    let spec = EnsembleSpec { activation: Activation::Silu, members: K, probabilistic: false, ..EnsembleSpec::new(S, A, vec![H, H]) };
    let params: Vec<f32> = flat_params(&det["state_dict"], &spec).into_iter().map(|x| x as f32).collect();
    let ens = Ensemble::from_params(spec.clone(), params, Normalizer::identity(spec.input_dim(), S)).unwrap();
    check_step("deterministic", ens, det, &step);
}

#[test]
fn saving_writes_the_torch_layout_and_reloads_the_same_ensemble() {
    let ens = torch_file();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("saved.safetensors");
    io::save(&ens, &path).unwrap();

    let torch_bytes = std::fs::read(fixture("torch_ensemble.safetensors")).unwrap();
    let ours_bytes = std::fs::read(&path).unwrap();
    let torch = SafeTensors::deserialize(&torch_bytes).unwrap();
    let ours = SafeTensors::deserialize(&ours_bytes).unwrap();

    let sorted = |st: &SafeTensors<'_>| {
        let mut v: Vec<String> = st.names().into_iter().map(String::from).collect();
        v.sort();
        v
    };
    let mut want: Vec<String> = keys(ens.spec()).into_iter().chain(NORM_KEYS.map(String::from)).collect();
    want.sort();
    assert_eq!(sorted(&torch), want, "the torch file's tensors");
    assert_eq!(sorted(&ours), want, "ami writes PyTorch's state_dict names");
    for name in &want {
        let (t, o) = (torch.tensor(name).unwrap(), ours.tensor(name).unwrap());
        assert_eq!(o.dtype(), Dtype::F32, "{name}");
        assert_eq!(o.dtype(), t.dtype(), "{name}");
        assert_eq!(o.shape(), t.shape(), "{name}");
        if !name.starts_with("norm.") {
            assert_eq!(o.shape(), torch_shape(ens.spec(), name), "{name}");
        }
        assert_eq!(o.data(), t.data(), "{name}: bytes");
    }

    let meta = |bytes: &[u8]| -> BTreeMap<String, String> {
        let (_, m) = SafeTensors::read_metadata(bytes).unwrap();
        m.metadata().clone().unwrap_or_else(HashMap::new).into_iter().collect()
    };
    assert_eq!(meta(&ours_bytes), meta(&torch_bytes), "metadata");

    assert_eq!(io::load(&path).unwrap(), ens, "ami's file loads back to the same ensemble");
}
