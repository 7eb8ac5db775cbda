//! The planners over finite sets of actions (`cem-discrete`, `beam`)
//! against brute force: every sequence of a small problem enumerated and
//! scored by the generic rollout, with and without particles; their
//! determinism, warm start and refusals.

use std::sync::Arc;

use ami_core::*;
use ami_planners::*;
use ndarray::{array, Array1, Array2, Array3, ArrayView2, ArrayViewMut2, Axis};

const T: usize = 6;

/// A double integrator pushed by one of three forces towards 0.3, with a
/// critic-like terminal term on the final velocity.
fn problem() -> (LinearModel, Cost, Array1<f32>, Choices) {
    let dt = 0.1;
    let model = LinearModel::new(array![[1.0, dt], [0.0, 1.0]], array![[0.5 * dt * dt], [dt]]).unwrap();
    let mut cost = Cost::new();
    cost.add_intrinsic(Arc::new(QuadraticCost::new("goal", vec![1.0, 0.1], vec![])), 1.0).unwrap();
    cost.add_intrinsic(Arc::new(ActionPenalty::new(1)), 0.01).unwrap();
    cost.add_critic(Box::new(QuadraticCritic::new("stop", vec![0.0, 2.0])), 1.0).unwrap();
    cost.set_goal(Some(array![0.3, 0.0]));
    (model, cost, array![0.0, 0.0], Choices::new(vec![vec![-2.0], vec![0.0], vec![2.0]]).unwrap())
}

/// The lowest energy over all `choices^T` sequences, scored by `Rollout`.
fn brute_force(model: &dyn WorldModel, cost: &Cost, s0: &Array1<f32>, choices: &Choices) -> f32 {
    let (k, a) = (choices.len(), choices.dim());
    let n = k.pow(T as u32);
    let mut seqs = Array3::<f32>::zeros((T, n, a));
    for i in 0..n {
        let mut c = i;
        for t in 0..T {
            seqs.slice_mut(ndarray::s![t, i, ..]).assign(&ndarray::ArrayView1::from(choices.row(c % k)));
            c /= k;
        }
    }
    let mut e = Array1::zeros(n);
    Rollout::new().energies(model, cost, s0.view(), seqs.view(), &mut e).unwrap();
    e.iter().copied().fold(f32::INFINITY, f32::min)
}

fn plan_of(planner: &mut dyn Planner, model: &dyn WorldModel, cost: &Cost, s0: &Array1<f32>, seed: u64) -> Plan {
    planner.reset(seed);
    planner.plan(&PlanRequest::new(model, cost, s0.view())).unwrap()
}

fn assert_plan_is_choices(plan: &Plan, choices: &Choices) {
    for row in plan.actions.rows() {
        assert!(choices.rows().iter().any(|c| c.as_slice() == row.as_slice().unwrap()), "{row} is not a choice");
    }
}

#[test]
fn an_exhaustive_beam_finds_the_brute_force_optimum() {
    let (model, cost, s0, choices) = problem();
    let best = brute_force(&model, &cost, &s0, &choices);
    // 3^5 partial sequences at the last expansion: width 243 keeps all.
    let mut beam = Beam::new(BeamConfig { horizon: T, width: 243, ..BeamConfig::default() }, choices.clone()).unwrap();
    let plan = plan_of(&mut beam, &model, &cost, &s0, 0);
    assert_eq!(plan.energy, best, "beam {} vs brute force {best}", plan.energy);
    assert_eq!(Rollout::energy_of(&model, &cost, s0.view(), &plan.actions).unwrap(), plan.energy, "the reported energy is the plan's");
    assert_plan_is_choices(&plan, &choices);
    // A narrow beam is no better than the optimum, and plans do not depend
    // on the seed (no random numbers).
    let mut narrow = Beam::new(BeamConfig { horizon: T, width: 3, ..BeamConfig::default() }, choices.clone()).unwrap();
    let (a, b) = (plan_of(&mut narrow, &model, &cost, &s0, 1), plan_of(&mut narrow, &model, &cost, &s0, 2));
    assert!(a.energy >= best);
    assert_eq!(a, b);
}

#[test]
fn value_to_go_lets_a_narrow_beam_see_the_critic() {
    // A cost whose only guide is a terminal term on the position: step
    // energies are all equal (no action penalty), so without value-to-go
    // a width-1 beam keeps the first child at every depth (the tie goes to
    // the lowest index, -2), while with it the critic ranks the children.
    let dt = 0.1;
    let model = LinearModel::new(array![[1.0, dt], [0.0, 1.0]], array![[0.5 * dt * dt], [dt]]).unwrap();
    let mut cost = Cost::new();
    cost.add_critic(Box::new(QuadraticCritic::new("to_goal", vec![1.0, 0.0])), 1.0).unwrap();
    cost.set_goal(Some(array![0.2, 0.0]));
    let (s0, choices) = (array![0.0, 0.0], Choices::new(vec![vec![-2.0], vec![0.0], vec![2.0]]).unwrap());
    let best = brute_force(&model, &cost, &s0, &choices);
    let run = |value_to_go: bool| {
        let mut beam = Beam::new(BeamConfig { horizon: T, width: 1, value_to_go, ..BeamConfig::default() }, choices.clone()).unwrap();
        plan_of(&mut beam, &model, &cost, &s0, 0)
    };
    let (blind, guided) = (run(false), run(true));
    assert!(blind.actions.iter().take(T - 1).all(|&a| a == -2.0), "{}", blind.actions);
    assert!(blind.energy > 0.25 && guided.energy <= best + 0.01, "guided {} blind {} best {best}", guided.energy, blind.energy);
}

#[test]
fn categorical_cem_reaches_the_brute_force_optimum() {
    let (model, cost, s0, choices) = problem();
    let best = brute_force(&model, &cost, &s0, &choices);
    let cfg = DiscreteCemConfig { horizon: T, samples: 128, iterations: 8, ..DiscreteCemConfig::default() };
    let mut cem = DiscreteCem::new(cfg, choices.clone()).unwrap();
    for seed in 0..4 {
        let plan = plan_of(&mut cem, &model, &cost, &s0, seed);
        assert!(plan.energy >= best && plan.energy <= best * 1.01 + 1e-6, "seed {seed}: {} vs optimum {best}", plan.energy);
        assert_plan_is_choices(&plan, &choices);
        assert_eq!(Rollout::energy_of(&model, &cost, s0.view(), &plan.actions).unwrap(), plan.energy);
        assert_eq!((plan.iterations, plan.evaluated), (8, 8 * 128));
    }
    // Same seed, same plan; the seed matters.
    let plans: Vec<Plan> = (0..2).map(|_| plan_of(&mut cem, &model, &cost, &s0, 5)).collect();
    assert_eq!(plans[0], plans[1]);
    let mut small = DiscreteCem::new(DiscreteCemConfig { horizon: T, samples: 4, iterations: 1, ..DiscreteCemConfig::default() }, choices).unwrap();
    let differ = (0..8).any(|s| plan_of(&mut small, &model, &cost, &s0, s).actions != plan_of(&mut small, &model, &cost, &s0, s + 100).actions);
    assert!(differ, "different seeds draw different samples");
}

#[test]
fn categorical_cem_warm_starts_from_the_shifted_plan() {
    // After acting the first action, one iteration of one sample is the
    // previous plan shifted by one step: sample 0.
    let (model, cost, s0, choices) = problem();
    let cfg = DiscreteCemConfig { horizon: T, samples: 64, iterations: 6, ..DiscreteCemConfig::default() };
    let mut cem = DiscreteCem::new(cfg, choices.clone()).unwrap();
    let first = plan_of(&mut cem, &model, &cost, &s0, 0);
    let mut s1 = Array2::zeros((1, 2));
    model.predict(s0.view().insert_axis(Axis(0)), first.actions.slice(ndarray::s![0..1, ..]), s1.view_mut()).unwrap();
    let s1 = s1.row(0).to_owned();
    let mut shifted = first.actions.clone();
    for t in 1..T {
        let prev = shifted.row(t).to_owned();
        shifted.row_mut(t - 1).assign(&prev);
    }
    let e_shift = Rollout::energy_of(&model, &cost, s1.view(), &shifted).unwrap();
    let one = DiscreteCemConfig { horizon: T, samples: 1, iterations: 1, ..DiscreteCemConfig::default() };
    let mut single = DiscreteCem::new(one.clone(), choices.clone()).unwrap();
    single.reset(0);
    single.propose(first.actions.clone());
    single.plan(&PlanRequest::new(&model, &cost, s0.view())).unwrap();
    let second = single.plan(&PlanRequest::new(&model, &cost, s1.view())).unwrap();
    assert_eq!((second.actions.clone(), second.energy), (shifted, e_shift));
    // A proposal of the right shape is the first sample (snapped to the
    // nearest choices); one of another width is ignored.
    single.reset(0);
    single.propose(Array2::from_elem((T, 1), 1.7));
    assert_eq!(single.plan(&PlanRequest::new(&model, &cost, s0.view())).unwrap().actions, Array2::from_elem((T, 1), 2.0));
    let mut fresh = DiscreteCem::new(one, choices).unwrap();
    fresh.reset(0);
    let unseeded = fresh.plan(&PlanRequest::new(&model, &cost, s0.view())).unwrap();
    single.reset(0);
    single.propose(Array2::from_elem((T, 2), 2.0));
    assert_eq!(single.plan(&PlanRequest::new(&model, &cost, s0.view())).unwrap(), unseeded);
    // Beam search keeps the shifted plan when its own best is worse: a
    // width-1 beam without value-to-go, seeded with the exhaustive plan.
    let mut wide = Beam::new(BeamConfig { horizon: T, width: 243, ..BeamConfig::default() }, problem().3).unwrap();
    let best = plan_of(&mut wide, &model, &cost, &s0, 0);
    let mut narrow = Beam::new(BeamConfig { horizon: T, width: 1, value_to_go: false, ..BeamConfig::default() }, problem().3).unwrap();
    let alone = plan_of(&mut narrow, &model, &cost, &s0, 0);
    narrow.reset(0);
    narrow.propose(best.actions.clone());
    let seeded = narrow.plan(&PlanRequest::new(&model, &cost, s0.view())).unwrap();
    assert!(best.energy < alone.energy, "the test needs a narrow beam that misses the optimum");
    assert_eq!((seeded.actions, seeded.energy), (best.actions, best.energy));
}

/// `s' = s + a + offset`, offsets 0.1, -0.25 and 0.05 for the three rows
/// of a group: three particles that disagree.
struct ThreeParticles {
    risk: f32,
    reassign: bool,
}

impl WorldModel for ThreeParticles {
    fn state_dim(&self) -> usize {
        1
    }
    fn action_dim(&self) -> usize {
        1
    }
    fn predict(&self, s: ArrayView2<'_, f32>, a: ArrayView2<'_, f32>, mut out: ArrayViewMut2<'_, f32>) -> Result<()> {
        for r in 0..s.nrows() {
            out[[r, 0]] = s[[r, 0]] + a[[r, 0]] + [0.1, -0.25, 0.05][r % 3];
        }
        Ok(())
    }
    fn particles(&self) -> Particles {
        Particles { count: 3, risk: self.risk, reassign: self.reassign }
    }
}

#[test]
fn beam_scores_particles_as_the_rollout_does() {
    let mut cost = Cost::new();
    cost.add_intrinsic(Arc::new(GoalDistance::new(1)), 1.0).unwrap();
    cost.add_critic(Box::new(QuadraticCritic::new("end", vec![3.0])), 1.0).unwrap();
    cost.set_goal(Some(array![0.4]));
    let choices = Choices::new(vec![vec![-0.5], vec![0.0], vec![0.5]]).unwrap();
    let s0 = array![0.0];
    for (risk, reassign) in [(0.0, false), (1.0, false), (0.5, true)] {
        let model = ThreeParticles { risk, reassign };
        let best = brute_force(&model, &cost, &s0, &choices);
        let mut beam = Beam::new(BeamConfig { horizon: T, width: 243, ..BeamConfig::default() }, choices.clone()).unwrap();
        let plan = plan_of(&mut beam, &model, &cost, &s0, 0);
        let again = Rollout::energy_of(&model, &cost, s0.view(), &plan.actions).unwrap();
        assert!((plan.energy - best).abs() <= 1e-5 * best.abs().max(1.0), "risk {risk} reassign {reassign}: {} vs {best}", plan.energy);
        assert!((again - plan.energy).abs() <= 1e-5 * again.abs().max(1.0), "risk {risk} reassign {reassign}: {again} vs {}", plan.energy);
    }
}

#[test]
fn planners_refuse_the_other_kind_of_space() {
    let choices = ActionSpace::Discrete(Choices::indices(2).unwrap());
    let cube: ActionSpace = Bounds::symmetric(1, 1.0).into();
    for name in ["cem", "mppi", "gd"] {
        let decl = decl::find(name).unwrap();
        let err = decl.build_with(&[], &choices, None).err().unwrap().to_string();
        assert!(
            err.contains(&format!("`{name}` searches a continuous box")) && err.contains("2 discrete choices [[0], [1]]") && err.contains("cem-discrete"),
            "{err}"
        );
        assert!(decl.build_with(&[], &cube, None).is_ok());
    }
    for name in ["cem-discrete", "beam"] {
        let decl = decl::find(name).unwrap();
        let err = decl.build_with(&[], &cube, None).err().unwrap().to_string();
        assert!(err.contains(&format!("`{name}` searches a finite set of actions")) && err.contains("box [-1, 1]") && err.contains("`cem`"), "{err}");
        assert!(decl.build_with(&[], &choices, None).is_ok());
    }
    // A beam too wide for memory is refused, naming the width.
    let (model, cost, s0, choices) = problem();
    let mut beam = Beam::new(BeamConfig { width: 65_536, ..BeamConfig::default() }, Choices::new(vec![vec![0.0]; 1024]).unwrap()).unwrap();
    let err = beam.plan(&PlanRequest::new(&model, &cost, s0.view())).unwrap_err().to_string();
    assert!(err.contains("beam.width") && err.contains("lower `width`"), "{err}");
    // Small edge cases plan: horizon 1, one choice, width below the choices.
    for (horizon, width, rows) in [(1, 64, choices.rows().to_vec()), (4, 1, vec![vec![1.0]]), (4, 2, choices.rows().to_vec())] {
        let c = Choices::new(rows).unwrap();
        let mut b = Beam::new(BeamConfig { horizon, width, ..BeamConfig::default() }, c.clone()).unwrap();
        let plan = plan_of(&mut b, &model, &cost, &s0, 0);
        assert_eq!(plan.actions.dim(), (horizon, 1));
        assert_plan_is_choices(&plan, &c);
        let mut d = DiscreteCem::new(DiscreteCemConfig { horizon, samples: 1, elites: Some(1), ..DiscreteCemConfig::default() }, c.clone()).unwrap();
        assert_plan_is_choices(&plan_of(&mut d, &model, &cost, &s0, 0), &c);
    }
}

#[test]
fn bad_choices_are_refused_naming_the_row() {
    let err = |rows: Vec<Vec<f32>>| Choices::new(rows).unwrap_err().to_string();
    assert!(err(vec![]).contains("at least one action"));
    assert!(err(vec![vec![]]).contains("choices[0]"));
    let e = err(vec![vec![0.0, 1.0], vec![2.0]]);
    assert!(e.contains("choices[1]") && e.contains("has 1 entries, choices[0] has 2"), "{e}");
    let e = err(vec![vec![0.0], vec![f32::NAN]]);
    assert!(e.contains("choices[1][0]") && e.contains("finite"), "{e}");
    let c = Choices::new(vec![vec![-1.0, 0.0], vec![1.0, 3.0]]).unwrap();
    assert_eq!((c.envelope().low.clone(), c.envelope().high.clone()), (vec![-1.0, 0.0], vec![1.0, 3.0]));
    assert_eq!(c.nearest(&[0.9, 2.0]), 1);
    let mut x = [0.2, 0.1];
    ActionSpace::Discrete(c).project(&mut x);
    assert_eq!(x, [-1.0, 0.0]);
}

/// A cost that prices integer positions by a table.
struct Table(Vec<f32>);

impl IntrinsicCost for Table {
    fn name(&self) -> &str {
        "table"
    }
    fn add_cost(
        &self,
        _: &CostContext<'_>,
        w: f32,
        _: ArrayView2<'_, f32>,
        _: ArrayView2<'_, f32>,
        next: ArrayView2<'_, f32>,
        mut out: ndarray::ArrayViewMut1<'_, f32>,
    ) -> Result<()> {
        for (o, s) in out.iter_mut().zip(next.rows()) {
            let i = (s[0] + 20.0).round() as usize;
            *o += w * table_at(&self.0, i);
        }
        Ok(())
    }
}

fn table_at(t: &[f32], i: usize) -> f32 {
    t.get(i).copied().unwrap_or(100.0)
}

#[test]
fn a_merging_beam_as_wide_as_the_states_is_exact() {
    // s' = s + a on the integers, a in {-1, 0, 1}: at depth t there are
    // 2t + 1 positions, so width 2T + 1 = 13 holds them all once merged,
    // against 3^T = 729 sequences.
    let model = LinearModel::new(array![[1.0]], array![[1.0]]).unwrap();
    // Left of 0 a little below zero; to the right a ridge (+10 at 1, 2
    // and 3) before a deep valley at 4: the best sequence climbs the
    // ridge, which a beam of sums so far prunes for the many cheap
    // sequences near the start.
    let table: Vec<f32> = (-20..=20)
        .map(|s: i32| match s {
            1..=3 => 10.0,
            4 => -100.0,
            s if s < 0 => -0.5,
            _ => 0.0,
        })
        .collect();
    let mut cost = Cost::new();
    cost.add_intrinsic(Arc::new(Table(table)), 1.0).unwrap();
    let s0 = array![0.0f32];
    let choices = Choices::new(vec![vec![-1.0], vec![0.0], vec![1.0]]).unwrap();
    let best = brute_force(&model, &cost, &s0, &choices);
    let config = BeamConfig { horizon: T, width: 2 * T + 1, value_to_go: false, warm_start: false, ..BeamConfig::default() };
    let mut merged = Beam::new(BeamConfig { merge: true, ..config.clone() }, choices.clone()).unwrap();
    let plan = plan_of(&mut merged, &model, &cost, &s0, 0);
    assert_eq!(plan.energy, best, "merged beam {} vs brute force {best}", plan.energy);
    // Without merging the same width keeps duplicates of a few positions
    // and misses the optimum on this table.
    let mut plain = Beam::new(config, choices).unwrap();
    let e = plan_of(&mut plain, &model, &cost, &s0, 0).energy;
    assert!(e > best, "without merging width 13 found {e}, the optimum is {best}");
}
