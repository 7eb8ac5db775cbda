//! The "wall" task seen from above as a picture (the DINO-WM / PLDM /
//! EB-JEPA family): a point mass in a square arena split by a vertical
//! wall with a door, observed as a grayscale image.
//!
//! The arena is `[0, 1]^2`. The wall covers `x` in `[wall_x - wall_width /
//! 2, wall_x + wall_width / 2]` except the door, `y` in `[door_y -
//! door_width / 2, door_y + door_width / 2]`; the arena's edge is a wall
//! too. The action `[fx, fy]` in `[-1, 1]^2` moves the agent by
//! `step_size * f` (first order: what one image shows, its position, is
//! the whole state), one axis at a time, a move into a wall stopping that
//! axis (as the mazes do). An observation is a `size x size` image, row 0 at the top, in
//! `[0, 1]`: background 0, walls 0.5, the agent a Gaussian dot of
//! brightness 1. The goal is given as the image of the agent at the goal.
//! An episode succeeds when the agent comes within `SUCCESS` (5% of the
//! arena's width) of the goal position, measured in the simulator.

use ami_core::{Bounds, CoreError, Environment, Result, Step};
use ndarray::{Array1, ArrayView1};

/// Success radius, as a fraction of the arena's width.
pub const SUCCESS: f64 = 0.05;
/// How far from the wall (and the arena's edge) [`WallConfig::pair`]
/// places starts and goals.
pub const MARGIN: f64 = 0.08;

/// The task's geometry and episode.
#[derive(Debug, Clone, PartialEq)]
pub struct WallConfig {
    /// Image side in pixels.
    pub size: usize,
    /// The wall's centre line.
    pub wall_x: f64,
    /// The wall's thickness.
    pub wall_width: f64,
    /// The door's centre.
    pub door_y: f64,
    /// The door's height.
    pub door_width: f64,
    /// Start position.
    pub start: [f64; 2],
    /// Goal position.
    pub goal: [f64; 2],
    /// Steps per episode.
    pub max_steps: usize,
    /// Displacement per step at force 1 (arena widths; below the wall's
    /// thickness, so no step jumps it).
    pub step_size: f64,
    /// The agent dot's standard deviation, in pixels.
    pub dot: f64,
}

impl Default for WallConfig {
    fn default() -> Self {
        Self {
            size: 64,
            wall_x: 0.5,
            wall_width: 0.06,
            door_y: 0.5,
            door_width: 0.2,
            start: [0.2, 0.8],
            goal: [0.8, 0.2],
            max_steps: 100,
            step_size: 0.05,
            dot: 1.5,
        }
    }
}

impl WallConfig {
    /// Refuses a geometry that cannot be an episode, naming the field.
    pub fn check(&self) -> Result<()> {
        if !(8..=512).contains(&self.size) {
            return Err(CoreError::config("size", format!("must be 8..=512 pixels, got {}", self.size)));
        }
        for (field, v, lo, hi) in [
            ("wall_x", self.wall_x, 0.0, 1.0),
            ("wall_width", self.wall_width, 0.0, 0.5),
            ("door_y", self.door_y, 0.0, 1.0),
            ("door_width", self.door_width, 0.0, 1.0),
            ("dot", self.dot, 0.1, 64.0),
            ("step_size", self.step_size, 0.0, 0.5),
        ] {
            if !(v.is_finite() && v > lo && v < hi) {
                return Err(CoreError::config(field, format!("must be in ({lo}, {hi}), got {v}")));
            }
        }
        if self.step_size >= self.wall_width {
            return Err(CoreError::config(
                "step_size",
                format!("must be below wall_width ({}) or a step could jump the wall, got {}", self.wall_width, self.step_size),
            ));
        }
        if self.max_steps == 0 {
            return Err(CoreError::config("max_steps", "must be at least 1"));
        }
        for (field, p) in [("start", self.start), ("goal", self.goal)] {
            if !self.is_free(p[0], p[1]) {
                return Err(CoreError::config(field, format!("{p:?} is inside a wall or outside the arena")));
            }
        }
        Ok(())
    }
    /// Whether `(x, y)` is in the arena and not in the wall.
    pub fn is_free(&self, x: f64, y: f64) -> bool {
        let inside = (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y);
        let in_wall = (x - self.wall_x).abs() <= self.wall_width / 2.0 && (y - self.door_y).abs() > self.door_width / 2.0;
        inside && !in_wall
    }
    /// One step from `[x, y, vx, vy]` under force `f` (clipped to `[-1, 1]`):
    /// the velocity becomes `step_size * f` and the position moves by it.
    pub fn step(&self, s: [f64; 4], f: [f64; 2]) -> [f64; 4] {
        let f = [f[0].clamp(-1.0, 1.0), f[1].clamp(-1.0, 1.0)];
        super::sliding_step(s, f, 1.0, self.step_size, 1.0, |x, y| self.is_free(x, y))
    }
    /// The start and goal of episode `seed` when pairs are drawn: uniform
    /// in the free space at least [`MARGIN`] from the wall and the edges,
    /// in different rooms (the start's room drawn too).
    pub fn pair(&self, seed: u64) -> ([f64; 2], [f64; 2]) {
        use rand::Rng;
        let mut rng = ami_core::rng::rng(ami_core::rng::derive_seed(seed, "wall-pair"));
        let left = rng.gen_bool(0.5);
        let half = self.wall_width / 2.0 + MARGIN;
        let mut room = |left: bool| -> [f64; 2] {
            let (lo, hi) = if left { (MARGIN, self.wall_x - half) } else { (self.wall_x + half, 1.0 - MARGIN) };
            // A room narrower than the margins: its middle.
            let x = if hi > lo { rng.gen_range(lo..hi) } else { (lo + hi) / 2.0 };
            [x, rng.gen_range(MARGIN..1.0 - MARGIN)]
        };
        let start = room(left);
        (start, room(!left))
    }
    /// The image of the agent at `(x, y)`: `size * size` values, row-major,
    /// row 0 the top (`y = 1`).
    pub fn render(&self, x: f64, y: f64) -> Array1<f32> {
        let n = self.size;
        let px = |i: usize| (i as f64 + 0.5) / n as f64;
        let mut img = Array1::<f32>::zeros(n * n);
        let (cx, cy) = (x * n as f64, (1.0 - y) * n as f64);
        let k = 1.0 / (2.0 * self.dot * self.dot);
        for r in 0..n {
            for c in 0..n {
                let wall = !self.is_free(px(c), 1.0 - px(r));
                let (dx, dy) = (c as f64 + 0.5 - cx, r as f64 + 0.5 - cy);
                let dot = (-(dx * dx + dy * dy) * k).exp();
                img[r * n + c] = (if wall { 0.5 } else { 0.0f64 }).max(dot) as f32;
            }
        }
        img
    }
}

/// The wall task as an [`Environment`]: observations are images (see the
/// module docs); [`WallEnv::position`] is the true position, for
/// diagnostics and success only.
#[derive(Debug, Clone)]
pub struct WallEnv {
    cfg: WallConfig,
    pairs: bool,
    state: [f64; 4],
    steps: usize,
    reached: bool,
}

impl WallEnv {
    /// The task `cfg` describes (checked).
    pub fn new(cfg: WallConfig) -> Result<Self> {
        cfg.check()?;
        Ok(Self { state: [cfg.start[0], cfg.start[1], 0.0, 0.0], cfg, pairs: false, steps: 0, reached: false })
    }
    /// Each episode's start and goal drawn from its seed
    /// ([`WallConfig::pair`]: in different rooms) instead of the
    /// configured ones.
    pub fn with_pairs(mut self) -> Self {
        self.pairs = true;
        self
    }
    /// The geometry.
    pub fn config(&self) -> &WallConfig {
        &self.cfg
    }
    /// The true position.
    pub fn position(&self) -> [f64; 2] {
        [self.state[0], self.state[1]]
    }
    fn distance(&self) -> f64 {
        (self.state[0] - self.cfg.goal[0]).hypot(self.state[1] - self.cfg.goal[1])
    }
}

impl Environment for WallEnv {
    fn name(&self) -> &str {
        "wall"
    }
    fn obs_dim(&self) -> usize {
        self.cfg.size * self.cfg.size
    }
    fn action_dim(&self) -> usize {
        2
    }
    fn action_bounds(&self) -> Bounds {
        Bounds::symmetric(2, 1.0)
    }
    fn max_steps(&self) -> usize {
        self.cfg.max_steps
    }
    fn reset(&mut self, seed: u64) -> Result<Array1<f32>> {
        if self.pairs {
            let (start, goal) = self.cfg.pair(seed);
            self.cfg.start = start;
            self.cfg.goal = goal;
        }
        self.state = [self.cfg.start[0], self.cfg.start[1], 0.0, 0.0];
        self.steps = 0;
        self.reached = false;
        Ok(self.cfg.render(self.state[0], self.state[1]))
    }
    fn step(&mut self, action: ArrayView1<'_, f32>) -> Result<Step> {
        if action.len() != 2 {
            return Err(CoreError::shape("wall: action", "length 2", format!("length {}", action.len())));
        }
        self.state = self.cfg.step(self.state, [f64::from(action[0]), f64::from(action[1])]);
        self.steps += 1;
        let d = self.distance();
        let terminated = d < SUCCESS;
        self.reached |= terminated;
        Ok(Step {
            observation: self.cfg.render(self.state[0], self.state[1]),
            reward: -d,
            terminated,
            truncated: !terminated && self.steps >= self.cfg.max_steps,
        })
    }
    /// The goal as an image: the agent rendered at the goal position.
    fn goal(&self) -> Option<Array1<f32>> {
        Some(self.cfg.render(self.cfg.goal[0], self.cfg.goal[1]))
    }
    fn goal_dim(&self) -> Option<usize> {
        Some(self.obs_dim())
    }
    fn success(&self) -> Option<bool> {
        Some(self.reached)
    }
    /// The true position `[x, y]` and the goal's (for traces and plots).
    fn diagnostics(&self) -> Option<Array1<f32>> {
        Some(Array1::from(vec![self.state[0] as f32, self.state[1] as f32, self.cfg.goal[0] as f32, self.cfg.goal[1] as f32]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The brightest pixel's centre, in arena coordinates.
    fn brightest(cfg: &WallConfig, img: &Array1<f32>) -> [f64; 2] {
        let n = cfg.size;
        let i = img.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap();
        let (r, c) = (i / n, i % n);
        [(c as f64 + 0.5) / n as f64, 1.0 - (r as f64 + 0.5) / n as f64]
    }

    #[test]
    fn the_image_shows_the_agent_where_it_is_and_the_wall_with_its_door() {
        let cfg = WallConfig::default();
        for p in [[0.2, 0.8], [0.8, 0.2], [0.1, 0.1], [0.5, 0.5]] {
            let img = cfg.render(p[0], p[1]);
            let b = brightest(&cfg, &img);
            assert!((b[0] - p[0]).abs() <= 1.0 / 64.0 && (b[1] - p[1]).abs() <= 1.0 / 64.0, "{p:?}: brightest at {b:?}");
            // At least exp(-0.5 / (2 dot^2)): the dot centre is within half a pixel of one.
            assert!(img.iter().cloned().fold(0.0f32, f32::max) > 0.85, "{p:?}");
        }
        // The wall column is drawn above and below the door, not in it.
        let img = cfg.render(0.1, 0.1);
        let at = |x: f64, y: f64| img[((1.0 - y) * 64.0) as usize * 64 + (x * 64.0) as usize];
        assert_eq!(at(0.5, 0.9), 0.5);
        assert_eq!(at(0.5, 0.1), 0.5);
        assert_eq!(at(0.5, 0.5), 0.0, "the door");
        assert_eq!(at(0.3, 0.5), 0.0);
    }

    #[test]
    fn the_wall_stops_the_agent_and_the_door_lets_it_through() {
        let cfg = WallConfig::default();
        // Pushed right at the wall's height above the door: stops short of it.
        let mut s = [0.3, 0.8, 0.0, 0.0];
        for _ in 0..200 {
            s = cfg.step(s, [1.0, 0.0]);
        }
        assert!(s[0] < cfg.wall_x - cfg.wall_width / 2.0 && s[0] > 0.4, "{s:?}");
        // Through the door: reaches the other room.
        let mut s = [0.3, 0.5, 0.0, 0.0];
        for _ in 0..200 {
            s = cfg.step(s, [1.0, 0.0]);
        }
        assert!(s[0] > 0.9, "{s:?}");
        // An episode from the left room to the goal in the right one,
        // steered through the door, succeeds in the simulator.
        let mut env = WallEnv::new(cfg.clone()).unwrap();
        env.reset(0).unwrap();
        for _ in 0..200 {
            let [x, y] = env.position();
            let target = if x < cfg.wall_x + cfg.wall_width { [cfg.wall_x + 0.1, cfg.door_y] } else { cfg.goal };
            let f = ndarray::arr1(&[((target[0] - x) * 20.0) as f32, ((target[1] - y) * 20.0) as f32]);
            if env.step(f.view()).unwrap().terminated {
                break;
            }
        }
        assert_eq!(env.success(), Some(true), "ended at {:?}", env.position());
        assert_eq!(env.goal().unwrap().len(), 64 * 64);
    }

    #[test]
    fn bad_geometries_are_refused_by_field() {
        let err = |c: WallConfig| WallEnv::new(c).unwrap_err().to_string();
        assert!(err(WallConfig { start: [0.5, 0.9], ..WallConfig::default() }).contains("start"));
        assert!(err(WallConfig { goal: [1.5, 0.5], ..WallConfig::default() }).contains("goal"));
        assert!(err(WallConfig { door_width: f64::NAN, ..WallConfig::default() }).contains("door_width"));
        assert!(err(WallConfig { size: 4, ..WallConfig::default() }).contains("size"));
    }
}
