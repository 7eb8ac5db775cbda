//! One Mode-2 planning call on each built-in task, with each planner and the
//! task's default settings (the ones `ami run` uses).

use std::hint::black_box;

use ami_agents::agent::{default_cem, default_mppi};
use ami_agents::tasks::TaskKind;
use ami_core::{Cem, Mppi, PlanRequest, Planner};
use criterion::{criterion_group, criterion_main, Criterion};

fn planning(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    group.sample_size(20);
    for task in [TaskKind::Pendulum, TaskKind::CartPole, TaskKind::PointMass] {
        let mut spec = task.spec();
        let obs = spec.env.reset(0);
        let bounds = spec.env.action_bounds();
        let planners: Vec<Box<dyn Planner>> =
            vec![Box::new(Cem::new(default_cem(task), bounds.clone()).expect("valid")), Box::new(Mppi::new(default_mppi(task), bounds).expect("valid"))];
        for mut p in planners {
            p.reset(0);
            let name = format!("{task}/{}", p.name());
            group.bench_function(name, |b| {
                b.iter(|| {
                    let plan = p.plan(&PlanRequest::new(spec.model.as_ref(), &spec.cost, obs.view())).expect("plan");
                    black_box(plan.energy)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, planning);
criterion_main!(benches);
