//! Where the data is: the cells of an abstract state space that the
//! agent's experience visited, and a cost term that prices planned steps
//! which leave them.
//!
//! A model learned from exploration is only right where there was data:
//! elsewhere it extrapolates, and a planner exploits every error in its
//! favour (a learned maze model that blurs a thin wall lets the plan walk
//! through it). Offline model-based RL meets this with pessimism about
//! unknown states (MOReL's halting states, MOPO's uncertainty penalty).
//! [`SupportCost`] is the simplest such penalty and needs no second model:
//! a planned step is priced by the fraction of its segment that runs
//! through cells no recorded state ever occupied. Walls are learned too:
//! the agent was never inside one.

use std::sync::Arc;

use ami_core::error::{CoreError, Result};
use ami_core::modules::{CostContext, IntrinsicCost, ShortTermMemory};
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1};

/// The index of the cell of side `cell` holding `v`; `None` for a value
/// that is not finite or lies beyond 1e15 cells (no visited cell is there).
fn cell_index(v: f32, cell: f32) -> Option<i64> {
    let k = (f64::from(v) / f64::from(cell)).floor();
    (k.is_finite() && k.abs() < 1e15).then_some(k as i64)
}

/// The most cells a [`Support`] grid may have (one bit each: 32 MiB).
pub const MAX_CELLS: u64 = 1 << 28;

/// The visited cells of a grid of side `cell` over a `dim`-wide space: a
/// bit per cell of the box round the points (one empty cell of margin on
/// every side).
#[derive(Debug, Clone, PartialEq)]
pub struct Support {
    cell: f32,
    /// Index of the box's first cell along each axis.
    lo: Vec<i64>,
    /// Cells along each axis.
    shape: Vec<usize>,
    bits: Vec<u64>,
    visited: usize,
}

impl Support {
    /// The cells holding any of `points` (each `dim` wide; non-finite
    /// points are skipped).
    pub fn from_points<'a>(dim: usize, cell: f32, points: impl Iterator<Item = ArrayView1<'a, f32>> + Clone) -> Result<Self> {
        if !(cell.is_finite() && cell > 0.0) {
            return Err(CoreError::config("support_cell", format!("must be finite and above 0, got {cell}")));
        }
        if dim == 0 {
            return Err(CoreError::config("dims", "a support needs at least one coordinate"));
        }
        let key = |p: &ArrayView1<'_, f32>| -> Option<Vec<i64>> { p.iter().map(|&v| cell_index(v, cell)).collect() };
        let (mut lo, mut hi) = (vec![i64::MAX; dim], vec![i64::MIN; dim]);
        for p in points.clone() {
            if p.len() != dim {
                return Err(CoreError::shape("Support::from_points", format!("points {dim} wide"), format!("a point {} wide", p.len())));
            }
            if let Some(k) = key(&p) {
                for (d, &v) in k.iter().enumerate() {
                    lo[d] = lo[d].min(v - 1);
                    hi[d] = hi[d].max(v + 1);
                }
            }
        }
        if lo[0] > hi[0] {
            // No finite point: an empty support (every step is outside).
            return Ok(Self { cell, lo: vec![0; dim], shape: vec![0; dim], bits: Vec::new(), visited: 0 });
        }
        let shape: Vec<usize> = lo.iter().zip(&hi).map(|(&l, &h)| (h - l + 1) as usize).collect();
        let cells = shape.iter().try_fold(1u64, |acc, &n| acc.checked_mul(n as u64)).filter(|&n| n <= MAX_CELLS).ok_or_else(|| {
            CoreError::config("support_cell", format!("the visited states span {shape:?} cells of side {cell}, more than {MAX_CELLS}: use larger cells"))
        })?;
        let mut s = Self { cell, lo, shape, bits: vec![0; cells.div_ceil(64) as usize], visited: 0 };
        for p in points {
            if let Some(i) = key(&p).and_then(|k| s.index(&k)) {
                if s.bits[i / 64] & (1 << (i % 64)) == 0 {
                    s.bits[i / 64] |= 1 << (i % 64);
                    s.visited += 1;
                }
            }
        }
        Ok(s)
    }

    /// The cells of the coordinates `dims` of every state and next state
    /// among a memory's real (not imagined) transitions.
    pub fn from_memory(memory: &dyn ShortTermMemory, dims: &[usize], cell: f32) -> Result<Self> {
        if let Some(&d) = dims.iter().find(|&&d| d >= memory.state_dim()) {
            return Err(CoreError::config("dims", format!("coordinate {d} is outside the memory's states (width {})", memory.state_dim())));
        }
        let mut pts = Vec::with_capacity(2 * memory.len() * dims.len());
        for t in (0..memory.len()).filter_map(|i| memory.get(i)).filter(|t| !t.imagined) {
            pts.extend(dims.iter().map(|&d| t.state[d]));
            pts.extend(dims.iter().map(|&d| t.next_state[d]));
        }
        let n = pts.len() / dims.len().max(1);
        let view = ArrayView2::from_shape((n, dims.len()), &pts).map_err(|e| CoreError::shape("Support::from_memory", "rows", e.to_string()))?;
        Self::from_points(dims.len(), cell, view.rows().into_iter())
    }

    fn index(&self, key: &[i64]) -> Option<usize> {
        let mut i = 0usize;
        for ((&k, &l), &n) in key.iter().zip(&self.lo).zip(&self.shape) {
            let j = k.checked_sub(l)?;
            if j < 0 || j as usize >= n {
                return None;
            }
            i = i * n + j as usize;
        }
        Some(i)
    }

    /// Whether the cell holding `p` was visited.
    pub fn contains(&self, p: &[f32]) -> bool {
        if p.len() != self.shape.len() {
            return false;
        }
        let Some(key) = p.iter().map(|&v| cell_index(v, self.cell)).collect::<Option<Vec<i64>>>() else { return false };
        self.index(&key).is_some_and(|i| self.bits[i / 64] & (1 << (i % 64)) != 0)
    }

    /// Visited cells.
    pub fn visited(&self) -> usize {
        self.visited
    }
    /// The cells' side.
    pub fn cell(&self) -> f32 {
        self.cell
    }
    /// The coordinates' count.
    pub fn dim(&self) -> usize {
        self.shape.len()
    }

    /// The fraction of the segment from `a` to `b` outside the support,
    /// sampled every half cell (its start excluded: a plan starts where
    /// the agent is).
    pub fn outside(&self, a: ArrayView1<'_, f32>, b: ArrayView1<'_, f32>) -> f32 {
        let len = a.iter().zip(b.iter()).map(|(x, y)| (y - x).abs()).fold(0.0f32, f32::max);
        let n = ((2.0 * len / self.cell).ceil() as usize).clamp(1, 4096);
        let mut p = vec![0.0f32; a.len()];
        let mut out = 0;
        for i in 1..=n {
            let t = i as f32 / n as f32;
            for ((q, &x), &y) in p.iter_mut().zip(a.iter()).zip(b.iter()) {
                *q = x + t * (y - x);
            }
            if !self.contains(&p) {
                out += 1;
            }
        }
        out as f32 / n as f32
    }
}

/// The cost term of a [`Support`]: each step costs `weight` times the
/// fraction of its segment outside the visited cells (see the module
/// docs). Piecewise constant: it has no gradient, so only sampling
/// planners (cem, mppi, the discrete ones) see it.
#[derive(Debug, Clone)]
pub struct SupportCost {
    support: Arc<Support>,
}

impl SupportCost {
    /// The term over `support`.
    pub fn new(support: Arc<Support>) -> Self {
        Self { support }
    }
    /// Its support.
    pub fn support(&self) -> &Support {
        &self.support
    }
}

impl IntrinsicCost for SupportCost {
    fn name(&self) -> &str {
        "support"
    }
    fn add_cost(
        &self,
        _ctx: &CostContext<'_>,
        weight: f32,
        states: ArrayView2<'_, f32>,
        _actions: ArrayView2<'_, f32>,
        next_states: ArrayView2<'_, f32>,
        mut out: ArrayViewMut1<'_, f32>,
    ) -> Result<()> {
        for ((o, a), b) in out.iter_mut().zip(states.rows()).zip(next_states.rows()) {
            *o += weight * self.support.outside(a, b);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array1, Array2};

    #[test]
    fn cells_are_visited_where_points_fell_and_nowhere_else() {
        let pts = array![[0.1f32, 0.1], [0.3, 0.1], [2.9, -1.2], [f32::NAN, 0.0]];
        let s = Support::from_points(2, 0.5, pts.rows().into_iter()).unwrap();
        assert_eq!(s.visited(), 2, "[0.1, 0.1] and [0.3, 0.1] share a cell");
        assert!(s.contains(&[0.45, 0.0]));
        assert!(s.contains(&[2.6, -1.4]));
        assert!(!s.contains(&[0.6, 0.1]), "the next cell");
        assert!(!s.contains(&[-0.1, 0.1]), "below zero: the margin");
        assert!(!s.contains(&[100.0, 0.0]), "outside the box");
        assert!(!s.contains(&[0.1, f32::NAN]));
    }

    #[test]
    fn a_step_costs_the_fraction_of_its_segment_outside() {
        // A row of visited cells from x = 0 to 1 and from 2 to 3 (side 0.5):
        // a gap (a wall) from 1 to 2.
        let xs: Vec<f32> = [0.25f32, 0.75, 2.25, 2.75].to_vec();
        let pts = Array2::from_shape_fn((4, 1), |(i, _)| xs[i]);
        let s = Arc::new(Support::from_points(1, 0.5, pts.rows().into_iter()).unwrap());
        let cost = SupportCost::new(s);
        let (a, b) = (array![[0.5f32], [0.5], [0.5]], array![[0.9f32], [2.5], [5.0]]);
        let mut out = Array1::zeros(3);
        let ctx = CostContext { goal: None, subgoal: None, step: 0 };
        cost.add_cost(&ctx, 10.0, a.view(), Array2::zeros((3, 1)).view(), b.view(), out.view_mut()).unwrap();
        assert_eq!(out[0], 0.0, "inside");
        // From 0.5 to 2.5 in steps of 0.25: 1.0, 1.25, 1.5, 1.75 of 8 are in the gap.
        assert!((out[1] - 10.0 * 4.0 / 8.0).abs() < 1e-5, "{out}");
        // Beyond the data entirely from 3.0.
        assert!(out[2] > 10.0 * 0.6, "{out}");
    }

    #[test]
    fn huge_and_odd_points_are_outside_and_never_overflow() {
        let pts = array![[0.1f32, 0.1], [1e30, -1e30], [f32::INFINITY, 0.0]];
        let s = Support::from_points(2, 0.25, pts.rows().into_iter()).unwrap();
        assert_eq!(s.visited(), 1, "only the point within reach of the grid");
        for p in [[1e30f32, 0.0], [-1e30, 1e30], [3e38, 3e38], [f32::NAN, 0.1]] {
            assert!(!s.contains(&p), "{p:?}");
        }
        assert!(!s.contains(&[0.1]), "a point of the wrong width");
        let tiny = Support::from_points(1, 1e-6, array![[1e20f32]].rows().into_iter()).unwrap();
        assert_eq!(tiny.visited(), 0);
        // An empty memory: an empty support, every step outside.
        let mem = ami_core::modules::RingMemory::new(2, 1, 4).unwrap();
        let empty = Support::from_memory(&mem, &[0, 1], 0.25).unwrap();
        assert_eq!(empty.visited(), 0);
        assert_eq!(empty.outside(array![0.0f32, 0.0].view(), array![1.0f32, 0.0].view()), 1.0);
        let err = Support::from_memory(&mem, &[0, 2], 0.25).unwrap_err().to_string();
        assert!(err.contains("coordinate 2 is outside the memory's states (width 2)"), "{err}");
    }

    #[test]
    fn bad_cells_and_huge_spans_are_refused() {
        let pts = array![[0.0f32, 0.0], [1e6, 1e6]];
        let err = Support::from_points(2, 1e-3, pts.rows().into_iter()).unwrap_err().to_string();
        assert!(err.contains("support_cell") && err.contains("use larger cells"), "{err}");
        let err = Support::from_points(2, 0.0, pts.rows().into_iter()).unwrap_err().to_string();
        assert!(err.contains("support_cell"), "{err}");
    }
}
