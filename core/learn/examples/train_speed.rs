//! Times training steps of the yardstick ensemble (5 x 3x200 SiLU, S 17, A 6, batch 256).
use ami_learn::{Activation, AdamConfig, Ensemble, EnsembleSpec, Trainer};
use ndarray::Array3;
use rand::Rng;

fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let spec = EnsembleSpec { activation: Activation::Silu, members: 5, probabilistic: true, ..EnsembleSpec::new(17, 6, vec![200, 200, 200]) };
    let ens = Ensemble::new(spec, 1).unwrap();
    let mut tr = Trainer::new(ens, AdamConfig::default(), threads);
    let mut rng = ami_core::rng::rng(0);
    let x = Array3::from_shape_fn((5, 256, 23), |_| rng.gen_range(-1.0f32..1.0));
    let y = Array3::from_shape_fn((5, 256, 17), |_| rng.gen_range(-1.0f32..1.0));
    let mut times = Vec::new();
    for i in 0..80 {
        let t0 = std::time::Instant::now();
        let l = tr.step(x.view(), y.view()).unwrap();
        if i >= 10 {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        if i % 20 == 0 {
            eprintln!("step {i} loss {l}");
        }
    }
    times.sort_by(f64::total_cmp);
    let med = times[times.len() / 2];
    println!("threads {threads}: median {med:.3} ms, {:.0} samples/s", 1280.0 / med * 1e3);
}
