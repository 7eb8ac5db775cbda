//! Learned world models in agents: a seconds-sized fit of Pendulum's
//! dynamics to a stated one-step error, the trainer node's behaviour
//! (trains between episodes, not in evaluation; refuses models it cannot
//! train), and determinism of the learned weights and returns across runs
//! and executors.

use std::path::Path;

use ami_agents::tasks::pendulum::{Pendulum, PendulumModel};
use ami_agents::{load_file, load_str, Agent};
use ami_core::{Environment, WorldModel};
use ami_graph::ExecutorKind;
use ami_learn::{fit, Activation, AdamConfig, Dataset, Ensemble, EnsembleSpec, FitConfig, LearnedModel, Propagation, Trainer};
use ndarray::{Array1, Array2};
use rand::Rng;

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../agents/examples").join(name)
}

/// `n` transitions of the real Pendulum under uniformly random torques.
fn random_transitions(n: usize, seed: u64) -> (Array2<f32>, Array2<f32>, Array2<f32>) {
    let mut env = Pendulum::new();
    let mut rng = ami_core::rng::rng(seed);
    let (mut s, mut a, mut nx) = (Array2::zeros((n, 3)), Array2::zeros((n, 1)), Array2::zeros((n, 3)));
    let mut obs = env.reset(seed).unwrap();
    for i in 0..n {
        let u: f32 = rng.gen_range(-2.0..2.0);
        let step = env.step(Array1::from(vec![u]).view()).unwrap();
        s.row_mut(i).assign(&obs);
        a[[i, 0]] = u;
        nx.row_mut(i).assign(&step.observation);
        obs = if step.truncated { env.reset(seed + i as u64).unwrap() } else { step.observation };
    }
    (s, a, nx)
}

#[test]
fn pendulum_dynamics_are_learned_from_600_random_steps_to_a_small_one_step_error() {
    let (s, a, nx) = random_transitions(600, 1);
    let data = Dataset::new(s.view(), a.view(), nx.view()).unwrap();
    let spec = EnsembleSpec { activation: Activation::Relu, ..EnsembleSpec::new(3, 1, vec![64, 64]) };
    let mut tr = Trainer::new(Ensemble::new(spec, 0).unwrap(), AdamConfig::default(), 2);
    let r = fit(&mut tr, &data, &FitConfig { epochs: 60, batch: 64, seed: 2, ..FitConfig::default() }, &mut |_, _, _| {}).unwrap();
    assert!(r.rejected.is_none() && r.steps > 0, "{r:?}");
    // Held-out transitions from other episodes, against the true model.
    let (ts, ta, tn) = random_transitions(400, 77);
    let model = LearnedModel::new(tr.ensemble().clone(), Propagation::TrajectorySampling, 0.0);
    let mut pred = Array2::zeros((400, 3));
    model.predict(ts.view(), ta.view(), pred.view_mut()).unwrap();
    let mse = (&pred - &tn).mapv(|d| f64::from(d * d)).mean().unwrap();
    // What "doing nothing" (s' = s) scores, for scale.
    let still = (&ts - &tn).mapv(|d| f64::from(d * d)).mean().unwrap();
    assert!(mse < 2e-3 && mse < still / 50.0, "one-step mse {mse} (s' = s scores {still})");
    // The learned model is not the true one, but close to it.
    let mut truth = Array2::zeros((400, 3));
    PendulumModel.predict(ts.view(), ta.view(), truth.view_mut()).unwrap();
    let vs_true = (&pred - &truth).mapv(|d| f64::from(d * d)).mean().unwrap();
    assert!(vs_true < 2e-3, "{vs_true}");
}

/// The pendulum-learn example cut to seconds: one random episode, one
/// planning episode and a small planner.
fn small_learning_agent() -> String {
    std::fs::read_to_string(example("pendulum-learn.toml"))
        .unwrap()
        .replace("episodes = 5", "episodes = 2")
        .replace("eval_episodes = 10", "eval_episodes = 1")
        .replace("epochs = 100", "epochs = 20")
        .replace("horizon = 30", "horizon = 8")
        .replace("samples = 256", "samples = 32")
        .replace("iterations = 6", "iterations = 2")
        .replace("elites = 24", "elites = 8")
}

struct Run {
    returns: Vec<u64>,
    weights: Vec<u32>,
    fits: usize,
    memory: usize,
}

fn run(text: &str, kind: ExecutorKind) -> Run {
    let g = load_str(text, "learn.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut agent = Agent::from_agent_graph(g, kind).unwrap();
    let mut returns = Vec::new();
    for seed in [0, 1] {
        returns.push(agent.run_episode(seed, |_| {}).unwrap().episode_return.to_bits());
    }
    // Evaluation: no fit, nothing recorded.
    let memory = agent.memory().unwrap().lock().len();
    agent.set_evaluating(true);
    returns.push(agent.run_episode(100, |_| {}).unwrap().episode_return.to_bits());
    agent.set_evaluating(false);
    assert_eq!(agent.memory().unwrap().lock().len(), memory, "evaluation episodes are not recorded");
    let trainer = agent.handles().trainers.get("trainer").unwrap();
    let model = agent.handles().models.get("model").unwrap().get();
    let learned = model.as_any().and_then(|a| a.downcast_ref::<LearnedModel>()).expect("the trainer published a learned model");
    Run { returns, weights: learned.ensemble().params().iter().map(|w| w.to_bits()).collect(), fits: trainer.records().len(), memory }
}

#[test]
fn learning_is_bit_identical_across_runs_and_executors_and_skips_evaluation() {
    let text = small_learning_agent();
    let a = run(&text, ExecutorKind::Sequential);
    assert_eq!(a.fits, 2, "two fits: at the start of the second episode, and before the evaluation");
    assert_eq!(a.memory, 400, "two episodes of 200 steps, one transition per step");
    let b = run(&text, ExecutorKind::Sequential);
    let c = run(&text, ExecutorKind::Parallel);
    assert_eq!(a.returns, b.returns);
    assert_eq!(a.weights, b.weights);
    assert_eq!(a.returns, c.returns, "parallel executor");
    assert_eq!(a.weights, c.weights, "parallel executor");
}

#[test]
fn the_trainer_refuses_a_model_it_cannot_train_and_names_it() {
    let text = small_learning_agent()
        .replace("implementation = \"learned\"", "implementation = \"task\"")
        .replace("width = 64\nlayers = 2\nactivation = \"relu\"   # plans on the fused SIMD kernels\nmembers = 1\n", "");
    let err = load_str(&text, "learn.toml").unwrap_err().to_string();
    assert!(err.contains("trainer") && err.contains("`learned` world models only"), "{err}");
}

#[test]
fn the_learning_examples_load() {
    for f in ["pendulum-learn.toml", "pendulum-learn-ensemble.toml", "pendulum-learn-online.toml", "cartpole-learn.toml"] {
        let g = load_file(&example(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(g.config.eval_seeds, (100..110).collect::<Vec<u64>>(), "{f}");
    }
}

#[test]
fn learning_resumes_from_a_saved_memory_and_saved_weights() {
    let dir = tempfile::tempdir().unwrap();
    let mem = dir.path().join("memory.bin");
    let weights = dir.path().join("model.safetensors");
    // A first run: one random episode, its memory saved.
    let first = small_learning_agent()
        .replace("episodes = 2", "episodes = 1")
        .replace("params = { capacity = 100000 }", &format!("params = {{ capacity = 100000, save_path = {:?} }}", mem.display().to_string()));
    let g = load_str(&first, "first.toml").unwrap();
    let mut agent = Agent::from_agent_graph(g, ExecutorKind::Sequential).unwrap();
    agent.run_episode(0, |_| {}).unwrap();
    drop(agent);
    // Offline, as `ami train` does: fit the saved memory, write the weights.
    let saved = ami_core::modules::RingMemory::load(&mem).unwrap();
    let data = Dataset::from_memory(&saved).unwrap();
    assert_eq!(data.len(), 200);
    let spec = EnsembleSpec::new(3, 1, vec![64, 64]);
    let mut tr = Trainer::new(Ensemble::new(spec, 0).unwrap(), AdamConfig::default(), 1);
    fit(&mut tr, &data, &FitConfig { epochs: 5, batch: 64, ..FitConfig::default() }, &mut |_, _, _| {}).unwrap();
    ami_learn::io::save(tr.ensemble(), &weights).unwrap();
    // A second agent starts from both: no exploration, the weights loaded,
    // the memory's 200 transitions there before its first fit.
    let second = small_learning_agent()
        .replace("episodes = 2", "episodes = 1")
        .replace("explore_episodes = 1", "explore_episodes = 0")
        .replace(
            "width = 64\nlayers = 2\nactivation = \"relu\"   # plans on the fused SIMD kernels\nmembers = 1\n",
            &format!("load = {:?}\n", weights.display().to_string()),
        )
        .replace("params = { capacity = 100000 }", &format!("params = {{ capacity = 100000, load_path = {:?} }}", mem.display().to_string()));
    let g = load_str(&second, "second.toml").unwrap_or_else(|e| panic!("{e}"));
    let model = g.models.get("model").unwrap().get();
    let loaded = model.as_any().and_then(|a| a.downcast_ref::<LearnedModel>()).unwrap();
    assert_eq!(loaded.ensemble(), tr.ensemble(), "the agent plans with the saved weights");
    let mut agent = Agent::from_agent_graph(g, ExecutorKind::Sequential).unwrap();
    assert_eq!(agent.memory().unwrap().lock().len(), 200);
    agent.run_episode(1, |_| {}).unwrap();
    let fits = agent.handles().trainers.get("trainer").unwrap().records();
    assert_eq!((fits.len(), fits[0].episode, fits[0].experience), (1, 0, 200), "the first fit, before the first episode, on the saved transitions");
    assert_eq!(agent.memory().unwrap().lock().len(), 400);
    // A memory file of another width is refused, naming the parameter.
    let wrong = second.replace("implementation = \"pendulum\"", "implementation = \"cartpole\"");
    let err = load_str(&wrong, "wrong.toml").unwrap_err().to_string();
    assert!(err.contains("load_path") && err.contains("memory.bin"), "{err}");
}

#[test]
fn evaluations_do_not_change_what_is_learned() {
    let text = small_learning_agent();
    let weights = |agent: &Agent| -> Vec<u32> {
        let m = agent.handles().models.get("model").unwrap().get();
        m.as_any().and_then(|a| a.downcast_ref::<LearnedModel>()).unwrap().ensemble().params().iter().map(|w| w.to_bits()).collect()
    };
    let new = || Agent::from_agent_graph(load_str(&text, "learn.toml").unwrap(), ExecutorKind::Sequential).unwrap();
    // A: learn, evaluate, learn. B: learn, learn.
    let mut a = new();
    a.run_episode(0, |_| {}).unwrap();
    a.set_evaluating(true);
    a.run_episode(100, |_| {}).unwrap();
    a.set_evaluating(false);
    let ra = a.run_episode(1, |_| {}).unwrap();
    let mut b = new();
    b.run_episode(0, |_| {}).unwrap();
    let rb = b.run_episode(1, |_| {}).unwrap();
    assert_eq!(ra.episode_return.to_bits(), rb.episode_return.to_bits());
    assert_eq!(weights(&a), weights(&b));
    let (fa, fb) = (a.handles().trainers["trainer"].records(), b.handles().trainers["trainer"].records());
    assert_eq!(fa.len(), 1, "the evaluation ran the fit the second episode would have run");
    assert_eq!((fa[0].episode, fa[0].experience), (fb[0].episode, fb[0].experience));
}

/// The energy of each sequence under trajectory sampling, computed the long
/// way: trajectory `j` is predicted at step `t` by member `j` (TS-inf) or
/// `(j - t) mod K` (TS-1), and the sequence scores its trajectories' mean.
fn particle_reference(ens: &Ensemble, cost: &ami_core::Cost, s0: &Array1<f32>, actions: &ndarray::Array3<f32>, ts1: bool) -> Vec<f64> {
    let (t_len, n, _) = actions.dim();
    let k = ens.spec().members;
    (0..n)
        .map(|i| {
            let mut total = 0.0;
            for j in 0..k {
                let mut s = s0.clone().insert_axis(ndarray::Axis(0));
                for t in 0..t_len {
                    let m = if ts1 { (j + k * t_len - t) % k } else { j };
                    let a = actions.slice(ndarray::s![t, i..i + 1, ..]);
                    let mut next = Array2::zeros(s.dim());
                    ens.predict_member(m, s.view(), a, next.view_mut(), None);
                    let mut e = Array1::zeros(1);
                    cost.step_energy(t, s.view(), a, next.view(), e.view_mut()).unwrap();
                    total += f64::from(e[0]);
                    s = next;
                }
            }
            total / k as f64
        })
        .collect()
}

#[test]
fn trajectory_sampling_rolls_every_sequence_through_the_members_as_documented() {
    use ami_core::{ActionPenalty, Cost, QuadraticCost};
    let spec = EnsembleSpec { activation: Activation::Relu, ..EnsembleSpec::new(3, 1, vec![16]) };
    let mut ens = Ensemble::new(EnsembleSpec { members: 3, ..spec }, 5).unwrap();
    // Members far enough apart that the assignment shows in the energies.
    let (s, a, nx) = random_transitions(64, 3);
    let d = Dataset::new(s.view(), a.view(), nx.view()).unwrap();
    ens.set_norm(ami_learn::Normalizer::fit(d.inputs.view(), d.targets.view()));
    let mut cost = Cost::new();
    cost.add_intrinsic(std::sync::Arc::new(QuadraticCost::new("goal", vec![1.0, 1.0, 0.1], vec![])), 1.0).unwrap();
    cost.add_intrinsic(std::sync::Arc::new(ActionPenalty::new(1)), 0.01).unwrap();
    cost.set_goal(Some(ndarray::array![1.0, 0.0, 0.0]));
    let s0 = ndarray::array![-0.9f32, 0.3, 0.5];
    let mut rng = ami_core::rng::rng(9);
    let actions = ndarray::Array3::from_shape_fn((6, 4, 1), |_| rng.gen_range(-2.0f32..2.0));
    let mut by_kind = Vec::new();
    for (propagation, ts1) in [(Propagation::TrajectorySampling1, true), (Propagation::TrajectorySampling, false)] {
        let model = LearnedModel::new(ens.clone(), propagation, 0.0);
        assert_eq!(model.particles().count, 3);
        assert_eq!(model.particles().reassign, ts1);
        let mut got = Array1::zeros(4);
        ami_planners::Rollout::new().energies(&model, &cost, s0.view(), actions.view(), &mut got).unwrap();
        let want = particle_reference(&ens, &cost, &s0, &actions, ts1);
        for (g, w) in got.iter().zip(&want) {
            assert!((f64::from(*g) - w).abs() < 1e-4 * w.abs().max(1.0), "{propagation:?}: {g} vs {w}");
        }
        by_kind.push(got);
    }
    // The two assignments are different functions of the members.
    let gap = by_kind[0].iter().zip(&by_kind[1]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(gap > 1e-3, "TS-1 and TS-inf gave the same energies ({gap})");
}

/// The small learning agent with its trainer also fitting every 50 ticks,
/// in the background, the model switching over the edge `trainer.fits ->
/// model.update`.
fn online_learning_agent() -> String {
    small_learning_agent()
        .replace("implementation = \"world_model\"\n", "implementation = \"world_model\"\nrate = 50\nbackground = true\n")
        .replace("holdout = 0.1\n", "holdout = 0.1\nevery_ticks = 50\nmin_transitions = 20\n")
        + "\n[[edges]]\nfrom = \"trainer.fits\"\nto = \"model.update\"\n"
}

/// Per learning episode: the fits' ticks and, after every tick, the model
/// handle's version; then the final weights.
fn run_online(text: &str, kind: ExecutorKind) -> (Vec<Vec<u64>>, Vec<Vec<u64>>, Vec<u32>) {
    let g = load_str(text, "online.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut agent = Agent::from_agent_graph(g, kind).unwrap();
    let handle = agent.handles().models.get("model").unwrap().clone();
    let (mut fit_ticks, mut versions) = (Vec::new(), Vec::new());
    for seed in [0, 1] {
        let mut v = Vec::new();
        agent.run_episode(seed, |_| v.push(handle.version())).unwrap();
        versions.push(v);
        let records = agent.handles().trainers.get("trainer").unwrap().records();
        fit_ticks.push(records.iter().filter(|r| r.episode == seed as usize).map(|r| r.tick).collect());
    }
    let model = handle.get();
    let learned = model.as_any().and_then(|a| a.downcast_ref::<LearnedModel>()).unwrap();
    (fit_ticks, versions, learned.ensemble().params().iter().map(|w| w.to_bits()).collect())
}

#[test]
fn a_background_trainer_fits_during_episodes_and_the_planner_switches_at_fixed_ticks() {
    let text = online_learning_agent();
    let (ticks, versions, weights) = run_online(&text, ExecutorKind::Sequential);
    // Episode 0 explores from an empty memory: no fit at its start, then
    // one every 50 ticks. Episode 1 starts with no new data (the fit at
    // tick 200 saw the whole memory, and takes over at the reset), so no
    // fit at its start either.
    assert_eq!(ticks[0], vec![50, 100, 150, 200], "{ticks:?}");
    assert_eq!(ticks[1], vec![50, 100, 150, 200], "{ticks:?}");
    // The fit at tick k becomes the planner's model at tick k + 50 (the
    // trainer's rate), when the model node commits it: the handle's version
    // goes up exactly there, once per fit that is committed in time.
    for (e, v) in versions.iter().enumerate() {
        let rises: Vec<usize> = (1..v.len()).filter(|&t| v[t] > v[t - 1]).collect();
        let want: Vec<usize> = ticks[e].iter().filter(|&&k| k > 0).map(|&k| k as usize + 50).filter(|&t| t < v.len()).collect();
        assert_eq!(rises, want, "episode {e}: versions {v:?}");
    }
    // The same ticks, versions and weights, bit for bit, in the parallel
    // executor (where the trainer runs on its own thread).
    let (t2, v2, w2) = run_online(&text, ExecutorKind::Parallel);
    assert_eq!(ticks, t2);
    assert_eq!(versions, v2);
    assert_eq!(weights, w2);
}

#[test]
fn fits_during_episodes_refuse_a_memory_that_fills_up_and_say_why() {
    let text = online_learning_agent().replace("capacity = 100000", "capacity = 90");
    let g = load_str(&text, "online.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut agent = Agent::from_agent_graph(g, ExecutorKind::Sequential).unwrap();
    let err = format!("{:#}", agent.run_episode(0, |_| {}).unwrap_err());
    assert!(err.contains("trainer") && err.contains("every_ticks") && err.contains("capacity of 90"), "{err}");
}

#[test]
fn every_ticks_must_be_a_multiple_of_the_trainers_rate() {
    let text = online_learning_agent().replace("every_ticks = 50", "every_ticks = 30");
    let err = load_str(&text, "online.toml").unwrap_err().to_string();
    assert!(err.contains("every_ticks") && err.contains("multiple of the node's rate (50)"), "{err}");
}
