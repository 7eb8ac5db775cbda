//! `ami` with Gymnasium environments: `--env gym:ID` runs, bad setups exit
//! 2 naming the cause, a crashing environment keeps the memory recorded so
//! far, and no Python process outlives a killed `ami`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The interpreter with gymnasium, as tests/tests/gym.rs finds it.
fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    ami_gym::checkout_python(&root).expect("no Python with gymnasium: run scripts/gym-venv.sh (makes .venv-gym) or set AMI_PYTHON")
}

fn ami() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ami"));
    let scripted = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tests/gym");
    c.env("AMI_PYTHON", python()).env("PYTHONPATH", scripted);
    c
}

/// pendulum.toml on `env` (an environment node's lines), with a small
/// planner and the memory saved to `memory`.
fn agent(env: &str, memory: &Path) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pendulum.toml")).unwrap();
    text.replace("implementation = \"pendulum\"", env)
        .replace("samples = 256", "samples = 16")
        .replace("iterations = 6", "iterations = 1")
        .replace("elites = 24", "elites = 4")
        .replace("horizon = 30", "horizon = 5")
        .replace("params = { capacity = 10000 }", &format!("params = {{ capacity = 10000, save_path = {:?} }}", memory.display().to_string()))
}

#[test]
fn ami_runs_a_gymnasium_environment_and_lists_ids() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gym.toml");
    std::fs::write(&file, agent("implementation = \"gym\"\nparams = { id = \"Pendulum-v1\" }", &dir.path().join("m.bin"))).unwrap();
    let out = ami().args(["run"]).arg(&file).args(["--episodes", "1", "--json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(json["task"], "gym:Pendulum-v1");
    let r = json["returns"][0].as_f64().unwrap();
    assert!(r < 0.0 && r > -2000.0, "{r}");
    let out = ami().args(["envs", "CartPole"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("gym:CartPole-v1") && stdout.contains("Discrete(2)"), "{stdout}");
}

#[test]
fn cartpole_v1_is_planned_over_its_two_discrete_actions() {
    // The default planner for a Discrete space is cem-discrete; beam search
    // works too. Both keep the pole up for the spec's 500 steps.
    for planner in [None, Some("beam")] {
        let mut cmd = ami();
        cmd.args(["run", "--env", "gym:CartPole-v1", "--episodes", "2", "--json"]);
        if let Some(p) = planner {
            cmd.args(["--planner", p]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{planner:?}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(json["planner"], planner.unwrap_or("cem-discrete"));
        assert_eq!(json["returns"], serde_json::json!([500.0, 500.0]), "{planner:?}");
    }
}

#[test]
fn bad_gym_setups_exit_2_naming_the_cause() {
    for (args, needle) in [
        (&["run", "--env", "gym:Pendulum-v1", "--python", "/nonexistent/python3"][..], "/nonexistent/python3"),
        (&["run", "--env", "Pendulum-v1"][..], "is not gym:ID"),
        (&["run", "--env", "gym:Reacher-v5"][..], "no built-in task model and cost"),
        (&["bench", "--env", "gym:NoSuchEnv-v9"][..], "unknown environment id"),
        (&["run", "--env", "gym:CartPole-v1", "--planner", "cem"][..], "`cem` searches a continuous box, but the actions are 2 discrete choices"),
    ] {
        let out = ami().args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: stderr should mention `{needle}`: {err}");
    }
}

#[test]
fn a_crashing_environment_is_an_error_and_the_memory_so_far_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let (file, memory) = (dir.path().join("crash.toml"), dir.path().join("memory.bin"));
    let env = "implementation = \"gym\"\nparams = { id = \"ami_testenvs:AmiScripted-v0\", task = \"pendulum\", kwargs = { mode = \"crash\", obs_dim = 3 } }";
    std::fs::write(&file, agent(env, &memory)).unwrap();
    let out = ami().args(["run"]).arg(&file).args(["--episodes", "1"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("gym:ami_testenvs:AmiScripted-v0: the Python process exited during step (exit status: 7)"), "{err}");
    let saved = ami_core::RingMemory::load(&memory).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ami_core::ShortTermMemory::len(&saved), 2, "the two steps before the crash");
}

/// The children of `pid` (from /proc).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.to_string()) else { continue };
        if rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Whether `pid` runs (a zombie awaiting its reaper does not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| !r.trim_start().starts_with('Z')))
}

#[test]
fn no_python_process_outlives_a_killed_ami() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("long.toml");
    std::fs::write(&file, agent("implementation = \"gym\"\nparams = { id = \"Pendulum-v1\" }", &dir.path().join("m.bin"))).unwrap();
    let mut run = ami().args(["run"]).arg(&file).args(["--episodes", "1000"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let start = Instant::now();
    let python = loop {
        if let Some(&c) = children(run.id()).first() {
            break c;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "ami started no child");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Let it step a while, then kill ami outright (no clean-up runs).
    std::thread::sleep(Duration::from_millis(1500));
    assert!(running(python));
    run.kill().unwrap();
    run.wait().unwrap();
    let start = Instant::now();
    while running(python) {
        assert!(start.elapsed() < Duration::from_secs(5), "Python {python} still runs after ami was killed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ami run FILE ARGS --json`'s last line.
fn run_json(file: &str, args: &[&str]) -> serde_json::Value {
    let out = ami().args(["run", file, "--json"]).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
    assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn the_gymnasium_examples_check_and_learn_from_scratch() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/gym");
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).filter(|n| n.ends_with(".toml")).collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for f in &files {
        let out = ami().args(["check", &format!("examples/gym/{f}")]).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
        assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // Seconds-sized versions of the learning rows (the figures quoted in
    // the README use 10 evaluation seeds): learned from scratch, through
    // the bridge, evaluated on seeds the agent never trained on.
    let v = run_json("examples/gym/cartpole-learn.toml", &["--eval-episodes", "2"]);
    assert_eq!(v["eval"]["returns"], serde_json::json!([500.0, 500.0]), "CartPole-v1 (Discrete), 5 episodes: {v}");
    let v = run_json("examples/gym/inverted-pendulum-learn.toml", &["--eval-episodes", "2"]);
    let steps: f64 = v["returns"].as_array().unwrap().iter().map(|r| r.as_f64().unwrap() + 1.0).sum();
    assert!(steps < 2_000.0, "InvertedPendulum-v5 learned from {steps} steps");
    assert_eq!(v["eval"]["returns"], serde_json::json!([1000.0, 1000.0]), "InvertedPendulum-v5: {v}");
    let v = run_json("examples/gym/reacher-learn.toml", &[]);
    let mean = v["eval"]["mean_return"].as_f64().unwrap();
    assert!(mean > -6.0, "Reacher-v5 after 1,000 steps: mean {mean} over 10 seeds");
}

#[test]
fn bench_spreads_copies_over_processes_and_pins_them() {
    let out = ami().args(["bench", "--env", "gym:CartPole-v1", "--envs", "3", "--processes", "2", "--pin", "--min-time", "0.2", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!((v["envs"].as_u64(), v["processes"].as_u64()), (Some(3), Some(2)));
    assert!(v["steps_per_s"].as_f64().unwrap() > 100.0, "{v}");
}

#[test]
fn copies_of_an_agent_share_out_the_episodes_and_return_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let memory = dir.path().join("m.bin");
    let text = agent("implementation = \"gym\"\nparams = { id = \"Pendulum-v1\" }", &memory);
    let (saving, file) = (dir.path().join("saving.toml"), dir.path().join("gym.toml"));
    std::fs::write(&saving, &text).unwrap();
    std::fs::write(&file, text.replace(&format!(", save_path = {:?}", memory.display().to_string()), "")).unwrap();
    let run = |envs: &str| {
        let out = ami().args(["run"]).arg(&file).args(["--episodes", "5", "--eval-episodes", "2", "--envs", envs, "--json"]).output().unwrap();
        assert!(out.status.success(), "--envs {envs}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
        (v["returns"].clone(), v["eval"]["returns"].clone())
    };
    let one = run("1");
    assert_eq!((one.0.as_array().unwrap().len(), one.1.as_array().unwrap().len()), (5, 2));
    assert_eq!(run("3"), one, "each episode depends on its seed only");
    // Copies would overwrite one memory file, and a learning agent's
    // episodes depend on each other: both are refused.
    let out = ami().args(["run"]).arg(&saving).args(["--envs", "2"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("memory node `memory` saves to a file"), "{err}");
    let out = ami().args(["run", "examples/gym/cartpole-learn.toml", "--envs", "2"]).current_dir(env!("CARGO_MANIFEST_DIR")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("learns (trainer nodes [\"trainer\"])"), "{err}");
}

#[test]
fn pointmaze_runs_through_the_bridge_with_a_level_and_reports_success() {
    // Seconds-sized: 3 exploration episodes (random forces held 10 ticks;
    // too little to fit the models), then one evaluation episode planned
    // by both levels. Gymnasium-Robotics reports `success` in each step's
    // info, and the bridge passes it on.
    let v = run_json("examples/gym/pointmaze-learned-hierarchy.toml", &["--episodes", "3", "--eval-episodes", "1"]);
    let flags = v["success"].as_array().unwrap_or_else(|| panic!("no per-episode success: {v}"));
    assert_eq!(flags.len(), 3, "{v}");
    assert!(flags.iter().all(serde_json::Value::is_boolean), "{v}");
    assert!(v["eval"]["success"][0].is_boolean(), "{v}");
    // The actor alone evaluates 64 x 3 x 25 = 4,800 states a decision; the
    // level, planning towards the goal the observation carries, adds its own.
    assert!(v["eval"]["mean_evaluations_per_decision"].as_f64().unwrap() > 5200.0, "the level and the actor planned: {v}");
}
