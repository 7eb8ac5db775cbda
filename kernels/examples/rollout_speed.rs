//! Rough timing of the fused sampling rollout (one CEM-sized call: 6 x 512
//! samples x 16 steps) and of GD (32 x 16 x 25 Adam steps) on random
//! residual MLPs of the workload's sizes. `cargo run --release --example
//! rollout_speed -p ami-kernels -- [threads]`.

use std::time::Instant;

use ami_kernels::rng::SplitMix64;
use ami_kernels::{AdamSpec, Cpu, Isa, Layer, QuadEnergy, ResidualMlp, Sampling, SeqBatch};

fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut rng = SplitMix64::new(0);
    for (s, a, h) in [(8, 2, 64), (32, 8, 256), (64, 16, 512)] {
        let mk = |out: usize, inp: usize, rng: &mut SplitMix64| {
            let sc = 0.5 / (inp as f32).sqrt();
            Layer::new(out, inp, (0..out * inp).map(|_| rng.normal() * sc).collect(), vec![0.0; out]).unwrap()
        };
        let layers = vec![mk(h, s + a, &mut rng), mk(h, h, &mut rng), mk(s, h, &mut rng)];
        let m = ResidualMlp::new(s, a, layers).unwrap();
        let c = QuadEnergy { q: vec![1.0; s], r: vec![0.01; a], goal: vec![0.5; s], terminal: None };
        let s0 = vec![0.1; s];
        for isa in Isa::available() {
            if isa == Isa::Scalar && h > 64 {
                continue;
            }
            let cpu = Cpu::new(isa, threads).unwrap();
            let (t, n) = (16, 512);
            let mean = vec![0.0; t * a];
            let std = vec![0.5; t * a];
            let (lo, hi) = (vec![-1.0; a], vec![1.0; a]);
            let mut acts = SeqBatch::new(t, a, n);
            let mut e = vec![0.0; n];
            let mut best = f64::MAX;
            for rep in 0..15 {
                let t0 = Instant::now();
                for it in 0..6 {
                    let spec = Sampling { mean: &mean, std: &std, low: &lo, high: &hi, key: rep * 10 + it };
                    cpu.sample_energies(&m, &c, &s0, &spec, &mut acts, &mut e).unwrap();
                }
                best = best.min(t0.elapsed().as_secs_f64());
            }
            let flops = m.flops_per_step() * (t * n * 6) as f64;
            let mut gdb = SeqBatch::new(t, a, 32);
            let mut ge = vec![0.0; 32];
            let adam = AdamSpec { steps: 25, lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8, low: &lo, high: &hi };
            let mut gbest = f64::MAX;
            for _ in 0..10 {
                let t0 = Instant::now();
                cpu.gd(&m, &c, &s0, &adam, &mut gdb, &mut ge).unwrap();
                gbest = gbest.min(t0.elapsed().as_secs_f64());
            }
            println!(
                "H={h:4} {isa:7} threads {}: sample+rollout x6 {:8.3} ms ({:6.1} GFLOP/s)   gd {:8.3} ms",
                cpu.threads(),
                best * 1e3,
                flops / best / 1e9,
                gbest * 1e3
            );
        }
    }
}
