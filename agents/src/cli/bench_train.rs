//! `ami bench --train`: the training yardstick of
//! `../shared/workload/train_peers.py`, the same step the Python peers
//! time: a probabilistic ensemble (K members of `S + A -> width^layers ->
//! 2 S`, SiLU), Gaussian NLL with the log-variance soft-bounded in
//! `[-10, 0.5]`, Adam (lr 1e-3), each member its own random batch; data
//! `X ~ N(0, 1)`, `Y = tanh(X W) + 0.05 N(0, 1)` over 20,000 rows. One
//! JSON line with the peers' fields: median ms per step, samples per
//! second, the final loss on the first 2,000 rows (every member sees them).
//!
//! Without `--data` the data, batches and initial weights come from ami's
//! RNG. With `--data FILE` (written by `scripts/peers/train_data.py`,
//! which repeats `train_peers.py`'s generation) they are the peers' own:
//! `X [N, S+A]`, `Y [N, S]`, the batch rows `idx [warmup+steps, K, B]`
//! (step `s`, member `k`, row `r` is row `idx[s, k, r]`) and the initial
//! parameters `p0..p{2L+1}` as `train_peers.py`'s `init()` returns them
//! (weights `[K, in, out]`, biases `[K, 1, out]`), so the final loss is
//! comparable with the peers'.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ami_core::CoreError;
use ami_learn::{Activation, AdamConfig, Ensemble, EnsembleSpec, Normalizer, Trainer};
use ndarray::{Array2, Array3, Axis};
use rand::Rng;
use rand_distr::StandardNormal;
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

use super::bench::BenchArgs;

/// Warm-up steps (untimed) before the timed ones, as the peers.
const WARMUP: usize = 10;
/// Rows of the generated data set.
const ROWS: usize = 20_000;
/// Rows of the held-out set the final loss is computed on (the first ones).
const HELD: usize = 2000;

/// What one run trains on: the ensemble, the data, and each step's rows.
struct Setup {
    spec: EnsembleSpec,
    ens: Ensemble,
    adam: AdamConfig,
    x: Array2<f32>,
    y: Array2<f32>,
    warmup: usize,
    steps: usize,
    rows: Rows,
}

/// Where each step's batch rows come from.
enum Rows {
    /// Drawn from ami's RNG (step by step, member by member).
    Random(Box<ami_core::rng::AmiRng>),
    /// The data file's `idx`, `[warmup + steps, K, B]` flattened.
    File(Vec<usize>),
}

/// Runs the training benchmark.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let threads = if args.threads == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { args.threads.min(256) };
    let mut setup = match &args.data {
        Some(path) => from_file(path)?,
        None => generated(args)?,
    };
    let spec = setup.spec.clone();
    let (s, a, k) = (spec.state_dim, spec.action_dim, spec.members);
    let b = match &setup.rows {
        Rows::Random(_) => args.batch as usize,
        Rows::File(idx) => idx.len() / ((setup.warmup + setup.steps) * k),
    };
    let mut trainer = Trainer::new(setup.ens.clone(), setup.adam, threads);
    if let Some(isa) = args.isa {
        trainer.set_isa(isa)?;
    }
    let n = setup.x.nrows();
    let total = setup.warmup + setup.steps;
    let mut xb = Array3::<f32>::zeros((k, b, s + a));
    let mut yb = Array3::<f32>::zeros((k, b, s));
    let mut times = Vec::with_capacity(setup.steps);
    for step in 0..total {
        for m in 0..k {
            for r in 0..b {
                let j = match &mut setup.rows {
                    Rows::Random(rng) => rng.gen_range(0..n),
                    Rows::File(idx) => idx[(step * k + m) * b + r],
                };
                xb.index_axis_mut(Axis(0), m).row_mut(r).assign(&setup.x.row(j));
                yb.index_axis_mut(Axis(0), m).row_mut(r).assign(&setup.y.row(j));
            }
        }
        let t0 = std::time::Instant::now();
        trainer.step(xb.view(), yb.view())?;
        if step >= setup.warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let med = times[times.len() / 2];
    let p10 = times[times.len() / 10];
    // train_peers.py: loss_fn(X[:2000] and Y[:2000] broadcast to every
    // member), the mean over K * 2000 * S of the NLL terms, as Trainer::loss.
    let held = HELD.min(n);
    let (x, y) = (&setup.x, &setup.y);
    let xf = Array3::from_shape_fn((k, held, s + a), |(_, r, c)| x[[r, c]]);
    let yf = Array3::from_shape_fn((k, held, s), |(_, r, c)| y[[r, c]]);
    let final_loss = trainer.loss(xf.view(), yf.view())?;
    let samples = (k * b) as f64 / med;
    let flops = 3.0 * spec.flops_per_sample() * (k * b) as f64;
    let load = std::fs::read_to_string("/proc/loadavg").ok().map(|l| l.split_whitespace().take(3).map(String::from).collect::<Vec<_>>());
    let width = spec.hidden[0];
    let layers = spec.hidden.len();
    let data = args.data.as_ref().map(|p| p.display().to_string());
    if args.json {
        let out = serde_json::json!({
            "impl": "ami", "threads": threads, "median_ms": med * 1e3, "p10_ms": p10 * 1e3, "samples_per_s": samples,
            "final_loss": final_loss, "steps": setup.steps, "warmup": setup.warmup, "gflops": flops / med / 1e9, "isa": trainer_isa(args),
            "state_dim": s, "action_dim": a, "width": width, "layers": layers, "members": k, "batch": b, "data": data, "loadavg": load,
        });
        println!("{out}");
    } else {
        println!(
            "ami bench --train: {k} members x {layers} x {width} SiLU, S {s} A {a}, batch {b}/member, {threads} thread(s){}: median {:.3} ms/step ({:.0} samples/s, {:.1} GFLOP/s), final loss {final_loss:.5}",
            data.map(|d| format!(", data {d}")).unwrap_or_default(),
            med * 1e3,
            samples,
            flops / med / 1e9
        );
    }
    Ok(())
}

/// The setup without a data file: ami's RNG (seed 0 for the data and the
/// batches, seed 1 for the weights).
fn generated(args: &BenchArgs) -> anyhow::Result<Setup> {
    let (s, a, k) = (args.state_dim as usize, args.action_dim as usize, args.members as usize);
    let spec = EnsembleSpec {
        activation: Activation::Silu,
        members: k,
        probabilistic: true,
        ..EnsembleSpec::new(s, a, vec![args.width as usize; args.layers as usize])
    };
    let ens = Ensemble::new(spec.clone(), 1)?;
    let mut rng = ami_core::rng::rng(0);
    let x = Array2::from_shape_fn((ROWS, s + a), |_| rng.sample::<f32, _>(StandardNormal));
    let w = Array2::from_shape_fn((s + a, s), |_| rng.sample::<f32, _>(StandardNormal) * 0.3);
    let mut y = x.dot(&w).mapv(f32::tanh);
    y.mapv_inplace(|v| v + 0.05 * rng.sample::<f32, _>(StandardNormal));
    Ok(Setup { spec, ens, adam: AdamConfig::default(), x, y, warmup: WARMUP, steps: args.steps as usize, rows: Rows::Random(Box::new(rng)) })
}

/// A problem with the data file, as a user-input error (the CLI exits 2):
/// `--data` names a file that is missing, unreadable or not the
/// yardstick's data. (`CoreError::Io` and `CorruptFile` are not user input
/// to `CoreError::is_user_input`: an I/O error can be the machine's.)
fn bad_file(path: &Path, reason: impl std::fmt::Display) -> anyhow::Error {
    CoreError::config("--data", format!("{}: {reason}", path.display())).into()
}

/// The setup of a `scripts/peers/train_data.py` file; errors name the file
/// and the tensor or metadata key.
fn from_file(path: &PathBuf) -> anyhow::Result<Setup> {
    let bytes = std::fs::read(path).map_err(|e| bad_file(path, format!("cannot read the training data: {e}")))?;
    let bad = |reason: String| bad_file(path, reason);
    let st = SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let meta: HashMap<String, String> = meta.metadata().clone().unwrap_or_default();
    let num = |key: &str| -> anyhow::Result<usize> {
        let v = meta.get(key).ok_or_else(|| bad(format!("metadata `{key}` is missing (write the file with scripts/peers/train_data.py)")))?;
        v.trim().parse::<usize>().ok().filter(|&n| n > 0 || key == "warmup").ok_or_else(|| bad(format!("metadata `{key}` = {v:?} is not a positive integer")))
    };
    let (k, s, a, h, b, warmup, steps) = (num("K")?, num("S")?, num("A")?, num("H")?, num("B")?, num("warmup")?, num("steps")?);
    // The tensor `name`'s shape, checked against `want`, and its bytes.
    let tensor = |name: &str, want: &[usize], dtypes: &[Dtype]| -> anyhow::Result<(Dtype, &[u8])> {
        let t = st.tensor(name).map_err(|_| bad(format!("tensor `{name}` is missing")))?;
        if !dtypes.contains(&t.dtype()) {
            return Err(bad(format!(
                "tensor `{name}`: dtype {:?}, expected {}",
                t.dtype(),
                dtypes.iter().map(|d| format!("{d:?}")).collect::<Vec<_>>().join(" or ")
            )));
        }
        if t.shape() != want {
            return Err(bad(format!("tensor `{name}`: expected shape {want:?}, found {:?}", t.shape())));
        }
        Ok((t.dtype(), t.data()))
    };
    let floats = |name: &str, want: &[usize]| -> anyhow::Result<Vec<f32>> {
        let (_, data) = tensor(name, want, &[Dtype::F32])?;
        let v: Vec<f32> = data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(bad(format!("tensor `{name}`: element {i} is {}", v[i])));
        }
        Ok(v)
    };
    let n = st.tensor("X").map_err(|_| bad("tensor `X` is missing".into()))?.shape().first().copied().unwrap_or(0);
    if n == 0 {
        return Err(bad("tensor `X`: expected shape [N, S+A] with N >= 1".into()));
    }
    let x = Array2::from_shape_vec((n, s + a), floats("X", &[n, s + a])?).expect("shape checked");
    let y = Array2::from_shape_vec((n, s), floats("Y", &[n, s])?).expect("shape checked");
    let idx_shape = [warmup + steps, k, b];
    let idx: Vec<i64> = match tensor("idx", &idx_shape, &[Dtype::I64, Dtype::I32])? {
        (Dtype::I64, d) => d.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes"))).collect(),
        (_, d) => d.chunks_exact(4).map(|c| i64::from(i32::from_le_bytes(c.try_into().expect("4 bytes")))).collect(),
    };
    if let Some(i) = idx.iter().position(|&j| j < 0 || j as u64 >= n as u64) {
        return Err(bad(format!("tensor `idx`: element {i} is {}, outside the {n} rows of `X`", idx[i])));
    }
    let idx: Vec<usize> = idx.into_iter().map(|j| j as usize).collect();
    // Layers from the parameter names p0, p1, ...: a weight and a bias each.
    let mut count = 0;
    while st.tensor(&format!("p{count}")).is_ok() {
        count += 1;
    }
    if count < 4 || count % 2 != 0 {
        return Err(bad(format!(
            "tensors p0..p{}: expected a weight and a bias per layer and at least 2 layers (tensor `p{count}` or its pair is missing)",
            count.max(1) - 1
        )));
    }
    let nl = count / 2;
    if let Some(v) = meta.get("layers") {
        if v.trim().parse::<usize>().ok() != Some(nl - 1) {
            return Err(bad(format!("metadata `layers` = {v:?} disagrees with tensors p0..p{} ({} hidden layers)", count - 1, nl - 1)));
        }
    }
    let spec = EnsembleSpec { activation: Activation::Silu, members: k, probabilistic: true, ..EnsembleSpec::new(s, a, vec![h; nl - 1]) };
    let dims = spec.dims();
    // init()'s [K, in, out] weights and [K, 1, out] biases into ami's
    // member-major layout: member k, layer l: W [out, in] row-major, bias.
    let mut w = Vec::with_capacity(nl);
    let mut bias = Vec::with_capacity(nl);
    for l in 0..nl {
        let (i, o) = (dims[l], dims[l + 1]);
        w.push(floats(&format!("p{}", 2 * l), &[k, i, o])?);
        bias.push(floats(&format!("p{}", 2 * l + 1), &[k, 1, o])?);
    }
    let mut params = Vec::with_capacity(k * spec.member_params());
    for m in 0..k {
        for l in 0..nl {
            let (i, o) = (dims[l], dims[l + 1]);
            let wl = &w[l][m * i * o..(m + 1) * i * o];
            for oo in 0..o {
                params.extend((0..i).map(|ii| wl[ii * o + oo]));
            }
            params.extend_from_slice(&bias[l][m * o..(m + 1) * o]);
        }
    }
    let ens = Ensemble::from_params(spec.clone(), params, Normalizer::identity(s + a, s)).map_err(|e| bad(e.to_string()))?;
    let mut adam = AdamConfig::default();
    if let Some(v) = meta.get("lr") {
        adam.lr =
            v.trim().parse::<f32>().ok().filter(|x| x.is_finite() && *x > 0.0).ok_or_else(|| bad(format!("metadata `lr` = {v:?} is not a positive number")))?;
    }
    Ok(Setup { spec, ens, adam, x, y, warmup, steps, rows: Rows::File(idx) })
}

fn trainer_isa(args: &BenchArgs) -> String {
    args.isa.unwrap_or_else(ami_planners::kernels::Isa::detect).to_string()
}
