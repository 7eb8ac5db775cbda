//! One training step (forward, backward, Adam) of the training yardstick:
//! a 5-member probabilistic ensemble of 3x200 SiLU MLPs, S 17, A 6, batch
//! 256 per member (`../shared/workload/train_peers.py`), on 1 and 2
//! threads; and a small deterministic ReLU model like the learning
//! examples' (2x64, batch 64).

use ami_learn::{Activation, AdamConfig, Ensemble, EnsembleSpec, Trainer};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::Array3;
use rand::Rng;

fn bench_step(c: &mut Criterion, name: &str, spec: EnsembleSpec, batch: usize) {
    let mut group = c.benchmark_group(name);
    let (k, i, s) = (spec.members, spec.input_dim(), spec.state_dim);
    let mut rng = ami_core::rng::rng(0);
    let x = Array3::from_shape_fn((k, batch, i), |_| rng.gen_range(-1.0f32..1.0));
    let y = Array3::from_shape_fn((k, batch, s), |_| rng.gen_range(-1.0f32..1.0));
    group.throughput(Throughput::Elements((k * batch) as u64));
    for threads in [1, 2] {
        let mut tr = Trainer::new(Ensemble::new(spec.clone(), 1).unwrap(), AdamConfig::default(), threads);
        group.bench_function(format!("{threads}_threads"), |b| b.iter(|| tr.step(x.view(), y.view()).unwrap()));
    }
    group.finish();
}

fn train(c: &mut Criterion) {
    let pets = EnsembleSpec { activation: Activation::Silu, members: 5, probabilistic: true, ..EnsembleSpec::new(17, 6, vec![200, 200, 200]) };
    bench_step(c, "train_step_pets_5x3x200", pets, 256);
    let small = EnsembleSpec::new(3, 1, vec![64, 64]);
    bench_step(c, "train_step_pendulum_2x64", small, 64);
}

criterion_group!(benches, train);
criterion_main!(benches);
