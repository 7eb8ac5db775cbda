//! Fitting an ensemble to transitions: a dataset of `([s, a], s' - s)`
//! rows, a held-out split, bootstrapped batches per member (PETS),
//! normalisation refit on the training split, epochs of Adam steps, the
//! best held-out snapshot kept, and a guard that never lets a non-finite
//! model out.

use std::time::Instant;

use ami_core::error::{CoreError, Result};
use ami_core::modules::ShortTermMemory;
use ndarray::{Array2, Array3, Axis, Slice};
use rand::seq::SliceRandom;
use rand::Rng;

use crate::ensemble::Ensemble;
use crate::norm::Normalizer;
use crate::train::Trainer;

/// Transitions as training rows: inputs `[s, a]` and targets `s' - s`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// `[n, S + A]`.
    pub inputs: Array2<f32>,
    /// `[n, S]`.
    pub targets: Array2<f32>,
}

impl Dataset {
    /// Rows from states, actions and next states (`[n, S]`, `[n, A]`, `[n, S]`).
    pub fn new(states: ndarray::ArrayView2<'_, f32>, actions: ndarray::ArrayView2<'_, f32>, next: ndarray::ArrayView2<'_, f32>) -> Result<Self> {
        let n = states.nrows();
        if actions.nrows() != n || next.dim() != states.dim() {
            return Err(CoreError::shape(
                "Dataset::new",
                format!("{n} rows of states, actions and next states"),
                format!("{:?}, {:?}, {:?}", states.shape(), actions.shape(), next.shape()),
            ));
        }
        let (sd, ad) = (states.ncols(), actions.ncols());
        let mut inputs = Array2::zeros((n, sd + ad));
        inputs.slice_axis_mut(Axis(1), Slice::from(..sd)).assign(&states);
        inputs.slice_axis_mut(Axis(1), Slice::from(sd..)).assign(&actions);
        let targets = &next - &states;
        Ok(Self { inputs, targets })
    }
    /// Every perceived (not imagined) transition of a memory, oldest first.
    pub fn from_memory(memory: &dyn ShortTermMemory) -> Result<Self> {
        Self::from_memory_prefix(memory, memory.len())
    }
    /// The memory's first (oldest) `n` real transitions, as
    /// [`Dataset::from_memory`].
    pub fn from_memory_prefix(memory: &dyn ShortTermMemory, n: usize) -> Result<Self> {
        let (sd, ad) = (memory.state_dim(), memory.action_dim());
        let rows: Vec<_> = (0..n.min(memory.len())).filter_map(|i| memory.get(i)).filter(|t| !t.imagined).collect();
        let mut st = Array2::zeros((rows.len(), sd));
        let mut ac = Array2::zeros((rows.len(), ad));
        let mut nx = Array2::zeros((rows.len(), sd));
        for (i, t) in rows.iter().enumerate() {
            st.row_mut(i).assign(&ndarray::ArrayView1::from(&t.state[..]));
            ac.row_mut(i).assign(&ndarray::ArrayView1::from(&t.action[..]));
            nx.row_mut(i).assign(&ndarray::ArrayView1::from(&t.next_state[..]));
        }
        Self::new(st.view(), ac.view(), nx.view())
    }
    /// Training rows of a model whose one step stands for `chunking.ticks`
    /// steps of the memory's transitions, over the state coordinates
    /// `chunking.dims` (a high planning level's model): from every run of
    /// `ticks` consecutive real transitions of one episode among the
    /// memory's first `n`, the input `[s_t[dims], mean(a_t .. a_{t+ticks-1})]`
    /// and the target `s_{t+ticks}[dims] - s_t[dims]`. Transitions are
    /// consecutive when their times follow each other, the first's next
    /// state is the second's state bit for bit, and the first is not
    /// terminal. Runs overlap (one starts at every transition). With one
    /// tick and every coordinate these are [`Dataset::from_memory_prefix`]'s
    /// rows.
    pub fn from_memory_chunks(memory: &dyn ShortTermMemory, n: usize, chunking: &Chunking) -> Result<Self> {
        let (sd, ad) = (memory.state_dim(), memory.action_dim());
        chunking.check(sd)?;
        if chunking.is_identity(sd) {
            return Self::from_memory_prefix(memory, n);
        }
        let rows: Vec<_> = (0..n.min(memory.len())).filter_map(|i| memory.get(i)).filter(|t| !t.imagined).collect();
        let k = chunking.ticks;
        let linked = |a: &ami_core::modules::Transition, b: &ami_core::modules::Transition| {
            !a.terminated && b.t == a.t.wrapping_add(1) && a.next_state.iter().zip(&b.state).all(|(x, y)| x.to_bits() == y.to_bits())
        };
        // run[i]: how many consecutive transitions start at row i (at most k).
        let mut run = vec![0usize; rows.len()];
        for i in (0..rows.len()).rev() {
            run[i] = if i + 1 < rows.len() && linked(&rows[i], &rows[i + 1]) { (run[i + 1] + 1).min(k) } else { 1 };
        }
        let starts: Vec<usize> = (0..rows.len()).filter(|&i| run[i] >= k).collect();
        let dd = chunking.dims.len();
        let mut inputs = Array2::zeros((starts.len(), dd + ad));
        let mut targets = Array2::zeros((starts.len(), dd));
        for (r, &i) in starts.iter().enumerate() {
            let (first, last) = (&rows[i], &rows[i + k - 1]);
            for (j, &d) in chunking.dims.iter().enumerate() {
                inputs[[r, j]] = first.state[d];
                targets[[r, j]] = last.next_state[d] - first.state[d];
            }
            for c in 0..ad {
                let sum: f32 = rows[i..i + k].iter().map(|t| t.action[c]).sum();
                inputs[[r, dd + c]] = sum / k as f32;
            }
        }
        Ok(Self { inputs, targets })
    }
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.inputs.nrows()
    }
    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one step of a model stands for: `ticks` steps of the agent, over
/// the state coordinates `dims` (the abstract state of a planning level).
/// The model's actions are the mean of the agent's actions over those
/// ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunking {
    /// The state coordinates the model keeps, in order.
    pub dims: Vec<usize>,
    /// Agent steps per model step (at least 1).
    pub ticks: usize,
}

impl Chunking {
    /// One agent step over every coordinate of a `state_dim`-wide state.
    pub fn identity(state_dim: usize) -> Self {
        Self { dims: (0..state_dim).collect(), ticks: 1 }
    }
    /// Whether this is [`Chunking::identity`] of `state_dim`.
    pub fn is_identity(&self, state_dim: usize) -> bool {
        self.ticks == 1 && self.dims.len() == state_dim && self.dims.iter().enumerate().all(|(i, &d)| i == d)
    }
    /// Refuses no coordinate, a coordinate outside a `state_dim`-wide
    /// state or named twice, and zero ticks.
    pub fn check(&self, state_dim: usize) -> Result<()> {
        if self.ticks == 0 {
            return Err(CoreError::config("step_ticks", "must be at least 1"));
        }
        if self.dims.is_empty() {
            return Err(CoreError::config("dims", "keep at least one state coordinate"));
        }
        if let Some(&d) = self.dims.iter().find(|&&d| d >= state_dim) {
            return Err(CoreError::config("dims", format!("coordinate {d} is outside the state (width {state_dim})")));
        }
        if let Some((i, &d)) = self.dims.iter().enumerate().find(|(i, d)| self.dims[..*i].contains(d)) {
            return Err(CoreError::config(format!("dims[{i}]"), format!("names coordinate {d} a second time")));
        }
        Ok(())
    }
}

/// How to fit.
#[derive(Debug, Clone, PartialEq)]
pub struct FitConfig {
    /// Passes over the training rows.
    pub epochs: usize,
    /// Rows per member per step.
    pub batch: usize,
    /// Fraction of rows held out for validation (0: none).
    pub holdout: f32,
    /// Each member trains on its own bootstrap resample (ensembles only).
    pub bootstrap: bool,
    /// Keep the epoch with the best held-out loss, not the last.
    pub keep_best: bool,
    /// At most this many Adam steps in all (0: no limit).
    pub max_steps: usize,
    /// Seed of the split, the resamples and the batch order.
    pub seed: u64,
}

impl Default for FitConfig {
    fn default() -> Self {
        Self { epochs: 50, batch: 256, holdout: 0.1, bootstrap: true, keep_best: true, max_steps: 0, seed: 0 }
    }
}

/// What a fit did.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    /// Mean training loss of the last epoch.
    pub train_loss: f64,
    /// Held-out loss (the training loss on the held-out rows, averaged
    /// over members) of the model kept; `None` without a holdout.
    pub val_loss: Option<f64>,
    /// Held-out one-step mean squared error of the members' mean
    /// prediction, in normalised target units.
    pub val_mse: Option<f64>,
    /// Training and held-out rows.
    pub rows: (usize, usize),
    /// Epochs run.
    pub epochs: usize,
    /// Adam steps taken.
    pub steps: u64,
    /// Wall time, milliseconds.
    pub ms: f64,
    /// Rows skipped because a value in them was not finite.
    pub dropped: usize,
    /// Why training stopped early with the last good model kept (a
    /// non-finite loss or weight), if it did.
    pub rejected: Option<String>,
}

/// Normalised copies of rows `idx` of the dataset.
fn gather(data: &Dataset, norm: &Normalizer, idx: &[usize]) -> (Array2<f32>, Array2<f32>) {
    let (i, s) = (data.inputs.ncols(), data.targets.ncols());
    let mut x = Array2::zeros((idx.len(), i));
    let mut y = Array2::zeros((idx.len(), s));
    for (r, &j) in idx.iter().enumerate() {
        x.row_mut(r).assign(&data.inputs.row(j));
        y.row_mut(r).assign(&data.targets.row(j));
    }
    norm.normalize_inputs(&mut x.view_mut());
    norm.normalize_targets(&mut y.view_mut());
    (x, y)
}

/// Held-out loss and mean-prediction MSE of the trainer's ensemble.
fn validate(trainer: &Trainer, xv: &Array2<f32>, yv: &Array2<f32>) -> Result<(f64, f64)> {
    let k = trainer.ensemble().spec().members;
    let s_dim = yv.ncols();
    let x3 = Array3::from_shape_fn((k, xv.nrows(), xv.ncols()), |(_, r, c)| xv[[r, c]]);
    let y3 = Array3::from_shape_fn((k, yv.nrows(), s_dim), |(_, r, c)| yv[[r, c]]);
    let loss = trainer.loss(x3.view(), y3.view())?;
    // Mean prediction (normalised units) of every member.
    let ens = trainer.ensemble();
    let mut mean = Array2::<f32>::zeros(yv.dim());
    for m in 0..k {
        let out = crate::ensemble::forward_normalized(ens, m, xv.view());
        mean += &out.slice_axis(Axis(1), Slice::from(..s_dim));
    }
    mean /= k as f32;
    let mse = (&mean - yv).mapv(|d| f64::from(d * d)).sum() / (yv.len().max(1) as f64);
    Ok((loss, mse))
}

/// Fits the trainer's ensemble to `data` (see the module docs);
/// `progress(epoch, train_loss, val_loss)` is called after every epoch.
/// The trainer ends holding the model kept: the best held-out epoch
/// (with `keep_best`) or the last one, never a non-finite one.
pub fn fit(trainer: &mut Trainer, data: &Dataset, cfg: &FitConfig, progress: &mut dyn FnMut(usize, f64, Option<f64>)) -> Result<FitReport> {
    let t0 = Instant::now();
    let spec = trainer.ensemble().spec().clone();
    if data.inputs.ncols() != spec.input_dim() || data.targets.ncols() != spec.state_dim {
        return Err(CoreError::shape(
            "fit(data)",
            format!("inputs {} and targets {} wide", spec.input_dim(), spec.state_dim),
            format!("{} and {}", data.inputs.ncols(), data.targets.ncols()),
        ));
    }
    if data.len() < 2 {
        return Err(CoreError::config("fit", format!("needs at least 2 transitions, the data has {}", data.len())));
    }
    if cfg.batch == 0 || cfg.epochs == 0 {
        return Err(CoreError::config("batch", "batch and epochs must be at least 1"));
    }
    if !(0.0..0.9).contains(&cfg.holdout) {
        return Err(CoreError::config("holdout", format!("must be in [0, 0.9), found {}", cfg.holdout)));
    }
    let mut rng = ami_core::rng::rng(cfg.seed);
    let finite = |r: usize| data.inputs.row(r).iter().chain(data.targets.row(r).iter()).all(|v| v.is_finite());
    let mut order: Vec<usize> = (0..data.len()).filter(|&r| finite(r)).collect();
    let dropped = data.len() - order.len();
    if order.len() < 2 {
        return Err(CoreError::config("fit", format!("needs at least 2 finite transitions, the data has {} ({dropped} with non-finite values)", order.len())));
    }
    order.shuffle(&mut rng);
    let n_val = ((order.len() as f32 * cfg.holdout).round() as usize).min(order.len() - 1);
    let (val_idx, train_idx) = order.split_at(n_val);
    let n_train = train_idx.len();
    // Normalisation from the training rows.
    let (tx, ty) = {
        let id = Normalizer::identity(spec.input_dim(), spec.state_dim);
        gather(data, &id, train_idx)
    };
    let norm = Normalizer::fit(tx.view(), ty.view());
    let before = trainer.ensemble().clone();
    trainer.set_norm(norm.clone());
    let (xt, yt) = gather(data, &norm, train_idx);
    let val = if n_val > 0 { Some(gather(data, &norm, val_idx)) } else { None };
    // Each member's rows: a bootstrap resample, or all of them.
    let k = spec.members;
    let member_rows: Vec<Vec<usize>> =
        (0..k).map(|_| if cfg.bootstrap && k > 1 { (0..n_train).map(|_| rng.gen_range(0..n_train)).collect() } else { (0..n_train).collect() }).collect();
    let b = cfg.batch.min(n_train);
    let steps_per_epoch = n_train.div_ceil(b);
    let mut best: Option<(f64, Ensemble)> = None;
    let mut last_good = before.clone();
    let mut report =
        FitReport { train_loss: f64::NAN, val_loss: None, val_mse: None, rows: (n_train, n_val), epochs: 0, steps: 0, ms: 0.0, dropped, rejected: None };
    let mut x = Array3::<f32>::zeros((k, b, spec.input_dim()));
    let mut y = Array3::<f32>::zeros((k, b, spec.state_dim));
    let mut perms = member_rows.clone();
    'epochs: for epoch in 0..cfg.epochs {
        for p in perms.iter_mut() {
            p.shuffle(&mut rng);
        }
        let mut sum = 0.0;
        let mut n = 0usize;
        for step in 0..steps_per_epoch {
            if cfg.max_steps > 0 && report.steps as usize >= cfg.max_steps {
                break 'epochs;
            }
            for (m, p) in perms.iter().enumerate() {
                for r in 0..b {
                    // Wrap around so every batch is full.
                    let j = p[(step * b + r) % p.len()];
                    x.index_axis_mut(Axis(0), m).row_mut(r).assign(&xt.row(j));
                    y.index_axis_mut(Axis(0), m).row_mut(r).assign(&yt.row(j));
                }
            }
            match trainer.step(x.view(), y.view()) {
                Ok(l) => {
                    sum += l;
                    n += 1;
                    report.steps += 1;
                }
                Err(e) => {
                    report.rejected = Some(e.to_string());
                    break 'epochs;
                }
            }
        }
        if !trainer.ensemble().is_finite() {
            report.rejected = Some(format!("non-finite weights after epoch {}: the last good model was kept", epoch + 1));
            break;
        }
        last_good = trainer.ensemble().clone();
        report.epochs = epoch + 1;
        report.train_loss = if n > 0 { sum / n as f64 } else { f64::NAN };
        let v = match &val {
            Some((xv, yv)) => Some(validate(trainer, xv, yv)?),
            None => None,
        };
        progress(epoch, report.train_loss, v.map(|v| v.0));
        if let Some((vl, vm)) = v {
            if cfg.keep_best && vl.is_finite() && best.as_ref().is_none_or(|(b, _)| vl < *b) {
                best = Some((vl, trainer.ensemble().clone()));
            }
            report.val_loss = Some(vl);
            report.val_mse = Some(vm);
        }
    }
    if report.rejected.is_some() || !trainer.ensemble().is_finite() {
        trainer.replace_weights(last_good)?;
    }
    if let Some((_, ens)) = best {
        trainer.replace_weights(ens)?;
        if let Some((xv, yv)) = &val {
            let (vl, vm) = validate(trainer, xv, yv)?;
            report.val_loss = Some(vl);
            report.val_mse = Some(vm);
        }
    }
    if !trainer.ensemble().is_finite() {
        trainer.replace_weights(before)?;
        report.rejected.get_or_insert_with(|| "the fitted model was not finite: the model from before the fit was kept".into());
    }
    report.ms = t0.elapsed().as_secs_f64() * 1e3;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ami_core::modules::{RingMemory, TransitionRef};
    use ndarray::array;

    /// An episode of `n` transitions from time 0: state `[t, 10 t, -t]`
    /// (offset by `base`), action `[t]`, the next state the next one;
    /// `terminal_at` marks one transition terminal.
    fn episode(m: &mut RingMemory, base: f32, n: u64, terminal_at: Option<u64>) {
        let s = |t: u64| array![base + t as f32, 10.0 * (base + t as f32), -(t as f32)];
        for t in 0..n {
            let (a, b) = (s(t), s(t + 1));
            let act = array![t as f32];
            let tr =
                TransitionRef { t, state: a.view(), action: act.view(), cost: 0.0, next_state: b.view(), imagined: false, terminated: terminal_at == Some(t) };
            m.push(&tr).unwrap();
        }
    }

    #[test]
    fn chunks_are_runs_of_one_episode_with_the_mean_action_and_the_kept_coordinates() {
        let mut m = RingMemory::new(3, 1, 100).unwrap();
        episode(&mut m, 0.0, 5, None); // runs of 3 start at t = 0, 1, 2
        episode(&mut m, 100.0, 3, None); // one run, at t = 0
        episode(&mut m, 200.0, 6, Some(1)); // terminal at t = 1: runs start at t = 2, 3
        let c = Chunking { dims: vec![1, 0], ticks: 3 };
        let d = Dataset::from_memory_chunks(&m, m.len(), &c).unwrap();
        assert_eq!(d.len(), 3 + 1 + 2);
        // The run from t = 1 of the first episode: state [1, 10], actions 1, 2, 3.
        assert_eq!(d.inputs.row(1).to_vec(), vec![10.0, 1.0, 2.0]);
        assert_eq!(d.targets.row(1).to_vec(), vec![30.0, 3.0]);
        // The second episode's run does not continue into the third.
        assert_eq!(d.inputs.row(3).to_vec(), vec![1000.0, 100.0, 1.0]);
        assert_eq!(d.targets.row(3).to_vec(), vec![30.0, 3.0]);
        // After the terminal transition: from t = 2.
        assert_eq!(d.inputs.row(4).to_vec(), vec![2020.0, 202.0, 3.0]);
        // A prefix of the memory: only the first episode's runs.
        assert_eq!(Dataset::from_memory_chunks(&m, 5, &c).unwrap().len(), 3);
        // One tick over every coordinate: the plain transitions.
        let plain = Dataset::from_memory_chunks(&m, m.len(), &Chunking::identity(3)).unwrap();
        assert_eq!(plain, Dataset::from_memory(&m).unwrap());
        // Chunks longer than any episode: none.
        assert!(Dataset::from_memory_chunks(&m, m.len(), &Chunking { dims: vec![0], ticks: 7 }).unwrap().is_empty());
    }

    #[test]
    fn a_chunking_outside_the_state_is_refused_by_name() {
        let m = RingMemory::new(3, 1, 10).unwrap();
        let err = |c: Chunking| Dataset::from_memory_chunks(&m, 0, &c).unwrap_err().to_string();
        assert!(err(Chunking { dims: vec![0, 3], ticks: 2 }).contains("coordinate 3 is outside the state (width 3)"));
        assert!(err(Chunking { dims: vec![1, 1], ticks: 2 }).contains("dims[1]"));
        assert!(err(Chunking { dims: vec![], ticks: 2 }).contains("dims"));
        assert!(err(Chunking { dims: vec![0], ticks: 0 }).contains("step_ticks"));
    }
}
