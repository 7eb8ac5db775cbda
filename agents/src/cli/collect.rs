//! `ami collect`: random-exploration trajectories of the rendered wall task
//! (images, actions, true positions for diagnostics) streamed to a
//! trajectory dataset (`ami_learn::trajectories`), resumable.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use ami_agents::tasks::wall::{WallConfig, WallEnv};
use ami_core::Environment as _;
use ami_learn::{ObsEncoding, TrajectoryHeader, TrajectoryWriter};
use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;
use rand::Rng;

use super::input_error;

/// `ami collect` arguments.
#[derive(Args, Debug)]
pub struct CollectArgs {
    /// The task: `wall` (a point mass in two rooms seen from above as a
    /// 64x64 grayscale image).
    #[arg(long, default_value = "wall")]
    pub task: String,
    /// Trajectories to record.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub trajectories: u64,
    /// Steps (actions) per trajectory.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub steps: u64,
    /// Ticks each random force is held.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub hold: u64,
    /// Seed of the first trajectory (trajectory i uses seed + i: a resumed
    /// collection records what an uninterrupted one would have).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The wall's centre line, x in (0, 1).
    #[arg(long, default_value_t = 0.5)]
    pub wall_x: f64,
    /// The wall's thickness.
    #[arg(long, default_value_t = 0.06)]
    pub wall_width: f64,
    /// The door's centre, y in (0, 1).
    #[arg(long, default_value_t = 0.5)]
    pub door_y: f64,
    /// The door's height.
    #[arg(long, default_value_t = 0.2)]
    pub door_width: f64,
    /// Displacement per step at force 1 (arena widths).
    #[arg(long, default_value_t = 0.05)]
    pub step_size: f64,
    /// Store images as f32 instead of u8 (4x the size).
    #[arg(long)]
    pub f32: bool,
    /// Append to an existing dataset of the same task and settings
    /// (a partial last trajectory, from a killed run, is cut off).
    #[arg(long)]
    pub resume: bool,
    /// The dataset file to write.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// Runs `ami collect`.
pub fn run(args: CollectArgs) -> anyhow::Result<()> {
    if args.task != "wall" {
        return Err(input_error(format!("--task {}: `ami collect` records the rendered `wall` task only", args.task)));
    }
    let base = WallConfig {
        wall_x: args.wall_x,
        wall_width: args.wall_width,
        door_y: args.door_y,
        door_width: args.door_width,
        step_size: args.step_size,
        max_steps: args.steps as usize,
        ..WallConfig::default()
    };
    // The default start and goal may fall in a wall of these settings:
    // each trajectory draws its own start, so check the geometry alone.
    let probe = free_point(&base, &mut ami_core::rng::rng(args.seed)).ok_or_else(|| input_error("the wall leaves no free space in the arena"))?;
    WallEnv::new(WallConfig { start: probe, goal: probe, ..base.clone() }).map_err(|e| input_error(format!("the wall task's settings: {e}")))?;
    let description = serde_json::json!({
        "task": "wall", "size": base.size, "wall_x": base.wall_x, "wall_width": base.wall_width,
        "door_y": base.door_y, "door_width": base.door_width, "step_size": base.step_size, "hold": args.hold, "seed": args.seed,
        "diagnostics": ["x", "y"],
    })
    .to_string();
    let header = TrajectoryHeader {
        obs_dim: base.size * base.size,
        action_dim: 2,
        diag_dim: 2,
        encoding: if args.f32 { ObsEncoding::F32 } else { ObsEncoding::U8 },
        description,
    };
    let mut w = if args.resume && args.output.exists() {
        TrajectoryWriter::resume(&args.output, header).map_err(|e| input_error(format!("--resume: {e}")))?
    } else {
        if args.output.exists() && !args.resume {
            return Err(input_error(format!("{} exists: pass --resume to add to it, or name a new file", args.output.display())));
        }
        TrajectoryWriter::create(&args.output, header).with_context(|| format!("creating {}", args.output.display()))?
    };
    let done = w.count() as u64;
    let total = args.trajectories;
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new(total) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} trajectories {elapsed} (eta {eta})").expect("template"));
    bar.set_position(done.min(total));
    let t0 = Instant::now();
    let (l, n) = (args.steps as usize, base.size * base.size);
    for i in done..total {
        let mut rng = ami_core::rng::rng(ami_core::rng::derive_seed(args.seed.wrapping_add(i), "collect"));
        let start = free_point(&base, &mut rng).expect("the arena has free space (checked)");
        let mut env = WallEnv::new(WallConfig { start, goal: start, ..base.clone() })?;
        let mut obs = Array2::<f32>::zeros((l + 1, n));
        let mut act = Array2::<f32>::zeros((l, 2));
        let mut pos = Array2::<f32>::zeros((l + 1, 2));
        obs.row_mut(0).assign(&env.reset(i)?);
        let mut a = [0.0f32; 2];
        for t in 0..l {
            let p = env.position();
            pos[[t, 0]] = p[0] as f32;
            pos[[t, 1]] = p[1] as f32;
            if (t as u64).is_multiple_of(args.hold) {
                a = [rng.gen_range(-1.0f32..=1.0), rng.gen_range(-1.0f32..=1.0)];
            }
            act[[t, 0]] = a[0];
            act[[t, 1]] = a[1];
            let step = env.step(ndarray::ArrayView1::from(&a[..]))?;
            obs.row_mut(t + 1).assign(&step.observation);
        }
        let p = env.position();
        pos[[l, 0]] = p[0] as f32;
        pos[[l, 1]] = p[1] as f32;
        w.append(obs.view(), act.view(), pos.view()).with_context(|| format!("writing {}", args.output.display()))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let new = total.saturating_sub(done);
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{}: {} trajectories of {} steps ({} frames; {} new in {:.1} s, {:.0} frames/s)",
        args.output.display(),
        w.count(),
        l,
        w.count() * (l + 1),
        new,
        secs,
        (new as f64 * (l + 1) as f64) / secs.max(1e-9)
    );
    Ok(())
}

/// A uniformly drawn free point of the arena (`None` if 10,000 draws
/// found none).
fn free_point(cfg: &WallConfig, rng: &mut impl Rng) -> Option<[f64; 2]> {
    (0..10_000).map(|_| [rng.gen_range(0.02..0.98), rng.gen_range(0.02..0.98)]).find(|p: &[f64; 2]| cfg.is_free(p[0], p[1]))
}
