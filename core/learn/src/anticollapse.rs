//! Anti-collapse regularisers for joint-embedding (JEPA) training, with
//! their gradients, and the diagnostics that show a collapse.
//!
//! A JEPA predicts the representation of the next observation, not its
//! pixels; trained on the prediction error alone, the encoder can map
//! every observation to one point and predict it perfectly. A regulariser
//! on a batch of embeddings `Z` (`[n, d]`, one row per sample) keeps them
//! spread:
//!
//! * [`vicreg`] (Bardes, Ponce and LeCun, 2022): a hinge on each
//!   dimension's standard deviation, `v(Z) = (1/d) sum_j max(0, gamma -
//!   sqrt(Var(z_j) + eps))`, and the squared off-diagonal covariances,
//!   `c(Z) = (1/d) sum_{i != j} C_ij^2`, with `C = Xc^T Xc / (n - 1)`.
//! * [`sigreg`] (LeJEPA, Balestriero and LeCun, 2025): along `M` random
//!   unit directions, the Epps-Pulley statistic of the projected
//!   embeddings against a standard normal, `T = N * int |phi_N(t) -
//!   exp(-t^2 / 2)|^2 w(t) dt` with `w(t) = exp(-t^2 / 2)`, by the
//!   trapezoid rule over 17 knots on `[0, 3]` (doubled: the integrand is
//!   even), averaged over the directions. It is zero for embeddings that
//!   look Gaussian in every direction.
//!
//! [`EmbeddingStats`] holds the diagnostics of a batch: each dimension's
//! standard deviation and the effective rank (Roy and Vetterli: the
//! exponential of the entropy of the normalised singular values), which
//! falls to 1 when the embeddings collapse onto a line.

use ami_core::error::{CoreError, Result};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::Rng;

/// The weights and constants of [`vicreg`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VicRegConfig {
    /// Weight of the variance hinge (`mu`; VICReg's 25).
    pub variance: f32,
    /// Weight of the covariance term (`nu`; VICReg's 1).
    pub covariance: f32,
    /// Target standard deviation (`gamma`).
    pub gamma: f32,
    /// Added to each variance under the square root.
    pub eps: f32,
}

impl Default for VicRegConfig {
    fn default() -> Self {
        Self { variance: 25.0, covariance: 1.0, gamma: 1.0, eps: 1e-4 }
    }
}

/// A regulariser's value on a batch and its gradient with respect to the
/// embeddings (`[n, d]`, the batch's shape).
#[derive(Debug, Clone, PartialEq)]
pub struct Regularised {
    /// The weighted loss.
    pub loss: f64,
    /// Its parts, unweighted, in the order the function documents.
    pub parts: Vec<f64>,
    /// `d loss / d Z`.
    pub grad: Array2<f32>,
}

fn check_batch(what: &str, z: &ArrayView2<'_, f32>) -> Result<()> {
    if z.nrows() < 2 || z.ncols() == 0 {
        return Err(CoreError::shape(what, "at least 2 rows and 1 column", format!("{:?}", z.shape())));
    }
    if z.iter().any(|v| !v.is_finite()) {
        return Err(CoreError::config(what, "the embeddings hold a non-finite value"));
    }
    Ok(())
}

/// Centred copy of `z` (f64) and the covariance `Xc^T Xc / (n - 1)`.
fn centred(z: &ArrayView2<'_, f32>) -> (Array2<f64>, Array2<f64>) {
    let x = z.mapv(f64::from);
    let mean = x.mean_axis(Axis(0)).expect("rows");
    let xc = &x - &mean;
    let cov = xc.t().dot(&xc) / (z.nrows() - 1) as f64;
    (xc, cov)
}

/// VICReg's variance and covariance terms of `z` (`[n, d]`, n >= 2):
/// `loss = variance * v(Z) + covariance * c(Z)`, `parts = [v, c]` (see the
/// module docs), and the gradient.
pub fn vicreg(z: ArrayView2<'_, f32>, cfg: &VicRegConfig) -> Result<Regularised> {
    check_batch("vicreg", &z)?;
    let (n, d) = z.dim();
    let (xc, cov) = centred(&z);
    let mut grad = Array2::<f64>::zeros((n, d));
    // Variance hinge: d/dZ_kj of -(1/d) sqrt(var_j + eps) is
    // -(1/d) xc_kj / ((n - 1) std_j) (the centring's term sums to zero).
    let mut v = 0.0;
    for j in 0..d {
        let std = (cov[[j, j]] + f64::from(cfg.eps)).sqrt();
        let gap = f64::from(cfg.gamma) - std;
        if gap > 0.0 {
            v += gap;
            let g = -f64::from(cfg.variance) / (d as f64 * (n - 1) as f64 * std);
            for k in 0..n {
                grad[[k, j]] += g * xc[[k, j]];
            }
        }
    }
    v /= d as f64;
    // Covariance: c = (1/d) sum_{a != b} C_ab^2; dc/dZ = 4 / (d (n - 1)) Xc C_off.
    let mut off = cov.clone();
    for j in 0..d {
        off[[j, j]] = 0.0;
    }
    let c = off.mapv(|x| x * x).sum() / d as f64;
    grad.scaled_add(f64::from(cfg.covariance) * 4.0 / (d as f64 * (n - 1) as f64), &xc.dot(&off));
    Ok(Regularised { loss: f64::from(cfg.variance) * v + f64::from(cfg.covariance) * c, parts: vec![v, c], grad: grad.mapv(|g| g as f32) })
}

/// The settings of [`sigreg`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SigRegConfig {
    /// Random directions (LeJEPA's 256, LeWM's 1,024).
    pub directions: usize,
    /// Knots of the integral on `[0, t_max]` (17).
    pub knots: usize,
    /// The integral's upper end (3).
    pub t_max: f32,
    /// Seed of the directions (fixed: the same directions every call).
    pub seed: u64,
}

impl Default for SigRegConfig {
    fn default() -> Self {
        Self { directions: 256, knots: 17, t_max: 3.0, seed: 0 }
    }
}

/// `M` unit directions in `R^d` (`[d, M]`, columns of unit length), drawn
/// from `seed`.
pub fn directions(d: usize, m: usize, seed: u64) -> Array2<f32> {
    let mut rng = ami_core::rng::rng(seed);
    let mut a = Array2::<f32>::from_shape_fn((d, m), |_| normal(&mut rng));
    for mut col in a.columns_mut() {
        let norm = col.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        col /= norm;
    }
    a
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut impl Rng) -> f32 {
    let u: f64 = rng.gen::<f64>().max(1e-300);
    let v: f64 = rng.gen();
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

/// The knots `t_k` and trapezoid weights `w_k exp(-t_k^2 / 2)` of the
/// Epps-Pulley integral (doubled: over `[-t_max, t_max]`).
fn knots(cfg: &SigRegConfig) -> Vec<(f64, f64)> {
    let k = cfg.knots.max(2);
    let dt = f64::from(cfg.t_max) / (k - 1) as f64;
    (0..k)
        .map(|i| {
            let t = i as f64 * dt;
            let w = if i == 0 || i == k - 1 { dt } else { 2.0 * dt };
            (t, w * (-t * t / 2.0).exp())
        })
        .collect()
}

/// SIGReg of `z` (`[n, d]`) along `cfg.directions` random unit directions
/// (see the module docs): `loss` = the mean Epps-Pulley statistic, `parts`
/// = each direction's statistic, and the gradient.
pub fn sigreg(z: ArrayView2<'_, f32>, cfg: &SigRegConfig) -> Result<Regularised> {
    check_batch("sigreg", &z)?;
    if cfg.directions == 0 || cfg.knots < 2 || !(cfg.t_max.is_finite() && cfg.t_max > 0.0) {
        return Err(CoreError::config("sigreg", format!("needs directions >= 1, knots >= 2 and t_max > 0, got {cfg:?}")));
    }
    let (n, d) = z.dim();
    let a = directions(d, cfg.directions, cfg.seed).mapv(f64::from);
    let x = z.mapv(f64::from).dot(&a); // [n, M]
    let ks = knots(cfg);
    let m = cfg.directions;
    let mut gx = Array2::<f64>::zeros((n, m));
    let mut parts = Vec::with_capacity(m);
    for j in 0..m {
        let col = x.column(j);
        let mut stat = 0.0;
        for &(t, w) in &ks {
            let (mut c, mut s) = (0.0, 0.0);
            for &v in col {
                c += (t * v).cos();
                s += (t * v).sin();
            }
            c /= n as f64;
            s /= n as f64;
            let phi = (-t * t / 2.0).exp();
            stat += w * ((c - phi).powi(2) + s * s);
            // d/dx_i of N w [(c - phi)^2 + s^2] = 2 w t [-(c - phi) sin(t x_i) + s cos(t x_i)].
            for (i, &v) in col.iter().enumerate() {
                gx[[i, j]] += 2.0 * w * t * (-(c - phi) * (t * v).sin() + s * (t * v).cos()) / m as f64;
            }
        }
        parts.push(n as f64 * stat);
    }
    let loss = parts.iter().sum::<f64>() / m as f64;
    Ok(Regularised { loss, parts, grad: gx.dot(&a.t()).mapv(|g| g as f32) })
}

/// The collapse diagnostics of a batch of embeddings.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingStats {
    /// Each dimension's standard deviation (`n - 1` normalised).
    pub std: Array1<f64>,
    /// The effective rank: `exp(H(p))`, `p` the singular values of the
    /// centred batch over their sum (1 when all lie on a line, `d` when
    /// every direction has the same spread).
    pub effective_rank: f64,
}

impl EmbeddingStats {
    /// The diagnostics of `z` (`[n, d]`, n >= 2).
    pub fn of(z: ArrayView2<'_, f32>) -> Result<Self> {
        check_batch("embedding stats", &z)?;
        let (_, cov) = centred(&z);
        let std = cov.diag().mapv(|v| v.max(0.0).sqrt());
        // Singular values of Xc are sqrt((n - 1) * eigenvalues of cov); the
        // factor cancels in p.
        let sv: Vec<f64> = symmetric_eigenvalues(cov).into_iter().map(|l| l.max(0.0).sqrt()).collect();
        let total: f64 = sv.iter().sum();
        let effective_rank = if total > 0.0 {
            let h: f64 = sv.iter().filter(|&&s| s > 0.0).map(|&s| -(s / total) * (s / total).ln()).sum();
            h.exp()
        } else {
            0.0
        };
        Ok(Self { std, effective_rank })
    }
}

/// A linear probe: the ridge regression (`ridge` on the weights, not the
/// bias) from embeddings to targets fitted on `(z_train, y_train)`, and its
/// R^2 on `(z_test, y_test)` (one per target column: 1 - residual variance
/// / variance; 1 is perfect, 0 no better than the mean, below 0 worse).
/// The diagnostic of what a representation encodes (a JEPA's embedding of
/// an image against the agent's true position).
pub fn linear_probe(
    z_train: ArrayView2<'_, f32>,
    y_train: ArrayView2<'_, f32>,
    z_test: ArrayView2<'_, f32>,
    y_test: ArrayView2<'_, f32>,
    ridge: f64,
) -> Result<Vec<f64>> {
    let d = z_train.ncols();
    if z_train.nrows() != y_train.nrows() || z_test.nrows() != y_test.nrows() || z_test.ncols() != d || y_test.ncols() != y_train.ncols() || z_test.nrows() < 2
    {
        return Err(CoreError::shape(
            "linear_probe",
            "train and test rows of embeddings and targets that agree, at least 2 test rows",
            format!("{:?} {:?} {:?} {:?}", z_train.shape(), y_train.shape(), z_test.shape(), y_test.shape()),
        ));
    }
    if !(ridge.is_finite() && ridge >= 0.0) {
        return Err(CoreError::config("ridge", format!("must be finite and at least 0, got {ridge}")));
    }
    LinearProbe::fit(z_train, y_train, ridge)?.r2(z_test, y_test)
}

/// A fitted linear probe: `y = [z, 1] W`, the ridge regression of
/// [`linear_probe`] (`ridge` on the weights, not the bias). Decodes what an
/// embedding encodes, e.g. the position along a planned path of latents.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearProbe {
    /// `[embed + 1, targets]`, the bias last.
    pub weights: Array2<f64>,
}

impl LinearProbe {
    /// Fits the probe from embeddings `z` to targets `y` (rows agree).
    pub fn fit(z: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>, ridge: f64) -> Result<Self> {
        if z.nrows() != y.nrows() || z.nrows() == 0 {
            return Err(CoreError::shape("LinearProbe::fit", "as many embeddings as targets, at least one", format!("{:?} {:?}", z.shape(), y.shape())));
        }
        if !(ridge.is_finite() && ridge >= 0.0) {
            return Err(CoreError::config("ridge", format!("must be finite and at least 0, got {ridge}")));
        }
        let d = z.ncols();
        // [z, 1] features; normal equations (X^T X + ridge I') w = X^T y.
        let x = Self::features(z);
        let mut a = x.t().dot(&x);
        for j in 0..d {
            a[[j, j]] += ridge;
        }
        let b = x.t().dot(&y.mapv(f64::from));
        let weights = solve(a, b).ok_or_else(|| CoreError::config("ridge", "the probe's normal equations are singular: raise `ridge`"))?;
        Ok(Self { weights })
    }
    /// The probe's R^2 on `(z, y)`, one per target column (1 - residual
    /// variance / variance, 0 for a constant column): what
    /// [`linear_probe`] reports, for a probe already fitted.
    pub fn r2(&self, z: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>) -> Result<Vec<f64>> {
        if z.nrows() != y.nrows() || z.ncols() + 1 != self.weights.nrows() || y.ncols() != self.weights.ncols() || z.nrows() < 2 {
            return Err(CoreError::shape(
                "LinearProbe::r2",
                format!("at least 2 rows of {} embedding and {} target columns", self.weights.nrows() - 1, self.weights.ncols()),
                format!("{:?} {:?}", z.shape(), y.shape()),
            ));
        }
        let pred = self.predict(z).mapv(f64::from);
        let y = y.mapv(f64::from);
        Ok((0..y.ncols())
            .map(|k| {
                let col = y.column(k);
                let mean = col.mean().unwrap_or(0.0);
                let tot: f64 = col.iter().map(|v| (v - mean).powi(2)).sum();
                let res: f64 = col.iter().zip(pred.column(k)).map(|(v, p)| (v - p).powi(2)).sum();
                if tot > 0.0 {
                    1.0 - res / tot
                } else {
                    0.0
                }
            })
            .collect())
    }
    /// The decoded targets of embeddings `z` (`[n, targets]`).
    pub fn predict(&self, z: ArrayView2<'_, f32>) -> Array2<f32> {
        Self::features(z).dot(&self.weights).mapv(|v| v as f32)
    }
    fn features(z: ArrayView2<'_, f32>) -> Array2<f64> {
        let d = z.ncols();
        let mut x = Array2::<f64>::ones((z.nrows(), d + 1));
        x.slice_axis_mut(Axis(1), ndarray::Slice::from(..d)).assign(&z.mapv(f64::from));
        x
    }
}

/// Solves `a x = b` (`a` square) by Gaussian elimination with partial
/// pivoting; `None` if singular.
fn solve(mut a: Array2<f64>, mut b: Array2<f64>) -> Option<Array2<f64>> {
    let n = a.nrows();
    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[[i, col]].abs().total_cmp(&a[[j, col]].abs()))?;
        if a[[piv, col]].abs() <= 1e-12 * scale {
            return None;
        }
        if piv != col {
            for k in 0..n {
                a.swap([col, k], [piv, k]);
            }
            for k in 0..b.ncols() {
                b.swap([col, k], [piv, k]);
            }
        }
        for r in col + 1..n {
            let f = a[[r, col]] / a[[col, col]];
            if f == 0.0 {
                continue;
            }
            for k in col..n {
                a[[r, k]] -= f * a[[col, k]];
            }
            for k in 0..b.ncols() {
                b[[r, k]] -= f * b[[col, k]];
            }
        }
    }
    for col in (0..n).rev() {
        for k in 0..b.ncols() {
            let mut v = b[[col, k]];
            for j in col + 1..n {
                v -= a[[col, j]] * b[[j, k]];
            }
            b[[col, k]] = v / a[[col, col]];
        }
    }
    Some(b)
}

/// The eigenvalues of a symmetric matrix, by cyclic Jacobi rotations.
fn symmetric_eigenvalues(mut a: Array2<f64>) -> Vec<f64> {
    let d = a.nrows();
    for _sweep in 0..100 {
        let off: f64 = (0..d).flat_map(|i| (0..d).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[[i, j]].powi(2)).sum();
        let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().max(1e-300);
        if off <= 1e-24 * scale {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                if a[[p, q]].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[[q, q]] - a[[p, p]]) / (2.0 * a[[p, q]]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[[k, p]], a[[k, q]]);
                    a[[k, p]] = c * akp - s * akq;
                    a[[k, q]] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[[p, k]], a[[q, k]]);
                    a[[p, k]] = c * apk - s * aqk;
                    a[[q, k]] = s * apk + c * aqk;
                }
            }
        }
    }
    (0..d).map(|i| a[[i, i]]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Central differences of `f` at `z`, against `grad`.
    fn check_gradient(z: &Array2<f32>, grad: &Array2<f32>, f: impl Fn(&Array2<f32>) -> f64, tol: f64) {
        let h = 1e-3f32;
        for idx in ndarray::indices(z.dim()) {
            let (mut zp, mut zm) = (z.clone(), z.clone());
            zp[idx] += h;
            zm[idx] -= h;
            let num = (f(&zp) - f(&zm)) / (2.0 * f64::from(h));
            let ana = f64::from(grad[idx]);
            assert!((num - ana).abs() <= tol * (1.0 + num.abs()), "{idx:?}: numeric {num}, analytic {ana}");
        }
    }

    #[test]
    fn vicreg_matches_a_hand_computed_batch() {
        // Columns: [0, 0, 0, 2] (var 1, std sqrt(1 + eps)) and [1, 1, 1, 1] (var 0).
        let z = array![[0.0f32, 1.0], [0.0, 1.0], [0.0, 1.0], [2.0, 1.0]];
        let cfg = VicRegConfig { variance: 2.0, covariance: 3.0, gamma: 1.5, eps: 0.0 };
        let r = vicreg(z.view(), &cfg).unwrap();
        // v = ((1.5 - 1) + (1.5 - 0)) / 2 = 1; no covariance (one column is constant).
        assert!((r.parts[0] - 1.0).abs() < 1e-9, "{:?}", r.parts);
        assert!(r.parts[1].abs() < 1e-12);
        assert!((r.loss - 2.0).abs() < 1e-9);
        // Two correlated columns: x = [-1, 1], y = [-2, 2] (n = 2): C_xy = (2 + 2) / 1 = 4; c = 2 * 16 / 2 = 16.
        let z = array![[-1.0f32, -2.0], [1.0, 2.0]];
        let r = vicreg(z.view(), &VicRegConfig { variance: 0.0, covariance: 1.0, gamma: 1.0, eps: 0.0 }).unwrap();
        assert!((r.parts[1] - 16.0).abs() < 1e-9, "{:?}", r.parts);
    }

    #[test]
    fn vicreg_gradient_matches_central_differences() {
        let z = array![[0.3f32, -0.2, 0.1], [0.1, 0.4, -0.3], [-0.2, 0.1, 0.2], [0.05, -0.3, 0.25], [0.4, 0.2, -0.1]];
        let cfg = VicRegConfig::default();
        let r = vicreg(z.view(), &cfg).unwrap();
        check_gradient(&z, &r.grad, |z| vicreg(z.view(), &cfg).unwrap().loss, 2e-3);
    }

    #[test]
    fn sigreg_is_small_for_gaussian_samples_and_large_for_a_collapse() {
        let mut rng = ami_core::rng::rng(7);
        let gauss = Array2::<f32>::from_shape_fn((512, 8), |_| normal(&mut rng));
        let cfg = SigRegConfig { directions: 32, ..SigRegConfig::default() };
        let g = sigreg(gauss.view(), &cfg).unwrap().loss;
        let collapsed = Array2::<f32>::from_elem((512, 8), 0.3);
        let c = sigreg(collapsed.view(), &cfg).unwrap().loss;
        let shrunk = gauss.mapv(|v| 0.05 * v);
        let s = sigreg(shrunk.view(), &cfg).unwrap().loss;
        // Under the null the statistic is of order 1.
        assert!(g < 3.0 && c > 50.0 * g && s > 50.0 * g, "gaussian {g}, collapsed {c}, shrunk {s}");
    }

    #[test]
    fn sigreg_matches_a_hand_computed_statistic() {
        // One dimension, one direction (+-1), two samples at +-a: the
        // empirical characteristic function is cos(t a), real.
        let a = 0.7f64;
        let z = array![[a as f32], [-a as f32]];
        let cfg = SigRegConfig { directions: 1, knots: 3, t_max: 2.0, seed: 0 };
        let r = sigreg(z.view(), &cfg).unwrap();
        // Knots 0, 1, 2 with weights 1, 2, 1 (dt = 1) times exp(-t^2 / 2).
        let term = |t: f64, w: f64| w * (-t * t / 2.0f64).exp() * ((t * a).cos() - (-t * t / 2.0f64).exp()).powi(2);
        let want = 2.0 * (term(0.0, 1.0) + term(1.0, 2.0) + term(2.0, 1.0));
        assert!((r.loss - want).abs() < 1e-6, "{} vs {want}", r.loss);
    }

    #[test]
    fn sigreg_gradient_matches_central_differences() {
        let z = array![[0.3f32, -0.2], [0.1, 0.4], [-0.2, 0.1], [0.9, -0.3], [-0.5, 0.6], [0.2, 0.2]];
        let cfg = SigRegConfig { directions: 5, ..SigRegConfig::default() };
        let r = sigreg(z.view(), &cfg).unwrap();
        check_gradient(&z, &r.grad, |z| sigreg(z.view(), &cfg).unwrap().loss, 2e-3);
    }

    #[test]
    fn effective_rank_counts_the_spread_directions() {
        // Spread equally along two axes of four, nothing along the others.
        let z = array![[1.0f32, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0]];
        let s = EmbeddingStats::of(z.view()).unwrap();
        assert!((s.effective_rank - 2.0).abs() < 1e-6, "{}", s.effective_rank);
        // On a line (any direction): 1.
        let line = array![[1.0f32, 2.0, -1.0], [2.0, 4.0, -2.0], [-1.0, -2.0, 1.0], [0.5, 1.0, -0.5]];
        let s = EmbeddingStats::of(line.view()).unwrap();
        assert!((s.effective_rank - 1.0).abs() < 1e-6, "{}", s.effective_rank);
        // Per-dimension standard deviations.
        let s = EmbeddingStats::of(array![[0.0f32, 1.0], [2.0, 1.0]].view()).unwrap();
        assert!((s.std[0] - 2f64.sqrt()).abs() < 1e-9 && s.std[1] == 0.0, "{:?}", s.std);
    }

    #[test]
    fn descending_either_regulariser_undoes_a_collapse() {
        // Embeddings squeezed near a line: effective rank near 1.
        let mut rng = ami_core::rng::rng(3);
        let base = Array2::<f32>::from_shape_fn((64, 4), |(_, j)| if j == 0 { normal(&mut rng) } else { 0.01 * normal(&mut rng) });
        let line = {
            let mut z = base.clone();
            for mut r in z.rows_mut() {
                let t = r[0];
                r[1] += 0.5 * t;
                r[2] -= 0.3 * t;
            }
            z
        };
        let before = EmbeddingStats::of(line.view()).unwrap().effective_rank;
        assert!(before < 1.3, "{before}");
        let descend = |lr: f32, grad: &dyn Fn(&Array2<f32>) -> Array2<f32>| {
            let mut z = line.clone();
            for _ in 0..300 {
                let g = grad(&z);
                z.scaled_add(-lr, &g);
            }
            EmbeddingStats::of(z.view()).unwrap()
        };
        let v = descend(0.5, &|z| vicreg(z.view(), &VicRegConfig::default()).unwrap().grad);
        let s = descend(0.5, &|z| sigreg(z.view(), &SigRegConfig { directions: 16, ..SigRegConfig::default() }).unwrap().grad);
        for (what, st) in [("vicreg", &v), ("sigreg", &s)] {
            assert!(st.effective_rank > 3.0 && st.std.iter().all(|&x| x > 0.3), "{what}: rank {} from {before}, std {:?}", st.effective_rank, st.std);
        }
    }

    #[test]
    fn a_linear_probe_recovers_what_the_embedding_encodes() {
        let mut rng = ami_core::rng::rng(11);
        // Targets: positions; embeddings: a linear mix of them plus a
        // nuisance dimension, and pure noise.
        let pos = Array2::<f32>::from_shape_fn((400, 2), |_| rng.gen::<f32>());
        let mix = Array2::<f32>::from_shape_fn((400, 3), |(i, j)| match j {
            0 => 2.0 * pos[[i, 0]] - pos[[i, 1]] + 0.5,
            1 => pos[[i, 1]] * 3.0,
            _ => normal(&mut rng),
        });
        let noise = Array2::<f32>::from_shape_fn((400, 3), |_| normal(&mut rng));
        let tr = |a: &Array2<f32>| a.slice_axis(Axis(0), ndarray::Slice::from(..300)).to_owned();
        let te = |a: &Array2<f32>| a.slice_axis(Axis(0), ndarray::Slice::from(300..)).to_owned();
        let probe = |z: &Array2<f32>, ridge: f64| linear_probe(tr(z).view(), tr(&pos).view(), te(z).view(), te(&pos).view(), ridge);
        let r2 = probe(&mix, 1e-6).unwrap();
        assert!(r2.iter().all(|&r| r > 0.999), "{r2:?}");
        let r2 = probe(&noise, 1e-6).unwrap();
        assert!(r2.iter().all(|&r| r < 0.1), "{r2:?}");
        // A constant (collapsed) embedding: singular without a ridge, R^2 <= 0 with one.
        let flat = Array2::<f32>::from_elem((400, 3), 0.2);
        assert!(probe(&flat, 0.0).unwrap_err().to_string().contains("ridge"));
        let r2 = probe(&flat, 1e-3).unwrap();
        assert!(r2.iter().all(|&r| r <= 0.0), "{r2:?}");
        // A fitted probe scores itself on other frames; widths that do not
        // match its weights are a shape error, not a panic.
        let fitted = LinearProbe::fit(tr(&mix).view(), tr(&pos).view(), 1e-6).unwrap();
        assert!(fitted.r2(te(&mix).view(), te(&pos).view()).unwrap().iter().all(|&r| r > 0.999));
        let e = fitted.r2(te(&noise).view().slice_axis(Axis(1), ndarray::Slice::from(..2)), te(&pos).view()).unwrap_err();
        assert!(matches!(e, CoreError::Shape { .. }) && e.to_string().contains("LinearProbe::r2"), "{e}");
    }

    #[test]
    fn bad_batches_are_refused() {
        let err = vicreg(array![[1.0f32, 2.0]].view(), &VicRegConfig::default()).unwrap_err().to_string();
        assert!(err.contains("vicreg") && err.contains("at least 2 rows"), "{err}");
        let err = sigreg(array![[f32::NAN], [0.0]].view(), &SigRegConfig::default()).unwrap_err().to_string();
        assert!(err.contains("non-finite"), "{err}");
    }
}
