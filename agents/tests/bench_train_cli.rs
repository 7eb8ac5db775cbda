//! `ami bench --train`: the training yardstick's JSON line, with ami's own
//! data and with a `--data` file (`scripts/peers/train_data.py`'s layout),
//! and the refusals of a bad `--data` file (exit 2, naming the file and
//! the tensor).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use safetensors::tensor::{Dtype, TensorView};

fn ami(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ami")).args(args).output().expect("run ami")
}

fn json_line(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    serde_json::from_str(stdout.lines().last().expect("a line")).expect("one JSON line")
}

#[test]
fn train_bench_prints_the_peers_fields() {
    let out = ami(&["bench", "--train", "--steps", "2", "--width", "16", "--layers", "1", "--members", "2", "--batch", "8", "--threads", "1", "--json"]);
    let v = json_line(&out);
    assert_eq!(v["impl"], "ami");
    assert_eq!(v["threads"], 1);
    assert_eq!(v["steps"], 2);
    assert_eq!(v["members"], 2);
    assert_eq!(v["batch"], 8);
    assert_eq!(v["width"], 16);
    assert_eq!(v["layers"], 1);
    assert!(v["data"].is_null(), "{v}");
    assert!(v["samples_per_s"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["median_ms"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["final_loss"].as_f64().unwrap().is_finite(), "{v}");
}

/// Tensors to write: name, dtype, shape, little-endian bytes.
type Tensors = Vec<(String, Dtype, Vec<usize>, Vec<u8>)>;
/// A change to the tensors before they are written.
type Edit = Box<dyn FnOnce(&mut Tensors)>;

/// A tiny data file in train_data.py's layout: K 2, S 2, A 1, H 4, B 3,
/// N 10, warmup 1, steps 2, one hidden layer (p0..p3); `edit` may drop or
/// replace tensors before it is written.
fn write_data(path: &Path, edit: impl FnOnce(&mut Tensors)) {
    let (k, s, a, h, b, n, warmup, steps) = (2usize, 2usize, 1usize, 4usize, 3usize, 10usize, 1usize, 2usize);
    let f32s = |len: usize, f: &dyn Fn(usize) -> f32| (0..len).flat_map(|i| f(i).to_le_bytes()).collect::<Vec<u8>>();
    let mut t: Tensors = vec![
        ("X".into(), Dtype::F32, vec![n, s + a], f32s(n * (s + a), &|i| ((i * 7 % 11) as f32 - 5.0) / 5.0)),
        ("Y".into(), Dtype::F32, vec![n, s], f32s(n * s, &|i| ((i * 3 % 7) as f32 - 3.0) / 10.0)),
        ("idx".into(), Dtype::I64, vec![warmup + steps, k, b], (0..(warmup + steps) * k * b).flat_map(|i| ((i * 5 % n) as i64).to_le_bytes()).collect()),
    ];
    let dims = [s + a, h, 2 * s];
    for l in 0..2 {
        let (i, o) = (dims[l], dims[l + 1]);
        t.push((format!("p{}", 2 * l), Dtype::F32, vec![k, i, o], f32s(k * i * o, &|j| ((j * 13 % 17) as f32 - 8.0) / 20.0)));
        t.push((format!("p{}", 2 * l + 1), Dtype::F32, vec![k, 1, o], f32s(k * o, &|_| 0.0)));
    }
    edit(&mut t);
    let views: Vec<(String, TensorView<'_>)> =
        t.iter().map(|(name, d, shape, data)| (name.clone(), TensorView::new(*d, shape.clone(), data).unwrap())).collect();
    let meta: HashMap<String, String> = [("K", k), ("S", s), ("A", a), ("H", h), ("B", b), ("warmup", warmup), ("steps", steps)]
        .into_iter()
        .map(|(key, v)| (key.to_string(), v.to_string()))
        .collect();
    std::fs::write(path, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();
}

#[test]
fn train_bench_takes_data_shapes_and_weights_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.safetensors");
    write_data(&path, |_| {});
    let p = path.to_str().unwrap();
    let v = json_line(&ami(&["bench", "--train", "--data", p, "--threads", "1", "--json"]));
    assert_eq!((v["members"].as_u64(), v["batch"].as_u64(), v["width"].as_u64(), v["layers"].as_u64()), (Some(2), Some(3), Some(4), Some(1)), "{v}");
    assert_eq!((v["state_dim"].as_u64(), v["action_dim"].as_u64(), v["steps"].as_u64(), v["warmup"].as_u64()), (Some(2), Some(1), Some(2), Some(1)), "{v}");
    assert_eq!(v["data"], p);
    let loss = v["final_loss"].as_f64().unwrap();
    assert!(loss.is_finite(), "{v}");
    // The same file, the same batches and weights: the same loss, with any thread count.
    let v2 = json_line(&ami(&["bench", "--train", "--data", p, "--threads", "2", "--json"]));
    assert_eq!(v2["final_loss"].as_f64(), Some(loss), "{v2}");
}

#[test]
fn a_bad_data_file_exits_2_naming_the_file_and_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-data.safetensors");
    let out = ami(&["bench", "--train", "--data", missing.to_str().unwrap(), "--threads", "1", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no-such-data.safetensors"), "stderr should name the file: {err}");

    let cases: [(&str, Edit, &str); 3] = [
        ("no-idx", Box::new(|t| t.retain(|x| x.0 != "idx")), "tensor `idx` is missing"),
        (
            "bad-p2",
            Box::new(|t| t.iter_mut().filter(|x| x.0 == "p2").for_each(|x| (x.2, x.3) = (vec![2, 2, 4], vec![0; 64]))),
            "tensor `p2`: expected shape [2, 4, 4]",
        ),
        (
            "far-idx",
            Box::new(|t| t.iter_mut().filter(|x| x.0 == "idx").for_each(|x| x.3[..8].copy_from_slice(&99i64.to_le_bytes()))),
            "tensor `idx`: element 0 is 99",
        ),
    ];
    for (name, edit, needle) in cases {
        let path = dir.path().join(format!("{name}.safetensors"));
        write_data(&path, edit);
        let out = ami(&["bench", "--train", "--data", path.to_str().unwrap(), "--threads", "1"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(&format!("{name}.safetensors")) && err.contains(needle), "{name}: stderr should name the file and say `{needle}`: {err}");
    }
    // Shape flags conflict with --data (the file's shapes are used).
    let out = ami(&["bench", "--train", "--data", missing.to_str().unwrap(), "--width", "16"]);
    assert_eq!(out.status.code(), Some(2));
}
