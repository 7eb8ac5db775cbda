//! `ami train`: fit a world model (or, with `--critic`, a critic; with
//! `--policy`, a Mode-1 policy) offline, from a saved short-term memory (an
//! agent's `save_path`), and write its weights as safetensors that an agent
//! file loads (`implementation = "learned"`, `load = "FILE"`, in a
//! `world_model`, `critic` or `policy` node).

use std::io::IsTerminal;
use std::path::PathBuf;

use super::BadInput;
use ami_core::modules::RingMemory;
use ami_learn::{
    fit, fit_critic, fit_policy, io, Activation, AdamConfig, CriticData, CriticFitConfig, Dataset, Ensemble, EnsembleSpec, FitConfig, MlpCritic, MlpPolicy,
    PolicyData, Trainer,
};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `ami train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// The memory file to learn from (written by a `ring` memory's
    /// `save_path`).
    #[arg(long, value_name = "FILE", required_unless_present = "jepa", conflicts_with = "jepa")]
    pub memory: Option<PathBuf>,
    /// Train a JEPA world model (an image encoder and a latent predictor)
    /// on this trajectory dataset (written by `ami collect`) instead.
    #[arg(long, value_name = "DATASET", conflicts_with_all = ["critic", "policy", "init"])]
    pub jepa: Option<PathBuf>,
    /// The JEPA's settings (with `--jepa`).
    #[command(flatten)]
    pub jepa_args: super::train_jepa::JepaArgs,
    /// Where to write the weights (safetensors, PyTorch layout).
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
    /// Start from these weights (resume; the file sets the shape) instead
    /// of fresh ones.
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,
    /// Hidden width.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=8192))]
    pub width: u64,
    /// Hidden layers.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=32))]
    pub layers: u64,
    /// Hidden activation: relu or silu.
    #[arg(long, default_value = "relu", value_parser = ["relu", "silu"])]
    pub activation: String,
    /// Ensemble members.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub members: u64,
    /// Predict a log-variance and train on the Gaussian NLL.
    #[arg(long)]
    pub probabilistic: bool,
    /// Passes over the data (default 100; a JEPA's 10).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub epochs: Option<u64>,
    /// Rows per member per step (a JEPA's: windows per step; default 256,
    /// a JEPA's 64).
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=65536))]
    pub batch: Option<u64>,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3, value_parser = positive)]
    pub lr: f64,
    /// Fraction of the data held out for validation.
    #[arg(long, default_value_t = 0.1, value_parser = fraction)]
    pub holdout: f64,
    /// Seed of the weights, the split and the batches.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threads (0: one per core).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=256))]
    pub threads: u64,
    /// Fit a critic (the intrinsic cost still to come, by fitted value
    /// iteration on TD(lambda) targets of the memory's costs) instead of a
    /// world model.
    #[arg(long, conflicts_with = "policy")]
    pub critic: bool,
    /// Fit a Mode-1 policy to the memory's (state, action) pairs
    /// (behaviour cloning of the planner that acted) instead of a world
    /// model.
    #[arg(long)]
    pub policy: bool,
    /// Critic: discount of future cost.
    #[arg(long, default_value_t = 0.93, value_parser = unit)]
    pub discount: f64,
    /// Critic: TD(lambda)'s lambda.
    #[arg(long, default_value_t = 0.9, value_parser = unit)]
    pub lambda: f64,
    /// Critic: rounds of value iteration (each `--epochs` long).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub rounds: u64,
    /// Print one JSON object with the losses on stdout's last line.
    #[arg(long)]
    pub json: bool,
}

/// The `--memory` file (clap requires it unless `--jepa` is given).
fn memory_file(args: &TrainArgs) -> anyhow::Result<&PathBuf> {
    args.memory.as_ref().ok_or_else(|| anyhow::Error::new(BadInput("--memory FILE is required (or --jepa DATASET)".into())))
}

fn unit(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number in [0, 1]")),
    }
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(f64::from(v)),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..0.9).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a fraction in [0, 0.9)")),
    }
}

/// Runs `ami train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    if let Some(dataset) = &args.jepa {
        let shared = super::train_jepa::Shared {
            out: &args.out,
            epochs: args.epochs,
            batch: args.batch,
            lr: args.lr,
            holdout: args.holdout,
            seed: args.seed,
            threads: threads(&args),
            json: args.json,
        };
        return super::train_jepa::run(&args.jepa_args, &shared, dataset);
    }
    if args.critic {
        return run_critic(&args);
    }
    if args.policy {
        return run_policy(&args);
    }
    let mem = memory_file(&args)?;
    let memory = RingMemory::load(mem).map_err(|e| BadInput(format!("cannot use the memory file: {e}")))?;
    let data = Dataset::from_memory(&memory).map_err(|e| BadInput(format!("{}: {e}", mem.display())))?;
    let ens = match &args.init {
        Some(p) => {
            let e = io::load(p).map_err(|e| BadInput(format!("cannot use the initial weights: {e}")))?;
            if (e.spec().state_dim, e.spec().action_dim) != (memory_state(&memory), memory_action(&memory)) {
                return Err(anyhow::Error::new(BadInput(format!(
                    "{}: the model's states and actions are {} and {} wide, the memory's {} and {}",
                    p.display(),
                    e.spec().state_dim,
                    e.spec().action_dim,
                    memory_state(&memory),
                    memory_action(&memory)
                ))));
            }
            e
        }
        None => {
            let spec = EnsembleSpec {
                activation: Activation::parse(&args.activation)?,
                members: args.members as usize,
                probabilistic: args.probabilistic,
                ..EnsembleSpec::new(memory_state(&memory), memory_action(&memory), vec![args.width as usize; args.layers as usize])
            };
            Ensemble::new(spec, args.seed).map_err(|e| BadInput(format!("{}: {e}", mem.display())))?
        }
    };
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n as usize,
    };
    let spec = ens.spec().clone();
    let mut trainer = Trainer::new(ens, AdamConfig { lr: args.lr as f32, ..AdamConfig::default() }, threads);
    let cfg = fit_config(&args);
    println!(
        "ami train: {} transitions from {}, {} member(s) of {:?} {}, {} epochs, batch {}, {threads} thread(s)",
        data.len(),
        mem.display(),
        spec.members,
        spec.hidden,
        spec.activation.name(),
        cfg.epochs,
        cfg.batch
    );
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new(cfg.epochs as u64) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} epochs  {msg}").expect("valid template"));
    let mut curve = Vec::new();
    let memory_path = mem.display().to_string();
    let report = fit(&mut trainer, &data, &cfg, &mut |epoch, train, val| {
        bar.inc(1);
        bar.set_message(format!("loss {train:.5} val {}", val.map_or("-".into(), |v| format!("{v:.5}"))));
        curve.push(serde_json::json!({ "epoch": epoch, "train_loss": train, "val_loss": val }));
    })
    .map_err(|e| BadInput(format!("{memory_path}: {e}")))?;
    bar.finish_and_clear();
    if let Some(why) = &report.rejected {
        eprintln!("warning: {why}");
    }
    io::save(trainer.ensemble(), &args.out).map_err(|e| BadInput(format!("cannot write the weights: {e}")))?;
    println!(
        "trained {} epochs ({} steps, {:.0} ms): loss {:.5}, held-out loss {}, held-out one-step mse {} (normalised); {} rows skipped as non-finite; wrote {}",
        report.epochs,
        report.steps,
        report.ms,
        report.train_loss,
        report.val_loss.map_or("-".into(), |v| format!("{v:.5}")),
        report.val_mse.map_or("-".into(), |v| format!("{v:.3e}")),
        report.dropped,
        args.out.display()
    );
    if args.json {
        let out = serde_json::json!({
            "memory": mem, "out": args.out, "transitions": data.len(), "epochs": report.epochs, "steps": report.steps,
            "train_loss": report.train_loss, "val_loss": report.val_loss, "val_mse": report.val_mse, "ms": report.ms,
            "dropped": report.dropped, "rejected": report.rejected, "curve": curve,
        });
        println!("{out}");
    }
    Ok(())
}

/// `ami train --critic`.
fn run_critic(args: &TrainArgs) -> anyhow::Result<()> {
    if args.members != 1 || args.probabilistic {
        return Err(anyhow::Error::new(BadInput("--critic fits one deterministic network: drop --members and --probabilistic".into())));
    }
    let mem = memory_file(args)?;
    let memory = RingMemory::load(mem).map_err(|e| BadInput(format!("cannot use the memory file: {e}")))?;
    let data = CriticData::from_memory(&memory).map_err(|e| BadInput(format!("{}: {e}", mem.display())))?;
    let net = match &args.init {
        Some(p) => {
            let e = io::load(p).map_err(|e| BadInput(format!("cannot use the initial weights: {e}")))?;
            let c = MlpCritic::from_ensemble("critic", e).map_err(|e| BadInput(format!("{}: {e}", p.display())))?;
            if c.state_dim() != memory_state(&memory) {
                return Err(anyhow::Error::new(BadInput(format!(
                    "{}: the critic reads states {} wide, the memory's are {}",
                    p.display(),
                    c.state_dim(),
                    memory_state(&memory)
                ))));
            }
            c.ensemble().clone()
        }
        None => {
            MlpCritic::new("critic", memory_state(&memory), vec![args.width as usize; args.layers as usize], Activation::parse(&args.activation)?, args.seed)
                .map_err(|e| BadInput(format!("{}: {e}", mem.display())))?
                .ensemble()
                .clone()
        }
    };
    let threads = threads(args);
    let mut trainer = Trainer::new(net, AdamConfig { lr: args.lr as f32, ..AdamConfig::default() }, threads);
    let cfg = CriticFitConfig { rounds: args.rounds as usize, discount: args.discount as f32, lambda: args.lambda as f32, fit: fit_config(args) };
    println!(
        "ami train --critic: {} transitions from {}, {} rounds of {} epochs, discount {}, lambda {}, {threads} thread(s)",
        data.len(),
        mem.display(),
        cfg.rounds,
        cfg.fit.epochs,
        cfg.discount,
        cfg.lambda
    );
    let report = fit_critic(&mut trainer, &data, &cfg).map_err(|e| BadInput(format!("{}: {e}", mem.display())))?;
    if let Some(why) = &report.rejected {
        eprintln!("warning: {why}");
    }
    io::save(trainer.ensemble(), &args.out).map_err(|e| BadInput(format!("cannot write the weights: {e}")))?;
    let values = MlpCritic::from_ensemble("critic", trainer.ensemble().clone())?.values(data.states.view());
    let mean_v = f64::from(values.sum()) / values.len().max(1) as f64;
    println!(
        "fitted the critic ({} steps in the last round, {:.0} ms): loss {:.5}, held-out loss {}; mean value over the memory's states {mean_v:.3}; wrote {}",
        report.steps,
        report.ms,
        report.train_loss,
        report.val_loss.map_or("-".into(), |v| format!("{v:.5}")),
        args.out.display()
    );
    if args.json {
        let out = serde_json::json!({
            "memory": mem, "out": args.out, "transitions": data.len(), "rounds": cfg.rounds, "epochs": report.epochs,
            "train_loss": report.train_loss, "val_loss": report.val_loss, "mean_value": mean_v, "ms": report.ms, "rejected": report.rejected,
        });
        println!("{out}");
    }
    Ok(())
}

/// The fitting settings `--epochs`, `--batch`, `--holdout` and `--seed`
/// give a world model, a critic's rounds and a policy.
fn fit_config(args: &TrainArgs) -> FitConfig {
    FitConfig {
        epochs: args.epochs.unwrap_or(100) as usize,
        batch: args.batch.unwrap_or(256) as usize,
        holdout: args.holdout as f32,
        seed: args.seed,
        ..FitConfig::default()
    }
}

fn threads(args: &TrainArgs) -> usize {
    match args.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n as usize,
    }
}

/// `ami train --policy`.
fn run_policy(args: &TrainArgs) -> anyhow::Result<()> {
    if args.members != 1 || args.probabilistic {
        return Err(anyhow::Error::new(BadInput("--policy fits one deterministic network: drop --members and --probabilistic".into())));
    }
    let mem = memory_file(args)?;
    let memory = RingMemory::load(mem).map_err(|e| BadInput(format!("cannot use the memory file: {e}")))?;
    let data = PolicyData::from_memory(&memory);
    let (s, a) = (memory_state(&memory), ami_core::ShortTermMemory::action_dim(&memory));
    let net = match &args.init {
        Some(p) => {
            let e = io::load(p).map_err(|e| BadInput(format!("cannot use the initial weights: {e}")))?;
            let want = MlpPolicy::spec(s, a, e.spec().hidden.clone(), e.spec().activation)?;
            if e.spec() != &want {
                return Err(anyhow::Error::new(BadInput(format!(
                    "{}: not a policy for the memory's states ({s} wide) and actions ({a} wide): the network maps {} inputs to {} outputs",
                    p.display(),
                    e.spec().input_dim(),
                    e.spec().output_dim()
                ))));
            }
            e
        }
        None => {
            let spec = MlpPolicy::spec(s, a, vec![args.width as usize; args.layers as usize], Activation::parse(&args.activation)?)
                .map_err(|e| BadInput(format!("{}: {e}", mem.display())))?;
            Ensemble::new(spec, args.seed)?
        }
    };
    let threads = threads(args);
    let mut trainer = Trainer::new(net, AdamConfig { lr: args.lr as f32, ..AdamConfig::default() }, threads);
    let cfg = fit_config(args);
    println!("ami train --policy: {} (state, action) pairs from {}, {} epochs, {threads} thread(s)", data.len(), mem.display(), cfg.epochs);
    let report = fit_policy(&mut trainer, &data, &cfg).map_err(|e| BadInput(format!("{}: {e}", mem.display())))?;
    if let Some(why) = &report.rejected {
        eprintln!("warning: {why}");
    }
    io::save(trainer.ensemble(), &args.out).map_err(|e| BadInput(format!("cannot write the weights: {e}")))?;
    println!(
        "fitted the policy ({} steps, {:.0} ms): loss {:.5}, held-out loss {}; wrote {}",
        report.steps,
        report.ms,
        report.train_loss,
        report.val_loss.map_or("-".into(), |v| format!("{v:.5}")),
        args.out.display()
    );
    if args.json {
        let out = serde_json::json!({
            "memory": mem, "out": args.out, "pairs": data.len(), "epochs": report.epochs,
            "train_loss": report.train_loss, "val_loss": report.val_loss, "val_mse": report.val_mse, "ms": report.ms, "rejected": report.rejected,
        });
        println!("{out}");
    }
    Ok(())
}

fn memory_state(m: &RingMemory) -> usize {
    ami_core::modules::ShortTermMemory::state_dim(m)
}

fn memory_action(m: &RingMemory) -> usize {
    ami_core::modules::ShortTermMemory::action_dim(m)
}
