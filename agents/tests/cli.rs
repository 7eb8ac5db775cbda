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
        (&["plugin", "new", "9lives"][..], "plugin name `9lives`"),
        (&["plugin", "new", "my-plugin", "--dir", "/nonexistent/x"][..], "plugin name `my-plugin`"),
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

#[test]
fn collect_records_wall_images_with_their_positions_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wall.traj");
    let f = file.to_str().unwrap();
    let out = ami(&["collect", "--trajectories", "4", "--steps", "10", "--seed", "3", "-o", f]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 trajectories of 10 steps (44 frames"), "{}", String::from_utf8_lossy(&out.stdout));
    let (h, ts) = ami_learn::read_trajectories(&file).unwrap();
    assert_eq!((h.obs_dim, h.action_dim, h.diag_dim, ts.len()), (64 * 64, 2, 2, 4));
    assert!(h.description.contains("\"door_y\":0.5"), "{}", h.description);
    // Each image's brightest pixel is where the diagnostic says the agent is.
    for t in &ts {
        for (img, pos) in t.observations.rows().into_iter().zip(t.diagnostics.rows()) {
            let i = img.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
            let (x, y) = ((i % 64) as f32 + 0.5, 64.0 - (i / 64) as f32 - 0.5);
            assert!((x / 64.0 - pos[0]).abs() <= 1.5 / 64.0 && (y / 64.0 - pos[1]).abs() <= 1.5 / 64.0, "pixel ({x}, {y}) vs {pos}");
        }
        // Forces held 5 ticks.
        assert_eq!(t.actions.row(0), t.actions.row(4));
    }
    // A second run without --resume is refused; with it, it adds what an
    // uninterrupted run of 6 would have recorded.
    let out = ami(&["collect", "--trajectories", "6", "--steps", "10", "--seed", "3", "-o", f]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    // Killed mid-write: a partial record at the end.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(&[10, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&file, &bytes).unwrap();
    let out = ami(&["collect", "--trajectories", "6", "--steps", "10", "--seed", "3", "--resume", "-o", f]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let resumed = ami_learn::read_trajectories(&file).unwrap().1;
    let whole = dir.path().join("whole.traj");
    let out = ami(&["collect", "--trajectories", "6", "--steps", "10", "--seed", "3", "-o", whole.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(resumed, ami_learn::read_trajectories(&whole).unwrap().1, "resumed = uninterrupted");
    // Other settings cannot be appended; impossible ones are refused.
    let out = ami(&["collect", "--trajectories", "7", "--steps", "10", "--door-y", "0.3", "--resume", "-o", f]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another task or shape"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ami(&["collect", "--door-width=-1", "-o", dir.path().join("x").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("door_width"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Sizes are checked before anything is allocated or spawned: an absurd
/// count is bad input (exit 2, naming the flag and its range), not a
/// panic, an 8 GB allocation or 100,000 threads.
#[test]
fn absurd_sizes_are_refused_before_running() {
    for (args, needle) in [
        (&["run", "--task", "pendulum", "--episodes", "18446744073709551615"][..], "--episodes"),
        (&["run", "--task", "pendulum", "--episodes", "1000000000"][..], "1..=1000000"),
        (&["run", "--task", "pendulum", "--eval-episodes", "1000000000"][..], "--eval-episodes"),
        (&["bench", "--workload", "w.safetensors", "--planner", "cem", "--threads", "100000"][..], "is not a thread count in 0..=256"),
        (&["bench", "--workload", "w.safetensors", "--planner", "cem", "--min-time", "nan"][..], "is not a number of seconds"),
        (&["bench", "--workload", "w.safetensors", "--planner", "cem", "--min-time", "1e300"][..], "is not a number of seconds"),
    ] {
        let out = ami(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle) && !err.contains("panicked"), "{args:?}: {err}");
    }
}

/// `ami run | head -1`: a closed stdout ends ami quietly (the status of a
/// SIGPIPE, no panic).
#[cfg(unix)]
#[test]
fn a_closed_stdout_ends_ami_quietly() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ami"))
        .args(["run", "--task", "pendulum", "--episodes", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("ami run:"), "{first}");
    // The reader is dropped: the pipe is closed before the episodes print.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
