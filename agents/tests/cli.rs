//! The `ami` binary: default run, JSON output, and bad arguments.

use std::process::Command;

fn ami(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ami")).args(args).output().expect("run ami")
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    for (args, needle) in [
        (&["run", "--task", "moon"][..], "moon"),
        (&["run", "--planner", "ilqr"][..], "ilqr"),
        (&["run", "--episodes", "0"][..], "episodes"),
        (&["run", "--episodes", "many"][..], "many"),
        (&["run", "--frobnicate"][..], "frobnicate"),
        (&["fly"][..], "fly"),
    ] {
        let out = ami(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: stderr should mention `{needle}`: {err}");
    }
}

#[test]
fn json_output_has_the_documented_fields() {
    let out = ami(&["run", "--task", "cartpole", "--episodes", "2", "--seed", "5", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().expect("output");
    let v: serde_json::Value = serde_json::from_str(last).expect("last line is JSON");
    assert_eq!(v["task"], "cartpole");
    assert_eq!(v["planner"], "cem");
    assert_eq!(v["episodes"], 2);
    assert_eq!(v["seeds"], serde_json::json!([5, 6]));
    let returns = v["returns"].as_array().unwrap();
    assert_eq!(returns.len(), 2);
    for r in returns {
        assert_eq!(r.as_f64(), Some(500.0), "the pole stays up for 500 steps");
    }
    assert_eq!(v["mean_return"].as_f64(), Some(500.0));
    assert!(v["mean_plan_ms"].as_f64().unwrap() > 0.0);
}

#[test]
fn every_registered_planner_runs_from_the_command_line() {
    for planner in ["cem", "mppi", "gd"] {
        let out = ami(&["run", "--task", "pointmass", "--planner", planner, "--episodes", "1", "--json"]);
        assert!(out.status.success(), "{planner}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).unwrap();
        let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(v["planner"], planner);
        assert!(v["mean_return"].as_f64().unwrap() > -60.0, "{planner}: {v}");
    }
    // An unknown planner is refused by name, listing the registered ones.
    let err = String::from_utf8_lossy(&ami(&["run", "--planner", "ilqr"]).stderr).to_string();
    assert!(err.contains("unknown planner `ilqr` (registered: cem, mppi, gd, cem-discrete, beam)"), "{err}");
    // The discrete planners refuse the built-in tasks' continuous forces
    // (they run on Discrete spaces: tests/gym_cli.rs).
    for planner in ["cem-discrete", "beam"] {
        let out = ami(&["run", "--task", "pointmass", "--planner", planner, "--episodes", "1"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{planner}: {err}");
        assert!(err.contains(&format!("`{planner}` searches a finite set of actions, but the actions are a continuous box")), "{err}");
    }
}

#[test]
fn the_maze_task_runs_and_refuses_bad_mazes() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/maze.toml")).unwrap();
    let run = |text: &str| {
        let file = dir.path().join("maze.toml");
        std::fs::write(&file, text).unwrap();
        ami(&["run", file.to_str().unwrap(), "--json"])
    };
    // A goal down the same corridor is reached (terminated: fewer steps
    // than the limit); flat CEM on the far arm of the U stalls under the
    // wall for all 400 steps.
    let json = |out: std::process::Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap()
    };
    let near = json(run(&example.replace("goal = [1.5, 3.5]", "goal = [3.5, 1.5]")));
    let near_return = near["returns"][0].as_f64().unwrap();
    assert!(near_return > -60.0, "reached the goal 2 cells away: {near}");
    let far = json(run(&example));
    assert!(far["returns"][0].as_f64().unwrap() < -400.0, "flat planning does not find the way round: {far}");
    // Bad mazes and points are input errors naming the cause.
    std::fs::write(dir.path().join("bad.txt"), "###\n#.x\n###\n").unwrap();
    for (from, to, needle) in [
        ("maze = \"u-maze\"", "maze = \"no-such-maze\"", "`no-such-maze` is neither a built-in maze"),
        ("maze = \"u-maze\"", "maze = \"bad.txt\"", "bad.txt:2:3: `x` is not a maze cell"),
        ("start = [1.5, 1.5]", "start = [0.5, 0.5]", "start (0.5, 0.5) is not in a free cell of maze `u-maze`"),
    ] {
        let out = run(&example.replace(from, to));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(needle), "{to}: {err}");
    }
}
