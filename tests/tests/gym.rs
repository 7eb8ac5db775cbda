//! The Gymnasium bridge against real Gymnasium (the pinned release in
//! `.venv-gym`, made by `scripts/gym-venv.sh`, or `$AMI_PYTHON`): exact
//! transitions against the built-in task models, spaces, and every failure
//! as its own error with no child process left behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ami_agents::tasks::cartpole::CartPoleModel;
use ami_agents::tasks::pendulum::PendulumModel;
use ami_core::{ActionSpace, Choices, Environment, WorldModel};
use ami_gym::{GymConfig, GymEnv, GymError, GymVecEnv};
use ndarray::{array, Array2, Axis};
use rand::Rng;

/// The interpreter with gymnasium: `$AMI_PYTHON`, else the repository's
/// `.venv-gym`. Missing both is a failure, not a skip.
fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    ami_gym::checkout_python(&root).expect("no Python with gymnasium: run scripts/gym-venv.sh (makes .venv-gym) or set AMI_PYTHON")
}

fn config(id: &str) -> GymConfig {
    GymConfig { python: python(), ..GymConfig::new(id) }
}

/// The scripted test environment (tests/tests/gym/ami_testenvs.py) in a
/// given misbehaviour.
fn scripted(mode: &str) -> GymConfig {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gym");
    let mut cfg = config("ami_testenvs:AmiScripted-v0");
    cfg.kwargs.insert("mode".into(), mode.into());
    cfg.env.push(("PYTHONPATH".into(), dir.display().to_string()));
    cfg.step_timeout = Duration::from_secs(2);
    cfg
}

fn alive(pid: u32) -> bool {
    // A reaped child has no /proc entry; a zombie would still count.
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn pendulum_v1_steps_as_the_built_in_model_predicts() {
    let mut env = GymEnv::make(config("Pendulum-v1")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((env.obs_dim(), env.action_dim(), env.max_steps()), (3, 1, 200));
    assert_eq!(env.action_bounds().high, vec![2.0]);
    let mut rng = ami_core::rng::rng(5);
    let mut worst = 0.0f32;
    for seed in [0u64, 1, 2] {
        let mut obs = env.reset(seed).unwrap();
        let again = env.reset(seed).unwrap();
        assert_eq!(obs, again, "reset(seed) is deterministic");
        for t in 0..200 {
            let a = array![rng.gen_range(-2.0f32..=2.0)];
            let step = env.step(a.view()).unwrap();
            let mut pred = Array2::zeros((1, 3));
            PendulumModel.predict(obs.view().insert_axis(Axis(0)), a.view().insert_axis(Axis(0)), pred.view_mut()).unwrap();
            for (p, o) in pred.row(0).iter().zip(&step.observation) {
                worst = worst.max((p - o).abs());
            }
            assert!(!step.terminated, "Pendulum never terminates");
            assert_eq!(step.truncated, t == 199, "truncated at the spec's 200 steps, step {t}");
            obs = step.observation;
        }
    }
    assert!(worst < 2e-5, "largest difference from the built-in model {worst}");
}

#[test]
fn cartpole_v1_discrete_actions_step_as_the_built_in_model_predicts() {
    // The agent acts with a force; the bridge sends the nearest of
    // Gymnasium's actions (0: -10 N, 1: +10 N).
    let mut cfg = config("CartPole-v1");
    cfg.discrete_actions = vec![vec![-10.0], vec![10.0]];
    let mut env = GymEnv::make(cfg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((env.action_bounds().low.clone(), env.action_bounds().high.clone()), (vec![-10.0], vec![10.0]));
    // The two forces are the choices discrete planners search.
    assert_eq!(env.action_space(), ActionSpace::Discrete(Choices::new(vec![vec![-10.0], vec![10.0]]).unwrap()));
    let mut rng = ami_core::rng::rng(8);
    let (mut worst, mut terminations) = (0.0f32, 0);
    for seed in 0..5u64 {
        let mut obs = env.reset(seed).unwrap();
        loop {
            let a = array![if rng.gen_bool(0.5) { 7.0f32 } else { -3.0 }];
            let force = array![if a[0] > 0.0 { 10.0f32 } else { -10.0 }];
            let step = env.step(a.view()).unwrap();
            let mut pred = Array2::zeros((1, 4));
            CartPoleModel.predict(obs.view().insert_axis(Axis(0)), force.view().insert_axis(Axis(0)), pred.view_mut()).unwrap();
            for (p, o) in pred.row(0).iter().zip(&step.observation) {
                worst = worst.max((p - o).abs() / o.abs().max(1.0));
            }
            obs = step.observation;
            if step.terminated || step.truncated {
                terminations += usize::from(step.terminated);
                break;
            }
        }
    }
    assert_eq!(terminations, 5, "random pushes topple the pole: terminated, not truncated");
    assert!(worst < 2e-5, "largest relative difference from the built-in model {worst}");
    let err = env.step(array![f32::NAN].view()).unwrap_err().to_string();
    assert!(err.contains("gym:CartPole-v1") && err.contains("not finite"), "{err}");
}

#[test]
fn a_mujoco_environment_runs() {
    let mut env = GymEnv::make(config("InvertedPendulum-v5")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((env.obs_dim(), env.action_dim(), env.max_steps()), (4, 1, 1000));
    let first = env.reset(3).unwrap();
    assert_eq!(first, env.reset(3).unwrap());
    let step = env.step(array![0.5f32].view()).unwrap();
    assert_eq!(step.reward, 1.0);
    assert_ne!(step.observation, first);
    let err = env.step(array![3.5f32].view()).unwrap_err();
    let Some(GymError::ActionOutOfSpace { reason, .. }) = err.external::<GymError>() else { panic!("{err}") };
    assert!(reason.contains("entry 0 = 3.5 is outside [-3, 3]"), "{reason}");
}

#[test]
fn dict_observations_are_flattened_and_prints_do_not_corrupt_the_protocol() {
    let mut env = GymEnv::make(scripted("dict")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(env.obs_dim(), 5, "Box(2) and a one-hot Discrete(3)");
    assert_eq!(env.reset(0).unwrap().to_vec(), vec![0.0, 0.0, 1.0, 0.0, 0.0]);
    let step = env.step(array![0.5f32].view()).unwrap();
    assert_eq!(step.observation.to_vec(), vec![0.25, -0.25, 0.0, 1.0, 0.0]);
}

fn step_until_error(mode: &str) -> (GymError, u32) {
    let mut env = GymEnv::make(scripted(mode)).unwrap_or_else(|e| panic!("{e}"));
    let pid = env.pid().expect("running");
    env.reset(0).unwrap();
    for _ in 0..2 {
        env.step(array![0.1f32].view()).unwrap();
    }
    match env.try_step(array![0.1f32].view()) {
        Ok(s) => panic!("{mode}: step 3 succeeded: {s:?}"),
        Err(e) => {
            drop(env);
            (e, pid)
        }
    }
}

#[test]
fn a_hanging_step_times_out_and_the_child_is_killed() {
    let (e, pid) = step_until_error("hang");
    assert!(matches!(e, GymError::Timeout { op: "step", .. }), "{e}");
    assert!(e.to_string().contains("gym:ami_testenvs:AmiScripted-v0") && e.to_string().contains("within 2 s"), "{e}");
    assert!(!alive(pid), "the child is gone");
}

#[test]
fn a_hang_in_a_forked_helper_still_times_out() {
    // The forked helper keeps the reply pipe open: killing the child alone
    // would leave the read blocked; the bridge kills its process group.
    let (e, pid) = step_until_error("fork_hang");
    assert!(matches!(e, GymError::Timeout { op: "step", .. }), "{e}");
    assert!(!alive(pid));
}

#[test]
fn a_crashing_child_is_reported_with_its_status_and_stderr() {
    let (e, pid) = step_until_error("crash");
    let GymError::Exited { status, stderr, .. } = &e else { panic!("{e}") };
    assert!(status.contains('7'), "{status}");
    assert!(stderr.contains("noise on stdout"), "the child's prints went to stderr: {stderr}");
    assert!(!alive(pid));
}

#[test]
fn exceptions_and_non_finite_observations_are_errors() {
    let (e, _) = step_until_error("raise");
    let GymError::Raised { op, message, traceback, .. } = &e else { panic!("{e}") };
    assert_eq!(*op, "step");
    assert!(message.contains("RuntimeError: boom at step 3"), "{message}");
    assert!(traceback.contains("ami_testenvs.py"), "{traceback}");
    let (e, _) = step_until_error("nan");
    assert!(matches!(&e, GymError::NonFinite { what: "observation", .. }), "{e}");
}

#[test]
fn a_killed_child_is_reported_and_later_calls_fail() {
    let mut env = GymEnv::make(config("Pendulum-v1")).unwrap_or_else(|e| panic!("{e}"));
    env.reset(0).unwrap();
    let pid = env.pid().unwrap();
    std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    let e = env.try_step(array![0.0f32].view()).unwrap_err();
    let GymError::Exited { status, .. } = &e else { panic!("{e}") };
    assert!(status.contains("signal: 9"), "{status}");
    assert!(matches!(env.try_step(array![0.0f32].view()).unwrap_err(), GymError::Gone { .. }));
    assert!(!alive(pid));
}

#[test]
fn bad_setups_are_user_input_errors_naming_the_cause() {
    let missing = GymConfig { python: "/nonexistent/python3".into(), ..GymConfig::new("Pendulum-v1") };
    let e = GymEnv::make(missing).err().unwrap();
    assert!(matches!(e, GymError::PythonMissing { .. }) && e.is_user_input(), "{e}");
    assert!(e.to_string().contains("/nonexistent/python3") && e.to_string().contains("AMI_PYTHON"), "{e}");
    // A Python without gymnasium: a fresh venv of the same interpreter.
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("bare");
    let made = std::process::Command::new(python()).args(["-m", "venv", "--without-pip"]).arg(&bare).status().unwrap();
    assert!(made.success());
    let e = GymEnv::make(GymConfig { python: bare.join("bin/python"), ..GymConfig::new("Pendulum-v1") }).err().unwrap();
    assert!(matches!(e, GymError::GymnasiumMissing { .. }) && e.is_user_input(), "{e}");
    assert!(e.to_string().contains("pip install \"gymnasium[mujoco]==1.4.0\"") && e.to_string().contains("bare/bin/python"), "{e}");
    let e = GymEnv::make(config("NoSuchEnv-v9")).err().unwrap();
    assert!(matches!(e, GymError::UnknownId { .. }) && e.is_user_input(), "{e}");
    assert!(e.to_string().contains("gym:NoSuchEnv-v9") && e.to_string().contains("ami envs"), "{e}");
    let mut bad = config("Pendulum-v1");
    bad.kwargs.insert("bogus".into(), 3.into());
    let e = GymEnv::make(bad).err().unwrap();
    assert!(matches!(e, GymError::BadKwargs { .. }) && e.is_user_input(), "{e}");
    assert!(e.to_string().contains("bogus"), "{e}");
    let core: ami_core::CoreError = e.into();
    assert!(core.is_user_input());
    // A module that fails to import is not an unknown id.
    let e = GymEnv::make(config("no_such_module_for_ami:Foo-v0")).err().unwrap();
    assert!(matches!(&e, GymError::Make { message, .. } if message.contains("importing module `no_such_module_for_ami` failed")), "{e}");
}

#[test]
fn several_environments_step_at_once_and_an_error_leaves_none_behind() {
    // Two processes of one copy each, and one process of two copies: a
    // refused action steps no copy in either layout.
    for procs in [2, 1] {
        let mut vec = GymVecEnv::make_in(&config("Pendulum-v1"), 2, procs, &[]).unwrap_or_else(|e| panic!("{e}"));
        let mut single = GymEnv::make(config("Pendulum-v1")).unwrap();
        for i in 0..2 {
            vec.reset(i, Some(i as u64)).unwrap();
        }
        single.reset(0).unwrap();
        let err = vec.step(array![[0.5f32], [f32::NAN]].view()).unwrap_err();
        assert!(matches!(err, GymError::ActionOutOfSpace { .. }), "{err}");
        let steps = vec.step(array![[-1.0f32], [1.0]].view()).unwrap();
        assert_eq!(steps[0], single.step(array![-1.0f32].view()).unwrap(), "{procs} process(es): copy 0 did not step on the refused actions");
        assert_eq!(steps.len(), 2);
        let err = vec.step(array![[0.0f32]].view()).unwrap_err().to_string();
        assert!(err.contains("1 actions for 2 environments"), "{err}");
        let err = vec.reset(2, None).unwrap_err().to_string();
        assert!(err.contains("no copy 2 (there are 2)"), "{err}");
    }
    assert!(GymVecEnv::make_in(&config("Pendulum-v1"), 0, 1, &[]).is_err(), "no empty vector");
}

#[test]
fn copies_in_one_process_step_as_separate_environments_do() {
    // Five copies over two processes (three and two), the second layout
    // pinned to CPUs: every copy's transitions equal a lone environment's
    // given the same seed and actions.
    let last = std::thread::available_parallelism().map_or(1, |c| c.get()) - 1;
    for (procs, cpus) in [(1usize, vec![]), (2, vec![0usize, last])] {
        let mut vec = GymVecEnv::make_in(&config("Pendulum-v1"), 5, procs, &cpus).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((vec.len(), vec.processes()), (5, procs));
        let mut singles: Vec<GymEnv> = (0..5).map(|_| GymEnv::make(config("Pendulum-v1")).unwrap()).collect();
        for (i, s) in singles.iter_mut().enumerate() {
            assert_eq!(vec.reset(i, Some(10 + i as u64)).unwrap(), s.reset(10 + i as u64).unwrap());
        }
        for t in 0..20 {
            let actions = Array2::from_shape_fn((5, 1), |(i, _)| ((t * 5 + i) as f32 * 0.37).sin() * 2.0);
            let steps = vec.step(actions.view()).unwrap();
            for (i, s) in singles.iter_mut().enumerate() {
                assert_eq!(steps[i], s.step(actions.row(i)).unwrap(), "copy {i}, step {t}, {procs} process(es)");
            }
        }
        let pids: Vec<u32> = vec.pids().into_iter().map(Option::unwrap).collect();
        assert!(pids.iter().all(|&p| alive(p)));
        for (p, &cpu) in pids.iter().zip(&cpus) {
            // The child pinned itself where it was asked to.
            let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap();
            let allowed = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).unwrap().trim().to_string();
            assert_eq!(allowed, cpu.to_string(), "process {p}");
        }
        drop(vec);
        assert!(pids.iter().all(|&p| !alive(p)), "dropping the copies ends their processes");
    }
    // An exception in one copy is that copy's error, numbered in the
    // whole vector: copies 0-1 in process 0, 2-3 in process 1; copy 3 is
    // one step ahead of copy 2 and raises first.
    let mut vec = GymVecEnv::make_in(&scripted("raise"), 4, 2, &[]).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..4 {
        vec.reset(i, Some(i as u64)).unwrap();
    }
    let acts = Array2::from_elem((4, 1), 0.1f32);
    vec.step(acts.view()).unwrap();
    for i in [0, 1, 2] {
        vec.reset(i, Some(i as u64)).unwrap();
    }
    let err = (0..3).find_map(|_| vec.step(acts.view()).err()).unwrap();
    assert!(matches!(&err, GymError::Raised { message, .. } if message.contains("copy 3: RuntimeError: boom at step 3")), "{err}");
}

#[test]
fn dropping_the_environment_ends_its_process() {
    let env = GymEnv::make(config("CartPole-v1")).unwrap_or_else(|e| panic!("{e}"));
    let pid = env.pid().unwrap();
    assert!(alive(pid));
    drop(env);
    assert!(!alive(pid));
}

#[test]
fn discrete_spaces_are_finite_sets_of_actions() {
    // Discrete(2) without a table: the indices themselves.
    let env = GymEnv::make(config("CartPole-v1")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(env.action_space(), ActionSpace::Discrete(Choices::indices(2).unwrap()));
    // MultiDiscrete([3, 2], start [1, 0]): every combination, the last
    // entry fastest; the scripted env echoes the action it received.
    let mut cfg = scripted("ok");
    cfg.kwargs.insert("action".into(), "multidiscrete".into());
    let mut env = GymEnv::make(cfg).unwrap_or_else(|e| panic!("{e}"));
    let rows: Vec<Vec<f32>> = [[1, 0], [1, 1], [2, 0], [2, 1], [3, 0], [3, 1]].iter().map(|r| r.iter().map(|&v| v as f32).collect()).collect();
    assert_eq!(env.action_space(), ActionSpace::Discrete(Choices::new(rows.clone()).unwrap()));
    env.reset(0).unwrap();
    for row in &rows {
        let step = env.step(ndarray::ArrayView1::from(row)).unwrap();
        assert_eq!(step.observation.to_vec(), *row, "the env received {row:?}");
    }
    let err = env.step(array![4.0f32, 0.0].view()).unwrap_err().to_string();
    assert!(err.contains("entry 0 = 4 rounds to 4, not one of 1..3"), "{err}");
}

/// plugins/acrobot/gym-acrobot.toml with this test's interpreter and the
/// plugins' build directory.
fn gym_acrobot(edit: impl Fn(String) -> String) -> ami_agents::AgentSource {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("plugins/acrobot/gym-acrobot.toml")).unwrap();
    let text = text
        .replace(r#"search = ["../../target/debug", "../../target/release"]"#, &format!("search = [{:?}]", ami_tests::plugin_dir().display().to_string()))
        .replace(r#"id = "Acrobot-v1","#, &format!(r#"id = "Acrobot-v1", python = {:?},"#, python().display().to_string()));
    ami_agents::AgentSource::Text { text: edit(text), name: "gym-acrobot.toml".into() }
}

#[test]
fn acrobot_v1_swings_up_by_beam_search_on_a_plugin_model() {
    // Gymnasium's Acrobot-v1 has no built-in task: the agent names the
    // acrobot plugin's model and cost, and beam search picks among the
    // three torques. Random torques need about 500 steps (the limit).
    let loaded = ami_agents::load(&gym_acrobot(|t| t), &ami_agents::LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.graph.task.space, ActionSpace::Discrete(Choices::new(vec![vec![-1.0], vec![0.0], vec![1.0]]).unwrap()));
    let mut agent = ami_agents::Agent::from_agent_graph(loaded.graph, ami_graph::ExecutorKind::Sequential).unwrap();
    for seed in 0..2 {
        let r = agent.run_episode(seed, |_| {}).unwrap();
        // -1 a step, 0 on the step that reaches the goal (terminated).
        assert!(r.steps < 250 && r.episode_return == -(r.steps as f64 - 1.0), "seed {seed}: {} in {} steps", r.episode_return, r.steps);
    }
    // Without the model node named, the actor is refused at build time,
    // saying what to name.
    let err = ami_agents::load(&gym_acrobot(|t| t.replace(r#"model = "model", "#, "")), &ami_agents::LoadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("node `actor`") && err.contains("`gym:Acrobot-v1` comes with no world model: name a world_model node"), "{err}");
    // A table of actions only applies to a Discrete space.
    let err = ami_agents::load(&gym_acrobot(|t| t.replace("Acrobot-v1", "Pendulum-v1")), &ami_agents::LoadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("applies to a Discrete action space; gym:Pendulum-v1's is Box"), "{err}");
}

#[test]
fn a_policy_acts_with_the_discrete_space_s_actions() {
    // A linear policy's actions lie in [-1, 1]; on CartPole-v1's two
    // forces the actor emits (and the memory records) the nearest force.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("plugins/acrobot/gym-acrobot.toml")).unwrap();
    let text = text
        .replace(
            r#"[plugins]
search = ["../../target/debug", "../../target/release"]
"#,
            "",
        )
        .replace(
            r#"params = { id = "Acrobot-v1", actions = [[-1.0], [0.0], [1.0]] }"#,
            &format!(r#"params = {{ id = "CartPole-v1", python = {:?} }}"#, python().display().to_string()),
        )
        .replace(r#"implementation = "plugin:acrobot/model""#, r#"implementation = "task""#)
        .replace(r#"implementation = "plugin:acrobot/swingup""#, r#"implementation = "task""#)
        .replace(
            r#"implementation = "beam"
params = { horizon = 20, width = 128, model = "model", cost = "cost" }"#,
            r#"implementation = "policy"
params = { policy = "pi" }

[[nodes]]
name = "pi"
kind = "policy"
implementation = "linear"
params = { gain = [[0.1, 0.5, 3.0, 0.8]], reference = [0.0, 0.0, 0.0, 0.0] }"#,
        );
    let loaded = ami_agents::load(&ami_agents::AgentSource::Text { text: text.clone(), name: "policy.toml".into() }, &ami_agents::LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let mut agent = ami_agents::Agent::from_agent_graph(loaded.graph, ami_graph::ExecutorKind::Sequential).unwrap();
    let mut actions = Vec::new();
    agent
        .run_episode_with(0, |_, exec| {
            if let Some(a) = exec.output("actor", "action").and_then(|v| v.as_vector().map(|a| a[0])) {
                actions.push(a);
            }
        })
        .unwrap();
    assert!(actions.len() > 5 && actions.iter().all(|&a| a == -10.0 || a == 10.0), "{actions:?}");
}
