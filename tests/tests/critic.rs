//! The learned critic: episode ends read from memory, fitted value
//! iteration against an analytic value function, and the critic as the
//! planner's terminal cost in an agent file (trained between episodes,
//! deterministic across executors).

use std::path::Path;

use ami_agents::{load_str, Agent};
use ami_core::{RingMemory, ShortTermMemory, TransitionRef};
use ami_graph::ExecutorKind;
use ami_learn::targets::End;
use ami_learn::{fit_critic, Activation, AdamConfig, CriticData, CriticFitConfig, FitConfig, MlpCritic, Trainer};
use ndarray::{array, Array1, Array2};
use rand::Rng;

fn push(mem: &mut RingMemory, t: u64, s: &Array1<f32>, cost: f32, next: &Array1<f32>) {
    push_ended(mem, t, s, cost, next, false);
}

fn push_ended(mem: &mut RingMemory, t: u64, s: &Array1<f32>, cost: f32, next: &Array1<f32>, terminated: bool) {
    let a = array![0.0f32];
    mem.push(&TransitionRef { t, state: s.view(), action: a.view(), cost, next_state: next.view(), imagined: false, terminated }).unwrap();
}

#[test]
fn episode_ends_come_from_the_ticks_and_unusable_costs_cut_the_sequence() {
    let mut mem = RingMemory::new(2, 1, 100).unwrap();
    let s = array![0.0f32, 0.0];
    // Two episodes (ticks 0, 1, 2 and 0, 1, 2), a NaN cost at the second's tick 1.
    for (t, c) in [(0, 1.0), (1, 2.0), (2, 3.0), (0, 4.0), (1, f32::NAN), (2, 6.0)] {
        push(&mut mem, t, &s, c, &s);
    }
    let d = CriticData::from_memory(&mem).unwrap();
    assert_eq!(d.costs, vec![1.0, 2.0, 3.0, 4.0, 6.0], "the NaN-cost transition is left out");
    assert_eq!(d.ends, vec![End::Continues, End::Continues, End::Truncated, End::Truncated, End::Truncated]);
    // A terminal flag ends the episode at a terminal state, also when the
    // next transition is the following tick of the same run.
    let mut mem = RingMemory::new(2, 1, 100).unwrap();
    for (t, terminal) in [(0, false), (1, true), (0, false), (1, false), (2, true)] {
        push_ended(&mut mem, t, &s, 1.0, &s, terminal);
    }
    push_ended(&mut mem, 3, &s, 1.0, &s, true);
    let d = CriticData::from_memory(&mem).unwrap();
    assert_eq!(d.ends, vec![End::Continues, End::Terminated, End::Continues, End::Continues, End::Terminated, End::Terminated]);
}

#[test]
fn cartpole_episodes_end_terminated_in_memory_and_in_the_critics_data() {
    // Random actions topple the pole within a few dozen steps: every
    // episode ends at a terminal state, which the memory records from the
    // environment's `terminated` output, and the critic's data does not
    // bootstrap past.
    let text = std::fs::read_to_string(example("cartpole.toml")).unwrap().replace("return_best = true", "return_best = true\nexplore_episodes = 3");
    let g = load_str(&text, "cartpole.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut agent = Agent::from_agent_graph(g, ExecutorKind::Sequential).unwrap();
    let steps: Vec<usize> = (0..3).map(|seed| agent.run_episode(seed, |_| {}).unwrap().steps).collect();
    assert!(steps.iter().all(|&n| n > 0 && n < 200), "random episodes end early: {steps:?}");
    let memory = agent.handles().memory.clone().expect("the memory");
    let mem = memory.lock();
    assert_eq!(mem.len(), steps.iter().sum::<usize>(), "one transition per step");
    let flagged: Vec<u64> = (0..mem.len()).filter_map(|i| mem.get(i)).filter(|t| t.terminated).map(|t| t.t).collect();
    let last_ticks: Vec<u64> = steps.iter().map(|&n| n as u64 - 1).collect();
    assert_eq!(flagged, last_ticks, "exactly each episode's last transition is terminal");
    let d = CriticData::from_memory(mem.as_ref()).unwrap();
    assert_eq!(d.ends.iter().filter(|e| **e == End::Terminated).count(), 3);
    assert!(!d.ends.contains(&End::Truncated), "no time limit was reached");
    // Without the edge every end counts as a time limit.
    let edge = "[[edges]]                     # terminal states (not time limits), for critic targets\nfrom = \"env.terminated\"\nto = \"memory.terminated\"\n";
    assert!(text.contains(edge));
    let g = load_str(&text.replace(edge, ""), "cartpole.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut agent = Agent::from_agent_graph(g, ExecutorKind::Sequential).unwrap();
    agent.run_episode(0, |_| {}).unwrap();
    let memory = agent.handles().memory.clone().expect("the memory");
    let d = CriticData::from_memory(memory.lock().as_ref()).unwrap();
    assert_eq!(d.ends.last(), Some(&End::Truncated));
    assert!(!d.ends.contains(&End::Terminated));
}

#[test]
fn fitted_value_iteration_finds_an_analytic_value_function() {
    // States uniform in [-1, 1]^2, each followed by an independent one;
    // cost s0^2. With discount g, V(s) = s0^2 + g / (1 - g) E[s0^2]
    // = s0^2 + 1/3 for g = 1/2.
    let mut rng = ami_core::rng::rng(4);
    let n = 1500;
    let states: Vec<Array1<f32>> = (0..=n).map(|_| Array1::from_shape_fn(2, |_| rng.gen_range(-1.0f32..1.0))).collect();
    let mut mem = RingMemory::new(2, 1, 10_000).unwrap();
    for i in 0..n {
        // Episodes of 50 steps, cut by a time limit.
        push(&mut mem, (i % 50) as u64, &states[i], states[i][0] * states[i][0], &states[i + 1]);
    }
    let data = CriticData::from_memory(&mem).unwrap();
    let critic = MlpCritic::new("v", 2, vec![32, 32], Activation::Relu, 1).unwrap();
    let mut tr = Trainer::new(critic.ensemble().clone(), AdamConfig::default(), 2);
    let cfg = CriticFitConfig { rounds: 12, discount: 0.5, lambda: 0.0, fit: FitConfig { epochs: 30, batch: 128, seed: 3, ..FitConfig::default() } };
    let report = fit_critic(&mut tr, &data, &cfg).unwrap();
    assert!(report.rejected.is_none(), "{report:?}");
    let learned = MlpCritic::from_ensemble("v", tr.ensemble().clone()).unwrap();
    let probe = Array2::from_shape_fn((200, 2), |_| rng.gen_range(-0.9f32..0.9));
    let v = learned.values(probe.view());
    let worst = probe.rows().into_iter().zip(&v).map(|(s, &v)| (f64::from(v) - (f64::from(s[0] * s[0]) + 1.0 / 3.0)).abs()).fold(0.0, f64::max);
    assert!(worst < 0.08, "largest error {worst} against V(s) = s0^2 + 1/3");
    // Without bootstrapping (discount 0) the critic is the one-step cost.
    let mut tr0 = Trainer::new(critic.ensemble().clone(), AdamConfig::default(), 2);
    fit_critic(&mut tr0, &data, &CriticFitConfig { discount: 0.0, rounds: 1, ..cfg.clone() }).unwrap();
    let v0 = MlpCritic::from_ensemble("v", tr0.ensemble().clone()).unwrap().values(probe.view());
    let worst0 = probe.rows().into_iter().zip(&v0).map(|(s, &v)| (f64::from(v) - f64::from(s[0] * s[0])).abs()).fold(0.0, f64::max);
    assert!(worst0 < 0.08, "largest error {worst0} against V(s) = s0^2");
}

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../agents/examples").join(name)
}

/// pendulum-critic.toml cut to seconds.
fn small_critic_agent() -> String {
    std::fs::read_to_string(example("pendulum-critic.toml"))
        .unwrap()
        .replace("episodes = 10", "episodes = 2")
        .replace("eval_episodes = 10", "eval_episodes = 1")
        .replace("samples = 256", "samples = 32")
        .replace("iterations = 6", "iterations = 2")
        .replace("elites = 24", "elites = 8")
        .replace("epochs = 20", "epochs = 3")
        .replace("rounds = 5", "rounds = 2")
}

fn run(text: &str, kind: ExecutorKind) -> (Vec<u64>, u64, usize) {
    let g = load_str(text, "critic.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut agent = Agent::from_agent_graph(g, kind).unwrap();
    let mut returns = Vec::new();
    for seed in [0, 1, 2] {
        returns.push(agent.run_episode(seed, |_| {}).unwrap().episode_return.to_bits());
    }
    let fits = agent.handles().trainers.get("critic_trainer").expect("the critic trainer's history").records().len();
    let memory = agent.memory().unwrap().lock().len();
    (returns, fits as u64, memory)
}

#[test]
fn a_learned_critic_changes_the_plans_and_is_deterministic_across_executors() {
    let text = small_critic_agent();
    let (a, fits, memory) = run(&text, ExecutorKind::Sequential);
    assert_eq!(memory, 600, "three episodes of 200 steps");
    assert_eq!(fits, 2, "fits at the starts of the second and third episodes");
    // The first episode plans with an untrained critic; without the critic
    // term the same planner acts differently from then on.
    let plain = text.replace("critic = \"critic\"\nhorizon", "horizon");
    let (b, _, _) = run(&plain, ExecutorKind::Sequential);
    assert_ne!(a[1..], b[1..], "the trained critic enters the planner's energy");
    let (c, _, _) = run(&text, ExecutorKind::Parallel);
    assert_eq!(a, c, "parallel executor");
}

#[test]
fn the_critic_trainer_refuses_a_critic_it_cannot_train() {
    let text = small_critic_agent()
        .replace("implementation = \"learned\"\nparams = { width = 64, layers = 2 }", "implementation = \"quadratic\"\nparams = { weights = [1.0, 1.0, 0.1] }");
    let err = load_str(&text, "critic.toml").unwrap_err().to_string();
    assert!(err.contains("critic") && err.contains("`learned` critics only"), "{err}");
}

/// A critic with non-trivial normalisation, so its gradient exercises it.
fn normalised_critic() -> MlpCritic {
    let mut rng = ami_core::rng::rng(21);
    let c = MlpCritic::new("v", 3, vec![16, 16], Activation::Relu, 5).unwrap();
    let mut net = c.ensemble().clone();
    let x = Array2::from_shape_fn((64, 3), |(_, j)| rng.gen_range(-1.0f32..1.0) * (j as f32 + 1.0) + 0.3);
    let y = Array2::from_shape_fn((64, 1), |_| rng.gen_range(0.0f32..50.0));
    net.set_norm(ami_learn::Normalizer::fit(x.view(), y.view()));
    MlpCritic::from_ensemble("v", net).unwrap()
}

#[test]
fn the_critics_gradient_matches_finite_differences() {
    let critic = normalised_critic();
    let states = array![[0.3f32, -0.7, 1.9], [-0.2, 0.5, -2.4], [0.9, 0.1, 0.4]];
    let g = critic.value_gradients(states.view());
    for r in 0..3 {
        for i in 0..3 {
            let h = 1e-2f32;
            let (mut up, mut dn) = (states.clone(), states.clone());
            up[[r, i]] += h;
            dn[[r, i]] -= h;
            let fd = (f64::from(critic.values(up.view())[r]) - f64::from(critic.values(dn.view())[r])) / (2.0 * f64::from(h));
            assert!((fd - f64::from(g[[r, i]])).abs() < 2e-2 * fd.abs().max(1.0), "row {r} dim {i}: fd {fd} vs {}", g[[r, i]]);
        }
    }
}

#[test]
fn gradient_planning_differentiates_through_the_critic() {
    use ami_agents::tasks::pendulum::PendulumModel;
    use ami_core::{ActionPenalty, Cost, QuadraticCost};
    let mut cost = Cost::new();
    cost.add_intrinsic(std::sync::Arc::new(QuadraticCost::new("goal", vec![1.0, 1.0, 0.1], vec![])), 1.0).unwrap();
    cost.add_intrinsic(std::sync::Arc::new(ActionPenalty::new(1)), 0.01).unwrap();
    cost.set_goal(Some(array![1.0, 0.0, 0.0]));
    cost.add_critic(Box::new(normalised_critic()), 0.5).unwrap();
    assert!(cost.is_differentiable(), "an MLP critic has a gradient");
    let s0 = array![-0.8f32, 0.6, 0.5];
    let mut rng = ami_core::rng::rng(2);
    let actions = ndarray::Array3::from_shape_fn((5, 2, 1), |_| rng.gen_range(-1.5f32..1.5));
    let (e, g) = ami_planners::energy_gradient(&PendulumModel, &cost, s0.view(), actions.view()).unwrap();
    // The energy includes the critic's value of the final state.
    let mut plain = Cost::new();
    plain.add_intrinsic(std::sync::Arc::new(QuadraticCost::new("goal", vec![1.0, 1.0, 0.1], vec![])), 1.0).unwrap();
    plain.add_intrinsic(std::sync::Arc::new(ActionPenalty::new(1)), 0.01).unwrap();
    plain.set_goal(Some(array![1.0, 0.0, 0.0]));
    let (e0, _) = ami_planners::energy_gradient(&PendulumModel, &plain, s0.view(), actions.view()).unwrap();
    assert!((e[0] - e0[0]).abs() > 1e-3, "the critic adds to the energy: {} vs {}", e[0], e0[0]);
    for t in 0..5 {
        for b in 0..2 {
            let h = 1e-2f32;
            let (mut up, mut dn) = (actions.clone(), actions.clone());
            up[[t, b, 0]] += h;
            dn[[t, b, 0]] -= h;
            let eu = ami_planners::energy_gradient(&PendulumModel, &cost, s0.view(), up.view()).unwrap().0[b];
            let ed = ami_planners::energy_gradient(&PendulumModel, &cost, s0.view(), dn.view()).unwrap().0[b];
            let fd = f64::from(eu - ed) / (2.0 * f64::from(h));
            assert!((fd - f64::from(g[[t, b, 0]])).abs() < 3e-2 * fd.abs().max(1.0), "step {t} row {b}: fd {fd} vs {}", g[[t, b, 0]]);
        }
    }
}

#[test]
fn gd_plans_with_a_learned_critic_and_refuses_a_quadratic_one() {
    let text = small_critic_agent().replace("implementation = \"cem\"", "implementation = \"gd\"");
    let text = text
        .lines()
        .filter(|l| !["samples", "iterations", "elites", "init_std", "min_std", "momentum", "warm_start", "return_best"].iter().any(|k| l.starts_with(k)))
        .collect::<Vec<_>>()
        .join("\n");
    let g = load_str(&text, "gd-critic.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut agent = Agent::from_agent_graph(g, ExecutorKind::Sequential).unwrap();
    let r = agent.run_episode(0, |_| {}).unwrap();
    assert!(r.episode_return.is_finite());
    // A quadratic critic (and no critic trainer, which would refuse it first).
    let quad = text
        .replace("implementation = \"learned\"\nparams = { width = 64, layers = 2 }", "implementation = \"quadratic\"\nparams = { weights = [1.0, 1.0, 0.1] }");
    let quad: Vec<&str> = quad.split("[[nodes]]").filter(|block| !block.contains("name = \"critic_trainer\"")).collect();
    let err = load_str(&quad.join("[[nodes]]"), "gd-quad.toml").unwrap_err().to_string();
    assert!(err.contains("critic") && err.contains("the critic has none"), "{err}");
}
