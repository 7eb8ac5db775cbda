//! Regression targets for a critic `V(s)`, the discounted intrinsic cost
//! still to come from state `s` (paper §3.2-3.3): n-step returns and
//! TD(lambda) returns over recorded transitions, bootstrapped from a value
//! estimate of the next states (a target network's).
//!
//! How an episode ended matters. After a **terminal** transition (the task
//! ended: the pole fell, the goal was reached) no cost comes any more, so
//! nothing is bootstrapped past it. After a **truncated** one (a time limit
//! cut the episode) the future would have gone on: the target bootstraps
//! from the value of the state the cut left, and never runs into the next
//! episode's transitions.

use ami_core::error::{CoreError, Result};

/// How transition `t` (from `s_t` to `s_{t+1}`) relates to the next one in
/// the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The next transition starts from `s_{t+1}`.
    Continues,
    /// `s_{t+1}` is terminal: no cost after it (its value is 0).
    Terminated,
    /// The episode was cut after this transition: `s_{t+1}` has a value,
    /// but the next transition (if any) belongs to another episode.
    Truncated,
}

fn check(costs: &[f32], next_values: &[f32], ends: &[End], discount: f32) -> Result<()> {
    if next_values.len() != costs.len() || ends.len() != costs.len() {
        return Err(CoreError::shape(
            "critic targets",
            format!("{} next-state values and ends (one per cost)", costs.len()),
            format!("{} and {}", next_values.len(), ends.len()),
        ));
    }
    if !(0.0..=1.0).contains(&discount) {
        return Err(CoreError::config("discount", format!("must be in [0, 1], found {discount}")));
    }
    Ok(())
}

/// n-step targets: for each transition `t`,
/// `sum_{k<m} discount^k c_{t+k} + discount^m V(s_{t+m})`, where the sum
/// stops early at the end of the episode (`m` < `n`): with no bootstrap
/// after a terminal transition, and bootstrapping from the value after a
/// truncated one or after the last transition of the sequence.
/// `next_values[t]` is `V(s_{t+1})` (ignored after terminal transitions).
pub fn n_step(costs: &[f32], next_values: &[f32], ends: &[End], discount: f32, n: usize) -> Result<Vec<f32>> {
    check(costs, next_values, ends, discount)?;
    if n == 0 {
        return Err(CoreError::config("n_step", "must be at least 1"));
    }
    let len = costs.len();
    let mut out = Vec::with_capacity(len);
    for t in 0..len {
        let (mut g, mut scale) = (0.0f64, 1.0f64);
        let mut k = t;
        loop {
            g += scale * f64::from(costs[k]);
            scale *= f64::from(discount);
            let steps = k + 1 - t;
            match ends[k] {
                End::Terminated => break,
                End::Truncated => {
                    g += scale * f64::from(next_values[k]);
                    break;
                }
                End::Continues if steps == n || k + 1 == len => {
                    g += scale * f64::from(next_values[k]);
                    break;
                }
                End::Continues => k += 1,
            }
        }
        out.push(g as f32);
    }
    Ok(out)
}

/// TD(lambda) targets by the backward recursion
/// `G_t = c_t + discount ((1 - lambda) V(s_{t+1}) + lambda G_{t+1})`,
/// with `G_t = c_t` after a terminal transition and
/// `G_t = c_t + discount V(s_{t+1})` after a truncated one or at the end of
/// the sequence. `lambda = 0` gives one-step TD targets, `lambda = 1` the
/// Monte-Carlo return (bootstrapped only at cuts).
pub fn td_lambda(costs: &[f32], next_values: &[f32], ends: &[End], discount: f32, lambda: f32) -> Result<Vec<f32>> {
    check(costs, next_values, ends, discount)?;
    if !(0.0..=1.0).contains(&lambda) {
        return Err(CoreError::config("lambda", format!("must be in [0, 1], found {lambda}")));
    }
    let (d, l) = (f64::from(discount), f64::from(lambda));
    let mut out = vec![0.0f32; costs.len()];
    let mut next_g = 0.0f64;
    for t in (0..costs.len()).rev() {
        let c = f64::from(costs[t]);
        let v = f64::from(next_values[t]);
        let g = match ends[t] {
            End::Terminated => c,
            End::Truncated => c + d * v,
            End::Continues if t + 1 == costs.len() => c + d * v,
            End::Continues => c + d * ((1.0 - l) * v + l * next_g),
        };
        out[t] = g as f32;
        next_g = g;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use End::*;

    fn close(a: &[f32], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((f64::from(*x) - y).abs() < 1e-5, "{a:?} vs {b:?}");
        }
    }

    // Two episodes: the first ends terminally after 3 transitions, the
    // second is cut by a time limit after 2.
    const C: [f32; 5] = [1.0, 2.0, 3.0, 4.0, 5.0];
    const V: [f32; 5] = [10.0, 20.0, 30.0, 40.0, 50.0];
    const E: [End; 5] = [Continues, Continues, Terminated, Continues, Truncated];

    #[test]
    fn n_step_targets_by_hand() {
        let g = 0.5f64;
        // n = 2: t0 = 1 + g 2 + g^2 V(s_2) (= 20); t1 = 2 + g 3 (terminal: no
        // bootstrap); t2 = 3; t3 = 4 + g 5 + g^2 V4 (truncated: bootstrap
        // from V(s_5) = 50); t4 = 5 + g 50.
        close(&n_step(&C, &V, &E, 0.5, 2).unwrap(), &[1.0 + g * 2.0 + g * g * 20.0, 2.0 + g * 3.0, 3.0, 4.0 + g * 5.0 + g * g * 50.0, 5.0 + g * 50.0]);
        // n = 1 is one-step TD: c_t + g V(s_{t+1}), nothing after a terminal.
        close(&n_step(&C, &V, &E, 0.5, 1).unwrap(), &[1.0 + g * 10.0, 2.0 + g * 20.0, 3.0, 4.0 + g * 40.0, 5.0 + g * 50.0]);
        // A long n runs to each episode's end and never into the next.
        close(&n_step(&C, &V, &E, 0.5, 10).unwrap(), &[1.0 + g * 2.0 + g * g * 3.0, 2.0 + g * 3.0, 3.0, 4.0 + g * 5.0 + g * g * 50.0, 5.0 + g * 50.0]);
    }

    #[test]
    fn td_lambda_targets_by_hand_and_its_limits() {
        let (g, l) = (0.5f64, 0.5f64);
        // Backward: t4 = 5 + g 50 (truncated); t3 = 4 + g ((1 - l) 40 + l t4);
        // t2 = 3 (terminal); t1 = 2 + g ((1 - l) 20 + l t2); t0 = 1 + g ((1 - l) 10 + l t1).
        let t4 = 5.0 + g * 50.0;
        let t3 = 4.0 + g * ((1.0 - l) * 40.0 + l * t4);
        let t2 = 3.0;
        let t1 = 2.0 + g * ((1.0 - l) * 20.0 + l * t2);
        let t0 = 1.0 + g * ((1.0 - l) * 10.0 + l * t1);
        close(&td_lambda(&C, &V, &E, 0.5, 0.5).unwrap(), &[t0, t1, t2, t3, t4]);
        // lambda = 0 is one-step TD, lambda = 1 the return to each episode's end.
        assert_eq!(td_lambda(&C, &V, &E, 0.5, 0.0).unwrap(), n_step(&C, &V, &E, 0.5, 1).unwrap());
        close(&td_lambda(&C, &V, &E, 0.5, 1.0).unwrap(), &[1.0 + g * 2.0 + g * g * 3.0, 2.0 + g * 3.0, 3.0, 4.0 + g * 5.0 + g * g * 50.0, 5.0 + g * 50.0]);
    }

    #[test]
    fn terminated_and_truncated_differ_only_in_the_bootstrap() {
        let term = n_step(&[1.0], &[100.0], &[Terminated], 0.9, 3).unwrap();
        let trunc = n_step(&[1.0], &[100.0], &[Truncated], 0.9, 3).unwrap();
        assert_eq!(term, vec![1.0]);
        assert!((trunc[0] - 91.0).abs() < 1e-4, "{trunc:?}");
    }

    #[test]
    fn bad_inputs_are_errors_that_name_them() {
        let err = n_step(&C, &V[..4], &E, 0.5, 2).unwrap_err().to_string();
        assert!(err.contains("critic targets"), "{err}");
        assert!(n_step(&C, &V, &E, 0.5, 0).unwrap_err().to_string().contains("n_step"));
        assert!(td_lambda(&C, &V, &E, 1.5, 0.5).unwrap_err().to_string().contains("discount"));
        assert!(td_lambda(&C, &V, &E, 0.5, -0.1).unwrap_err().to_string().contains("lambda"));
    }
}
