//! A library user's own agent, composed in code with no graph wiring and
//! no downcasts: a 2-link reacher with its own environment (a fingertip
//! goal drawn per episode), its own world model with gradients, its own
//! differentiable cost on the fingertip, a custom configurator, the GD
//! planner, and the memory read through a handle after the run.

use ami::prelude::*;
use ami_core::{Budget, Configurator, CostContext, DifferentiableCost, DifferentiableWorldModel, Modulation};
use ami_planners::{Gd, GdConfig};
use ndarray::{array, Array1, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};
use rand::Rng;

const DT: f32 = 0.05;
const DAMPING: f32 = 0.5;
const L1: f32 = 1.0;
const L2: f32 = 0.8;

/// The fingertip of joint angles `(q1, q2)`.
fn tip(q1: f32, q2: f32) -> (f32, f32) {
    (L1 * q1.cos() + L2 * (q1 + q2).cos(), L1 * q1.sin() + L2 * (q1 + q2).sin())
}

/// Joint-space dynamics: `dq' = dq + DT (u - DAMPING dq)`, `q' = q + DT dq'`.
struct ReacherModel;

impl WorldModel for ReacherModel {
    fn state_dim(&self) -> usize {
        4
    }
    fn action_dim(&self) -> usize {
        2
    }
    fn predict(&self, s: ArrayView2<'_, f32>, a: ArrayView2<'_, f32>, mut next: ArrayViewMut2<'_, f32>) -> ami_core::Result<()> {
        ami_core::check_predict_shapes(self, "ReacherModel", &s, &a, &next)?;
        for b in 0..s.nrows() {
            for j in 0..2 {
                let v = s[[b, j + 2]] + DT * (a[[b, j]].clamp(-1.0, 1.0) - DAMPING * s[[b, j + 2]]);
                next[[b, j + 2]] = v;
                next[[b, j]] = s[[b, j]] + DT * v;
            }
        }
        Ok(())
    }
    fn differentiable(&self) -> Option<&dyn DifferentiableWorldModel> {
        Some(self)
    }
}

impl DifferentiableWorldModel for ReacherModel {
    fn vjp(
        &self,
        s: ArrayView2<'_, f32>,
        a: ArrayView2<'_, f32>,
        g: ArrayView2<'_, f32>,
        mut gs: ArrayViewMut2<'_, f32>,
        mut ga: ArrayViewMut2<'_, f32>,
    ) -> ami_core::Result<()> {
        ami_core::check_vjp_shapes(self, "ReacherModel", &s, &a, &g, &gs, &ga)?;
        for b in 0..s.nrows() {
            for j in 0..2 {
                let gv = g[[b, j + 2]] + DT * g[[b, j]];
                gs[[b, j]] += g[[b, j]];
                gs[[b, j + 2]] += gv * (1.0 - DT * DAMPING);
                if a[[b, j]].abs() < 1.0 {
                    ga[[b, j]] += gv * DT;
                }
            }
        }
        Ok(())
    }
}

/// The environment: the true dynamics, a fingertip goal drawn per episode,
/// reward minus the fingertip distance.
struct Reacher {
    state: [f32; 4],
    goal: [f32; 2],
    steps: usize,
}

impl Environment for Reacher {
    fn name(&self) -> &str {
        "reacher"
    }
    fn obs_dim(&self) -> usize {
        4
    }
    fn action_dim(&self) -> usize {
        2
    }
    fn action_bounds(&self) -> Bounds {
        Bounds::symmetric(2, 1.0)
    }
    fn max_steps(&self) -> usize {
        60
    }
    fn reset(&mut self, seed: u64) -> ami_core::Result<Array1<f32>> {
        let mut r = ami_core::rng::rng(seed);
        self.state = [r.gen_range(-0.5..0.5), r.gen_range(0.2..1.0), 0.0, 0.0];
        let (q1, q2) = (r.gen_range(-1.5..1.5), r.gen_range(0.5..2.0));
        let (x, y) = tip(q1, q2);
        self.goal = [x, y];
        self.steps = 0;
        Ok(Array1::from(self.state.to_vec()))
    }
    fn step(&mut self, action: ArrayView1<'_, f32>) -> ami_core::Result<Step> {
        let s = ndarray::Array2::from_shape_vec((1, 4), self.state.to_vec()).unwrap();
        let mut next = ndarray::Array2::zeros((1, 4));
        ReacherModel.predict(s.view(), action.insert_axis(ndarray::Axis(0)), next.view_mut())?;
        self.state.copy_from_slice(next.as_slice().unwrap());
        self.steps += 1;
        let (x, y) = tip(self.state[0], self.state[1]);
        let d = ((x - self.goal[0]).powi(2) + (y - self.goal[1]).powi(2)).sqrt();
        // It never says `truncated`: the runner stops it at max_steps.
        Ok(Step { observation: next.row(0).to_owned(), reward: -f64::from(d), terminated: false, truncated: false })
    }
    fn goal(&self) -> Option<Array1<f32>> {
        Some(array![self.goal[0], self.goal[1]])
    }
    fn goal_dim(&self) -> Option<usize> {
        Some(2)
    }
}

/// `|tip(next) - goal|^2`: its goal is a 2-D point, not a state.
struct Fingertip;

impl IntrinsicCost for Fingertip {
    fn name(&self) -> &str {
        "fingertip"
    }
    fn add_cost(
        &self,
        ctx: &CostContext<'_>,
        w: f32,
        _s: ArrayView2<'_, f32>,
        _a: ArrayView2<'_, f32>,
        next: ArrayView2<'_, f32>,
        mut out: ArrayViewMut1<'_, f32>,
    ) -> ami_core::Result<()> {
        let Some(g) = ctx.goal else { return Ok(()) };
        for (o, n) in out.iter_mut().zip(next.rows()) {
            let (x, y) = tip(n[0], n[1]);
            *o += w * ((x - g[0]).powi(2) + (y - g[1]).powi(2));
        }
        Ok(())
    }
    fn goal_dim(&self) -> Option<usize> {
        Some(2)
    }
    fn differentiable(&self) -> Option<&dyn DifferentiableCost> {
        Some(self)
    }
}

impl DifferentiableCost for Fingertip {
    fn add_gradient(
        &self,
        ctx: &CostContext<'_>,
        w: f32,
        _s: ArrayView2<'_, f32>,
        _a: ArrayView2<'_, f32>,
        next: ArrayView2<'_, f32>,
        _gs: ArrayViewMut2<'_, f32>,
        _ga: ArrayViewMut2<'_, f32>,
        mut gn: ArrayViewMut2<'_, f32>,
    ) {
        let Some(g) = ctx.goal else { return };
        for b in 0..next.nrows() {
            let (q1, q2) = (next[[b, 0]], next[[b, 1]]);
            let (x, y) = tip(q1, q2);
            let (ex, ey) = (2.0 * w * (x - g[0]), 2.0 * w * (y - g[1]));
            let (s1, c1, s12, c12) = (q1.sin(), q1.cos(), (q1 + q2).sin(), (q1 + q2).cos());
            gn[[b, 0]] += ex * (-L1 * s1 - L2 * s12) + ey * (L1 * c1 + L2 * c12);
            gn[[b, 1]] += ex * (-L2 * s12) + ey * (L2 * c12);
        }
    }
}

/// A custom configurator: full planning budget for the first ticks, then
/// a smaller one once the arm is under way.
struct Taper {
    after: u64,
}

impl Configurator for Taper {
    fn configure(&mut self, tick: u64, _state: ArrayView1<'_, f32>) -> Vec<Modulation> {
        if tick == self.after {
            vec![Modulation::Budget(Budget::iterations(10))]
        } else {
            vec![]
        }
    }
}

fn cost() -> Cost {
    let mut c = Cost::new();
    c.add_intrinsic(std::sync::Arc::new(Fingertip), 1.0).unwrap();
    c.add_intrinsic(std::sync::Arc::new(ami_core::ActionPenalty::new(2)), 0.01).unwrap();
    c
}

fn gd() -> Gd {
    Gd::new(GdConfig { horizon: 15, samples: 8, steps: 30, lr: 0.2, init_std: 0.5, ..GdConfig::default() }, Bounds::symmetric(2, 1.0)).unwrap()
}

fn reacher() -> Reacher {
    Reacher { state: [0.0; 4], goal: [0.0; 2], steps: 0 }
}

#[test]
fn a_users_reacher_needs_no_wiring_and_no_downcasts() {
    let mut agent = AgentBuilder::new(reacher()).model(ReacherModel).cost(cost()).configurator(Taper { after: 10 }).planner(gd()).build().unwrap();
    for (k, seed) in [1u64, 2].into_iter().enumerate() {
        let r = agent.run_episode(seed, |_| {}).unwrap();
        assert_eq!(r.steps, 60, "the runner stops an environment that never truncates");
        let h = agent.handles();
        assert_eq!(h.env.as_ref().unwrap().status().steps, 60);
        // The fingertip ends near the goal the environment drew.
        let last = h.actor.as_ref().unwrap().stats();
        assert!(last.last_plan.is_some() && last.decisions >= 60);
        let mem = agent.memory().unwrap().lock();
        // The memory keeps every episode's transitions, oldest first.
        assert_eq!(mem.len(), 60 * (k + 1));
        let t = mem.get(mem.len() - 1).unwrap();
        assert_eq!(t.t, 59);
        let (x, y) = tip(t.next_state[0], t.next_state[1]);
        let goal = {
            let mut env = reacher();
            env.reset(seed).unwrap();
            env.goal
        };
        let d = ((x - goal[0]).powi(2) + (y - goal[1]).powi(2)).sqrt();
        assert!(d < 0.1, "seed {seed}: fingertip {d} from the goal (return {})", r.episode_return);
    }
}

#[test]
fn mismatches_are_refused_when_the_agent_is_built() {
    // A goal of the state's width is never compared with the 2-D fingertip.
    let err = AgentBuilder::new(reacher()).model(ReacherModel).cost(cost()).goal(vec![0.0; 4]).planner(gd()).build().unwrap_err().to_string();
    assert!(err.contains("the goal has 4 entries, and cost term `fingertip` compares it with 2 state coordinates"), "{err}");
    // GD needs gradients: a cost term without one is refused.
    struct NoGrad;
    impl IntrinsicCost for NoGrad {
        fn name(&self) -> &str {
            "nograd"
        }
        fn add_cost(
            &self,
            _: &CostContext<'_>,
            _: f32,
            _: ArrayView2<'_, f32>,
            _: ArrayView2<'_, f32>,
            _: ArrayView2<'_, f32>,
            _: ArrayViewMut1<'_, f32>,
        ) -> ami_core::Result<()> {
            Ok(())
        }
    }
    let mut c = cost();
    c.add_intrinsic(std::sync::Arc::new(NoGrad), 1.0).unwrap();
    let err = AgentBuilder::new(reacher()).model(ReacherModel).cost(c).planner(gd()).build().unwrap_err().to_string();
    assert!(err.contains("planner `gd` needs gradients and cost term `nograd` has none"), "{err}");
    // A world model whose actions do not fit the environment's.
    let wrong = ami_core::LinearModel::new(ndarray::Array2::eye(4), ndarray::Array2::zeros((4, 3))).unwrap();
    let err = AgentBuilder::new(reacher()).model(wrong).cost(cost()).planner(gd()).build().unwrap_err().to_string();
    assert!(err.contains("widths disagree: environment actions 2, world model actions 3"), "{err}");
    // A cost that compares goals with the state cannot take the
    // environment's 2-D fingertip goals.
    let mut c = Cost::new();
    c.add_intrinsic(std::sync::Arc::new(ami_core::GoalDistance::new(4)), 1.0).unwrap();
    let err = AgentBuilder::new(reacher()).model(ReacherModel).cost(c).planner(gd()).build().unwrap_err().to_string();
    assert!(err.contains("the environment `reacher` sets goals of width 2 per episode"), "{err}");
    // A planner with nothing to minimise.
    let err = AgentBuilder::new(reacher()).model(ReacherModel).planner(gd()).build().unwrap_err().to_string();
    assert!(err.contains("a planner needs a cost to minimise"), "{err}");
    // No actor at all.
    let err = AgentBuilder::new(reacher()).model(ReacherModel).build().unwrap_err().to_string();
    assert!(err.contains("the agent has no actor"), "{err}");
}
