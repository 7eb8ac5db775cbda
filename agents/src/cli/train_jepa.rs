//! `ami train --jepa DATASET`: train a JEPA world model (an image encoder
//! and an action-conditioned latent predictor, `ami_learn::jepa`) on a
//! trajectory dataset written by `ami collect`, with the collapse
//! diagnostics every epoch, and write it as safetensors that an agent file
//! loads (`implementation = "jepa"` perception and world model nodes).

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use super::BadInput;
use ami_learn::{read_trajectories, ConvSpec, Jepa, JepaConfig, JepaData, JepaTrainer, Regulariser, SigRegConfig, Target, VicRegConfig};
use indicatif::{ProgressBar, ProgressStyle};

/// The JEPA's settings of `ami train --jepa`.
#[derive(clap::Args, Debug)]
pub struct JepaArgs {
    /// JEPA: predicted steps per training window (the multi-step latent
    /// loss).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub horizon: u64,
    /// JEPA: embedding width (small widths keep distances in the
    /// embedding meaningful far from a goal).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub embed: u64,
    /// JEPA: output channels of the encoder's 3x3 stride-2 convolutions.
    #[arg(long, default_value = "16,32,32", value_parser = widths)]
    pub channels: Widths,
    /// JEPA: the predictor's hidden widths.
    #[arg(long, default_value = "256,256", value_parser = widths)]
    pub predictor: Widths,
    /// JEPA: the anti-collapse term: vicreg, sigreg or none (the ablation).
    #[arg(long, default_value = "vicreg", value_parser = ["vicreg", "sigreg", "none"])]
    pub regulariser: String,
    /// JEPA: VICReg's variance weight.
    #[arg(long, default_value_t = 1.0, value_parser = non_negative)]
    pub variance: f64,
    /// JEPA: VICReg's covariance weight.
    #[arg(long, default_value_t = 0.04, value_parser = non_negative)]
    pub covariance: f64,
    /// JEPA: SIGReg's weight.
    #[arg(long, default_value_t = 1.0, value_parser = non_negative)]
    pub sigreg_weight: f64,
    /// JEPA: weight of the temporal smoothness term (consecutive frames
    /// embed close, so embedding distances grow with the steps between
    /// frames: what planning to a goal embedding needs).
    #[arg(long, default_value_t = 5.0, value_parser = non_negative)]
    pub smoothness: f64,
    /// JEPA: prediction targets: stopgrad (the online encoder, gradient
    /// stopped) or ema (a moving average of it).
    #[arg(long, default_value = "stopgrad", value_parser = ["stopgrad", "ema"])]
    pub target: String,
    /// JEPA: the EMA target's tau.
    #[arg(long, default_value_t = 0.99, value_parser = tau)]
    pub ema_tau: f64,
    /// JEPA: use at most this many frames of the dataset (whole
    /// trajectories from the start).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(2..=100_000_000))]
    pub max_frames: u64,
    /// JEPA: frames the linear probe and the statistics use (training and
    /// held out).
    #[arg(long, default_value_t = 4000, value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
    pub probe_frames: u64,
}

/// A list of widths.
#[derive(Debug, Clone)]
pub struct Widths(pub Vec<usize>);

fn widths(s: &str) -> Result<Widths, String> {
    let v: Option<Vec<usize>> = s.split(',').map(|w| w.trim().parse::<usize>().ok().filter(|&w| (1..=4096).contains(&w))).collect();
    match v {
        Some(v) if !v.is_empty() && v.len() <= 8 => Ok(Widths(v)),
        _ => Err(format!("`{s}` is not a list of 1 to 8 widths in 1..=4096, such as 16,32,32")),
    }
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(f64::from(v)),
        _ => Err(format!("`{s}` is not a number >= 0")),
    }
}

fn tau(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number in [0, 1)")),
    }
}

fn bad(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(BadInput(e.to_string()))
}

/// The settings `ami train --jepa` shares with the other trainers
/// (`--epochs`, `--batch`, `--lr`, ...), taken from `ami train`'s arguments.
pub struct Shared<'a> {
    pub out: &'a Path,
    pub epochs: Option<u64>,
    pub batch: Option<u64>,
    pub lr: f64,
    pub holdout: f64,
    pub seed: u64,
    /// Threads (resolved: at least 1).
    pub threads: usize,
    pub json: bool,
}

/// Runs `ami train --jepa DATASET`.
pub fn run(j: &JepaArgs, args: &Shared<'_>, dataset: &Path) -> anyhow::Result<()> {
    let (header, mut trajs) = read_trajectories(dataset).map_err(|e| bad(format!("cannot use the dataset: {e}")))?;
    let side = (header.obs_dim as f64).sqrt().round() as usize;
    if side * side != header.obs_dim || side < 8 {
        return Err(bad(format!("{}: observations of {} values are not square grayscale images", dataset.display(), header.obs_dim)));
    }
    // At most --max-frames frames, whole trajectories.
    let mut frames = 0;
    let keep = trajs
        .iter()
        .take_while(|t| {
            frames += t.observations.nrows();
            frames <= j.max_frames as usize
        })
        .count();
    trajs.truncate(keep);
    let held = ((trajs.len() as f64 * args.holdout).round() as usize).max(1);
    if trajs.len() < held + 1 {
        return Err(bad(format!(
            "{}: {} trajectories fit in --max-frames {}; at least 2 are needed (one held out)",
            dataset.display(),
            trajs.len(),
            j.max_frames
        )));
    }
    let horizon = j.horizon as usize;
    let train = JepaData::new(&trajs[..trajs.len() - held], horizon).map_err(|e| bad(format!("{}: {e}", dataset.display())))?;
    let heldout = JepaData::new(&trajs[trajs.len() - held..], horizon).map_err(|e| bad(format!("{}: {e}", dataset.display())))?;
    let spec = ConvSpec { in_channels: 1, size: side, channels: j.channels.0.clone(), embed: j.embed as usize };
    let jepa = Jepa::new(spec.clone(), header.action_dim, &j.predictor.0, args.seed).map_err(bad)?;
    let threads = args.threads;
    let regulariser = match j.regulariser.as_str() {
        "none" => Regulariser::None,
        "sigreg" => Regulariser::SigReg { weight: j.sigreg_weight as f32, cfg: SigRegConfig { seed: args.seed, ..SigRegConfig::default() } },
        _ => Regulariser::VicReg(VicRegConfig { variance: j.variance as f32, covariance: j.covariance as f32, ..VicRegConfig::default() }),
    };
    let cfg = JepaConfig {
        horizon,
        batch: args.batch.unwrap_or(64) as usize,
        lr: args.lr as f32,
        regulariser,
        target: if j.target == "ema" { Target::Ema(j.ema_tau as f32) } else { Target::StopGradient },
        threads,
        seed: args.seed,
        smoothness: j.smoothness as f32,
    };
    let epochs = args.epochs.unwrap_or(10) as usize;
    let mut trainer = JepaTrainer::new(jepa, cfg.clone()).map_err(bad)?;
    let frames_used: usize = trajs.iter().map(|t| t.observations.nrows()).sum();
    println!(
        "ami train --jepa: {} trajectories ({frames_used} frames, {} held out) from {}; encoder {side}x{side} -> conv {:?} -> {}, predictor {:?}; \
         {} windows of {horizon} steps, batch {}, {} regulariser, {} targets, {epochs} epochs, {threads} thread(s)",
        trajs.len(),
        held,
        dataset.display(),
        spec.channels,
        spec.embed,
        j.predictor.0,
        train.windows(),
        cfg.batch,
        j.regulariser,
        j.target
    );
    let probe = j.probe_frames as usize;
    let first = trainer.diagnose(&train, &heldout, probe).map_err(bad)?;
    println!("before training: {}", diagnostics(&first, spec.embed));
    let batches = train.windows() / cfg.batch;
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new((batches * epochs) as u64) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} batches (eta {eta})  {msg}").expect("valid template"));
    let t0 = Instant::now();
    let mut curve = Vec::new();
    for epoch in 1..=epochs {
        let report = trainer
            .epoch(epoch, &train, &heldout, probe, |_, _, loss| {
                bar.inc(1);
                bar.set_message(format!("epoch {epoch}/{epochs} prediction {loss:.4}"));
            })
            .map_err(|e| bad(format!("{}: {e}", dataset.display())))?;
        bar.suspend(|| {
            println!(
                "epoch {epoch}/{epochs}: prediction {:.5}, regulariser {:.4}, {} ({:.0} frames/s, {:.0} s)",
                report.prediction,
                report.regulariser,
                diagnostics(&report, spec.embed),
                report.frames_per_s,
                t0.elapsed().as_secs_f64()
            )
        });
        // Written every epoch: a stopped run keeps its last epoch.
        trainer.jepa().save(args.out).map_err(|e| bad(format!("cannot write the model: {e}")))?;
        curve.push(serde_json::json!({
            "epoch": epoch, "prediction": report.prediction, "regulariser": report.regulariser, "heldout_error": report.heldout_error,
            "std_min": report.std_min, "std_mean": report.std_mean, "effective_rank": report.effective_rank, "probe_r2": report.probe_r2,
            "frames_per_s": report.frames_per_s,
        }));
    }
    bar.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    println!("trained {epochs} epochs ({} steps) in {secs:.0} s; wrote {}", trainer.steps(), args.out.display());
    if args.json {
        println!("{}", serde_json::json!({ "dataset": dataset, "out": args.out, "frames": frames_used, "seconds": secs, "curve": curve }));
    }
    Ok(())
}

/// The collapse diagnostics as one line.
fn diagnostics(r: &ami_learn::JepaEpoch, embed: usize) -> String {
    let probe = match r.probe_r2.as_slice() {
        [] => "no probe (the dataset has no diagnostics)".to_string(),
        v => format!("probe R^2 {}", v.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(" ")),
    };
    format!("held-out error {:.3}, std min {:.3} mean {:.3}, effective rank {:.1}/{embed}, {probe}", r.heldout_error, r.std_min, r.std_mean, r.effective_rank)
}
