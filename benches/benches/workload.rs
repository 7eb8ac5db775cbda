//! The planner workload (`../shared/workload/WORKLOAD.md`, fixtures in
//! `tests/fixtures/workload`): one planning call of each planner at each
//! size on the fused fast path, with all cores (`AMI_BENCH_THREADS` picks
//! another thread count). `ami bench` gives the peers' JSON fields.
//!
//! `workload-critic`: the same calls with a 64 x 64 ReLU MLP critic as the
//! terminal cost, on the fused path (the critic evaluated and
//! differentiated inside the kernels) and on the generic path.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ami_core::{Bounds, PlanRequest, Planner};
use ami_planners::kernels::Cpu;
use ami_planners::{Cem, CemConfig, Gd, GdConfig, Mppi, MppiConfig, Workload};
use criterion::{criterion_group, criterion_main, Criterion};

fn workload(c: &mut Criterion) {
    let threads = std::env::var("AMI_BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let cpu = Arc::new(Cpu::with_threads(threads));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/workload");
    let mut group = c.benchmark_group(format!("workload-{}-threads", cpu.threads()));
    for size in ["small", "medium", "large"] {
        let wl = Workload::load(dir.join(format!("workload_{size}.safetensors"))).expect("workload fixture");
        let cost = wl.cost();
        let s0 = wl.s0.clone().expect("s0");
        let bounds = Bounds::symmetric(wl.model.net().action_dim(), 1.0);
        let mut cem = Cem::new(CemConfig::default(), bounds.clone()).expect("valid");
        cem.set_backend(cpu.clone());
        let mut mppi = Mppi::new(MppiConfig::default(), bounds.clone()).expect("valid");
        mppi.set_backend(cpu.clone());
        let mut gd = Gd::new(GdConfig::default(), bounds).expect("valid");
        gd.set_backend(cpu.clone());
        let planners: Vec<Box<dyn Planner>> = vec![Box::new(cem), Box::new(mppi), Box::new(gd)];
        if size != "small" {
            group.sample_size(10).measurement_time(Duration::from_secs(3));
        } else {
            group.sample_size(30);
        }
        for mut p in planners {
            let req = PlanRequest::new(&wl.model, &cost, s0.view());
            let mut seed = 0;
            group.bench_function(format!("{size}/{}", p.name()), |b| {
                b.iter(|| {
                    seed += 1;
                    p.reset(seed);
                    black_box(p.plan(&req).expect("plan").energy)
                })
            });
        }
    }
    group.finish();
}

fn with_critic(c: &mut Criterion) {
    let threads = std::env::var("AMI_BENCH_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let cpu = Arc::new(Cpu::with_threads(threads));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/workload");
    let mut group = c.benchmark_group(format!("workload-critic-{}-threads", cpu.threads()));
    group.sample_size(10).measurement_time(Duration::from_secs(3));
    for size in ["small", "medium"] {
        let wl = Workload::load(dir.join(format!("workload_{size}.safetensors"))).expect("workload fixture");
        let s_dim = wl.model.net().state_dim();
        let critic = ami_learn::MlpCritic::new("critic", s_dim, vec![64, 64], ami_learn::Activation::Relu, 1).expect("valid critic");
        let mut cost = wl.cost();
        cost.add_critic(Box::new(critic), 1.0).expect("one critic");
        let s0 = wl.s0.clone().expect("s0");
        let bounds = Bounds::symmetric(wl.model.net().action_dim(), 1.0);
        for fast in [true, false] {
            let mut cem = Cem::new(CemConfig::default(), bounds.clone()).expect("valid");
            cem.set_backend(cpu.clone());
            cem.set_fast_path(fast);
            let mut mppi = Mppi::new(MppiConfig::default(), bounds.clone()).expect("valid");
            mppi.set_backend(cpu.clone());
            mppi.set_fast_path(fast);
            let mut gd = Gd::new(GdConfig::default(), bounds.clone()).expect("valid");
            gd.set_backend(cpu.clone());
            gd.set_fast_path(fast);
            let planners: Vec<Box<dyn Planner>> = vec![Box::new(cem), Box::new(mppi), Box::new(gd)];
            for mut p in planners {
                let req = PlanRequest::new(&wl.model, &cost, s0.view());
                let mut seed = 0;
                let path = if fast { "fused" } else { "generic" };
                group.bench_function(format!("{size}/{}/{path}", p.name()), |b| {
                    b.iter(|| {
                        seed += 1;
                        p.reset(seed);
                        black_box(p.plan(&req).expect("plan").energy)
                    })
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, workload, with_critic);
criterion_main!(benches);
