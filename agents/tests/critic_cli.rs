//! A learned critic through the command line: an agent saves its memory
//! and its critic, `ami train --critic` fits one offline from that memory,
//! and agent files load either; wrong inputs exit 2 naming what is wrong.

use std::path::Path;
use std::process::Command;

fn ami(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ami")).args(args).output().expect("run ami")
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// pendulum-critic.toml cut to seconds, saving its memory and critic.
fn small_agent(dir: &Path) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pendulum-critic.toml");
    std::fs::read_to_string(src)
        .unwrap()
        .replace("eval_episodes = 10", "eval_episodes = 0")
        .replace("samples = 256", "samples = 16")
        .replace("iterations = 6", "iterations = 1")
        .replace("elites = 24", "elites = 4")
        .replace("epochs = 20", "epochs = 2\nsave_path = \"critic.safetensors\"")
        .replace("rounds = 5", "rounds = 1")
        .replace("params = { capacity = 100000 }", &format!("params = {{ capacity = 100000, save_path = {:?} }}", dir.join("memory.bin").display().to_string()))
}

#[test]
fn critics_are_saved_trained_offline_and_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let agent = dir.path().join("critic.toml");
    std::fs::write(&agent, small_agent(dir.path())).unwrap();
    let out = ami(&["run", agent.to_str().unwrap(), "--episodes", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(dir.path().join("memory.bin").is_file() && dir.path().join("critic.safetensors").is_file(), "{}", text(&out));

    // Offline, from the saved memory.
    let mem = dir.path().join("memory.bin");
    let offline = dir.path().join("offline.safetensors");
    let out = ami(&[
        "train",
        "--critic",
        "--memory",
        mem.to_str().unwrap(),
        "-o",
        offline.to_str().unwrap(),
        "--width",
        "16",
        "--layers",
        "1",
        "--epochs",
        "3",
        "--rounds",
        "2",
        "--threads",
        "1",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["transitions"], 400, "{v}");
    assert_eq!(v["rounds"], 2, "{v}");
    assert!(v["mean_value"].as_f64().unwrap().is_finite() && v["mean_value"].as_f64().unwrap() > 0.0, "costs are positive, so is their sum to come: {v}");

    // Either file loads as the critic of an agent.
    for file in ["critic.safetensors", "offline.safetensors"] {
        let loaded = small_agent(dir.path()).replace("params = { width = 64, layers = 2 }", &format!("params = {{ load = {file:?} }}"));
        std::fs::write(&agent, loaded).unwrap();
        let out = ami(&["check", agent.to_str().unwrap()]);
        assert!(out.status.success(), "{file}: {}", text(&out));
    }
    // A world model's weights are not a critic.
    let model = dir.path().join("model.safetensors");
    let out =
        ami(&["train", "--memory", mem.to_str().unwrap(), "-o", model.to_str().unwrap(), "--width", "8", "--layers", "1", "--epochs", "1", "--threads", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(&agent, small_agent(dir.path()).replace("params = { width = 64, layers = 2 }", "params = { load = \"model.safetensors\" }")).unwrap();
    let out = ami(&["check", agent.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("model.safetensors") && text(&out).contains("one output"), "{}", text(&out));
    // --critic trains one deterministic network.
    let out = ami(&["train", "--critic", "--memory", mem.to_str().unwrap(), "-o", offline.to_str().unwrap(), "--members", "3"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--members"), "{}", text(&out));
}
