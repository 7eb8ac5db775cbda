//! Conformance of the fused kernels: every SIMD path against the scalar
//! reference on awkward sizes, gradients against finite differences, and
//! bit-identical results for any thread count.

use ami_kernels::rng::SplitMix64;
use std::sync::Arc;

use ami_kernels::{AdamSpec, Cpu, Isa, Layer, PackedDense, QuadEnergy, ResidualMlp, Sampling, SeqBatch, Terminal, ValueMlp};

fn randn(rng: &mut SplitMix64, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.normal() * scale).collect()
}

/// A residual MLP with hidden widths `hidden` (weights N(0, 1/fan_in) * 0.5).
fn model(s: usize, a: usize, hidden: &[usize], seed: u64) -> ResidualMlp {
    let mut rng = SplitMix64::new(seed);
    let mut widths = vec![s + a];
    widths.extend_from_slice(hidden);
    widths.push(s);
    let layers = widths
        .windows(2)
        .map(|w| {
            let (inp, out) = (w[0], w[1]);
            let scale = 0.5 / (inp as f32).sqrt();
            Layer::new(out, inp, randn(&mut rng, out * inp, scale), randn(&mut rng, out, 0.01)).unwrap()
        })
        .collect();
    ResidualMlp::new(s, a, layers).unwrap()
}

fn cost(m: &ResidualMlp, seed: u64) -> QuadEnergy {
    let mut rng = SplitMix64::new(seed);
    QuadEnergy { q: vec![1.0; m.state_dim()], r: vec![0.01; m.action_dim()], goal: randn(&mut rng, m.state_dim(), 1.0), terminal: None }
}

/// The cost with a terminal value: an MLP V(s) with hidden widths
/// `hidden` (none: linear), weight 0.7.
fn with_value(m: &ResidualMlp, c: QuadEnergy, hidden: &[usize], seed: u64) -> QuadEnergy {
    let mut rng = SplitMix64::new(seed);
    let mut widths = vec![m.state_dim()];
    widths.extend_from_slice(hidden);
    widths.push(1);
    let layers = widths
        .windows(2)
        .map(|w| Layer::new(w[1], w[0], randn(&mut rng, w[0] * w[1], 1.0 / (w[0] as f32).sqrt()), randn(&mut rng, w[1], 0.3)).unwrap())
        .collect();
    QuadEnergy { terminal: Some(Terminal { value: Arc::new(ValueMlp::new(m.state_dim(), layers).unwrap()), weight: 0.7 }), ..c }
}

fn batch(t: usize, a: usize, n: usize, seed: u64) -> SeqBatch {
    let mut rng = SplitMix64::new(seed);
    let mut b = SeqBatch::new(t, a, n);
    for tt in 0..t {
        for j in 0..a {
            for i in 0..n {
                b.set(tt, j, i, (rng.normal() * 0.5).clamp(-1.0, 1.0));
            }
        }
    }
    b
}

fn close(a: f32, b: f32, rel: f32, what: &str) {
    let tol = rel * a.abs().max(b.abs()).max(1.0);
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b} (tolerance {tol})");
}

/// Awkward shapes: widths not multiples of any vector width, depth 1 to 3.
const SHAPES: &[(usize, usize, &[usize])] = &[(3, 5, &[13, 7]), (8, 2, &[64, 64]), (1, 1, &[]), (17, 3, &[33])];

#[test]
fn simd_energies_and_gradients_match_the_scalar_reference() {
    simd_matches_scalar(false);
}

#[test]
fn simd_energies_and_gradients_with_a_terminal_value_match_the_scalar_reference() {
    simd_matches_scalar(true);
}

/// Terminal-value hidden widths per shape: not multiples of a panel.
const VALUE_HIDDEN: &[&[usize]] = &[&[9, 5], &[64, 64], &[], &[20]];

fn simd_matches_scalar(terminal: bool) {
    for (si, &(s, a, hidden)) in SHAPES.iter().enumerate() {
        let m = model(s, a, hidden, si as u64);
        let c = cost(&m, 100 + si as u64);
        let c = if terminal { with_value(&m, c, VALUE_HIDDEN[si], 50 + si as u64) } else { c };
        let s0: Vec<f32> = (0..s).map(|i| (i as f32 * 0.37).sin()).collect();
        for &(t, n) in &[(1usize, 1usize), (3, 17), (16, 70), (2, 33)] {
            let acts = batch(t, a, n, 7);
            let reference = Cpu::new(Isa::Scalar, 1).unwrap();
            let mut e_ref = vec![0.0; n];
            let mut g_ref = SeqBatch::new(t, a, n);
            reference.energies_grad(&m, &c, &s0, &acts, &mut e_ref, &mut g_ref).unwrap();
            // The f64 reference agrees with the scalar kernel.
            for i in [0, n - 1] {
                let e64 = c.sequence_energy_f64(&m, &s0, &acts.sequence(i));
                close(e_ref[i], e64 as f32, 1e-4, "scalar vs f64");
            }
            for isa in Isa::available() {
                for threads in [1, 3] {
                    let cpu = Cpu::new(isa, threads).unwrap();
                    let mut e = vec![0.0; n];
                    cpu.energies(&m, &c, &s0, &acts, &mut e).unwrap();
                    let mut e2 = vec![0.0; n];
                    let mut g = SeqBatch::new(t, a, n);
                    cpu.energies_grad(&m, &c, &s0, &acts, &mut e2, &mut g).unwrap();
                    let gmax = (0..t)
                        .flat_map(|tt| (0..a).flat_map(move |j| (0..n).map(move |i| (tt, j, i))))
                        .map(|(tt, j, i)| g_ref.get(tt, j, i).abs())
                        .fold(0.0f32, f32::max);
                    for i in 0..n {
                        let what = format!("{isa} threads {threads} shape {si} T {t} N {n} sample {i}");
                        close(e[i], e_ref[i], 1e-4, &format!("energy {what}"));
                        assert_eq!(e[i].to_bits(), e2[i].to_bits(), "energies() and energies_grad() differ: {what}");
                        for tt in 0..t {
                            for j in 0..a {
                                let (x, y) = (g.get(tt, j, i), g_ref.get(tt, j, i));
                                assert!((x - y).abs() <= 1e-4 * gmax.max(1.0), "grad {what} t {tt} j {j}: {x} vs {y}");
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn action_gradients_match_finite_differences() {
    action_gradients_vs_fd(false);
}

#[test]
fn action_gradients_through_a_terminal_value_match_finite_differences() {
    action_gradients_vs_fd(true);
}

fn action_gradients_vs_fd(terminal: bool) {
    let m = model(3, 2, &[11, 6], 3);
    let c = cost(&m, 4);
    let c = if terminal { with_value(&m, c, &[12, 7], 5) } else { c };
    if terminal {
        // The terminal value is in the energy.
        let seq = batch(4, 2, 1, 9).sequence(0);
        let plain = cost(&m, 4).sequence_energy_f64(&m, &[0.3, -0.2, 0.5], &seq);
        assert!((c.sequence_energy_f64(&m, &[0.3, -0.2, 0.5], &seq) - plain).abs() > 1e-3);
    }
    let s0 = vec![0.3, -0.2, 0.5];
    let (t, n) = (4, 3);
    let acts = batch(t, 2, n, 9);
    for isa in Isa::available() {
        let cpu = Cpu::new(isa, 1).unwrap();
        let mut e = vec![0.0; n];
        let mut g = SeqBatch::new(t, 2, n);
        cpu.energies_grad(&m, &c, &s0, &acts, &mut e, &mut g).unwrap();
        for i in 0..n {
            let seq = acts.sequence(i);
            for k in 0..seq.len() {
                let h = 1e-3f32;
                let (mut p, mut q) = (seq.clone(), seq.clone());
                p[k] += h;
                q[k] -= h;
                let fd = (c.sequence_energy_f64(&m, &s0, &p) - c.sequence_energy_f64(&m, &s0, &q)) / f64::from(2.0 * h);
                let an = f64::from(g.get(k / 2, k % 2, i));
                assert!((fd - an).abs() <= 2e-3 * fd.abs().max(1.0), "{isa} sample {i} action {k}: finite difference {fd} vs gradient {an}");
            }
        }
    }
}

#[test]
fn predict_and_vjp_match_the_reference() {
    let m = model(5, 3, &[9, 4], 5);
    let n = 19;
    let mut rng = SplitMix64::new(1);
    let states = randn(&mut rng, n * 5, 1.0);
    let actions = randn(&mut rng, n * 3, 0.5);
    let gn = randn(&mut rng, n * 5, 1.0);
    for isa in Isa::available() {
        let cpu = Cpu::new(isa, 2).unwrap();
        let mut next = vec![0.0; n * 5];
        cpu.predict(&m, &states, &actions, &mut next).unwrap();
        let mut gs = vec![0.0; n * 5];
        let mut ga = vec![0.0; n * 3];
        cpu.vjp(&m, &states, &actions, &gn, &mut gs, &mut ga).unwrap();
        for i in 0..n {
            let s: Vec<f64> = states[i * 5..i * 5 + 5].iter().map(|&v| f64::from(v)).collect();
            let a: Vec<f64> = actions[i * 3..i * 3 + 3].iter().map(|&v| f64::from(v)).collect();
            let r = m.step_f64(&s, &a);
            for k in 0..5 {
                close(next[i * 5 + k], r[k] as f32, 1e-5, &format!("{isa} predict"));
            }
            // <gn, f(s, a)> differentiated numerically.
            let f = |s: &[f64], a: &[f64]| -> f64 { m.step_f64(s, a).iter().zip(&gn[i * 5..i * 5 + 5]).map(|(x, &g)| x * f64::from(g)).sum() };
            for k in 0..8 {
                let (mut sp, mut ap, mut sq, mut aq) = (s.clone(), a.clone(), s.clone(), a.clone());
                let h = 1e-4;
                if k < 5 {
                    sp[k] += h;
                    sq[k] -= h;
                } else {
                    ap[k - 5] += h;
                    aq[k - 5] -= h;
                }
                let fd = (f(&sp, &ap) - f(&sq, &aq)) / (2.0 * h);
                let an = if k < 5 { gs[i * 5 + k] } else { ga[i * 3 + k - 5] };
                assert!((fd - f64::from(an)).abs() < 1e-3 * fd.abs().max(1.0), "{isa} vjp sample {i} input {k}: {fd} vs {an}");
            }
        }
    }
}

#[test]
fn sampling_and_adam_are_bit_identical_for_any_thread_count() {
    let m = model(8, 2, &[64, 64], 11);
    // With a terminal value, so its evaluation and gradient are covered too.
    let c = with_value(&m, cost(&m, 12), &[16], 13);
    let s0 = vec![0.1; 8];
    let (t, a) = (5, 2);
    let mean: Vec<f32> = (0..t * a).map(|k| (k as f32 * 0.1).sin() * 0.3).collect();
    let std = vec![0.5; t * a];
    let (low, high) = (vec![-1.0; a], vec![1.0; a]);
    for isa in Isa::available() {
        let mut results = Vec::new();
        for threads in [1, 2, 5] {
            let cpu = Cpu::new(isa, threads).unwrap();
            let mut acts = SeqBatch::new(t, a, 45);
            let mut e = vec![0.0; 45];
            let spec = Sampling { mean: &mean, std: &std, low: &low, high: &high, key: 42 };
            cpu.sample_energies(&m, &c, &s0, &spec, &mut acts, &mut e).unwrap();
            let mut again = vec![0.0; 45];
            cpu.energies(&m, &c, &s0, &acts, &mut again).unwrap();
            assert_eq!(e, again, "{isa}: sampled energies are the energies of the samples");
            for tt in 0..t {
                for j in 0..a {
                    assert!(acts.row(tt, j).iter().all(|v| (-1.0..=1.0).contains(v)));
                }
            }
            let mut gd = batch(t, a, 33, 3);
            let mut ge = vec![0.0; 33];
            let adam = AdamSpec { steps: 4, lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, low: &low, high: &high };
            cpu.gd(&m, &c, &s0, &adam, &mut gd, &mut ge).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            results.push((bits(&e), acts.clone(), bits(&ge), gd.clone()));
        }
        for r in &results[1..] {
            assert_eq!(r.0, results[0].0, "{isa}: sampled energies depend on the thread count");
            assert_eq!(r.1, results[0].1, "{isa}: samples depend on the thread count");
            assert_eq!(r.2, results[0].2, "{isa}: GD energies depend on the thread count");
            assert_eq!(r.3, results[0].3, "{isa}: GD plans depend on the thread count");
        }
        // Adam lowered every energy.
        let start = batch(t, a, 33, 3);
        let cpu = Cpu::new(isa, 1).unwrap();
        let mut e0 = vec![0.0; 33];
        cpu.energies(&m, &c, &s0, &start, &mut e0).unwrap();
        let ge = &results[0].2;
        for i in 0..33 {
            assert!(f32::from_bits(ge[i]) < e0[i], "{isa}: sample {i} did not improve");
        }
    }
}

#[test]
fn bad_shapes_are_errors() {
    let m = model(3, 2, &[4], 0);
    let c = cost(&m, 0);
    let cpu = Cpu::new(Isa::Scalar, 1).unwrap();
    let acts = SeqBatch::new(2, 3, 4);
    let mut e = vec![0.0; 4];
    assert!(cpu.energies(&m, &c, &[0.0; 3], &acts, &mut e).unwrap_err().to_string().contains("action width"));
    let acts = SeqBatch::new(2, 2, 4);
    assert!(cpu.energies(&m, &c, &[0.0; 2], &acts, &mut e).is_err());
    assert!(ResidualMlp::new(3, 2, vec![Layer::new(3, 4, vec![0.0; 12], vec![0.0; 3]).unwrap()]).unwrap_err().to_string().contains("expected 5 inputs"));
}

#[test]
fn batched_dense_layers_match_the_scalar_reference() {
    let mut rng = SplitMix64::new(8);
    for &(out, inp, n) in &[(1usize, 1usize, 1usize), (13, 7, 17), (64, 10, 33), (9, 70, 100)] {
        let layer = PackedDense::new(Layer::new(out, inp, randn(&mut rng, out * inp, 0.3), randn(&mut rng, out, 0.1)).unwrap());
        let x = randn(&mut rng, n * inp, 1.0);
        for relu in [false, true] {
            let mut y_ref = vec![0.0; n * out];
            Cpu::new(Isa::Scalar, 1).unwrap().dense(&layer, relu, &x, &mut y_ref).unwrap();
            for i in 0..n {
                for o in 0..out {
                    let v: f32 = (0..inp).map(|k| layer.layer().w[o * inp + k] * x[i * inp + k]).sum::<f32>() + layer.layer().b[o];
                    close(y_ref[i * out + o], if relu { v.max(0.0) } else { v }, 1e-5, "scalar dense");
                }
            }
            for isa in Isa::available() {
                for threads in [1, 2] {
                    let mut y = vec![0.0; n * out];
                    Cpu::new(isa, threads).unwrap().dense(&layer, relu, &x, &mut y).unwrap();
                    for (a, b) in y.iter().zip(&y_ref) {
                        close(*a, *b, 1e-5, &format!("{isa} dense [{out}, {inp}] n {n}"));
                    }
                }
            }
        }
    }
}
