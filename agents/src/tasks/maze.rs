//! A 2-D point mass in a maze with wall collisions: the task flat planning
//! fails on (the greedy distance to the goal leads into walls), which
//! hierarchical planning is for.
//!
//! Mazes are text: one row per line, top row first, `#` a wall and `.` a
//! free cell, each character a 1x1 cell. Cell (row `r`, column `c`) of a
//! maze of `R` rows covers `x` in `[c, c + 1]`, `y` in `[R - 1 - r, R - r]`;
//! everything outside the grid is wall.
//!
//! The state and observation are `[x, y, vx, vy]`, the action a force
//! `[fx, fy]` in `[-1, 1]^2`. With `dt = 0.1` and damping 1:
//! `v' = v + dt (f - v)`; then the position moves one axis at a time,
//! `x` first: a move that would end inside a wall does not happen and
//! zeroes that axis's velocity. The top speed is 1 cell/s (0.1 a step),
//! so a move never crosses a wall. The reward is `-||p' - goal||`; an
//! episode terminates (a success) when the position is within
//! [`SUCCESS_RADIUS`] of the goal, and is truncated after `max_steps`
//! (default [`MAX_STEPS`]).

use std::fmt;
use std::sync::Arc;

use ndarray::{Array1, ArrayView1, ArrayView2, ArrayViewMut2};

use ami_core::{Bounds, Cost, Environment, QuadraticCost, Result, Step, WorldModel};

/// Time step (s).
pub const DT: f64 = 0.1;
/// Linear damping coefficient (1/s): the top speed is `MAX_FORCE / DAMPING`.
pub const DAMPING: f64 = 1.0;
/// Largest force on each axis.
pub const MAX_FORCE: f64 = 1.0;
/// Default steps after which an episode is truncated.
pub const MAX_STEPS: usize = 400;
/// An episode succeeds when the position is this close to the goal.
pub const SUCCESS_RADIUS: f64 = 0.5;

/// Why a maze text was refused, with its place.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MazeError {
    /// A character other than `#` or `.`.
    #[error("{name}:{line}:{column}: `{found}` is not a maze cell (`#` wall, `.` free)")]
    BadCell {
        /// The maze's name (file or built-in).
        name: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The character.
        found: char,
    },
    /// A row of another length than the first.
    #[error("{name}:{line}: a row of {got} cells, the first row has {want}")]
    Ragged {
        /// The maze's name.
        name: String,
        /// 1-based line.
        line: usize,
        /// Its cells.
        got: usize,
        /// The first row's.
        want: usize,
    },
    /// No rows, or no free cell.
    #[error("{name}: {what}")]
    Empty {
        /// The maze's name.
        name: String,
        /// What is missing.
        what: &'static str,
    },
}

/// A maze: a grid of wall and free cells.
#[derive(Clone, PartialEq)]
pub struct Maze {
    name: String,
    rows: usize,
    cols: usize,
    wall: Vec<bool>,
}

impl fmt::Debug for Maze {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Maze({}, {}x{})", self.name, self.rows, self.cols)
    }
}

/// The mazes ami ships: `u-maze`, `four-rooms`, `rooms-4x4`.
pub const BUILTIN: [(&str, &str); 3] = [
    ("u-maze", include_str!("../../assets/mazes/u-maze.txt")),
    ("four-rooms", include_str!("../../assets/mazes/four-rooms.txt")),
    ("rooms-4x4", include_str!("../../assets/mazes/rooms-4x4.txt")),
];

impl Maze {
    /// Parses maze text (see the module docs); `name` is used in errors.
    /// Trailing whitespace on a line and blank lines at the end are
    /// ignored.
    pub fn parse(text: &str, name: &str) -> std::result::Result<Self, MazeError> {
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        let n = lines.iter().rposition(|l| !l.is_empty()).map_or(0, |i| i + 1);
        if n == 0 {
            return Err(MazeError::Empty { name: name.into(), what: "no rows" });
        }
        let cols = lines[0].chars().count();
        let mut wall = Vec::with_capacity(n * cols);
        for (i, line) in lines[..n].iter().enumerate() {
            let got = line.chars().count();
            if got != cols {
                return Err(MazeError::Ragged { name: name.into(), line: i + 1, got, want: cols });
            }
            for (j, ch) in line.chars().enumerate() {
                match ch {
                    '#' => wall.push(true),
                    '.' => wall.push(false),
                    found => return Err(MazeError::BadCell { name: name.into(), line: i + 1, column: j + 1, found }),
                }
            }
        }
        if wall.iter().all(|&w| w) {
            return Err(MazeError::Empty { name: name.into(), what: "no free cell" });
        }
        Ok(Self { name: name.into(), rows: n, cols, wall })
    }

    /// The built-in maze called `name`.
    pub fn builtin(name: &str) -> Option<Self> {
        BUILTIN.iter().find(|(n, _)| *n == name).map(|(n, text)| Self::parse(text, n).expect("the built-in mazes parse"))
    }

    /// The maze as text rows (`#` wall, `.` free), top row first: what
    /// [`Maze::parse`] reads back.
    pub fn text_rows(&self) -> Vec<String> {
        (0..self.rows).map(|r| (0..self.cols).map(|c| if self.wall[r * self.cols + c] { '#' } else { '.' }).collect()).collect()
    }

    /// The maze's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Rows (the grid's height).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Columns (the grid's width).
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Whether cell (row `r`, column `c`) is a wall (outside the grid: yes).
    pub fn is_wall_cell(&self, r: i64, c: i64) -> bool {
        r < 0 || c < 0 || r >= self.rows as i64 || c >= self.cols as i64 || self.wall[r as usize * self.cols + c as usize]
    }
    /// Whether the point `(x, y)` is in a free cell.
    pub fn is_free(&self, x: f64, y: f64) -> bool {
        if !(x.is_finite() && y.is_finite()) {
            return false;
        }
        let c = x.floor() as i64;
        let r = self.rows as i64 - 1 - y.floor() as i64;
        !self.is_wall_cell(r, c)
    }
    /// The centre of cell (row `r`, column `c`).
    pub fn cell_center(&self, r: usize, c: usize) -> [f64; 2] {
        [c as f64 + 0.5, (self.rows - 1 - r) as f64 + 0.5]
    }

    /// Whether free cell (`r`, `c`) is a doorway: walls on both sides
    /// along one axis (left and right, or above and below).
    fn is_door(&self, r: usize, c: usize) -> bool {
        let (r, c) = (r as i64, c as i64);
        !self.is_wall_cell(r, c)
            && ((self.is_wall_cell(r, c - 1) && self.is_wall_cell(r, c + 1)) || (self.is_wall_cell(r - 1, c) && self.is_wall_cell(r + 1, c)))
    }

    /// The rooms: the free cells that are not doorways (see
    /// [`Maze::is_door`]), grouped by 4-connectivity, each as its cells
    /// `(row, column)` in reading order, the rooms ordered by their first
    /// cell. A maze of corridors only (the U-maze) has none.
    pub fn rooms(&self) -> Vec<Vec<(usize, usize)>> {
        let mut room = vec![usize::MAX; self.rows * self.cols];
        let mut rooms = Vec::new();
        for r0 in 0..self.rows {
            for c0 in 0..self.cols {
                if self.wall[r0 * self.cols + c0] || self.is_door(r0, c0) || room[r0 * self.cols + c0] != usize::MAX {
                    continue;
                }
                let id = rooms.len();
                let mut cells = Vec::new();
                let mut stack = vec![(r0, c0)];
                room[r0 * self.cols + c0] = id;
                while let Some((r, c)) = stack.pop() {
                    cells.push((r, c));
                    let near = [(r.wrapping_sub(1), c), (r + 1, c), (r, c.wrapping_sub(1)), (r, c + 1)];
                    for (nr, nc) in near {
                        if nr < self.rows
                            && nc < self.cols
                            && !self.wall[nr * self.cols + nc]
                            && !self.is_door(nr, nc)
                            && room[nr * self.cols + nc] == usize::MAX
                        {
                            room[nr * self.cols + nc] = id;
                            stack.push((nr, nc));
                        }
                    }
                }
                cells.sort_unstable();
                rooms.push(cells);
            }
        }
        rooms
    }

    /// A start and a goal drawn from `seed`: the centres of two cells of
    /// different rooms (rooms chosen uniformly, then a cell in each), or of
    /// two different free cells when the maze has fewer than two rooms.
    /// The same seed gives the same pair on every machine.
    pub fn room_pair(&self, seed: u64) -> ([f64; 2], [f64; 2]) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let rooms = self.rooms();
        let (a, b) = if rooms.len() >= 2 {
            let i = rng.gen_range(0..rooms.len());
            let mut j = rng.gen_range(0..rooms.len() - 1);
            if j >= i {
                j += 1;
            }
            (rooms[i][rng.gen_range(0..rooms[i].len())], rooms[j][rng.gen_range(0..rooms[j].len())])
        } else {
            let free: Vec<(usize, usize)> =
                (0..self.rows).flat_map(|r| (0..self.cols).map(move |c| (r, c))).filter(|&(r, c)| !self.wall[r * self.cols + c]).collect();
            let i = rng.gen_range(0..free.len());
            let mut j = rng.gen_range(0..free.len().max(2) - 1);
            if j >= i && free.len() > 1 {
                j += 1;
            }
            (free[i], free[j.min(free.len() - 1)])
        };
        (self.cell_center(a.0, a.1), self.cell_center(b.0, b.1))
    }

    /// Moves the point `p` by `d` in straight increments of at most 0.1
    /// (so no wall is crossed), one axis at a time as [`Maze::step`] does:
    /// a move into a wall stops on that axis. The configured model of a
    /// high planning level.
    pub fn slide(&self, p: [f64; 2], d: [f64; 2]) -> [f64; 2] {
        let n = (d[0].abs().max(d[1].abs()) / 0.1).ceil().max(1.0) as usize;
        let (dx, dy) = (d[0] / n as f64, d[1] / n as f64);
        let [mut x, mut y] = p;
        for _ in 0..n {
            if self.is_free(x + dx, y) {
                x += dx;
            }
            if self.is_free(x, y + dy) {
                y += dy;
            }
        }
        [x, y]
    }

    /// One step of the dynamics from `[x, y, vx, vy]` under force `f`
    /// (clipped to the bounds), in `f64`.
    pub fn step(&self, s: [f64; 4], f: [f64; 2]) -> [f64; 4] {
        let f = [f[0].clamp(-MAX_FORCE, MAX_FORCE), f[1].clamp(-MAX_FORCE, MAX_FORCE)];
        super::sliding_step(s, f, DT, 1.0, DAMPING, |x, y| self.is_free(x, y))
    }
}

/// The maze environment: a point mass from `start` to `goal`.
#[derive(Debug, Clone)]
pub struct MazeEnv {
    maze: Arc<Maze>,
    start: [f64; 2],
    goal: [f64; 2],
    max_steps: usize,
    state: [f64; 4],
    steps: usize,
    name: String,
    room_pairs: bool,
    reached: bool,
}

impl MazeEnv {
    /// The task in `maze` from `start` to `goal` (both in free cells), at
    /// most `max_steps` steps an episode.
    pub fn new(maze: Arc<Maze>, start: [f64; 2], goal: [f64; 2], max_steps: usize) -> std::result::Result<Self, String> {
        for (what, p) in [("start", start), ("goal", goal)] {
            if !maze.is_free(p[0], p[1]) {
                return Err(format!("{what} ({}, {}) is not in a free cell of maze `{}`", p[0], p[1], maze.name()));
            }
        }
        let name = format!("maze:{}", maze.name());
        Ok(Self { maze, start, goal, max_steps, state: [start[0], start[1], 0.0, 0.0], steps: 0, name, room_pairs: false, reached: false })
    }
    /// Draws each episode's start and goal from its seed
    /// ([`Maze::room_pair`]: in different rooms) instead of the fixed ones.
    pub fn with_room_pairs(mut self) -> Self {
        self.room_pairs = true;
        self
    }
    /// The episode's start and goal positions.
    pub fn endpoints(&self) -> ([f64; 2], [f64; 2]) {
        (self.start, self.goal)
    }
    /// The maze.
    pub fn maze(&self) -> &Arc<Maze> {
        &self.maze
    }
    /// The goal state `[gx, gy, 0, 0]`.
    pub fn goal_state(&self) -> [f32; 4] {
        [self.goal[0] as f32, self.goal[1] as f32, 0.0, 0.0]
    }
    /// Whether the current position is within [`SUCCESS_RADIUS`] of the goal.
    pub fn at_goal(&self) -> bool {
        (self.state[0] - self.goal[0]).hypot(self.state[1] - self.goal[1]) < SUCCESS_RADIUS
    }
    fn observation(&self) -> Array1<f32> {
        self.state.iter().map(|&v| v as f32).collect()
    }
}

impl Environment for MazeEnv {
    fn name(&self) -> &str {
        &self.name
    }
    fn obs_dim(&self) -> usize {
        4
    }
    fn action_dim(&self) -> usize {
        2
    }
    fn action_bounds(&self) -> Bounds {
        Bounds::symmetric(2, MAX_FORCE as f32)
    }
    fn max_steps(&self) -> usize {
        self.max_steps
    }
    /// Every episode starts at rest at `start` (the seed does not matter
    /// unless start and goal are drawn per episode, from the seed).
    fn reset(&mut self, seed: u64) -> Result<Array1<f32>> {
        if self.room_pairs {
            (self.start, self.goal) = self.maze.room_pair(seed);
        }
        self.state = [self.start[0], self.start[1], 0.0, 0.0];
        self.steps = 0;
        self.reached = false;
        Ok(self.observation())
    }
    fn step(&mut self, action: ArrayView1<'_, f32>) -> Result<Step> {
        self.state = self.maze.step(self.state, [f64::from(action[0]), f64::from(action[1])]);
        self.steps += 1;
        let d = (self.state[0] - self.goal[0]).hypot(self.state[1] - self.goal[1]);
        let terminated = d < SUCCESS_RADIUS;
        self.reached |= terminated;
        Ok(Step { observation: self.observation(), reward: -d, terminated, truncated: !terminated && self.steps >= self.max_steps })
    }
    fn goal(&self) -> Option<Array1<f32>> {
        Some(Array1::from(self.goal_state().to_vec()))
    }
    fn goal_dim(&self) -> Option<usize> {
        Some(4)
    }
    /// The goal was reached (within [`SUCCESS_RADIUS`]) this episode.
    fn success(&self) -> Option<bool> {
        Some(self.reached)
    }
}

/// The maze's true dynamics as a world model (walls included), in `f64`
/// per row.
#[derive(Debug, Clone)]
pub struct MazeModel {
    maze: Arc<Maze>,
}

impl MazeModel {
    /// The dynamics of `maze`.
    pub fn new(maze: Arc<Maze>) -> Self {
        Self { maze }
    }
}

impl WorldModel for MazeModel {
    fn state_dim(&self) -> usize {
        4
    }
    fn action_dim(&self) -> usize {
        2
    }
    fn predict(&self, states: ArrayView2<'_, f32>, actions: ArrayView2<'_, f32>, mut next: ArrayViewMut2<'_, f32>) -> Result<()> {
        for ((s, a), mut n) in states.rows().into_iter().zip(actions.rows()).zip(next.rows_mut()) {
            let s = [f64::from(s[0]), f64::from(s[1]), f64::from(s[2]), f64::from(s[3])];
            let out = self.maze.step(s, [f64::from(a[0]), f64::from(a[1])]);
            for (d, v) in n.iter_mut().zip(out) {
                *d = v as f32;
            }
        }
        Ok(())
    }
}

/// The configured model of a high planning level in a maze: the state is
/// the position `[x, y]`, an action `a` in `[-1, 1]^2` a displacement of
/// `reach * a` made by sliding along the walls ([`Maze::slide`]). One step
/// stands for about `reach / 0.1` ticks at top speed. The walls are given;
/// a learned model finds them from data instead.
#[derive(Debug, Clone)]
pub struct MazeCoarseModel {
    maze: Arc<Maze>,
    reach: f64,
}

impl MazeCoarseModel {
    /// Displacements of up to `reach` cells a step in `maze`.
    pub fn new(maze: Arc<Maze>, reach: f64) -> Self {
        Self { maze, reach }
    }
}

impl WorldModel for MazeCoarseModel {
    fn state_dim(&self) -> usize {
        2
    }
    fn action_dim(&self) -> usize {
        2
    }
    fn predict(&self, states: ArrayView2<'_, f32>, actions: ArrayView2<'_, f32>, mut next: ArrayViewMut2<'_, f32>) -> Result<()> {
        for ((s, a), mut n) in states.rows().into_iter().zip(actions.rows()).zip(next.rows_mut()) {
            let d = [self.reach * f64::from(a[0]).clamp(-1.0, 1.0), self.reach * f64::from(a[1]).clamp(-1.0, 1.0)];
            let p = self.maze.slide([f64::from(s[0]), f64::from(s[1])], d);
            n[0] = p[0] as f32;
            n[1] = p[1] as f32;
        }
        Ok(())
    }
}

/// The configured model of a top planning level in a maze of rooms: the
/// state is the position `[x, y]`; an action picks a direction (the axis
/// of the larger of its two entries and that entry's sign; both under 0.5
/// in size: stay) and moves to the centre of the room a doorway in that
/// direction leads to, or stays where no doorway does. A point in a
/// doorway or a wall belongs to the room nearest it. One step stands for
/// crossing a room; the rooms and doors are given ([`Maze::rooms`]).
#[derive(Debug, Clone)]
pub struct MazeRoomsModel {
    /// Room of each cell (`usize::MAX`: none).
    room_of: Vec<usize>,
    cols: usize,
    rows: usize,
    centres: Vec<[f64; 2]>,
    /// `next[room][direction]`: the room a doorway leads to (directions
    /// +x, -x, +y, -y).
    next: Vec<[Option<usize>; 4]>,
    wall: Vec<bool>,
}

impl MazeRoomsModel {
    /// The room graph of `maze`; an error when it has fewer than two
    /// rooms.
    pub fn new(maze: &Maze) -> std::result::Result<Self, String> {
        let rooms = maze.rooms();
        if rooms.len() < 2 {
            return Err(format!("maze `{}` has {} room(s): a room-level model needs at least two", maze.name(), rooms.len()));
        }
        let (rows, cols) = (maze.rows(), maze.cols());
        let mut room_of = vec![usize::MAX; rows * cols];
        let mut centres = Vec::new();
        for (i, cells) in rooms.iter().enumerate() {
            let mut c = [0.0, 0.0];
            for &(r, col) in cells {
                room_of[r * cols + col] = i;
                let p = maze.cell_center(r, col);
                c[0] += p[0];
                c[1] += p[1];
            }
            centres.push([c[0] / cells.len() as f64, c[1] / cells.len() as f64]);
        }
        let next = vec![[None; 4]; rooms.len()];
        let mut model =
            Self { room_of, cols, rows, centres, next, wall: (0..rows * cols).map(|i| maze.is_wall_cell((i / cols) as i64, (i % cols) as i64)).collect() };
        for (a, cells) in rooms.iter().enumerate() {
            for &(r, c) in cells {
                for d in 0..4 {
                    if let Some(b) = model.walk(r as i64, c as i64, d).filter(|&b| b != a) {
                        model.next[a][d] = Some(b);
                    }
                }
            }
        }
        Ok(model)
    }
    fn is_wall(&self, r: i64, c: i64) -> bool {
        r < 0 || c < 0 || r >= self.rows as i64 || c >= self.cols as i64 || self.wall[r as usize * self.cols + c as usize]
    }
    fn room_at(&self, r: i64, c: i64) -> Option<usize> {
        if self.is_wall(r, c) {
            return None;
        }
        let id = self.room_of[r as usize * self.cols + c as usize];
        (id != usize::MAX).then_some(id)
    }
    /// From cell (`r`, `c`) one cell in direction `d` (+x, -x, +y: up a
    /// row, -y) and on through
    /// doorway cells: the room reached, if any.
    fn walk(&self, r: i64, c: i64, d: usize) -> Option<usize> {
        const STEPS: [(i64, i64); 4] = [(0, 1), (0, -1), (-1, 0), (1, 0)];
        let (dr, dc) = STEPS[d];
        let (mut rr, mut cc) = (r + dr, c + dc);
        let mut through = 0;
        while !self.is_wall(rr, cc) && self.room_at(rr, cc).is_none() && through <= self.rows.max(self.cols) {
            rr += dr;
            cc += dc;
            through += 1;
        }
        // Only through a doorway from a room; from a doorway cell, to the
        // first room that way.
        (through > 0 || self.room_at(r, c).is_none()).then(|| self.room_at(rr, cc)).flatten()
    }
    /// The room of the point `p`: its cell's, or the nearest room cell's.
    fn room(&self, p: [f64; 2]) -> usize {
        let (c, r) = (p[0].floor() as i64, self.rows as i64 - 1 - p[1].floor() as i64);
        if r >= 0 && c >= 0 && (r as usize) < self.rows && (c as usize) < self.cols {
            let id = self.room_of[r as usize * self.cols + c as usize];
            if id != usize::MAX {
                return id;
            }
        }
        let mut best = (f64::INFINITY, 0);
        for (i, &id) in self.room_of.iter().enumerate() {
            if id != usize::MAX {
                let (rr, cc) = ((i / self.cols) as f64, (i % self.cols) as f64);
                let q = [cc + 0.5, (self.rows - 1) as f64 - rr + 0.5];
                let d = (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2);
                if d < best.0 {
                    best = (d, id);
                }
            }
        }
        best.1
    }
    /// The rooms' centres, in [`Maze::rooms`] order.
    pub fn centres(&self) -> &[[f64; 2]] {
        &self.centres
    }
}

impl WorldModel for MazeRoomsModel {
    fn state_dim(&self) -> usize {
        2
    }
    fn action_dim(&self) -> usize {
        2
    }
    fn predict(&self, states: ArrayView2<'_, f32>, actions: ArrayView2<'_, f32>, mut next: ArrayViewMut2<'_, f32>) -> Result<()> {
        for ((s, a), mut n) in states.rows().into_iter().zip(actions.rows()).zip(next.rows_mut()) {
            let (ax, ay) = (a[0], a[1]);
            let d = if ax.abs().max(ay.abs()) < 0.5 {
                None
            } else if ax.abs() >= ay.abs() {
                Some(if ax > 0.0 { 0 } else { 1 })
            } else {
                Some(if ay > 0.0 { 2 } else { 3 })
            };
            n.assign(&s);
            if let Some(d) = d {
                let p = [f64::from(s[0]), f64::from(s[1])];
                let (c, r) = (p[0].floor() as i64, self.rows as i64 - 1 - p[1].floor() as i64);
                // In a doorway: on to the room that way; in a room (or a
                // wall, by rounding): through the room's doorway that way.
                let to = if !self.is_wall(r, c) && self.room_at(r, c).is_none() { self.walk(r, c, d) } else { self.next[self.room(p)][d] };
                if let Some(b) = to {
                    n[0] = self.centres[b][0] as f32;
                    n[1] = self.centres[b][1] as f32;
                }
            }
        }
        Ok(())
    }
}

/// The maze's cost: squared distance of the position to the goal (the
/// goal set on the cost) plus a small force penalty.
pub fn cost() -> Cost {
    let mut c = Cost::new();
    // A fresh cost has no terms, so the names are free.
    let _ = c.add_intrinsic(Arc::new(QuadraticCost::new("goal", vec![1.0, 1.0, 0.0, 0.0], vec![0.01, 0.01])), 1.0);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u_maze() -> Arc<Maze> {
        Arc::new(Maze::builtin("u-maze").unwrap())
    }

    #[test]
    fn the_builtin_mazes_parse_with_their_coordinates() {
        for (name, _) in BUILTIN {
            let m = Maze::builtin(name).unwrap();
            assert!(m.rows() >= 5 && m.cols() >= 5, "{name}");
            // The border is wall all round.
            for c in 0..m.cols() as i64 {
                assert!(m.is_wall_cell(0, c) && m.is_wall_cell(m.rows() as i64 - 1, c), "{name}");
            }
        }
        let m = Maze::parse("###\n#..\n###\n", "t").unwrap();
        // Row 1 (the middle one) covers y in [1, 2]; column 1 x in [1, 2].
        assert!(m.is_free(1.5, 1.5) && m.is_free(2.9, 1.1));
        assert!(!m.is_free(0.5, 1.5) && !m.is_free(1.5, 2.5) && !m.is_free(3.1, 1.5), "outside the grid is wall");
        assert_eq!(m.cell_center(1, 2), [2.5, 1.5]);
    }

    #[test]
    fn bad_maze_text_is_refused_with_its_place() {
        let e = Maze::parse("###\n#x#\n###", "m.txt").unwrap_err().to_string();
        assert_eq!(e, "m.txt:2:2: `x` is not a maze cell (`#` wall, `.` free)");
        let e = Maze::parse("###\n#.\n###", "m.txt").unwrap_err().to_string();
        assert_eq!(e, "m.txt:2: a row of 2 cells, the first row has 3");
        assert_eq!(Maze::parse("\n\n", "m.txt").unwrap_err().to_string(), "m.txt: no rows");
        assert_eq!(Maze::parse("##\n##", "m.txt").unwrap_err().to_string(), "m.txt: no free cell");
    }

    #[test]
    fn walls_stop_the_point_and_zero_its_velocity() {
        let m = u_maze();
        // Pushing left from the first free cell of the bottom corridor.
        let [x, y] = m.cell_center(3, 1);
        let mut s = [x, y, 0.0, 0.0];
        for _ in 0..200 {
            s = m.step(s, [-1.0, 0.0]);
            assert!(m.is_free(s[0], s[1]));
        }
        assert!((1.0..1.1).contains(&s[0]) && s[2].abs() <= 0.1 + 1e-12, "against the wall at x = 1: {s:?}");
        // Up into the wall above the corridor.
        for _ in 0..200 {
            s = m.step(s, [0.0, 1.0]);
        }
        assert!(s[1] < 2.0 && m.is_free(s[0], s[1]), "{s:?}");
        // The top speed is 1 cell/s.
        let mut free = [m.cell_center(1, 1)[0], m.cell_center(1, 1)[1], 0.0, 0.0];
        for _ in 0..30 {
            free = m.step(free, [1.0, 0.0]);
        }
        assert!(free[2] <= 1.0 && free[2] > 0.9, "{free:?}");
    }

    #[test]
    fn an_episode_terminates_at_the_goal_and_the_model_predicts_the_env() {
        let m = u_maze();
        let (start, goal) = (m.cell_center(3, 1), m.cell_center(3, 3));
        let mut env = MazeEnv::new(m.clone(), start, goal, 400).unwrap();
        let model = MazeModel::new(m.clone());
        let mut obs = env.reset(0).unwrap();
        let mut steps = 0;
        loop {
            let a = ndarray::array![1.0f32, 0.0];
            let mut pred = ndarray::Array2::zeros((1, 4));
            model.predict(obs.view().insert_axis(ndarray::Axis(0)), a.view().insert_axis(ndarray::Axis(0)), pred.view_mut()).unwrap();
            let step = env.step(a.view()).unwrap();
            for (p, o) in pred.row(0).iter().zip(&step.observation) {
                assert!((p - o).abs() < 1e-5, "{p} vs {o}");
            }
            steps += 1;
            obs = step.observation;
            if step.terminated {
                assert!(env.at_goal() && step.reward > -SUCCESS_RADIUS);
                break;
            }
            assert!(!step.truncated && steps < 400, "never reached the goal in the same corridor");
        }
        let err = MazeEnv::new(m.clone(), [0.5, 0.5], goal, 400).unwrap_err();
        assert!(err.contains("start (0.5, 0.5) is not in a free cell of maze `u-maze`"), "{err}");
    }

    #[test]
    fn the_room_model_moves_through_doors_only() {
        let m = Maze::builtin("four-rooms").unwrap();
        let model = MazeRoomsModel::new(&m).unwrap();
        let c = model.centres().to_vec();
        assert_eq!(c.len(), 4);
        // Rooms in reading order of their first cell: top-left, top-right,
        // bottom-left, bottom-right.
        let (tl, tr, bl, br) = (c[0], c[1], c[2], c[3]);
        assert!(tl[0] < tr[0] && tl[1] > bl[1] && br[0] > bl[0] && br[1] < tr[1], "{c:?}");
        let step = |p: [f64; 2], a: [f32; 2]| {
            let s = ndarray::array![[p[0] as f32, p[1] as f32]];
            let mut n = ndarray::Array2::zeros((1, 2));
            model.predict(s.view(), ndarray::array![[a[0], a[1]]].view(), n.view_mut()).unwrap();
            [f64::from(n[[0, 0]]), f64::from(n[[0, 1]])]
        };
        let close = |a: [f64; 2], b: [f64; 2]| (a[0] - b[0]).abs() < 1e-5 && (a[1] - b[1]).abs() < 1e-5;
        let start = [2.5, 10.5];
        assert!(close(step(start, [1.0, 0.2]), tr), "east through the door");
        assert!(close(step(start, [0.0, -0.9]), bl), "south through the door");
        assert!(close(step(start, [0.0, 1.0]), start), "north is the outer wall: stay");
        assert!(close(step(start, [0.1, 0.2]), start), "small actions stay");
        assert!(close(step(tr, [0.0, -1.0]), br) && close(step(bl, [1.0, 0.0]), br));
        // In a doorway (row 3, column 6: x 6.5, y 9.5) each way leads to
        // the room on that side.
        assert!(close(step([6.5, 9.5], [-1.0, 0.0]), tl) && close(step([6.5, 9.5], [1.0, 0.0]), tr));
        assert!(MazeRoomsModel::new(&Maze::parse("#####\n#...#\n#####\n", "one").unwrap()).is_err(), "one room");
    }

    #[test]
    fn sliding_stops_at_walls_on_each_axis() {
        let m = Maze::builtin("four-rooms").unwrap();
        // From the top-left room's middle 10 cells east: stopped at the wall
        // (x = 6) unless in the doorway row.
        let p = m.slide([3.5, 10.5], [10.0, 0.0]);
        assert!(p[0] < 6.0 && p[0] > 5.8 && p[1] == 10.5, "{p:?}");
        let q = m.slide([3.5, 9.5], [6.0, 0.0]);
        assert!((q[0] - 9.5).abs() < 1e-9, "through the doorway at y 9.5: {q:?}");
    }
}
