//! One Mode-2 planning call on each built-in task, with each planner and the
//! task's default settings (the ones `ami run --task X --planner Y` uses).

use std::hint::black_box;

use ami_agents::tasks::TaskKind;
use ami_core::{PlanRequest, Planner};
use criterion::{criterion_group, criterion_main, Criterion};

fn planning(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan");
    group.sample_size(20);
    for task in [TaskKind::Pendulum, TaskKind::CartPole, TaskKind::PointMass] {
        let mut spec = task.spec();
        let obs = spec.env.reset(0).expect("reset");
        let mut spaces = vec![spec.env.action_space()];
        if task == TaskKind::CartPole {
            // Gymnasium's CartPole-v1: the two forces as discrete actions.
            let f = ami_agents::tasks::cartpole::FORCE_MAG as f32;
            spaces.push(ami_core::ActionSpace::Discrete(ami_core::Choices::new(vec![vec![-f], vec![f]]).expect("two forces")));
        }
        // Every built-in planner that searches the space, with the task's
        // settings for it.
        let planners: Vec<Box<dyn Planner>> = spaces
            .iter()
            .flat_map(|space| {
                ami_planners::decl::builtin()
                    .into_iter()
                    .filter(|d| d.searches(space))
                    .map(|d| d.build_with(&task.planner_defaults(d.name), space, None).expect("valid"))
                    .collect::<Vec<_>>()
            })
            .collect();
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
