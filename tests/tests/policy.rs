//! The Mode-1 policy: its gradients against finite differences, behaviour
//! cloning of a known controller judged on held-out states, the Mode-1 /
//! Mode-2 switch rule (alone and inside the planning actor), proposals
//! warm-starting the planner, and distillation in an agent file
//! (deterministic across executors, and better than the untrained policy).

use std::path::Path;
use std::sync::Arc;

use ami_agents::tasks::pendulum::{self, PendulumModel};
use ami_agents::{load_str, Agent};
use ami_core::{
    ActMode, Actor, Bounds, Decision, Handle, LinearPolicy, Modulation, Policy, PolicyHandle, RingMemory, RunPhase, ShortTermMemory, TransitionRef,
};
use ami_graph::ExecutorKind;
use ami_learn::{fit_policy, Activation, AdamConfig, FitConfig, MlpPolicy, PolicyData, Trainer};
use ami_planners::{Cem, CemConfig, PlanningActor, PolicyUse};
use ndarray::{array, Array1, Array2, Axis};
use rand::Rng;

/// A policy with a non-trivial normalisation, so its gradients exercise it.
fn normalised_policy(bounds: &Bounds) -> MlpPolicy {
    let mut rng = ami_core::rng::rng(7);
    let p = MlpPolicy::new("pi", 3, bounds, vec![16, 16], Activation::Silu, 3).unwrap();
    let mut net = p.ensemble().clone();
    let x = Array2::from_shape_fn((64, net.spec().input_dim()), |(_, j)| rng.gen_range(-1.0f32..1.0) * (j as f32 + 1.0) + 0.3);
    let y = Array2::from_shape_fn((64, 2), |_| rng.gen_range(-3.0f32..3.0));
    net.set_norm(ami_learn::Normalizer::fit(x.view(), y.view()));
    MlpPolicy::from_ensemble("pi", net, 3, bounds).unwrap()
}

#[test]
fn the_policys_state_gradient_matches_finite_differences() {
    let wide = Bounds::symmetric(2, 1e6);
    let policy = normalised_policy(&wide);
    let states = array![[0.3f32, -0.7, 1.9], [-0.2, 0.5, -2.4], [0.9, 0.1, 0.4]];
    let upstream = array![[1.0f32, -0.5], [0.25, 2.0], [-1.0, 1.0]];
    let g = policy.state_gradients(states.view(), upstream.view()).unwrap();
    let f = |s: &Array2<f32>, r: usize| -> f64 { policy.actions(s.view()).row(r).iter().zip(upstream.row(r)).map(|(a, u)| f64::from(a * u)).sum() };
    for r in 0..3 {
        for i in 0..3 {
            let h = 1e-2f32;
            let (mut up, mut dn) = (states.clone(), states.clone());
            up[[r, i]] += h;
            dn[[r, i]] -= h;
            let fd = (f(&up, r) - f(&dn, r)) / (2.0 * f64::from(h));
            assert!((fd - f64::from(g[[r, i]])).abs() < 2e-2 * fd.abs().max(1.0), "row {r} dim {i}: fd {fd} vs {}", g[[r, i]]);
        }
    }
    // A clamped action has no gradient.
    let tight = Bounds::symmetric(2, 1e-4);
    let clamped = MlpPolicy::from_ensemble("pi", policy.ensemble().clone(), 3, &tight).unwrap();
    let raw = policy.actions(states.view());
    let g = clamped.state_gradients(states.view(), upstream.view()).unwrap();
    let mut clamped_rows = 0;
    for r in 0..3 {
        if raw.row(r).iter().all(|a| a.abs() > 1e-4) {
            clamped_rows += 1;
            assert!(g.row(r).iter().all(|&v| v == 0.0), "row {r}: {:?}", g.row(r));
        }
    }
    assert!(clamped_rows >= 1, "no row was clamped: {raw:?}");
    let err = policy.state_gradients(states.view(), upstream.slice(ndarray::s![..2, ..]).view()).unwrap_err().to_string();
    assert!(err.contains("upstream [n, 2]"), "{err}");
}

#[test]
fn the_policys_training_gradient_matches_finite_differences() {
    let bounds = Bounds::symmetric(2, 1e6);
    let policy = normalised_policy(&bounds);
    let mut rng = ami_core::rng::rng(9);
    let mut data = PolicyData::new(3, 2);
    for _ in 0..24 {
        let s = Array1::from_shape_fn(3, |_| rng.gen_range(-2.0f32..2.0));
        let a = Array1::from_shape_fn(2, |_| rng.gen_range(-2.0f32..2.0));
        data.push(s.view(), a.view()).unwrap();
    }
    let set = data.dataset(policy.ensemble().spec());
    let x = set.inputs.clone().insert_axis(Axis(0));
    let y = set.targets.clone().insert_axis(Axis(0));
    let net = policy.ensemble().clone();
    let tr = Trainer::new(net.clone(), AdamConfig::default(), 1);
    let (_, grad) = tr.gradient(x.view(), y.view()).unwrap();
    let n = net.params().len();
    for &i in &[0, 5, n / 3, n / 2, n - 3, n - 1] {
        let h = 1e-2f32;
        let at = |d: f32| {
            let mut p = net.params().to_vec();
            p[i] += d;
            let e = ami_learn::Ensemble::from_params(net.spec().clone(), p, net.norm().clone()).unwrap();
            Trainer::new(e, AdamConfig::default(), 1).loss(x.view(), y.view()).unwrap()
        };
        let fd = (at(h) - at(-h)) / (2.0 * f64::from(h));
        assert!((fd - f64::from(grad[i])).abs() < 1e-2 * fd.abs().max(0.1), "parameter {i}: fd {fd} vs {}", grad[i]);
    }
}

#[test]
fn behaviour_cloning_recovers_a_controller_on_held_out_states() {
    // The teacher: a saturating linear controller of 3 states, 1 action.
    let teacher = LinearPolicy::new(array![[-1.5f32, 0.8, -0.4]], array![0.0, 0.0, 0.0], -2.0, 2.0).unwrap();
    let mut rng = ami_core::rng::rng(11);
    let sample = |rng: &mut ami_core::rng::AmiRng, n: usize| Array2::from_shape_fn((n, 3), |_| rng.gen_range(-1.5f32..1.5));
    let states = sample(&mut rng, 2000);
    let labels = teacher.act_batch(states.view()).unwrap();
    let mut data = PolicyData::new(3, 1);
    for (s, a) in states.rows().into_iter().zip(labels.rows()) {
        data.push(s, a).unwrap();
    }
    let bounds = Bounds::symmetric(1, 2.0);
    let fresh = MlpPolicy::new("pi", 3, &bounds, vec![64, 64], Activation::Relu, 1).unwrap();
    let mut tr = Trainer::new(fresh.ensemble().clone(), AdamConfig::default(), 2);
    let report = fit_policy(&mut tr, &data, &FitConfig { epochs: 60, batch: 128, seed: 2, ..FitConfig::default() }).unwrap();
    assert!(report.rejected.is_none(), "{report:?}");
    let learned = MlpPolicy::from_ensemble("pi", tr.ensemble().clone(), 3, &bounds).unwrap();
    let probe = sample(&mut rng, 500);
    let want = teacher.act_batch(probe.view()).unwrap();
    let rmse = |p: &MlpPolicy| ((&p.actions(probe.view()) - &want).mapv(|d| f64::from(d * d)).sum() / 500.0).sqrt();
    let (before, after) = (rmse(&fresh), rmse(&learned));
    assert!(after < 0.08, "held-out RMSE {after} (untrained {before})");
    assert!(after < before / 10.0, "held-out RMSE {after} vs untrained {before}");
    // Every action is inside the bounds.
    assert!(learned.actions((&probe * 4.0).view()).iter().all(|a| a.abs() <= 2.0));
}

#[test]
fn policy_data_pairs_each_perceived_state_with_its_action() {
    let mut mem = RingMemory::new(2, 1, 10).unwrap();
    for t in 0..4u64 {
        let s = array![t as f32, 1.0];
        let a = array![t as f32 * 0.5];
        mem.push(&TransitionRef { t, state: s.view(), action: a.view(), cost: 0.0, next_state: s.view(), imagined: t == 2, terminated: false }).unwrap();
    }
    let d = PolicyData::from_memory(&mem);
    assert_eq!(d.len(), 3, "the imagined transition is no label");
    assert_eq!(d.actions().column(0).to_vec(), vec![0.0, 0.5, 1.5]);
    assert_eq!(d.states().column(0).to_vec(), vec![0.0, 1.0, 3.0]);
    let mut d = PolicyData::new(2, 1);
    let err = d.push(array![0.0f32].view(), array![0.0f32].view()).unwrap_err().to_string();
    assert!(err.contains("state 2 and action 1 wide"), "{err}");
    assert!(d.push(array![0.0f32, 1.0].view(), array![f32::NAN].view()).is_err(), "NaN labels are refused");
    assert!(d.is_empty());
    // A state narrower than an action still makes a policy (padded input).
    let narrow = MlpPolicy::new("pi", 1, &Bounds::symmetric(3, 1.0), vec![8], Activation::Relu, 0).unwrap();
    assert_eq!(narrow.act_batch(array![[0.5f32]].view()).unwrap().dim(), (1, 3));
}

#[test]
fn the_switch_rule() {
    let rule = ActMode::Switch { margin: 0.1, tolerance: 0.5, max_policy_ticks: 3 };
    // E_policy <= E_plan + 0.1 |E_plan| + 0.5.
    assert!(rule.policy_acts(10.0, Some(10.0), 0));
    assert!(rule.policy_acts(11.5, Some(10.0), 0), "at the margin");
    assert!(!rule.policy_acts(11.51, Some(10.0), 0));
    assert!(rule.policy_acts(-8.6, Some(-10.0), 0), "a negative energy: the margin is |E|");
    assert!(!rule.policy_acts(-8.4, Some(-10.0), 0));
    assert!(!rule.policy_acts(1.0, None, 0), "no standing plan: plan");
    assert!(!rule.policy_acts(1.0, Some(10.0), 3), "after max_policy_ticks in a row: plan");
    assert!(!rule.policy_acts(f32::NAN, Some(10.0), 0));
    assert!(!rule.policy_acts(1.0, Some(f32::INFINITY), 0));
    let unlimited = ActMode::Switch { margin: 0.0, tolerance: 0.0, max_policy_ticks: 0 };
    assert!(unlimited.policy_acts(1.0, Some(1.0), 1_000_000));
    assert!(!ActMode::Plan.policy_acts(0.0, Some(10.0), 0));
    assert!(ActMode::Policy.policy_acts(f32::NAN, None, 0));
    let bad = ActMode::Switch { margin: -1.0, tolerance: 0.0, max_policy_ticks: 0 }.validate().unwrap_err().to_string();
    assert!(bad.contains("switch_margin"), "{bad}");
}

fn pendulum_actor(policy: PolicyHandle, mode: ActMode, iterations: usize) -> PlanningActor {
    let cfg = CemConfig { horizon: 15, samples: 64, iterations, elites: Some(8), init_std: 1.0, return_best: true, ..CemConfig::default() };
    let cem = Cem::new(cfg, Bounds::symmetric(1, 2.0)).unwrap();
    let how = PolicyUse { mode, eval_mode: mode, teacher_episodes: 0, propose: true, switch_rule: SWITCH_RULE };
    PlanningActor::new(Box::new(cem), Arc::new(PendulumModel)).with_policy(policy, how, RunPhase::new()).unwrap()
}

/// The switch rule of the actors built here (a file's `switch_margin`...).
const SWITCH_RULE: ActMode = ActMode::Switch { margin: 0.25, tolerance: 1.0, max_policy_ticks: 7 };

/// Runs `ticks` steps of Pendulum from seed 0 with `actor`; returns the
/// return and the decisions of each mode.
fn run_pendulum(actor: &mut dyn Actor, ticks: usize) -> (f64, usize, usize) {
    use ami_core::Environment;
    let mut env = pendulum::Pendulum::new();
    let cost = pendulum::cost();
    actor.reset(0);
    let mut obs = env.reset(0).unwrap();
    let (mut ret, mut reactive, mut planned) = (0.0, 0, 0);
    for _ in 0..ticks {
        let a = actor.act(obs.view(), &cost).unwrap();
        match actor.last_decision() {
            Decision::Reactive => reactive += 1,
            Decision::Planned => planned += 1,
            Decision::Explored => panic!("this actor never explores"),
        }
        let step = env.step(a.view()).unwrap();
        ret += step.reward;
        obs = step.observation;
    }
    (ret, reactive, planned)
}

#[test]
fn the_actor_switches_by_the_rule_and_by_modulation() {
    // A policy that always pushes one way: poor, but the rule is what is
    // tested. With an unlimited margin it acts on every tick but the first
    // (no standing plan yet) and every fourth after (max 3 in a row).
    let push: PolicyHandle = Handle::new(Arc::new(LinearPolicy::new(array![[0.0f32, 0.0, 0.0]], array![0.0, 0.0, 0.0], 2.0, 2.0).unwrap()));
    let generous = ActMode::Switch { margin: 1e9, tolerance: 1e9, max_policy_ticks: 3 };
    let mut actor = pendulum_actor(push.clone(), generous, 2);
    let (_, reactive, planned) = run_pendulum(&mut actor, 40);
    assert_eq!((reactive, planned), (30, 10), "plan, then 3 policy ticks, repeated");
    // With no margin, a constant push never beats the planner's plan for long.
    let strict = ActMode::Switch { margin: 0.0, tolerance: 0.0, max_policy_ticks: 0 };
    let mut actor = pendulum_actor(push.clone(), strict, 2);
    let (_, reactive, planned) = run_pendulum(&mut actor, 40);
    assert!(planned > 25, "Mode-2 {planned} of 40, Mode-1 {reactive}");
    // A modulation changes the mode; without a policy it is refused.
    let mut actor = pendulum_actor(push, ActMode::Plan, 2);
    actor.reset(0);
    actor.modulate(&Modulation::Mode(ActMode::Policy)).unwrap();
    assert_eq!(actor.mode(), Some(ActMode::Policy));
    let cost = pendulum::cost();
    for _ in 0..5 {
        assert_eq!(actor.act(array![-1.0f32, 0.0, 0.0].view(), &cost).unwrap()[0], 2.0);
        assert_eq!(actor.last_decision(), Decision::Reactive);
    }
    assert_eq!(actor.plan_stats().0, 0, "Mode-1 never plans");
    actor.reset(1);
    assert_eq!(actor.mode(), Some(ActMode::Plan), "an episode starts in the agent file's mode");
    // A switch modulation keeps the actor's own rule where it says nothing.
    actor.modulate(&Modulation::Switch { margin: None, tolerance: Some(2.0), max_policy_ticks: None }).unwrap();
    assert_eq!(actor.mode(), Some(ActMode::Switch { margin: 0.25, tolerance: 2.0, max_policy_ticks: 7 }));
    let err = actor.modulate(&Modulation::Switch { margin: Some(-1.0), tolerance: None, max_policy_ticks: None }).unwrap_err().to_string();
    assert!(err.contains("switch_margin"), "{err}");
    let cem = Cem::new(CemConfig::default(), Bounds::symmetric(1, 2.0)).unwrap();
    let mut bare = PlanningActor::new(Box::new(cem), Arc::new(PendulumModel));
    let err = bare.modulate(&Modulation::Mode(ActMode::Policy)).unwrap_err().to_string();
    assert!(err.contains("no policy"), "{err}");
}

#[test]
fn a_proposal_starts_the_planner_and_labels_come_with_plans() {
    use ami_core::{PlanRequest, Planner};
    // One CEM iteration with a tiny spread stays next to where it starts:
    // the proposal, not the zero plan.
    let cfg = CemConfig { horizon: 5, samples: 8, iterations: 1, elites: Some(2), init_std: 1e-3, warm_start: false, ..CemConfig::default() };
    let mut cem = Cem::new(cfg, Bounds::symmetric(1, 2.0)).unwrap();
    assert!(cem.supports_proposals());
    let cost = pendulum::cost();
    let s0 = array![-1.0f32, 0.0, 0.0];
    cem.propose(Array2::from_elem((5, 1), 1.5));
    let plan = cem.plan(&PlanRequest::new(&PendulumModel, &cost, s0.view())).unwrap();
    assert!(plan.actions.iter().all(|a| (a - 1.5).abs() < 0.01), "{:?}", plan.actions);
    let plan = cem.plan(&PlanRequest::new(&PendulumModel, &cost, s0.view())).unwrap();
    assert!(plan.actions.iter().all(|a| a.abs() < 0.01), "a proposal is used once: {:?}", plan.actions);
    // A proposal of the wrong shape is ignored, and clamped into the bounds.
    cem.propose(Array2::from_elem((4, 1), 1.5));
    assert!(cem.plan(&PlanRequest::new(&PendulumModel, &cost, s0.view())).unwrap().actions.iter().all(|a| a.abs() < 0.01));
    cem.propose(Array2::from_elem((5, 1), 9.0));
    assert!(cem.plan(&PlanRequest::new(&PendulumModel, &cost, s0.view())).unwrap().actions.iter().all(|a| (a - 2.0).abs() < 0.01));
    // In `label` mode the policy acts and the planner's action is the label.
    let zero: PolicyHandle = Handle::new(Arc::new(LinearPolicy::new(array![[0.0f32, 0.0, 0.0]], array![0.0, 0.0, 0.0], -2.0, 2.0).unwrap()));
    let mut actor = pendulum_actor(zero.clone(), ActMode::Label, 3);
    actor.reset(0);
    let a = actor.act(s0.view(), &cost).unwrap();
    assert_eq!(a[0], 0.0, "the policy acted");
    assert_eq!(actor.last_decision(), Decision::Reactive);
    let label = actor.teacher_action().expect("the planner labelled the state");
    assert_eq!(label, actor.last_plan().unwrap().actions.row(0).to_owned());
    let mut policy_only = pendulum_actor(zero, ActMode::Policy, 3);
    policy_only.reset(0);
    policy_only.act(s0.view(), &cost).unwrap();
    assert!(policy_only.teacher_action().is_none(), "no plan, no label");
}

#[test]
fn the_proposal_is_the_policy_rolled_out_through_the_model() {
    use ami_core::WorldModel;
    let policy = LinearPolicy::new(array![[-0.5f32, 0.3, -0.2]], array![0.0, 0.0, 0.0], -2.0, 2.0).unwrap();
    let s0 = array![-0.6f32, 0.8, 0.3];
    let p = ami_planners::propose(&policy, &PendulumModel, s0.view(), 6).unwrap();
    assert_eq!(p.dim(), (6, 1));
    let mut s = s0.insert_axis(Axis(0));
    for t in 0..6 {
        let a = policy.act_batch(s.view()).unwrap();
        assert_eq!(p.row(t), a.row(0), "step {t}");
        let mut next = Array2::zeros(s.dim());
        PendulumModel.predict(s.view(), a.view(), next.view_mut()).unwrap();
        s = next;
    }
    // The actions differ from step to step: the states did move.
    assert!(p.column(0).iter().any(|&a| (a - p[[0, 0]]).abs() > 1e-3), "{p:?}");
}

#[test]
fn after_mode1_ticks_the_planner_starts_from_the_plan_shifted_by_as_many_steps() {
    use ami_core::{PlanRequest, Planner};
    // A planner that warm-starts and a policy that neither proposes nor
    // switches by itself: 5 Mode-1 ticks by modulation, then plan again.
    let cfg = CemConfig { horizon: 12, samples: 32, iterations: 2, elites: Some(4), init_std: 0.5, ..CemConfig::default() };
    let bounds = Bounds::symmetric(1, 2.0);
    let push: PolicyHandle = Handle::new(Arc::new(LinearPolicy::new(array![[0.0f32, 0.0, 0.0]], array![0.0, 0.0, 0.0], 1.0, 1.0).unwrap()));
    let how = PolicyUse { mode: ActMode::Plan, eval_mode: ActMode::Plan, teacher_episodes: 0, propose: false, switch_rule: SWITCH_RULE };
    let mut actor =
        PlanningActor::new(Box::new(Cem::new(cfg.clone(), bounds.clone()).unwrap()), Arc::new(PendulumModel)).with_policy(push, how, RunPhase::new()).unwrap();
    let cost = pendulum::cost();
    let states: Vec<Array1<f32>> = (0..7).map(|t| array![(0.3 * t as f32).cos(), (0.3 * t as f32).sin(), 0.1 * t as f32]).collect();
    actor.reset(3);
    let first = actor.act(states[0].view(), &cost).unwrap();
    actor.modulate(&Modulation::Mode(ActMode::Policy)).unwrap();
    for s in &states[1..6] {
        actor.act(s.view(), &cost).unwrap();
        assert!(actor.last_plan().is_none(), "a Mode-1 tick has no plan");
    }
    actor.modulate(&Modulation::Mode(ActMode::Plan)).unwrap();
    let again = actor.act(states[6].view(), &cost).unwrap();
    assert_eq!(actor.last_decision(), Decision::Planned);
    // The reference: the same planner, started at tick 6 from the tick-0
    // plan shifted six steps.
    let mut cem = Cem::new(cfg, bounds).unwrap();
    cem.reset(3);
    let plan0 = cem.plan(&PlanRequest::new(&PendulumModel, &cost, states[0].view())).unwrap();
    assert_eq!(plan0.actions.row(0).to_owned(), first);
    let mut start = plan0.actions.clone();
    let h = start.nrows();
    for _ in 0..6 {
        for i in 1..h {
            start[[i - 1, 0]] = start[[i, 0]];
        }
    }
    cem.propose(start);
    let plan6 = cem.plan(&PlanRequest::new(&PendulumModel, &cost, states[6].view())).unwrap();
    assert_eq!(plan6.actions.row(0).to_owned(), again, "the start was not the plan shifted six steps");
    assert_eq!(actor.last_plan().unwrap().actions, plan6.actions);
}

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../agents/examples").join(name)
}

/// pendulum-distill.toml cut to seconds, writing nothing.
fn small_distill_agent() -> String {
    std::fs::read_to_string(example("pendulum-distill.toml"))
        .unwrap()
        .replace("episodes = 12", "episodes = 4")
        .replace("teacher_episodes = 3", "teacher_episodes = 2")
        .replace("samples = 256", "samples = 128")
        .replace("iterations = 6", "iterations = 3")
        .replace("elites = 24", "elites = 12")
        .replace("save_path = \"pendulum-policy.safetensors\"\n", "")
}

struct Distilled {
    untrained: f64,
    returns: Vec<u64>,
    eval: (f64, u64, u64),
    fits: usize,
    pairs: usize,
    weights: Vec<f32>,
}

fn distill(text: &str, kind: ExecutorKind) -> Distilled {
    let g = load_str(text, "distill.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut agent = Agent::from_agent_graph(g, kind).unwrap();
    // The untrained policy first: evaluation episodes teach nothing.
    agent.set_evaluating(true);
    let untrained = agent.run_episode(100, |_| {}).unwrap().episode_return;
    agent.set_evaluating(false);
    let mut returns = Vec::new();
    for seed in [0, 1, 2, 3] {
        returns.push(agent.run_episode(seed, |_| {}).unwrap().episode_return.to_bits());
    }
    agent.set_evaluating(true);
    let r = agent.run_episode(100, |_| {}).unwrap();
    let fits = agent.handles().trainers.get("distiller").expect("the distiller's history").records();
    let weights = agent.handles().policies.get("policy").expect("the policy").get().act_batch(array![[1.0f32, 0.0, 0.0], [-1.0, 0.0, 1.0]].view()).unwrap();
    Distilled {
        untrained,
        returns,
        eval: (r.episode_return, r.reactive.0, r.planned.0),
        fits: fits.len(),
        pairs: fits.last().map_or(0, |f| f.experience),
        weights: weights.iter().copied().collect(),
    }
}

#[test]
fn distillation_in_an_agent_file_learns_and_is_deterministic_across_executors() {
    let text = small_distill_agent();
    let a = distill(&text, ExecutorKind::Sequential);
    assert_eq!(a.fits, 4, "fits at the starts of learning episodes 2, 3 and 4 and of the evaluation");
    assert_eq!(a.pairs, 800, "every tick of the four learning episodes is labelled, none of the evaluations");
    assert_eq!((a.eval.1, a.eval.2), (200, 0), "evaluation: the policy alone, 200 Mode-1 decisions");
    assert!(a.eval.0 > a.untrained + 500.0, "distilled {} vs untrained {}", a.eval.0, a.untrained);
    let b = distill(&text, ExecutorKind::Parallel);
    assert_eq!(a.returns, b.returns, "parallel executor: same returns");
    assert_eq!(a.weights, b.weights, "parallel executor: same policy");
    assert_eq!(a.eval.0.to_bits(), b.eval.0.to_bits());
}

#[test]
fn teacher_episodes_count_the_episodes_the_actor_acts_in_not_exploration() {
    // One random exploration episode, then two in which the planner acts
    // (and labels), then the policy acts while the planner labels.
    let text = small_distill_agent()
        .replace("samples = 128", "samples = 16")
        .replace("iterations = 3", "iterations = 1")
        .replace("elites = 12", "elites = 4")
        .replace("horizon = 30", "horizon = 5")
        .replace("return_best = true", "return_best = true\nexplore_episodes = 1");
    let g = load_str(&text, "distill.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut agent = Agent::from_agent_graph(g, ExecutorKind::Sequential).unwrap();
    let counts: Vec<(u64, u64, u64)> = (0..4)
        .map(|seed| {
            let r = agent.run_episode(seed, |_| {}).unwrap();
            (r.explored.0, r.planned.0, r.reactive.0)
        })
        .collect();
    assert_eq!(counts, vec![(200, 0, 0), (0, 200, 0), (0, 200, 0), (0, 0, 200)], "(explored, Mode-2, Mode-1) per episode");
    // Exploration labels nothing; the rest labels every tick.
    let fits = agent.handles().trainers.get("distiller").unwrap().records();
    assert_eq!(fits.last().map(|f| f.experience), Some(400), "labelled states when episode 4 started");
}

#[test]
fn policy_parameters_are_checked_when_the_agent_is_built() {
    let text = small_distill_agent();
    let no_policy = text.replace("policy = \"policy\"\nmode", "mode");
    let err = load_str(&no_policy, "distill.toml").unwrap_err().to_string();
    assert!(err.contains("needs a policy") || err.contains("need a policy"), "{err}");
    let bad_mode = text.replace("mode = \"label\"", "mode = \"dream\"");
    let err = load_str(&bad_mode, "distill.toml").unwrap_err().to_string();
    assert!(err.contains("`dream` is not a mode"), "{err}");
    let teacher_in_plan = text.replace("mode = \"label\"", "mode = \"plan\"");
    let err = load_str(&teacher_in_plan, "distill.toml").unwrap_err().to_string();
    assert!(err.contains("teacher_episodes") && err.contains("mode `label` only"), "{err}");
    let linear = text.replace(
        "implementation = \"learned\"\nparams = { width = 64, layers = 2 }",
        "implementation = \"linear\"\nparams = { gain = [[-1.0, 0.0, 0.0]], low = -2.0, high = 2.0 }",
    );
    let err = load_str(&linear, "distill.toml").unwrap_err().to_string();
    assert!(err.contains("`learned` policies only"), "{err}");
    let unwired = text.replace("[[edges]]                     # the planner's label of each state\nfrom = \"actor.teacher\"\nto = \"distiller.teacher\"\n", "");
    let err = load_str(&unwired, "distill.toml").unwrap_err().to_string();
    assert!(err.contains("distiller") && err.contains("teacher"), "{err}");
    // Schedule events: `switch` alone keeps the actor's rule; the rule's
    // fields without `mode = "switch"` are refused.
    let with_events = |events: &str| {
        text.replace(
            "implementation = \"schedule\"   # emits the task's goal (if any) at tick 0",
            &format!("implementation = \"schedule\"\nparams = {{ events = [{events}] }}"),
        )
    };
    load_str(&with_events("{ tick = 5, mode = \"switch\" }"), "distill.toml").unwrap_or_else(|e| panic!("{e}"));
    let err = load_str(&with_events("{ tick = 5, switch_margin = 0.2 }"), "distill.toml").unwrap_err().to_string();
    assert!(err.contains("need `mode = \"switch\"`"), "{err}");
    let err = load_str(&with_events("{ tick = 5, mode = \"plan\", max_policy_ticks = 3 }"), "distill.toml").unwrap_err().to_string();
    assert!(err.contains("need `mode = \"switch\"`"), "{err}");
}
