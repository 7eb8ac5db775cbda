//! Per-call overhead of the plugin boundary: one batched world-model call
//! (Acrobot true dynamics, `predict` of a batch of states) through
//!
//! * `static`: the module linked statically and called directly through its
//!   trait (no ABI at all);
//! * `static-host`: the same statically linked plugin registered with
//!   `PluginHost::load_static` (adapter + C shims + catch_unwind, no dlopen);
//! * `dylib`: `libacrobot.so` loaded with dlopen (release build).
//!
//! The same for testkit's `shift` model (`s' = s + a`, 6 wide), whose
//! compute is negligible, so its difference is the boundary alone.
//!
//! The overhead is `dylib - static` at the same batch size. Run with
//! `cargo bench -p ami-benches --bench plugin`.

use std::path::{Path, PathBuf};

use ami_core::WorldModel;
use ami_plugin_abi::{Config, Module as _, Tensor, TensorMut, WorldModel as _};
use ami_plugin_host::{PluginHost, PluginHostConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::Array2;

fn release_plugin(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let st = std::process::Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--quiet", "--release", "-p", &format!("ami-plugin-{name}")])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("run cargo build for the plugin");
    assert!(st.success(), "building the {name} plugin failed");
    target.join("release").join(format!("{}{name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX))
}

fn inputs(n: usize) -> (Array2<f32>, Array2<f32>) {
    let s = Array2::from_shape_fn((n, 6), |(i, j)| match j {
        0 | 2 => ((i as f32) * 0.1).cos(),
        1 | 3 => ((i as f32) * 0.1).sin(),
        _ => 0.3,
    });
    let a = Array2::from_shape_fn((n, 1), |(i, _)| ((i as f32) * 0.37).sin());
    (s, a)
}

fn bench(c: &mut Criterion) {
    let mut dynamic = PluginHost::new(PluginHostConfig::default());
    dynamic.load(release_plugin("acrobot")).expect("load libacrobot.so");
    dynamic.load(release_plugin("testkit")).expect("load libtestkit.so");
    let md = dynamic.world_model("acrobot/model", "{}").expect("model");
    let mut stat = PluginHost::new(PluginHostConfig::default());
    stat.load_static(acrobot::ami_plugin_decl()).expect("static plugin");
    let ms = stat.world_model("acrobot/model", "{}").expect("model");
    let direct = acrobot::AcrobotModel;
    let mut g = c.benchmark_group("plugin_world_model_predict");
    for n in [1usize, 256] {
        let (s, a) = inputs(n);
        let mut next = Array2::zeros((n, 6));
        g.bench_with_input(BenchmarkId::new("static", n), &n, |b, _| {
            b.iter(|| {
                direct
                    .predict(
                        Tensor::from_slice(std::hint::black_box(s.as_slice().unwrap()), n, 6).unwrap(),
                        Tensor::from_slice(a.as_slice().unwrap(), n, 1).unwrap(),
                        None,
                        TensorMut::from_slice(next.as_slice_mut().unwrap(), n, 6).unwrap(),
                    )
                    .unwrap()
            })
        });
        g.bench_with_input(BenchmarkId::new("static-host", n), &n, |b, _| {
            b.iter(|| ms.predict(std::hint::black_box(s.view()), a.view(), next.view_mut()).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("dylib", n), &n, |b, _| b.iter(|| md.predict(std::hint::black_box(s.view()), a.view(), next.view_mut()).unwrap()));
    }
    g.finish();

    let sd = dynamic.world_model("testkit/shift", r#"{"dim": 6}"#).expect("shift");
    let shift = testkit::Shift::create(&Config::parse(r#"{"dim": 6}"#).unwrap()).unwrap();
    let mut g = c.benchmark_group("plugin_boundary_shift");
    for n in [1usize, 256] {
        let (s, _) = inputs(n);
        let mut next = Array2::zeros((n, 6));
        g.bench_with_input(BenchmarkId::new("static", n), &n, |b, _| {
            b.iter(|| {
                shift
                    .predict(
                        Tensor::from_slice(std::hint::black_box(s.as_slice().unwrap()), n, 6).unwrap(),
                        Tensor::from_slice(s.as_slice().unwrap(), n, 6).unwrap(),
                        None,
                        TensorMut::from_slice(next.as_slice_mut().unwrap(), n, 6).unwrap(),
                    )
                    .unwrap()
            })
        });
        g.bench_with_input(BenchmarkId::new("dylib", n), &n, |b, _| b.iter(|| sd.predict(std::hint::black_box(s.view()), s.view(), next.view_mut()).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
