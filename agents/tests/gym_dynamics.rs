//! ami's Pendulum and CartPole against trajectories recorded with the real
//! Gymnasium package (`scripts/gen_gym_fixtures.py`): the `f64` environments
//! must reproduce every recorded step, the `f32` world models every next
//! observation, and the Pendulum cost the negative reward.

use ndarray::{Array1, Array2, ArrayView1};
use serde::Deserialize;

use ami_agents::tasks::{CartPole, CartPoleCost, CartPoleModel, Pendulum, PendulumCost, PendulumModel, TaskKind};
use ami_core::Environment;
use ami_core::{CostContext, IntrinsicCost, WorldModel};

#[derive(Debug, Deserialize)]
struct Fixture {
    gymnasium_version: String,
    env_id: String,
    episodes: Vec<Episode>,
}

#[derive(Debug, Deserialize)]
struct Episode {
    seed: u64,
    steps: Vec<Record>,
}

#[derive(Debug, Deserialize)]
struct Record {
    state: Vec<f64>,
    action: Vec<f64>,
    next_state: Vec<f64>,
    obs: Vec<f64>,
    reward: f64,
    terminated: bool,
}

impl Record {
    fn action(&self) -> Array1<f32> {
        self.action.iter().map(|&a| a as f32).collect()
    }
}

fn load(name: &str, env_id: &str) -> Fixture {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e} (run scripts/gen_gym_fixtures.py)"));
    let f: Fixture = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(f.env_id, env_id);
    assert!(!f.gymnasium_version.is_empty());
    assert!(f.episodes.iter().map(|e| e.steps.len()).sum::<usize>() >= 100, "{path}: too few steps");
    f
}

fn close_abs(what: &str, got: f64, want: f64, tol: f64) {
    assert!((got - want).abs() <= tol, "{what}: got {got}, want {want} (|diff| {} > {tol})", (got - want).abs());
}

/// `|got - want| <= tol * max(1, |want|)`: relative, with an absolute floor
/// for values near zero (cos, sin and velocities cross zero).
fn close_rel(what: &str, got: f32, want: f64, tol: f64) {
    let diff = (f64::from(got) - want).abs();
    assert!(diff <= tol * want.abs().max(1.0), "{what}: got {got}, want {want} (|diff| {diff})");
}

fn predict(model: &dyn WorldModel, obs: ArrayView1<'_, f32>, action: ArrayView1<'_, f32>) -> Array1<f32> {
    let s = obs.to_owned().insert_axis(ndarray::Axis(0));
    let a = action.to_owned().insert_axis(ndarray::Axis(0));
    let mut next = Array2::zeros((1, model.state_dim()));
    model.predict(s.view(), a.view(), next.view_mut()).unwrap();
    next.row(0).to_owned()
}

#[test]
fn pendulum_env_matches_gymnasium() {
    let fx = load("gym_pendulum.json", "Pendulum-v1");
    let mut clipped = 0;
    for ep in &fx.episodes {
        for (t, r) in ep.steps.iter().enumerate() {
            let at = format!("v{} seed {} step {t}", fx.gymnasium_version, ep.seed);
            let mut env = Pendulum::new();
            env.set_state([r.state[0], r.state[1]]);
            clipped += usize::from(r.action[0].abs() > 2.0);
            let step = env.step(r.action().view()).unwrap();
            let [th, thdot] = env.state();
            close_abs(&format!("{at}: th"), th, r.next_state[0], 1e-5);
            close_abs(&format!("{at}: thdot"), thdot, r.next_state[1], 1e-5);
            for j in 0..3 {
                close_abs(&format!("{at}: obs[{j}]"), f64::from(step.observation[j]), r.obs[j], 1e-5);
            }
            close_abs(&format!("{at}: reward"), step.reward, r.reward, 1e-5);
            assert_eq!(step.terminated, r.terminated, "{at}: terminated");
            assert!(!step.truncated, "{at}");
        }
    }
    assert!(clipped > 0, "the fixture should exercise torque clipping");
}

#[test]
fn pendulum_model_and_cost_match_gymnasium() {
    let fx = load("gym_pendulum.json", "Pendulum-v1");
    let ctx = CostContext { goal: None, subgoal: None, step: 0 };
    for ep in &fx.episodes {
        for (t, r) in ep.steps.iter().enumerate() {
            let at = format!("seed {} step {t}", ep.seed);
            let mut env = Pendulum::new();
            env.set_state([r.state[0], r.state[1]]);
            let obs = env.observation();
            let action = r.action();
            let next = predict(&PendulumModel, obs.view(), action.view());
            for j in 0..3 {
                close_rel(&format!("{at}: model obs[{j}]"), next[j], r.obs[j], 1e-4);
            }
            let s = obs.insert_axis(ndarray::Axis(0));
            let a = action.insert_axis(ndarray::Axis(0));
            let n = next.insert_axis(ndarray::Axis(0));
            let mut out = Array1::zeros(1);
            PendulumCost.add_cost(&ctx, 1.0, s.view(), a.view(), n.view(), out.view_mut()).unwrap();
            close_rel(&format!("{at}: cost"), out[0], -r.reward, 1e-4);
            // The weight scales and the term adds.
            PendulumCost.add_cost(&ctx, 0.5, s.view(), a.view(), n.view(), out.view_mut()).unwrap();
            close_rel(&format!("{at}: weighted cost"), out[0], -1.5 * r.reward, 1e-4);
        }
    }
}

#[test]
fn cartpole_env_matches_gymnasium() {
    let fx = load("gym_cartpole.json", "CartPole-v1");
    let (mut clipped, mut terminated) = (0, 0);
    for ep in &fx.episodes {
        for (t, r) in ep.steps.iter().enumerate() {
            let at = format!("v{} seed {} step {t}", fx.gymnasium_version, ep.seed);
            let mut env = CartPole::new();
            env.set_state([r.state[0], r.state[1], r.state[2], r.state[3]]);
            clipped += usize::from(r.action[0].abs() > 10.0);
            let step = env.step(r.action().view()).unwrap();
            for (j, &v) in env.state().iter().enumerate() {
                close_abs(&format!("{at}: state[{j}]"), v, r.next_state[j], 1e-5);
                close_abs(&format!("{at}: obs[{j}]"), f64::from(step.observation[j]), r.obs[j], 1e-5);
            }
            close_abs(&format!("{at}: reward"), step.reward, r.reward, 1e-5);
            assert_eq!(step.terminated, r.terminated, "{at}: terminated");
            terminated += usize::from(r.terminated);
        }
    }
    assert!(clipped > 0, "the fixture should exercise force clipping");
    assert!(terminated > 0, "the fixture should contain terminations");
}

#[test]
fn cartpole_model_matches_gymnasium_and_cost_flags_failures() {
    let fx = load("gym_cartpole.json", "CartPole-v1");
    let ctx = CostContext { goal: None, subgoal: None, step: 0 };
    for ep in &fx.episodes {
        for (t, r) in ep.steps.iter().enumerate() {
            let at = format!("seed {} step {t}", ep.seed);
            let obs: Array1<f32> = r.state.iter().map(|&v| v as f32).collect();
            let action = r.action();
            let next = predict(&CartPoleModel, obs.view(), action.view());
            for j in 0..4 {
                close_rel(&format!("{at}: model obs[{j}]"), next[j], r.obs[j], 1e-4);
            }
            let mut out = Array1::zeros(1);
            let s = obs.insert_axis(ndarray::Axis(0));
            let a = action.insert_axis(ndarray::Axis(0));
            let n = next.insert_axis(ndarray::Axis(0));
            CartPoleCost.add_cost(&ctx, 1.0, s.view(), a.view(), n.view(), out.view_mut()).unwrap();
            assert!(out[0] >= 0.0, "{at}");
            assert_eq!(out[0] >= CartPoleCost::FAILURE_PENALTY, r.terminated, "{at}: cost {} vs terminated {}", out[0], r.terminated);
        }
    }
}

#[test]
fn a_replayed_episode_stays_on_the_recorded_trajectory() {
    // Stepping on from our own state (not re-seeding from the record each
    // step) must stay within tolerance over a whole recorded episode.
    for (name, id) in [("gym_pendulum.json", "Pendulum-v1"), ("gym_cartpole.json", "CartPole-v1")] {
        let fx = load(name, id);
        for ep in &fx.episodes {
            let first = &ep.steps[0];
            let mut env: Box<dyn Environment> = match id {
                "Pendulum-v1" => {
                    let mut p = Pendulum::new();
                    p.set_state([first.state[0], first.state[1]]);
                    Box::new(p)
                }
                _ => {
                    let mut c = CartPole::new();
                    c.set_state([first.state[0], first.state[1], first.state[2], first.state[3]]);
                    Box::new(c)
                }
            };
            for (t, r) in ep.steps.iter().enumerate() {
                let step = env.step(r.action().view()).unwrap();
                for (j, &o) in r.obs.iter().enumerate() {
                    close_abs(&format!("{id} seed {} step {t}: obs[{j}]", ep.seed), f64::from(step.observation[j]), o, 1e-4);
                }
                assert_eq!(step.terminated, r.terminated);
            }
        }
    }
}

#[test]
fn registry_builds_every_task() {
    for kind in TaskKind::ALL {
        let mut spec = kind.spec();
        let obs = spec.env.reset(0).unwrap();
        let step = spec.env.step(Array1::zeros(spec.env.action_dim()).view()).unwrap();
        let next = predict(spec.model.as_ref(), obs.view(), Array1::zeros(spec.model.action_dim()).view());
        for j in 0..obs.len() {
            close_rel(&format!("{kind}: obs[{j}]"), next[j], f64::from(step.observation[j]), 1e-4);
        }
    }
    let err = "mountaincar".parse::<TaskKind>().unwrap_err().to_string();
    assert!(err.contains("pendulum") && err.contains("cartpole") && err.contains("pointmass"), "{err}");
}
