//! Hierarchical planning in the mazes: level periods, determinism across
//! executors, bottom-up feedback, and the seeded start/goal generator. The
//! 50-pair acceptance runs are the `ami run` commands of the example files.

use std::path::{Path, PathBuf};

use ami_agents::tasks::maze::Maze;
use ami_config::{Agent, EpisodeResult};
use ami_graph::ExecutorKind;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name)
}

/// The example `name` with each `(from, to)` replacement made (its maze
/// files found where the example's are).
fn text(name: &str, edits: &[(&str, &str)]) -> String {
    let mut text = std::fs::read_to_string(example(name)).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{name} has no `{from}`");
        text = text.replace(from, to);
    }
    text.replace("\"mazes/", &format!("\"{}/", example("mazes").display()))
}

fn agent(name: &str, edits: &[(&str, &str)], kind: ExecutorKind) -> Agent {
    let graph = ami_agents::load_str(&text(name, edits), name).unwrap_or_else(|e| panic!("{name}: {e}"));
    Agent::from_agent_graph(graph, kind).unwrap()
}

fn run(agent: &mut Agent, seeds: std::ops::Range<u64>) -> Vec<EpisodeResult> {
    seeds.map(|s| agent.run_episode(s, |_| {}).unwrap()).collect()
}

fn successes(r: &[EpisodeResult]) -> usize {
    r.iter().filter(|e| e.success == Some(true)).count()
}

#[test]
fn the_seeded_pairs_are_fixed_and_in_different_rooms() {
    let m = Maze::builtin("four-rooms").unwrap();
    let rooms = m.rooms();
    assert_eq!(rooms.len(), 4, "four-rooms has four rooms");
    assert_eq!(Maze::builtin("rooms-4x4").unwrap().rooms().len(), 16);
    // The U-maze is corridors (every cell walled on two opposite sides)
    // but for its two corner cells.
    assert_eq!(Maze::builtin("u-maze").unwrap().rooms(), vec![vec![(1, 3)], vec![(3, 3)]]);
    let room_of = |p: [f64; 2]| {
        let cell = ((m.rows() - 1 - p[1].floor() as usize), p[0].floor() as usize);
        rooms.iter().position(|r| r.contains(&cell)).expect("a pair's points are in rooms")
    };
    for seed in 0..50 {
        let (s, g) = m.room_pair(seed);
        assert_ne!(room_of(s), room_of(g), "seed {seed}: {s:?} and {g:?} share a room");
        assert_eq!(m.room_pair(seed), (s, g), "the same seed gives the same pair");
    }
    // Pinned: the generator is part of the benchmark's definition.
    assert_eq!(m.room_pair(0), ([4.5, 9.5], [8.5, 1.5]));
    let distinct: std::collections::BTreeSet<String> = (0..50).map(|s| format!("{:?}", m.room_pair(s))).collect();
    assert!(distinct.len() >= 45, "50 seeds give (nearly) 50 different pairs: {}", distinct.len());
}

#[test]
fn two_levels_reach_goals_in_other_rooms_that_flat_planning_misses() {
    let seeds = 0..6;
    let hier = run(&mut agent("maze-hierarchy.toml", &[], ExecutorKind::Sequential), seeds.clone());
    let flat = run(&mut agent("maze-four-rooms-flat.toml", &[], ExecutorKind::Sequential), seeds);
    assert!(successes(&hier) >= 5, "two levels: {:?}", hier.iter().map(|r| r.success).collect::<Vec<_>>());
    assert!(successes(&flat) <= 3, "flat: {:?}", flat.iter().map(|r| r.success).collect::<Vec<_>>());
    // At the same compute: evaluations per decision within 10%.
    let mean = |r: &[EpisodeResult]| r.iter().map(EpisodeResult::evaluations_per_decision).sum::<f64>() / r.len() as f64;
    let (h, f) = (mean(&hier), mean(&flat));
    assert!((h / f - 1.0).abs() < 0.1, "evaluations per decision: two levels {h}, flat {f}");
}

#[test]
fn a_level_plans_on_its_period_and_earlier_with_feedback() {
    // A long period (60 ticks, three coarse steps) so that reaching a
    // subgoal comes first.
    let long = ("period = 20             # plan at least every 20 ticks", "period = 60");
    let mut off = agent("maze-hierarchy.toml", &[long, ("feedback = \"refine\"     #", "feedback = \"off\" #")], ExecutorKind::Sequential);
    let r_off = run(&mut off, 1..2);
    let ticks: Vec<u64> = off.handles().levels["high"].stats().subgoals.iter().map(|(t, _)| *t).collect();
    assert!(ticks.len() >= 3, "{ticks:?}");
    assert!(ticks.iter().enumerate().all(|(i, &t)| t == 60 * i as u64), "feedback off: a plan every 60 ticks from 0, got {ticks:?}");
    let mut on = agent("maze-hierarchy.toml", &[long, ("feedback = \"refine\"     #", "feedback = \"replan\" #")], ExecutorKind::Sequential);
    let r = run(&mut on, 1..2);
    let stats = on.handles().levels["high"].stats();
    assert!(stats.reached > 0, "with feedback a reached subgoal is planned past early: {stats:?}");
    // Early plans fall on the level's rate (every 5 ticks), off the period.
    assert!(stats.subgoals.iter().all(|(t, _)| t % 5 == 0) && stats.subgoals.iter().any(|(t, _)| t % 60 != 0), "{:?}", stats.subgoals);
    assert!(r[0].steps < r_off[0].steps, "planning on reaching subgoals gets there sooner: {} vs {} steps", r[0].steps, r_off[0].steps);
    // Every subgoal is a free position of the maze (the coarse model
    // slides along walls, never into them).
    let m = Maze::builtin("four-rooms").unwrap();
    assert!(stats.subgoals.iter().all(|(_, s)| m.is_free(f64::from(s[0]), f64::from(s[1]))));
}

#[test]
fn levels_run_the_same_in_both_executors() {
    let mut seq = agent("maze-hierarchy.toml", &[], ExecutorKind::Sequential);
    let mut par = agent("maze-hierarchy.toml", &[], ExecutorKind::Parallel);
    for seed in [2, 3] {
        let a = seq.run_episode(seed, |_| {}).unwrap();
        let b = par.run_episode(seed, |_| {}).unwrap();
        assert_eq!(a.episode_return.to_bits(), b.episode_return.to_bits(), "seed {seed}");
        assert_eq!((a.steps, a.success, a.evaluations), (b.steps, b.success, b.evaluations), "seed {seed}");
        assert_eq!(seq.handles().levels["high"].stats().subgoals, par.handles().levels["high"].stats().subgoals, "seed {seed}");
    }
}

#[test]
fn feedback_finds_the_way_round_a_wall_the_upper_map_lacks() {
    let mut refine = agent("maze-wall.toml", &[], ExecutorKind::Sequential);
    let r = run(&mut refine, 0..2);
    assert_eq!(successes(&r), 2, "{r:?}");
    let stats = refine.handles().levels["high"].stats();
    assert!(stats.unreachable >= 1, "{stats:?}");
    // The bump sits in the shut doorway (column 4, row 3: x in [4, 5], y in [7, 8]), give or take its radius.
    let p = &stats.avoided[0];
    assert!((3.5..=5.5).contains(&p[0]) && (6.5..=8.5).contains(&p[1]), "{p:?}");
    for mode in ["off", "replan"] {
        let mut a = agent("maze-wall.toml", &[("feedback = \"refine\"     #", &format!("feedback = \"{mode}\" #"))], ExecutorKind::Sequential);
        let r = run(&mut a, 0..1);
        assert_eq!(successes(&r), 0, "feedback {mode}: the upper level keeps sending the actor at the wall: {r:?}");
    }
}

#[test]
fn bad_level_settings_are_refused_naming_the_field() {
    for (from, to, needle) in [
        ("dims = [0, 1]", "dims = [0, 7]", "coordinate 7 is outside the state (width 4)"),
        ("dims = [0, 1]", "dims = [0, 0]", "names a coordinate twice"),
        ("dims = [0, 1]", "dims = [0]", "keeps 1 state coordinates (dims [0]) and its world model's state has 2"),
        ("dims = [0, 1]", "dims = [0.5, 1]", "dims[0]"),
        ("feedback = \"refine\"     #", "feedback = \"sometimes\" #", "sometimes"),
    ] {
        let text = text("maze-hierarchy.toml", &[(from, to)]);
        let err = ami_agents::load_str(&text, "h.toml").map(|_| ()).unwrap_err().to_string();
        assert!(err.contains(needle), "{to}: {err}");
        assert!(err.contains("high"), "{to}: the message names the level node: {err}");
    }
}

#[test]
fn a_subgoal_needs_a_cost_that_reads_it() {
    let mut a = agent("maze-hierarchy.toml", &[("params = { weights = { goal = 0.0 }, subgoal_weight = 1.0 }", "")], ExecutorKind::Sequential);
    let err = a.run_episode(0, |_| {}).unwrap_err().to_string();
    assert!(err.contains("no term of the cost reads one") && err.contains("subgoal_weight"), "{err}");
}

#[test]
fn three_levels_cross_the_grid_of_rooms_where_two_levels_stall() {
    // Seeds where the route first leads away from the goal (the full
    // 50-pair comparison is in the example files: 26/50 against 18/50).
    let seeds = [1, 3, 4];
    let mut three = agent("maze-4x4-three-levels.toml", &[], ExecutorKind::Sequential);
    let mut two = agent("maze-4x4-two-levels.toml", &[], ExecutorKind::Sequential);
    let r3: Vec<EpisodeResult> = seeds.iter().map(|&s| three.run_episode(s, |_| {}).unwrap()).collect();
    let r2: Vec<EpisodeResult> = seeds.iter().map(|&s| two.run_episode(s, |_| {}).unwrap()).collect();
    assert_eq!(successes(&r3), 3, "three levels: {:?}", r3.iter().map(|r| r.success).collect::<Vec<_>>());
    assert_eq!(successes(&r2), 0, "two levels: {:?}", r2.iter().map(|r| r.success).collect::<Vec<_>>());
    // The top level's subgoals are room centres, and its plans go through
    // the beam with one entry per room.
    let top = three.handles().levels["top"].stats();
    let rooms = ami_agents::tasks::maze::MazeRoomsModel::new(&Maze::builtin("rooms-4x4").unwrap()).unwrap();
    let centre = |s: &[f32]| rooms.centres().iter().any(|c| (c[0] - f64::from(s[0])).abs() < 1e-5 && (c[1] - f64::from(s[1])).abs() < 1e-5);
    let goal = Maze::builtin("rooms-4x4").unwrap().room_pair(4).1;
    assert!(top.subgoals.iter().all(|(_, s)| centre(s) || (f64::from(s[0]) - goal[0]).abs() < 1e-5), "{:?}", top.subgoals);
}

/// Random exploration of four-rooms as `maze-learned-hierarchy.toml` does
/// it: from each seeded start, forces uniform in [-1, 1]^2, each held
/// `hold` ticks, recorded as the memory node records them.
fn explore(seeds: std::ops::Range<u64>, steps: usize, hold: usize) -> ami_core::RingMemory {
    use ami_agents::tasks::maze::MazeEnv;
    use ami_core::Environment as _;
    use rand::{Rng, SeedableRng};
    let maze = std::sync::Arc::new(Maze::builtin("four-rooms").unwrap());
    let (s, g) = maze.room_pair(0);
    let mut env = MazeEnv::new(maze, s, g, steps).unwrap().with_room_pairs();
    let mut mem = ami_core::RingMemory::new(4, 2, seeds.clone().count() * steps).unwrap();
    for seed in seeds {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut obs = env.reset(seed).unwrap();
        let mut a = ndarray::Array1::zeros(2);
        for t in 0..steps {
            if t % hold == 0 {
                a = ndarray::Array1::from_shape_fn(2, |_| rng.gen_range(-1.0f32..=1.0));
            }
            let step = env.step(a.view()).unwrap();
            let tr = ami_core::TransitionRef {
                t: t as u64,
                state: obs.view(),
                action: a.view(),
                cost: 0.0,
                next_state: step.observation.view(),
                imagined: false,
                terminated: step.terminated,
            };
            ami_core::ShortTermMemory::push(&mut mem, &tr).unwrap();
            obs = step.observation;
            if step.terminated || step.truncated {
                break;
            }
        }
    }
    mem
}

/// The four doors of four-rooms and, two cells along each one's wall, a
/// segment through the wall: `(door, wall)` segments, each two cells long.
fn doors_and_walls() -> Vec<([f32; 4], [f32; 4])> {
    vec![
        ([5.5, 9.5, 7.5, 9.5], [5.5, 7.5, 7.5, 7.5]),
        ([5.5, 2.5, 7.5, 2.5], [5.5, 4.5, 7.5, 4.5]),
        ([2.5, 7.5, 2.5, 5.5], [4.5, 7.5, 4.5, 5.5]),
        ([9.5, 6.5, 9.5, 4.5], [11.5, 6.5, 11.5, 4.5]),
    ]
}

#[test]
fn exploration_learns_where_the_walls_are() {
    use ami_learn::{Chunking, Dataset, Ensemble, EnsembleSpec, FitConfig, Support, Trainer};
    // As the example explores: 100 episodes of 400 ticks (a simulation: fast).
    let mem = explore(1000..1100, 400, 20);
    // The support: a step through a door stays in visited cells, one
    // through a wall (a cell of its two) does not.
    let support = Support::from_memory(&mem, &[0, 1], 0.25).unwrap();
    let outside = |s: [f32; 4]| support.outside(ndarray::arr1(&s[..2]).view(), ndarray::arr1(&s[2..]).view());
    for (door, wall) in doors_and_walls() {
        assert!(outside(door) <= 0.2, "through the door {door:?}: {} outside", outside(door));
        assert!(outside(wall) >= 0.4, "through the wall {wall:?}: {} outside", outside(wall));
    }
    // The upper model fitted to the 20-tick chunks predicts held-out
    // chunks (errors in units of the targets' spread: 1 is no better than
    // their mean).
    let chunking = Chunking { dims: vec![0, 1], ticks: 20 };
    let data = Dataset::from_memory_chunks(&mem, usize::MAX, &chunking).unwrap();
    assert!(data.len() > 6000, "{} chunks", data.len());
    let mut trainer = Trainer::new(Ensemble::new(EnsembleSpec::new(2, 2, vec![64, 64, 64]), 0).unwrap(), Default::default(), 2);
    let report = ami_learn::fit(&mut trainer, &data, &FitConfig { epochs: 10, batch: 256, ..FitConfig::default() }, &mut |_, _, _| {}).unwrap();
    assert!(report.rejected.is_none() && report.val_mse.unwrap() < 0.6, "{report:?}");
}

/// `maze-learned-hierarchy.toml` made seconds-sized: 2 exploration
/// episodes of 60 ticks, fits of 2 epochs.
const SHORT_LEARNING: [(&str, &str); 7] = [
    ("max_steps = 400", "max_steps = 60"),
    ("episodes = 100\n", "episodes = 2\n"),
    ("explore_episodes = 100", "explore_episodes = 2"),
    ("every = 100             # once, after the exploration", "every = 2"),
    ("every = 100, min_transitions = 1000, epochs = 30", "every = 2, min_transitions = 50, epochs = 2"),
    ("min_transitions = 1000\nepochs = 150", "min_transitions = 50\nepochs = 2"),
    ("capacity = 50000", "capacity = 1000"),
];

#[test]
fn learned_levels_are_fitted_to_chunks_of_the_memory_and_run_the_same_in_both_executors() {
    let mut results = Vec::new();
    for kind in [ExecutorKind::Sequential, ExecutorKind::Parallel] {
        let mut a = agent("maze-learned-hierarchy.toml", &SHORT_LEARNING, kind);
        let learning = run(&mut a, 1000..1002);
        assert!(learning.iter().all(|r| r.steps == 60), "{:?}", learning.iter().map(|r| r.steps).collect::<Vec<_>>());
        // Exploration held each random force 20 ticks: blocks of equal
        // actions in the memory, a new one at every block.
        {
            let mem = a.handles().memory.clone().expect("a memory");
            let mem = mem.lock();
            let actions: Vec<Vec<f32>> = (0..60).map(|i| mem.get(i).unwrap().action).collect();
            for (t, act) in actions.iter().enumerate() {
                let first = &actions[t - t % 20];
                assert_eq!(act, first, "tick {t}");
            }
            assert!(actions[0] != actions[20] && actions[20] != actions[40], "{:?}", [&actions[0], &actions[20], &actions[40]]);
        }
        a.set_evaluating(true);
        let eval = run(&mut a, 0..1);
        let h = a.handles();
        // Two episodes of 60 ticks: 41 runs of 20 ticks in each for the upper
        // model, 120 transitions for the actor's.
        assert_eq!(h.trainers["coarse-trainer"].last().expect("the upper model was fitted").experience, 82);
        assert_eq!(h.trainers["dynamics-trainer"].last().expect("the actor's model was fitted").experience, 120);
        assert_eq!(h.models["coarse"].get().state_dim(), 2);
        assert_eq!(h.models["dynamics"].get().state_dim(), 4);
        let st = h.levels["high"].stats();
        assert!(st.support_cells > 0 && st.plans > 0, "{st:?}");
        results.push((learning, eval, st.support_cells));
    }
    let key =
        |r: &(Vec<EpisodeResult>, Vec<EpisodeResult>, usize)| (r.0.iter().chain(&r.1).map(|e| (e.episode_return.to_bits(), e.steps)).collect::<Vec<_>>(), r.2);
    assert_eq!(key(&results[0]), key(&results[1]), "sequential and parallel learn and act alike");
}

#[test]
fn a_learned_models_step_must_be_its_levels() {
    let mut edits = SHORT_LEARNING.to_vec();
    edits.push(("step_ticks = 20         # one step: 20 ticks, its action their mean force", "step_ticks = 10"));
    let err = ami_agents::load_str(&text("maze-learned-hierarchy.toml", &edits), "x.toml").unwrap_err().to_string();
    assert!(err.contains("node `high`") && err.contains("the learned world model's step is 10 ticks over coordinates [0, 1], and the level's 20"), "{err}");
    // The support is a memory node, and needs a sampling planner.
    let err = ami_agents::load_str(&text("maze-learned-hierarchy.toml", &[("support = \"memory\"", "support = \"env\"")]), "x.toml").unwrap_err().to_string();
    assert!(err.contains("node `high`") && err.contains("`support`") && err.contains("memory"), "{err}");
    let gd = [
        ("name = \"high\"\nkind = \"level\"\nimplementation = \"cem\"", "name = \"high\"\nkind = \"level\"\nimplementation = \"gd\""),
        ("samples = 256\niterations = 5\nelites = 24\ninit_std = 0.8\nmin_std = 0.05\nmomentum = 0.1\nwarm_start = true\nreturn_best = true", "samples = 32"),
    ];
    let err = ami_agents::load_str(&text("maze-learned-hierarchy.toml", &gd), "x.toml").unwrap_err().to_string();
    assert!(err.contains("planner `gd` follows gradients and the support cost has none"), "{err}");
    // A level's model is not an actor's.
    let err = ami_agents::load_str(&text("maze-learned-hierarchy.toml", &[("model = \"dynamics\"      #", "model = \"coarse\"      #")]), "x.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("node `actor`") && err.contains("a planning level's model"), "{err}");
}

#[test]
fn a_level_learned_from_exploration_plans_through_the_doors() {
    use ami_learn::{io, Chunking, Dataset, Ensemble, EnsembleSpec, FitConfig, Trainer};
    let dir = tempfile::tempdir().unwrap();
    let mem = explore(1000..1100, 400, 20);
    let mem_path = dir.path().join("explore.mem");
    ami_core::ShortTermMemory::save(&mem, &mem_path).unwrap();
    let data = Dataset::from_memory_chunks(&mem, usize::MAX, &Chunking { dims: vec![0, 1], ticks: 20 }).unwrap();
    let mut trainer = Trainer::new(Ensemble::new(EnsembleSpec::new(2, 2, vec![64, 64, 64]), 0).unwrap(), Default::default(), 2);
    ami_learn::fit(&mut trainer, &data, &FitConfig { epochs: 20, batch: 256, ..FitConfig::default() }, &mut |_, _, _| {}).unwrap();
    let model_path = dir.path().join("coarse.safetensors");
    io::save(trainer.ensemble(), &model_path).unwrap();
    // The example with that model and memory, no more fitting, and the
    // actor on the maze's dynamics (the upper level is under test).
    let load = format!("load = {:?}\ndims = [0, 1]", model_path.display().to_string());
    let memory = format!("capacity = 50000, load_path = {:?}", mem_path.display().to_string());
    let edits = [
        ("dims = [0, 1]           # its state: the position", load.as_str()),
        ("width = 128\nlayers = 4\n", ""),
        ("min_transitions = 1000\nepochs = 150", "min_transitions = 1000000"),
        ("min_transitions = 1000, epochs = 30", "min_transitions = 1000000"),
        ("model = \"dynamics\"      # the learned one-step model, not the maze's dynamics", ""),
        ("capacity = 50000", memory.as_str()),
    ];
    let mut a = agent("maze-learned-hierarchy.toml", &edits, ExecutorKind::Sequential);
    a.set_evaluating(true);
    let r = run(&mut a, 0..4);
    assert!(successes(&r) >= 3, "{:?}", r.iter().map(|e| (e.success, e.steps)).collect::<Vec<_>>());
}
