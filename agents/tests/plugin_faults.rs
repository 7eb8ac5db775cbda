//! Faults keep their words: the testkit's fault-injection modules
//! (`faulty_model`, `faulty_cost`) fail in each way on request, run through
//! `ami run`, and each test asserts the message (once, naming the node and
//! the module), the exit code, and that ami itself survived.

mod common;

use common::{ami, ended, plugin_lib};

/// An agent on the testkit's walk, planning with CEM through `model` under
/// `cost` (TOML inline tables of the faulty modules' parameters).
fn agent(dir: &std::path::Path, model: &str, cost: &str) -> std::path::PathBuf {
    agent_with(dir, model, cost, "")
}

/// [`agent`] with more parameters of the environment node (`extra`, TOML
/// `key = value` pairs after a comma) and a `schedule` configurator that
/// sends the task's goal at tick 0.
fn agent_with(dir: &std::path::Path, model: &str, cost: &str, extra: &str) -> std::path::PathBuf {
    let text = format!(
        r#"[agent]
name = "faults"
seed = 0
episodes = 2

[plugins]
load = ["{lib}"]

[[nodes]]
name = "env"
kind = "environment"
implementation = "plugin:testkit/walk"
params = {{ model = "faulty_model", model_config = {model}, costs = {{ faulty_cost = {cost} }}{extra} }}

[[nodes]]
name = "configurator"
kind = "configurator"
implementation = "schedule"

[[nodes]]
name = "perception"
kind = "perception"
implementation = "identity"

[[nodes]]
name = "actor"
kind = "actor"
implementation = "cem"
params = {{ horizon = 5, samples = 32, iterations = 2, elites = 4 }}

[[nodes]]
name = "cost"
kind = "cost"
implementation = "task"

[[edges]]
from = "env.observation"
to = "perception.observation"

[[edges]]
from = "perception.state"
to = ["actor.state", "cost.state", "configurator.state"]

[[edges]]
from = "configurator.modulation"
to = ["actor.modulation", "cost.modulation"]

[[edges]]
from = "actor.action"
to = ["env.action", "cost.prev_action"]
delayed = true

[[edges]]
from = "perception.state"
to = "cost.prev_state"
delayed = true
"#,
        lib = plugin_lib("testkit").display()
    );
    let path = dir.join("faults.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    how: String,
}

fn run(model: &str, cost: &str, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let file = agent(dir.path(), model, cost);
    let mut args = vec!["run", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = ami(&args);
    Run { code: out.status.code(), stdout: String::from_utf8_lossy(&out.stdout).into(), stderr: String::from_utf8_lossy(&out.stderr).into(), how: ended(&out) }
}

const OK: &str = r#"{ fault = "none" }"#;

#[test]
fn a_module_error_reaches_the_user_once_with_node_module_and_message() {
    for (model, cost, module) in [
        (OK, r#"{ fault = "err", message = "cannot price this batch" }"#, "plugin:testkit/faulty_cost"),
        (r#"{ fault = "err", message = "cannot price this batch" }"#, OK, "plugin:testkit/faulty_model"),
    ] {
        let r = run(model, cost, &[]);
        assert_eq!(r.code, Some(1), "{}: {}", r.how, r.stderr);
        let want = format!("node `actor` failed at tick 0: module `{module}`: cannot price this batch");
        assert!(r.stderr.contains(&want), "{}", r.stderr);
        assert_eq!(r.stderr.matches("cannot price this batch").count(), 1, "said once: {}", r.stderr);
        assert!(!r.stderr.contains("non-finite"), "not hidden behind a NaN count: {}", r.stderr);
    }
}

#[test]
fn nan_in_some_rows_is_skipped_warned_once_per_episode_and_counted() {
    for (model, cost, source) in
        [(OK, r#"{ fault = "nan_rows", every = 3 }"#, "cost term `faulty_cost`"), (r#"{ fault = "nan_rows", every = 4 }"#, OK, "the world model")]
    {
        let r = run(model, cost, &["--json"]);
        assert_eq!(r.code, Some(0), "{}: {}", r.how, r.stderr);
        let warning = format!("planning skipped samples with non-finite energy at tick 0 (episode seed 0), from {source}");
        assert!(r.stderr.contains(&warning), "{}", r.stderr);
        assert_eq!(r.stderr.matches("planning skipped samples").count(), 2, "once per episode (2 episodes): {}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
        let counts = v["non_finite"].as_object().unwrap_or_else(|| panic!("non_finite in {v}"));
        assert_eq!(counts.keys().collect::<Vec<_>>(), vec![source], "{v}");
        assert!(counts[source].as_u64().unwrap() > 0, "{v}");
    }
    // Without faults the count is there, and empty.
    let r = run(OK, OK, &["--json"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["non_finite"], serde_json::json!({}));
    assert!(!r.stderr.contains("WARN"), "{}", r.stderr);
}

#[test]
fn nan_in_every_row_fails_naming_the_module() {
    for (model, cost, source) in [(OK, r#"{ fault = "nan_all" }"#, "cost term `faulty_cost`"), (r#"{ fault = "nan_all" }"#, OK, "the world model")] {
        let r = run(model, cost, &[]);
        assert_eq!(r.code, Some(1), "{}: {}", r.how, r.stderr);
        let want = format!("node `actor` failed at tick 0: planner `cem`: all 32 samples had non-finite energy (NaN/inf from {source} (");
        assert!(r.stderr.contains(&want), "{}", r.stderr);
        assert_eq!(r.stderr.matches("all 32 samples").count(), 1, "{}", r.stderr);
    }
}

#[test]
fn a_panicking_module_is_contained_and_named() {
    for (model, cost, module) in [(OK, r#"{ fault = "panic", after = 3 }"#, "faulty_cost"), (r#"{ fault = "panic", after = 3 }"#, OK, "faulty_model")] {
        let r = run(model, cost, &[]);
        assert_eq!(r.code, Some(1), "ami survives the panic and reports it ({}): {}", r.how, r.stderr);
        let want = format!("plugin `testkit` module `{module}` panicked: deliberate panic in a faulty module; the module is poisoned");
        assert!(r.stderr.contains(&want), "{}", r.stderr);
        assert!(r.stderr.contains("node `actor` failed at tick"), "{}", r.stderr);
    }
}

#[test]
fn a_model_of_the_wrong_width_and_a_slow_one() {
    // A world model whose state is wider than the environment's observation
    // is refused when the agent is built: exit 2, naming the node.
    let r = run(r#"{ fault = "wide" }"#, OK, &[]);
    assert_eq!(r.code, Some(2), "{}: {}", r.how, r.stderr);
    assert!(r.stderr.contains("faults.toml") && r.stderr.contains("width"), "{}", r.stderr);
    // A slow module slows the run; it does not break it.
    let r = run(r#"{ fault = "slow", sleep_ms = 1, after = 100 }"#, OK, &["--episodes", "1"]);
    assert_eq!(r.code, Some(0), "{}: {}", r.how, r.stderr);
}

#[test]
fn a_plugin_task_declares_its_goal_and_inspect_checks_widths() {
    // The walk declares `goal = [0.0]`: the cost draws x from 1 + seed to 0.
    // Given in the file, the goal moves: the agent walks to x = 3.
    let dir = tempfile::tempdir().unwrap();
    for (extra, goal) in [("", 0.0f64), (", goal = [3.0]", 3.0)] {
        let file = agent_with(dir.path(), OK, OK, extra);
        let trace = dir.path().join("trace.json");
        let out = ami(&["run", file.to_str().unwrap(), "--episodes", "1", "--trace", trace.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let t: serde_json::Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
        let path = t["episodes"][0]["path"].as_array().unwrap_or_else(|| panic!("{t}"));
        let x = path.last().unwrap()[0].as_f64().unwrap();
        assert!((x - goal).abs() < 0.2, "goal {goal}: the walk ends at {x}");
    }
    // A goal of the wrong width is refused when the agent is built.
    let file = agent_with(dir.path(), OK, OK, ", goal = [1.0, 2.0]");
    let out = ami(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a goal of width 2 for states of width 1"), "{}", String::from_utf8_lossy(&out.stderr));
    // `plugin inspect` notices world models whose action width differs
    // from the environment's.
    let out = ami(&["plugin", "inspect", "--json", plugin_lib("testkit").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m: Vec<&str> = v["width_mismatches"].as_array().unwrap().iter().filter_map(|x| x.as_str()).collect();
    assert!(m.contains(&"world model `shift` takes actions of width 2, environment `walk` gives 1"), "{m:?}");
    assert!(!m.iter().any(|s| s.contains("faulty_model")), "{m:?}");
}
