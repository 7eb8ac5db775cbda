//! `ami envs`: the Gymnasium ids the interpreter has, with their spaces;
//! and `ami bench --env`: env steps per second through the bridge.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use ndarray::Array2;
use rand::Rng;

use super::BadInput;

/// Arguments of `ami envs`.
#[derive(clap::Args, Debug)]
pub struct EnvsArgs {
    /// Only ids containing this (case-insensitive), e.g. `v5`.
    #[arg(default_value = "")]
    pub pattern: String,
    /// The interpreter with gymnasium (default: $AMI_PYTHON, else python3).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// One JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Lists the ids.
pub fn run(args: EnvsArgs) -> anyhow::Result<()> {
    let python = ami_gym::python(args.python.as_deref());
    let envs = ami_gym::list(&python, &args.pattern, Duration::from_secs(600)).map_err(ami_core::CoreError::from)?;
    if args.json {
        println!("{}", serde_json::Value::Array(envs));
        return Ok(());
    }
    if envs.is_empty() {
        return Err(BadInput(format!("no Gymnasium id contains `{}` ({})", args.pattern, python.display())).into());
    }
    let s = |v: &serde_json::Value, k: &str| v.get(k).map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string)).unwrap_or_default();
    for e in &envs {
        match e.get("unavailable") {
            Some(why) => println!("gym:{:<40} unavailable: {}", s(e, "id"), why.as_str().unwrap_or_default()),
            None => println!("gym:{:<40} obs {}  action {}  steps {}", s(e, "id"), s(e, "observation"), s(e, "action"), s(e, "max_episode_steps")),
        }
    }
    Ok(())
}

/// The CPUs this process may run on (Linux; elsewhere a user error).
fn allowed_cpus() -> anyhow::Result<Vec<usize>> {
    #[cfg(target_os = "linux")]
    {
        let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).context("--pin: sched_getaffinity")?;
        Ok((0..nix::sched::CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(BadInput("--pin works on Linux only".into()).into())
    }
}

/// Pins the calling thread to `cpu` (Linux).
fn pin_this_thread(cpu: usize) -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let mut set = nix::sched::CpuSet::new();
        set.set(cpu).context("--pin: the CPU set")?;
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).context("--pin: sched_setaffinity")?;
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = cpu;
        anyhow::bail!("--pin works on Linux only")
    }
}

/// `ami bench --env gym:ID [--envs N] [--processes P]`: random actions for
/// at least `min_time` seconds, lock step (N copies over P processes
/// stepping at once), episodes reset as they end; prints env steps per
/// second.
pub fn bench(args: &super::bench::BenchArgs) -> anyhow::Result<()> {
    let spec = args.env.as_deref().unwrap_or_default();
    let id = spec.strip_prefix("gym:").filter(|i| !i.is_empty()).ok_or_else(|| BadInput(format!("`{spec}` is not gym:ID")))?;
    let mut cfg = ami_gym::GymConfig::new(id);
    cfg.python = ami_gym::python(args.python.as_deref());
    let n = args.envs as usize;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let processes = args.processes.map_or(n.min(cores), |p| p as usize);
    // The CPUs this process may run on (a cpuset need not start at 0):
    // this thread on the first, process p on the (p mod count)-th.
    let cpus: Vec<usize> = if args.pin { allowed_cpus()? } else { Vec::new() };
    if let Some(&cpu) = cpus.first() {
        pin_this_thread(cpu)?;
    }
    let made = ami_gym::GymVecEnv::make_in(&cfg, n, processes, &cpus);
    let mut vec = made.map_err(ami_core::CoreError::from).with_context(|| format!("starting {n} gym:{id}"))?;
    let procs = vec.processes();
    let space = vec.action_space();
    let bounds = space.bounds().clone();
    let mut rng = ami_core::rng::rng(0);
    for i in 0..n {
        vec.reset(i, Some(i as u64)).map_err(ami_core::CoreError::from)?;
    }
    let mut actions = Array2::<f32>::zeros((n, bounds.dim()));
    let mut step = |rng: &mut ami_core::rng::AmiRng, vec: &mut ami_gym::GymVecEnv| -> anyhow::Result<()> {
        for mut row in actions.rows_mut() {
            match space.choices() {
                // A discrete space: one of its actions, uniformly.
                Some(c) => row.assign(&ndarray::ArrayView1::from(c.row(rng.gen_range(0..c.len())))),
                None => {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = rng.gen_range(bounds.low[j]..=bounds.high[j]);
                    }
                }
            }
        }
        let steps = vec.step(actions.view()).map_err(ami_core::CoreError::from)?;
        for (i, s) in steps.iter().enumerate() {
            if s.terminated || s.truncated {
                vec.reset(i, None).map_err(ami_core::CoreError::from)?;
            }
        }
        Ok(())
    };
    for _ in 0..200 {
        step(&mut rng, &mut vec)?;
    }
    let (t0, mut rounds) = (Instant::now(), 0u64);
    while t0.elapsed().as_secs_f64() < args.min_time.max(0.1) {
        for _ in 0..100 {
            step(&mut rng, &mut vec)?;
        }
        rounds += 100;
    }
    let secs = t0.elapsed().as_secs_f64();
    let rate = (rounds * n as u64) as f64 / secs;
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "env": format!("gym:{id}"), "envs": n, "processes": procs, "steps": rounds * n as u64, "seconds": secs, "steps_per_s": rate })
        );
    } else {
        println!(
            "gym:{id}, {n} env(s) in {procs} process(es), lock step: {rate:.0} env steps/s ({} steps in {secs:.2} s, {:.1} us per round)",
            rounds * n as u64,
            secs * 1e6 / rounds as f64
        );
    }
    Ok(())
}
