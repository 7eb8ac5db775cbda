//! `ami bench`: the planner workload benchmark (see
//! `../shared/workload/WORKLOAD.md`), with the peers' procedure and JSON
//! fields: a first call, warm-up calls, the plan energy of seeds 0..n-1
//! (f64 reference), then at least `--calls` timed calls (more until
//! `--min-time` seconds are spent, at most `--max-calls`); each call resets
//! the planner to its seed and draws all its noise inside the timed region.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ami_core::{Bounds, ParamValue, PlanRequest};
use ami_planners::decl::PlannerDecl;
use ami_planners::kernels::{Cpu, Isa, QuadEnergy};
use ami_planners::Workload;
use anyhow::{bail, Context};

/// A planner `--planner` accepts: a built-in planner's declaration.
fn planner_decl(s: &str) -> Result<PlannerDecl, String> {
    let decl = ami_planners::decl::find(s).ok_or_else(|| format!("unknown planner `{s}` (built in: {})", ami_planners::decl::names()))?;
    // A workload's actions are a continuous box.
    if !decl.searches(&Bounds::symmetric(1, 1.0).into()) {
        return Err(format!("`{s}` plans over discrete actions; a workload's actions are continuous (cem, mppi, gd)"));
    }
    Ok(decl)
}

/// Arguments of `ami bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Workload safetensors file (W1 b1 W2 b2 ... s0 goal).
    #[arg(long, value_name = "FILE", required_unless_present_any = ["train", "env"])]
    pub workload: Option<PathBuf>,
    /// Planner to time, with its defaults (WORKLOAD.md's settings): cem,
    /// mppi or gd.
    #[arg(long, value_parser = planner_decl, required_unless_present_any = ["train", "env"])]
    pub planner: Option<PlannerDecl>,
    /// Time a Gymnasium environment through the bridge instead: env steps
    /// per second with random actions (`gym:ID`).
    #[arg(long, value_name = "gym:ID", conflicts_with_all = ["workload", "planner", "train"])]
    pub env: Option<String>,
    /// With --env: this many copies of the environment, stepped in lock
    /// step.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256), requires = "env")]
    pub envs: u64,
    /// With --env: the Python processes the copies are spread over
    /// (default: one per core, at most one per copy); the processes step
    /// in parallel, a process steps its copies in one request.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256), requires = "env")]
    pub processes: Option<u64>,
    /// With --env: pin this thread to CPU 0 and process `p` to CPU `p`
    /// (modulo the cores), so a request and its reply meet on one CPU
    /// (Linux).
    #[arg(long, requires = "env")]
    pub pin: bool,
    /// With --env: the interpreter with gymnasium (default: $AMI_PYTHON,
    /// else python3).
    #[arg(long, requires = "env")]
    pub python: Option<PathBuf>,
    /// Time training steps instead (the training yardstick of
    /// `../shared/workload/train_peers.py`: forward, backward and Adam on
    /// a probabilistic SiLU ensemble).
    #[arg(long, conflicts_with_all = ["workload", "planner"])]
    pub train: bool,
    /// Training: the peers' data, batches and initial weights, from a file
    /// of `scripts/peers/train_data.py` (X, Y, idx, p0..p7 as
    /// `train_peers.py` generates them; the shapes are the file's), so the
    /// final loss compares with theirs.
    #[arg(long, value_name = "FILE", requires = "train", conflicts_with_all = ["state_dim", "action_dim", "width", "layers", "members", "batch", "steps"])]
    pub data: Option<PathBuf>,
    /// Training: state width.
    #[arg(long, default_value_t = 17, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub state_dim: u64,
    /// Training: action width.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub action_dim: u64,
    /// Training: hidden width.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=8192))]
    pub width: u64,
    /// Training: hidden layers.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=32))]
    pub layers: u64,
    /// Training: ensemble members.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub members: u64,
    /// Training: rows per member per step.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub batch: u64,
    /// Training: timed steps (after 10 warm-up steps).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=100000))]
    pub steps: u64,
    /// Kernel threads (0: all cores; at most 256).
    #[arg(long, default_value_t = 0, value_parser = thread_count)]
    pub threads: usize,
    /// Seeds 0..n-1 for the plan-quality check.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub seeds: u64,
    /// Minimum number of timed calls.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub calls: u64,
    /// Keep timing (up to --max-calls) until this many seconds are spent.
    #[arg(long, default_value_t = 3.0, value_parser = seconds)]
    pub min_time: f64,
    /// Most timed calls.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_calls: u64,
    /// Warm-up calls after the first.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub warmup: u64,
    /// Instruction set (scalar, avx2, avx512, neon; default: the best).
    #[arg(long)]
    pub isa: Option<Isa>,
    /// Print one JSON line (the peers' fields) instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    // numpy's default (linear interpolation).
    let x = p / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo as f64)
}

fn size_name(path: &Path, s: usize, a: usize, h: usize) -> String {
    match (s, a, h) {
        (8, 2, 64) => "small".into(),
        (32, 8, 256) => "medium".into(),
        (64, 16, 512) => "large".into(),
        _ => path.file_stem().map(|s| s.to_string_lossy().trim_start_matches("workload_").to_string()).unwrap_or_default(),
    }
}

fn load1() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// Runs `ami bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let (Some(workload), Some(decl)) = (args.workload.clone(), args.planner) else {
        bail!("ami bench needs --workload and --planner (or --train)");
    };
    let args = BenchArgs { workload: Some(workload.clone()), ..args };
    let workload_path = workload;
    // A missing, unreadable or corrupt workload file is bad input (exit 2).
    let wl = Workload::load(&workload_path).map_err(|e| super::input_error(format!("cannot use the workload: {e}")))?;
    let s0 = wl.s0.clone().with_context(|| format!("{}: the workload has no `s0` tensor", workload_path.display()))?;
    let goal = wl.goal.clone().with_context(|| format!("{}: the workload has no `goal` tensor", workload_path.display()))?;
    let horizon = wl.horizon().unwrap_or(16);
    let net = wl.model.net();
    let (s_dim, a_dim) = (net.state_dim(), net.action_dim());
    let h = net.layers()[0].out;
    let isa = args.isa.unwrap_or_else(Isa::detect);
    let cpu = Arc::new(Cpu::new(isa, args.threads)?);
    let cost = wl.cost();
    let bounds = Bounds::symmetric(a_dim, 1.0);
    let settings = [("horizon".to_string(), ParamValue::Int(horizon as i64))];
    let params = ami_core::Params::validate(&(decl.schema)(), &settings).map_err(|i| anyhow::anyhow!("{}: {i:?}", decl.name))?;
    let mut planner = (decl.build)(&params, &bounds.into(), Some(cpu.clone()))?;
    let req = PlanRequest::new(&wl.model, &cost, s0.view());
    let mut plan = |seed: u64| -> anyhow::Result<Vec<f32>> {
        planner.reset(seed);
        Ok(planner.plan(&req)?.actions.into_raw_vec_and_offset().0)
    };
    let t0 = Instant::now();
    plan(10_000)?;
    let first_call_s = t0.elapsed().as_secs_f64();
    for i in 0..args.warmup {
        plan(10_001 + i)?;
    }
    let reference = QuadEnergy { q: vec![1.0; s_dim], r: vec![0.01; a_dim], goal: goal.to_vec(), terminal: None };
    let mut energies = Vec::new();
    for seed in 0..args.seeds {
        let a = plan(seed)?;
        if a.iter().any(|v| v.abs() > 1.0 + 1e-6) {
            bail!("seed {seed}: plan outside [-1, 1]");
        }
        energies.push(reference.sequence_energy_f64(net, s0.as_slice().expect("contiguous"), &a));
    }
    let mut times = Vec::new();
    let start = Instant::now();
    let mut i = 0;
    while i < args.calls || (start.elapsed().as_secs_f64() < args.min_time && i < args.max_calls) {
        let t0 = Instant::now();
        std::hint::black_box(plan(20_000 + i)?);
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        i += 1;
    }
    times.sort_by(f64::total_cmp);
    let median = percentile(&times, 50.0);
    let fwd = net.flops_per_step();
    let flops = fwd * (decl.work)(&params)?;
    let n = energies.len().max(1) as f64;
    let mean_e = energies.iter().sum::<f64>() / n;
    let std_e = (energies.iter().map(|e| (e - mean_e).powi(2)).sum::<f64>() / n).sqrt();
    let zero = reference.sequence_energy_f64(net, s0.as_slice().expect("contiguous"), &vec![0.0; horizon * a_dim]);
    let planner_name = decl.name.to_string();
    let round = |x: f64, d: i32| (x * 10f64.powi(d)).round() / 10f64.powi(d);
    // The peers' field order (common.run_bench), then ami's extras.
    let fields: Vec<(&str, serde_json::Value)> = vec![
        ("impl", "ami".into()),
        ("size", size_name(&workload_path, s_dim, a_dim, h).into()),
        ("planner", planner_name.clone().into()),
        ("threads", cpu.threads().into()),
        ("median_ms", round(median, 4).into()),
        ("p10_ms", round(percentile(&times, 10.0), 4).into()),
        ("p90_ms", round(percentile(&times, 90.0), 4).into()),
        ("min_ms", round(times[0], 4).into()),
        ("n_calls", times.len().into()),
        ("gflops", round(flops / (median * 1e-3) / 1e9, 3).into()),
        ("mean_energy", round(mean_e, 4).into()),
        ("std_energy", round(std_e, 4).into()),
        ("zero_energy", round(zero, 4).into()),
        ("first_call_s", round(first_call_s, 3).into()),
        ("seeds", args.seeds.into()),
        ("load1", load1().into()),
        ("versions", serde_json::json!({ "ami": env!("CARGO_PKG_VERSION") })),
        ("isa", cpu.isa().name().into()),
    ];
    if args.json {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{}: {v}", serde_json::Value::from(*k))).collect();
        println!("{{{}}}", body.join(", "));
    } else {
        println!(
            "ami {} {} threads {} ({}): median {:.3} ms (p10 {:.3}, p90 {:.3}, {} calls), {:.1} GFLOP/s; mean energy {:.4} over {} seeds (zero-action {:.4})",
            fields[1].1.as_str().unwrap_or(""),
            planner_name,
            cpu.threads(),
            cpu.isa(),
            median,
            percentile(&times, 10.0),
            percentile(&times, 90.0),
            times.len(),
            flops / (median * 1e-3) / 1e9,
            mean_e,
            args.seeds,
            zero
        );
    }
    Ok(())
}

/// A duration in seconds: finite, 0 to a day.
fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds in [0, 86400]")),
    }
}

/// A thread count: 0 (one per core) to 256.
fn thread_count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(v) if v <= 256 => Ok(v),
        _ => Err(format!("`{s}` is not a thread count in 0..=256 (0: one per core)")),
    }
}
