//! Where non-finite values came from: a per-module tally the planners fill
//! while evaluating and return in their plan. It depends on nothing else in
//! the crate, so errors ([`crate::CoreError::NonFinite`]) and the cost
//! contract can both name it.

use ndarray::{ArrayView1, ArrayView2};

/// For each row, whether any of `arrays` (same row count) has a NaN or
/// infinite entry in it.
pub fn non_finite_rows(arrays: &[ArrayView2<'_, f32>]) -> Vec<bool> {
    let rows = arrays.first().map_or(0, |a| a.nrows());
    (0..rows).map(|r| arrays.iter().any(|a| a.ncols() > 0 && a.row(r).iter().any(|v| !v.is_finite()))).collect()
}

/// Marks the rows of `out` that are non-finite and not yet in `blamed`,
/// returning how many there were.
pub fn blame(blamed: &mut [bool], out: ArrayView1<'_, f32>) -> u64 {
    let mut n = 0;
    for (b, v) in blamed.iter_mut().zip(out.iter()) {
        if !*b && !v.is_finite() {
            *b = true;
            n += 1;
        }
    }
    n
}

/// Where the non-finite values (NaN, inf) a planner met came from: for each
/// module, the rows of a batch in which its output first became
/// non-finite. Planners fill it while evaluating ([`crate::Cost::step_energy_tallied`]
/// and the rollouts) and return it in their plan; the actor warns naming
/// the modules and `ami run --json` counts them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NonFiniteTally {
    /// `(module, rows)`, in the order first met: `world model`,
    /// ``cost term `goal` ``, ``critic `v` ``.
    pub modules: Vec<(String, u64)>,
}

impl NonFiniteTally {
    /// Counts `rows` more for the module `name()` names (nothing when 0).
    pub fn add(&mut self, name: impl FnOnce() -> String, rows: u64) {
        if rows == 0 {
            return;
        }
        let name = name();
        match self.modules.iter_mut().find(|(m, _)| *m == name) {
            Some((_, n)) => *n += rows,
            None => self.modules.push((name, rows)),
        }
    }
    /// Adds another tally's counts.
    pub fn merge(&mut self, other: &NonFiniteTally) {
        for (m, n) in &other.modules {
            self.add(|| m.clone(), *n);
        }
    }
    /// What was counted since `before` (an earlier copy of this tally).
    pub fn since(&self, before: &NonFiniteTally) -> NonFiniteTally {
        let mut out = NonFiniteTally::default();
        for (m, n) in &self.modules {
            let old = before.modules.iter().find(|(b, _)| b == m).map_or(0, |(_, k)| *k);
            out.add(|| m.clone(), n.saturating_sub(old));
        }
        out
    }
    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }
    /// Rows counted, over every module.
    pub fn total(&self) -> u64 {
        self.modules.iter().map(|(_, n)| n).sum()
    }
    /// ``the world model (12 rows), cost term `goal` (3 rows)``, or
    /// `the world model or cost` when nothing was counted.
    pub fn describe(&self) -> String {
        if self.modules.is_empty() {
            return "the world model or cost".into();
        }
        self.modules.iter().map(|(m, n)| format!("{m} ({n} row{})", if *n == 1 { "" } else { "s" })).collect::<Vec<_>>().join(", ")
    }
}
