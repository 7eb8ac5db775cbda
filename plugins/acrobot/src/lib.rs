//! # acrobot — an ami plugin
//!
//! Gymnasium's `Acrobot-v1` as three plugin modules:
//!
//! * `acrobot/env` (environment): the `book` dynamics of Acrobot-v1 (RK4 over
//!   `dt = 0.2`, angles wrapped to `[-pi, pi]`, velocities bounded by
//!   `4 pi` and `9 pi`), except that the torque on the second joint is
//!   continuous in `[-1, 1]` instead of the three values `{-1, 0, 1}`. The
//!   observation is `[cos t1, sin t1, cos t2, sin t2, dt1, dt2]`; reset
//!   draws the four state variables uniformly in `[-0.1, 0.1]`; the reward
//!   is `-1` per step and `0` on the step that reaches the goal
//!   (`-cos t1 - cos(t1 + t2) > 1`, which terminates the episode); episodes
//!   are truncated after 500 steps.
//! * `acrobot/model` (world model): the same dynamics on observations, in
//!   `f64` internally, batched.
//! * `acrobot/swingup` (intrinsic cost): `height_weight * (2 - h(s')) +
//!   velocity_weight * |dt(s')|^2 + action_weight * u^2`, with `h` the tip
//!   height `-cos t1 - cos(t1 + t2)`.
//!
//! The crate builds as a `cdylib` (`libacrobot.so`, loaded by `ami run
//! --plugin`) and as an `rlib`, so the same modules can be linked
//! statically through [`ami_plugin_decl`].

use std::f64::consts::PI;

use ami_plugin_abi::prelude::*;

/// Time step (s).
pub const DT: f64 = 0.2;
/// Length of link 1 (m).
pub const LINK_LENGTH_1: f64 = 1.0;
/// Mass of link 1 (kg).
pub const LINK_MASS_1: f64 = 1.0;
/// Mass of link 2 (kg).
pub const LINK_MASS_2: f64 = 1.0;
/// Position of the centre of mass of link 1 (m).
pub const LINK_COM_POS_1: f64 = 0.5;
/// Position of the centre of mass of link 2 (m).
pub const LINK_COM_POS_2: f64 = 0.5;
/// Moment of inertia of both links.
pub const LINK_MOI: f64 = 1.0;
/// Largest angular velocity of joint 1.
pub const MAX_VEL_1: f64 = 4.0 * PI;
/// Largest angular velocity of joint 2.
pub const MAX_VEL_2: f64 = 9.0 * PI;
/// Largest torque.
pub const MAX_TORQUE: f64 = 1.0;
/// Steps after which an episode is truncated.
pub const MAX_STEPS: usize = 500;

/// Time derivative of `[t1, t2, dt1, dt2]` under torque `a` (Gymnasium's
/// `_dsdt`, `book` variant).
pub fn dsdt(s: [f64; 4], a: f64) -> [f64; 4] {
    let (m1, m2, l1, lc1, lc2, i1, i2, g) = (LINK_MASS_1, LINK_MASS_2, LINK_LENGTH_1, LINK_COM_POS_1, LINK_COM_POS_2, LINK_MOI, LINK_MOI, 9.8);
    let [theta1, theta2, dtheta1, dtheta2] = s;
    let d1 = m1 * lc1 * lc1 + m2 * (l1 * l1 + lc2 * lc2 + 2.0 * l1 * lc2 * theta2.cos()) + i1 + i2;
    let d2 = m2 * (lc2 * lc2 + l1 * lc2 * theta2.cos()) + i2;
    let phi2 = m2 * lc2 * g * (theta1 + theta2 - PI / 2.0).cos();
    let phi1 = -m2 * l1 * lc2 * dtheta2 * dtheta2 * theta2.sin() - 2.0 * m2 * l1 * lc2 * dtheta2 * dtheta1 * theta2.sin()
        + (m1 * lc1 + m2 * l1) * g * (theta1 - PI / 2.0).cos()
        + phi2;
    let ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1 * dtheta1 * theta2.sin() - phi2) / (m2 * lc2 * lc2 + i2 - d2 * d2 / d1);
    let ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
    [dtheta1, dtheta2, ddtheta1, ddtheta2]
}

fn wrap(mut x: f64, m: f64, big_m: f64) -> f64 {
    let diff = big_m - m;
    while x > big_m {
        x -= diff;
    }
    while x < m {
        x += diff;
    }
    x
}

/// One environment step of the state `[t1, t2, dt1, dt2]` with torque `a`
/// (already clipped): RK4 over `DT`, wrap, bound.
pub fn step_state(s: [f64; 4], a: f64) -> [f64; 4] {
    let add = |y: [f64; 4], k: [f64; 4], h: f64| [y[0] + h * k[0], y[1] + h * k[1], y[2] + h * k[2], y[3] + h * k[3]];
    let dt2 = DT / 2.0;
    let k1 = dsdt(s, a);
    let k2 = dsdt(add(s, k1, dt2), a);
    let k3 = dsdt(add(s, k2, dt2), a);
    let k4 = dsdt(add(s, k3, DT), a);
    let mut ns = [0.0; 4];
    for i in 0..4 {
        ns[i] = s[i] + DT / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
    }
    ns[0] = wrap(ns[0], -PI, PI);
    ns[1] = wrap(ns[1], -PI, PI);
    ns[2] = ns[2].clamp(-MAX_VEL_1, MAX_VEL_1);
    ns[3] = ns[3].clamp(-MAX_VEL_2, MAX_VEL_2);
    ns
}

/// The observation of a state.
pub fn observe(s: [f64; 4], out: &mut [f32]) {
    out[0] = s[0].cos() as f32;
    out[1] = s[0].sin() as f32;
    out[2] = s[1].cos() as f32;
    out[3] = s[1].sin() as f32;
    out[4] = s[2] as f32;
    out[5] = s[3] as f32;
}

/// The state `[t1, t2, dt1, dt2]` of an observation.
pub fn unobserve(o: &[f32]) -> [f64; 4] {
    [f64::from(o[1]).atan2(f64::from(o[0])), f64::from(o[3]).atan2(f64::from(o[2])), f64::from(o[4]), f64::from(o[5])]
}

/// Height of the tip above the pivot, in link lengths: `-cos t1 - cos(t1 + t2)`.
pub fn height(s: [f64; 4]) -> f64 {
    -s[0].cos() - (s[1] + s[0]).cos()
}

/// SplitMix64: the plugin's own seeded random numbers.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The Acrobot environment.
#[derive(Debug, Clone, Default)]
pub struct Acrobot {
    state: [f64; 4],
    steps: usize,
}

impl Acrobot {
    /// The internal state `[t1, t2, dt1, dt2]`.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }
}

impl Module for Acrobot {
    const NAME: &'static str = "env";
    const DESCRIPTION: &'static str = "Acrobot-v1 swing-up with a continuous torque in [-1, 1] (500 steps, reward -1 per step until the tip is above 1)";
    fn create(_config: &Config) -> Result<Self, Error> {
        Ok(Self::default())
    }
}

impl Environment for Acrobot {
    fn obs_dim(&self) -> usize {
        6
    }
    fn action_dim(&self) -> usize {
        1
    }
    fn max_steps(&self) -> usize {
        MAX_STEPS
    }
    fn action_bounds(&self) -> (Vec<f32>, Vec<f32>) {
        (vec![-MAX_TORQUE as f32], vec![MAX_TORQUE as f32])
    }
    fn reset_episode(&mut self, seed: u64, observation: &mut [f32]) -> Result<(), Error> {
        let mut r = seed;
        for v in &mut self.state {
            let u = (splitmix(&mut r) >> 11) as f64 / (1u64 << 53) as f64;
            *v = -0.1 + 0.2 * u;
        }
        self.steps = 0;
        observe(self.state, observation);
        Ok(())
    }
    fn step(&mut self, action: &[f32], observation: &mut [f32]) -> Result<StepResult, Error> {
        let a = f64::from(action[0]).clamp(-MAX_TORQUE, MAX_TORQUE);
        self.state = step_state(self.state, a);
        self.steps += 1;
        let terminated = height(self.state) > 1.0;
        observe(self.state, observation);
        Ok(StepResult { reward: if terminated { 0.0 } else { -1.0 }, terminated, truncated: !terminated && self.steps >= MAX_STEPS })
    }
}

/// The true dynamics on observations.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcrobotModel;

impl Module for AcrobotModel {
    const NAME: &'static str = "model";
    const DESCRIPTION: &'static str = "true Acrobot-v1 dynamics on observations [cos t1, sin t1, cos t2, sin t2, dt1, dt2]";
    fn create(_config: &Config) -> Result<Self, Error> {
        Ok(Self)
    }
}

impl WorldModel for AcrobotModel {
    fn state_dim(&self) -> usize {
        6
    }
    fn action_dim(&self) -> usize {
        1
    }
    fn predict(&self, states: Tensor<'_>, actions: Tensor<'_>, _latents: Option<Tensor<'_>>, mut next: TensorMut<'_>) -> Result<(), Error> {
        for i in 0..states.rows() {
            let s = unobserve(states.row(i));
            let a = f64::from(actions.row(i)[0]).clamp(-MAX_TORQUE, MAX_TORQUE);
            observe(step_state(s, a), next.row_mut(i));
        }
        Ok(())
    }
}

/// The swing-up cost.
#[derive(Debug, Clone, Copy)]
pub struct SwingUpCost {
    height_weight: f32,
    velocity_weight: f32,
    action_weight: f32,
}

impl Module for SwingUpCost {
    const NAME: &'static str = "swingup";
    const DESCRIPTION: &'static str = "height deficit of the tip (2 - h) after the step, plus optional velocity and torque penalties";
    const PARAMS: &'static [Param] = &[
        Param::new("height_weight", "number", "1.0", "weight of 2 - h(s')"),
        Param::new("velocity_weight", "number", "0.0", "weight of dt1^2 + dt2^2 of s'"),
        Param::new("action_weight", "number", "0.0", "weight of u^2"),
    ];
    fn create(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            height_weight: config.f32_or("height_weight", 1.0)?,
            velocity_weight: config.f32_or("velocity_weight", 0.0)?,
            action_weight: config.f32_or("action_weight", 0.0)?,
        })
    }
}

impl IntrinsicCost for SwingUpCost {
    fn add_cost(
        &self,
        _ctx: &CostContext<'_>,
        weight: f32,
        _states: Tensor<'_>,
        actions: Tensor<'_>,
        next_states: Tensor<'_>,
        out: &mut [f32],
    ) -> Result<(), Error> {
        for (i, o) in out.iter_mut().enumerate() {
            let n = next_states.row(i);
            // -cos t1 - cos(t1 + t2) = -c1 - (c1 c2 - s1 s2)
            let h = -n[0] - (n[0] * n[2] - n[1] * n[3]);
            let u = actions.row(i)[0];
            *o += weight * (self.height_weight * (2.0 - h) + self.velocity_weight * (n[4] * n[4] + n[5] * n[5]) + self.action_weight * u * u);
        }
        Ok(())
    }
}

ami_plugin_abi::declare_plugin! {
    name: "acrobot",
    version: env!("CARGO_PKG_VERSION"),
    modules: [
        environment: Acrobot,
        world_model: AcrobotModel,
        intrinsic_cost: SwingUpCost,
    ],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_matches_env_and_goal_terminates() {
        let mut env = Acrobot::default();
        let mut obs = [0.0f32; 6];
        env.reset_episode(3, &mut obs).unwrap();
        for v in env.state() {
            assert!((-0.1..0.1).contains(&v));
        }
        let mut next = [0.0f32; 6];
        for i in 0..100 {
            let u = if (i / 10) % 2 == 0 { 1.0 } else { -1.0 };
            AcrobotModel
                .predict(
                    Tensor::from_slice(&obs, 1, 6).unwrap(),
                    Tensor::from_slice(&[u], 1, 1).unwrap(),
                    None,
                    TensorMut::from_slice(&mut next, 1, 6).unwrap(),
                )
                .unwrap();
            let r = env.step(&[u], &mut obs).unwrap();
            for j in 0..6 {
                assert!((next[j] - obs[j]).abs() < 1e-3, "step {i}: {next:?} vs {obs:?}");
            }
            if r.terminated {
                assert_eq!(r.reward, 0.0);
                return;
            }
            assert_eq!(r.reward, -1.0);
        }
    }

    #[test]
    fn wrap_and_dsdt_at_rest() {
        assert!((wrap(3.5 * PI, -PI, PI) + 0.5 * PI).abs() < 1e-12);
        let d = dsdt([0.0; 4], 0.0);
        assert!(d.iter().all(|x| x.abs() < 1e-12), "{d:?}");
    }
}
