//! The residual MLP world model: loading safetensors (the workload files and
//! any depth), clear errors for bad files, and agreement with an f64
//! reference.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ami_core::*;
use ami_planners::mlp::{goal_energy, MlpWorldModel, Workload};
use ami_planners::*;
use ndarray::{Array1, Array2};

fn fixture(size: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/workload/workload_{size}.safetensors"))
}

/// Writes a safetensors file of f32 tensors.
fn write(path: &Path, tensors: &[(&str, Vec<usize>, Vec<f32>)], meta: &[(&str, &str)], dtype: &str) {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, v) in tensors {
        let b = data.len();
        for x in v {
            data.extend_from_slice(&x.to_le_bytes());
        }
        header.insert((*name).into(), serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [b, data.len()]}));
    }
    let m: serde_json::Map<String, serde_json::Value> = meta.iter().map(|(k, v)| ((*k).into(), serde_json::Value::String((*v).into()))).collect();
    header.insert("__metadata__".into(), serde_json::Value::Object(m));
    let h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&h);
    bytes.extend_from_slice(&data);
    std::fs::write(path, bytes).unwrap();
}

fn as_refs(t: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<(&str, Vec<usize>, Vec<f32>)> {
    t.iter().map(|(n, s, v)| (n.as_str(), s.clone(), v.clone())).collect()
}

fn ramp(n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|i| ((i as f32 * 0.618).fract() - 0.5) * scale).collect()
}

#[test]
fn the_workload_files_load_with_their_sizes_and_zero_action_energy() {
    for (size, s, a, h, zero) in [("small", 8, 2, 64, 799.4725), ("medium", 32, 8, 256, 1067.8082), ("large", 64, 16, 512, 1967.119)] {
        let wl = Workload::load(fixture(size)).unwrap();
        let net = wl.model.net();
        assert_eq!((net.state_dim(), net.action_dim(), net.layers().len(), net.layers()[0].out), (s, a, 3, h), "{size}");
        assert_eq!(wl.horizon(), Some(16));
        let s0 = wl.s0.clone().unwrap();
        let cost = wl.cost();
        assert_eq!(cost.as_quadratic(s, a), Some((vec![1.0; s], vec![0.01; a])));
        // Zero-action energy through the generic calls, against the peers' figure.
        let e = Rollout::energy_of(&wl.model, &cost, s0.view(), &Array2::zeros((16, a))).unwrap();
        assert!((f64::from(e) - zero).abs() < 1e-3 * zero, "{size}: {e} vs {zero}");
    }
}

#[test]
fn predict_and_vjp_agree_with_the_f64_reference_and_dfdx() {
    let wl = Workload::load(fixture("small")).unwrap();
    let m = &wl.model;
    let n = 37;
    let states = Array2::from_shape_vec((n, 8), ramp(n * 8, 2.0)).unwrap();
    let actions = Array2::from_shape_vec((n, 2), ramp(n * 2, 1.8)).unwrap();
    let mut next = Array2::zeros((n, 8));
    m.predict(states.view(), actions.view(), next.view_mut()).unwrap();
    let d = ami_learn::DfdxMlp::from_net(m.net());
    let mut next_d = Array2::zeros((n, 8));
    d.predict(states.view(), actions.view(), next_d.view_mut()).unwrap();
    for i in 0..n {
        let s: Vec<f64> = states.row(i).iter().map(|&v| f64::from(v)).collect();
        let a: Vec<f64> = actions.row(i).iter().map(|&v| f64::from(v)).collect();
        let r = m.net().step_f64(&s, &a);
        for k in 0..8 {
            assert!((f64::from(next[[i, k]]) - r[k]).abs() < 1e-5 * r[k].abs().max(1.0));
            assert!((f64::from(next_d[[i, k]]) - r[k]).abs() < 1e-5 * r[k].abs().max(1.0));
        }
    }
    let gn = Array2::from_shape_vec((n, 8), ramp(n * 8, 1.0)).unwrap();
    let (mut gs1, mut ga1) = (Array2::zeros((n, 8)), Array2::zeros((n, 2)));
    let (mut gs2, mut ga2) = (Array2::zeros((n, 8)), Array2::zeros((n, 2)));
    m.vjp(states.view(), actions.view(), gn.view(), gs1.view_mut(), ga1.view_mut()).unwrap();
    d.vjp(states.view(), actions.view(), gn.view(), gs2.view_mut(), ga2.view_mut()).unwrap();
    for (x, y) in gs1.iter().chain(ga1.iter()).zip(gs2.iter().chain(ga2.iter())) {
        assert!((x - y).abs() < 1e-5 * x.abs().max(1.0), "{x} vs {y}");
    }
}

#[test]
fn any_depth_loads_and_bad_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (s, a) = (3, 2);
    // A depth-4 residual MLP: 5 -> 7 -> 6 -> 4 -> 3.
    let widths = [s + a, 7, 6, 4, s];
    let mut tensors = Vec::new();
    for k in 0..4 {
        tensors.push((format!("W{}", k + 1), vec![widths[k + 1], widths[k]], ramp(widths[k + 1] * widths[k], 1.0)));
        tensors.push((format!("b{}", k + 1), vec![widths[k + 1]], ramp(widths[k + 1], 0.1)));
    }
    let good = dir.path().join("deep.safetensors");
    write(&good, &as_refs(&tensors), &[("S", "3")], "F32");
    let m = MlpWorldModel::load(&good).unwrap();
    assert_eq!(m.net().layers().len(), 4);
    assert_eq!((m.state_dim(), m.action_dim()), (3, 2));
    let x = m.net().step_f64(&[0.1, 0.2, 0.3], &[0.5, -0.5]);
    let mut next = Array2::zeros((1, 3));
    m.predict(ndarray::array![[0.1, 0.2, 0.3]].view(), ndarray::array![[0.5, -0.5]].view(), next.view_mut()).unwrap();
    for k in 0..3 {
        assert!((f64::from(next[[0, k]]) - x[k]).abs() < 1e-5);
    }

    let err = |tensors: &[(String, Vec<usize>, Vec<f32>)], meta: &[(&str, &str)], dtype: &str| {
        let p = dir.path().join("bad.safetensors");
        write(&p, &as_refs(tensors), meta, dtype);
        let e = Workload::load(&p).unwrap_err().to_string();
        assert!(e.contains("bad.safetensors"), "the error names the file: {e}");
        e
    };
    let mut missing = tensors.clone();
    missing.retain(|t| t.0 != "b2");
    assert!(err(&missing, &[], "F32").contains("`b2` is missing"));
    let mut shape = tensors.clone();
    shape[2].1 = vec![6, 6];
    shape[2].2 = ramp(36, 1.0);
    let e = err(&shape, &[], "F32");
    assert!(e.contains("`W2`") && e.contains("expected 7 inputs"), "{e}");
    let mut bias = tensors.clone();
    bias[1].1 = vec![8];
    bias[1].2 = ramp(8, 1.0);
    assert!(err(&bias, &[], "F32").contains("tensor `b1`: expected shape [7]"));
    assert!(err(&tensors, &[], "F16").contains("dtype F16"));
    assert!(err(&tensors, &[("S", "4")], "F32").contains("metadata S"));
    assert!(err(&[], &[], "F32").contains("`W1` is missing"));
    // A truncated file.
    let p = dir.path().join("short.safetensors");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 10]).unwrap();
    let e = Workload::load(&p).unwrap_err().to_string();
    assert!(e.contains("short.safetensors") && e.contains("outside"), "{e}");
    std::fs::write(&p, b"nope").unwrap();
    assert!(Workload::load(&p).unwrap_err().to_string().contains("too short"));
    assert!(Workload::load(dir.path().join("absent.safetensors")).unwrap_err().to_string().contains("absent.safetensors"));
}

#[test]
fn goal_energy_is_the_workload_cost() {
    let c = goal_energy(2, 1);
    let mut cost = Cost::new();
    cost.add_intrinsic(Arc::new(c), 1.0).unwrap();
    cost.set_goal(Some(ndarray::array![1.0, 0.0]));
    let mut e = Array1::zeros(1);
    let s = ndarray::array![[0.0, 0.0]];
    cost.step_energy(0, s.view(), ndarray::array![[2.0]].view(), ndarray::array![[3.0, 1.0]].view(), e.view_mut()).unwrap();
    assert!((e[0] - (4.0 + 1.0 + 0.04)).abs() < 1e-6);
}
