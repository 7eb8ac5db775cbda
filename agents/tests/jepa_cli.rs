//! The JEPA-from-pixels loop through the `ami` binary, seconds-sized:
//! `ami collect` a few wall-task trajectories, `ami train --jepa` a small
//! JEPA on them, plan with it from an agent file; and the errors each step
//! gives on bad input (exit 2, naming the file, node or field). The
//! minutes-long run that reaches the goal images is the README's.

use std::path::Path;
use std::process::Command;

use ami_core::Modulation;

fn ami(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ami")).current_dir(env!("CARGO_MANIFEST_DIR")).args(args).output().expect("run ami")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The example agent file with `load` pointing at `model` and a small
/// planner, `max_steps` steps an episode.
fn agent_file(model: &Path, max_steps: u32) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/wall-jepa.toml")).unwrap();
    let text = text.replace("models/wall-jepa.safetensors", &model.display().to_string().replace('\\', "/"));
    let text = text.replace("max_steps = 100", &format!("max_steps = {max_steps}"));
    text.replace("horizon = 20", "horizon = 5").replace("samples = 256", "samples = 32").replace("elites = 24", "elites = 4")
}

#[test]
fn collect_train_and_plan_with_a_jepa() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("w.trj");
    let data_s = data.to_str().unwrap();
    let out = ami(&["collect", "--trajectories", "8", "--steps", "11", "--seed", "5", "-o", data_s]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (header, trajs) = ami_learn::read_trajectories(&data).unwrap();
    assert_eq!((header.obs_dim, header.action_dim, trajs.len()), (64 * 64, 2, 8));
    assert!(trajs.iter().all(|t| t.observations.nrows() == 12 && t.actions.nrows() == 11));
    // A second collection into the same file is refused, not appended.
    let again = ami(&["collect", "--trajectories", "8", "--steps", "11", "-o", data_s]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("exists: pass --resume"), "{}", stderr(&again));

    let model = dir.path().join("m.safetensors");
    let train = |threads: &str, out: &Path| {
        ami(&[
            "train",
            "--jepa",
            data_s,
            "-o",
            out.to_str().unwrap(),
            "--epochs",
            "3",
            "--batch",
            "8",
            "--channels",
            "4,8",
            "--embed",
            "4",
            "--predictor",
            "32",
            "--probe-frames",
            "64",
            "--threads",
            threads,
            "--json",
        ])
    };
    let out = train("1", &model);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let curve = v["curve"].as_array().unwrap();
    assert_eq!(curve.len(), 3);
    for e in curve {
        for k in ["prediction", "heldout_error", "std_min", "effective_rank"] {
            assert!(e[k].as_f64().unwrap().is_finite(), "{k}: {e}");
        }
    }
    let at = |i: usize, k: &str| curve[i][k].as_f64().unwrap();
    let (first, last) = (at(0, "prediction") + at(0, "regulariser"), at(2, "prediction") + at(2, "regulariser"));
    assert!(last < first, "the training loss should fall: {first} -> {last}");
    assert!(at(2, "heldout_error") < at(0, "heldout_error"), "the held-out error should fall: {curve:?}");
    // VICReg spreads the embedding out from its small initial scale.
    assert!(at(2, "std_min") > at(0, "std_min"), "{curve:?}");
    // The weights do not depend on the thread count.
    let model2 = dir.path().join("m2.safetensors");
    let out = train("2", &model2);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read(&model).unwrap() == std::fs::read(&model2).unwrap(), "1 and 2 threads should train the same weights, the same file");
    let jepa = ami_learn::Jepa::load(&model).unwrap();
    assert_eq!(jepa.encoder.spec().embed, 4);

    // Plan with it from an agent file.
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, agent_file(&model, 4)).unwrap();
    let trace = dir.path().join("trace.json");
    let out = ami(&["run", file.to_str().unwrap(), "--episodes", "2", "--json", "--trace", trace.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["agent"], "wall-jepa");
    assert_eq!(v["episodes"], 2);
    // The trace: the walls read off the images (the wall's column, the
    // door's gap), the true path and the latent path decoded by a probe.
    let t: serde_json::Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    assert_eq!(t["scale"], 64.0);
    let rows: Vec<&str> = t["maze"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(rows.len(), 64);
    let walls = |r: &str| r.char_indices().filter(|&(_, c)| c == '#').map(|(i, _)| i).collect::<Vec<_>>();
    // wall_x 0.5, wall_width 0.06: columns 30..=33; the door (y 0.4..0.6)
    // is rows 26..=37, free.
    assert_eq!(walls(rows[5]), vec![30, 31, 32, 33], "{}", rows[5]);
    assert!(walls(rows[32]).is_empty(), "{}", rows[32]);
    for e in t["episodes"].as_array().unwrap() {
        let (path, decoded) = (e["path"].as_array().unwrap(), e["decoded"].as_array().unwrap());
        assert_eq!(path.len(), decoded.len());
        assert!(path.len() >= 4);
    }
    let r2 = t["probe_r2"].as_array().unwrap();
    assert!(r2.iter().all(|v| v.as_f64().unwrap() <= 1.0), "{r2:?}");
    let png = dir.path().join("trace.png");
    let out = ami(&["plot", trace.to_str().unwrap(), "-o", png.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));

    // The perception passes the goal image on encoded: the cost and the
    // configurator see the goal in the embedding space.
    let graph = ami_agents::load_file(&file).unwrap();
    let mut agent = ami_agents::Agent::from_agent_graph(graph, ami_graph::ExecutorKind::Sequential).unwrap();
    let mut checked = 0;
    agent
        .run_episode_with(7, |_, exec| {
            let goal_of = |node: &str, port: &str| -> Option<Vec<f32>> {
                exec.output(node, port)?.as_modulations()?.iter().find_map(|m| match m {
                    Modulation::Goal(Some(g)) => Some(g.clone()),
                    _ => None,
                })
            };
            if let (Some(image), Some(z)) = (goal_of("env", "goal"), goal_of("perception", "goal")) {
                assert_eq!(image.len(), 64 * 64);
                let want = jepa.encode(ndarray::ArrayView2::from_shape((1, image.len()), &image).unwrap()).unwrap();
                assert_eq!(z.len(), 4);
                for (a, b) in z.iter().zip(want.row(0)) {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{z:?} vs {want:?}");
                }
                checked += 1;
            }
        })
        .unwrap();
    assert!(checked > 0, "the environment never sent a goal image");

    // A JEPA whose encoder does not read the environment's observations.
    let wrong = dir.path().join("pendulum.toml");
    let text = agent_file(&model, 4)
        .replace("implementation = \"wall\"", "implementation = \"pendulum\"")
        .replace("params = { door_y = 0.5, door_width = 0.2, wall_x = 0.5, pairs = \"rooms\", max_steps = 4 }", "");
    std::fs::write(&wrong, text).unwrap();
    let out = ami(&["check", wrong.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("node `perception`") && err.contains("the encoder reads images of 4096 values"), "{err}");
}

#[test]
fn bad_jepa_inputs_exit_2_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    // A dataset that is not there.
    let out = ami(&["train", "--jepa", "no/such.trj", "-o", dir.path().join("m.safetensors").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot use the dataset") && stderr(&out).contains("no/such.trj"), "{}", stderr(&out));
    // Not a dataset.
    let junk = dir.path().join("junk.trj");
    std::fs::write(&junk, b"not a dataset at all").unwrap();
    let out = ami(&["train", "--jepa", junk.to_str().unwrap(), "-o", dir.path().join("m.safetensors").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot use the dataset"), "{}", stderr(&out));
    assert!(!dir.path().join("m.safetensors").exists(), "nothing is written on bad input");
    // A model file that is not a JEPA.
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, agent_file(&junk, 4)).unwrap();
    let out = ami(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("node `perception`") && stderr(&out).contains("junk.trj"), "{}", stderr(&out));
    // Both cost weights.
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/models/wall-jepa.safetensors");
    std::fs::write(&file, agent_file(&model, 4).replace("state_weight = 1.0", "state_weight = 1.0, state_weights = [1.0, 1.0]")).unwrap();
    let out = ami(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("node `cost`") && stderr(&out).contains("give `state_weights` or `state_weight`, not both"), "{}", stderr(&out));
    // The wall's parameters: a step that could jump the wall; a fixed start
    // inside it.
    for (params, needle) in [
        ("step_size = 0.1, wall_width = 0.06", "must be below wall_width (0.06) or a step could jump the wall, got 0.1"),
        ("pairs = \"fixed\", start = [0.5, 0.9], goal = [0.9, 0.1]", "[0.5, 0.9] is inside a wall or outside the arena"),
    ] {
        let text = agent_file(&model, 4)
            .replace("params = { door_y = 0.5, door_width = 0.2, wall_x = 0.5, pairs = \"rooms\", max_steps = 4 }", &format!("params = {{ {params} }}"));
        std::fs::write(&file, text).unwrap();
        let out = ami(&["check", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{params}");
        assert!(stderr(&out).contains("node `env`") && stderr(&out).contains(needle), "{params}: {}", stderr(&out));
    }
}
