//! The JEPA image encoder (`ami_learn::ConvEncoder`): forward, and forward
//! plus backward, of a batch of 64 wall-task images (64x64, one channel)
//! through three 3x3 stride-2 convolutions (16, 32, 32 channels) and a
//! linear map to 32 dimensions. Throughput in frames.

use ami_learn::{ConvCache, ConvEncoder, ConvSpec};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::Array2;
use rand::Rng;

fn encoder(c: &mut Criterion) {
    let spec = ConvSpec { in_channels: 1, size: 64, channels: vec![16, 32, 32], embed: 32 };
    let enc = ConvEncoder::new(spec, 0).unwrap();
    let batch = 64;
    let mut rng = ami_core::rng::rng(0);
    let imgs = Array2::from_shape_fn((batch, 64 * 64), |_| rng.gen_range(0.0f32..1.0));
    let gz = Array2::from_shape_fn((batch, 32), |_| rng.gen_range(-1.0f32..1.0));
    let mut group = c.benchmark_group("conv_encoder_64x64_16_32_32");
    group.throughput(Throughput::Elements(batch as u64));
    // A training loop keeps one cache (its buffers reused batch after batch).
    let mut cache = ConvCache::default();
    group.bench_function("forward", |b| b.iter(|| enc.forward_into(imgs.view(), &mut cache).unwrap()));
    group.bench_function("forward_backward", |b| {
        b.iter(|| {
            enc.forward_into(imgs.view(), &mut cache).unwrap();
            enc.backward(&cache, gz.view()).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, encoder);
criterion_main!(benches);
