//! Input and target normalisation from data statistics.

use ndarray::{Array1, ArrayView2, Axis};

/// Per-column mean and standard deviation of the inputs `[s, a]` and of
/// the targets (the state change `s' - s`). Members see
/// `(x - input_mean) / input_std` and predict `(d - target_mean) /
/// target_std`. A column that does not vary (std below 1e-6) keeps std 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalizer {
    /// Mean of each input column.
    pub input_mean: Array1<f32>,
    /// Standard deviation of each input column.
    pub input_std: Array1<f32>,
    /// Mean of each target column.
    pub target_mean: Array1<f32>,
    /// Standard deviation of each target column.
    pub target_std: Array1<f32>,
}

fn stats(x: ArrayView2<'_, f32>) -> (Array1<f32>, Array1<f32>) {
    let n = x.nrows().max(1) as f64;
    let mut mean = Array1::<f32>::zeros(x.ncols());
    let mut std = Array1::<f32>::ones(x.ncols());
    for (j, col) in x.axis_iter(Axis(1)).enumerate() {
        let m = col.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = col.iter().map(|&v| (f64::from(v) - m).powi(2)).sum::<f64>() / n;
        mean[j] = m as f32;
        let s = var.sqrt();
        std[j] = if s.is_finite() && s >= 1e-6 { s as f32 } else { 1.0 };
    }
    (mean, std)
}

impl Normalizer {
    /// The identity (mean 0, std 1) for `input` and `target` widths.
    pub fn identity(input: usize, target: usize) -> Self {
        Self { input_mean: Array1::zeros(input), input_std: Array1::ones(input), target_mean: Array1::zeros(target), target_std: Array1::ones(target) }
    }
    /// Statistics of `inputs` `[n, S + A]` and `targets` `[n, S]` (in f64).
    pub fn fit(inputs: ArrayView2<'_, f32>, targets: ArrayView2<'_, f32>) -> Self {
        let (input_mean, input_std) = stats(inputs);
        let (target_mean, target_std) = stats(targets);
        Self { input_mean, input_std, target_mean, target_std }
    }
    /// Normalises input rows in place.
    pub fn normalize_inputs(&self, x: &mut ndarray::ArrayViewMut2<'_, f32>) {
        for mut row in x.rows_mut() {
            for ((v, m), s) in row.iter_mut().zip(&self.input_mean).zip(&self.input_std) {
                *v = (*v - m) / s;
            }
        }
    }
    /// Normalises target rows in place.
    pub fn normalize_targets(&self, y: &mut ndarray::ArrayViewMut2<'_, f32>) {
        for mut row in y.rows_mut() {
            for ((v, m), s) in row.iter_mut().zip(&self.target_mean).zip(&self.target_std) {
                *v = (*v - m) / s;
            }
        }
    }
    /// Whether every statistic is finite (and every std positive).
    pub fn is_finite(&self) -> bool {
        let ok = |a: &Array1<f32>| a.iter().all(|v| v.is_finite());
        ok(&self.input_mean) && ok(&self.target_mean) && self.input_std.iter().chain(&self.target_std).all(|&s| s.is_finite() && s > 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn statistics_and_constant_columns() {
        let x = array![[1.0f32, 5.0], [3.0, 5.0]];
        let y = array![[0.0f32], [2.0]];
        let n = Normalizer::fit(x.view(), y.view());
        assert_eq!(n.input_mean, array![2.0, 5.0]);
        assert_eq!(n.input_std, array![1.0, 1.0]); // column 1 is constant: std 1
        assert_eq!(n.target_mean, array![1.0]);
        let mut x2 = x.clone();
        n.normalize_inputs(&mut x2.view_mut());
        assert_eq!(x2, array![[-1.0, 0.0], [1.0, 0.0]]);
        assert!(n.is_finite());
    }
}
