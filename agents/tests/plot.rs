//! `ami plot`: learning curves as PNG and SVG from `ami run --json` output,
//! several runs overlaid, and bad input refused with exit code 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn ami(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ami")).args(args).output().expect("run ami")
}

/// Runs `ami`, killing it after `secs` seconds (a stalled plot fails the test).
fn ami_within(args: &[&str], secs: u64) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ami")).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run ami");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > Duration::from_secs(secs) {
            child.kill().expect("kill");
            panic!("ami {args:?} ran past {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A learning run as `ami run --json` writes it: explore then plan episodes,
/// losses from episode 1 on (null before the first fit), evaluations after 2
/// and after all 6 episodes (one return NaN, written as null).
fn learning_run(agent: &str, offset: f64) -> String {
    let mut episodes = Vec::new();
    let mut returns = Vec::new();
    for i in 0..6u32 {
        let ret = -1400.0 + 200.0 * f64::from(i) + offset;
        returns.push(ret);
        let phase = if i < 2 { "explore" } else { "plan" };
        let (model_loss, val_loss) = if i == 0 { (None, None) } else { (Some(1.0 / f64::from(i * i)), Some(1.5 / f64::from(i))) };
        episodes.push(serde_json::json!({
            "episode": i, "seed": i, "phase": phase, "return": ret, "steps": 200,
            "experience": 200 * (i + 1), "model_loss": model_loss, "val_loss": val_loss, "val_mse": val_loss,
            "train_ms": model_loss.map(|_| 50.0),
        }));
    }
    serde_json::json!({
        "agent": agent, "task": "pendulum", "planner": "cem", "executor": "sequential",
        "episodes": 6, "seeds": [0, 1, 2, 3, 4, 5], "returns": returns,
        "learning": { "episodes": episodes },
        "eval": [
            { "seeds": [100, 101, 102], "returns": [-900.0 + offset, -700.0 + offset, -800.0 + offset], "mean_return": -800.0 + offset, "after_episode": 2 },
            { "seeds": [100, 101, 102], "returns": [-300.0 + offset, -150.0 + offset, null], "mean_return": -225.0 + offset, "after_episode": 6 },
        ],
    })
    .to_string()
}

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }
    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG magic bytes");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// The number of points of each `<polyline>` in an SVG.
fn polylines(svg: &str) -> Vec<usize> {
    svg.split("<polyline").skip(1).map(|p| p.split("points=\"").nth(1).unwrap().split('"').next().unwrap().split_whitespace().count()).collect()
}

#[test]
fn a_learning_run_draws_as_png_and_svg() {
    let d = Dir::new();
    let run = d.file("run.json", &learning_run("pendulum-pets", 0.0));

    let png = d.path("curve.png");
    let out = ami(&["plot", path(&run), "-o", path(&png), "--target", "-200"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("wrote {} (900x700)", png.display()));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(png_size(&bytes), (900, 700));
    assert!(bytes.len() > 10_000, "a drawn 900x700 plot, not a blank image: {} bytes", bytes.len());

    // The embedded font draws text into the bitmap: another title, other pixels.
    let png2 = d.path("other.png");
    let out = ami(&["plot", path(&run), "-o", path(&png2), "--target", "-200", "--title", "another title"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_ne!(std::fs::read(&png2).unwrap(), bytes, "the title is drawn");

    let svg_path = d.path("curve.svg");
    let out = ami(&["plot", path(&run), "-o", path(&svg_path), "--width", "1200", "--height", "800"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("(1200x800)"));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("width=\"1200\"") && svg.contains("height=\"800\""), "{}", &svg[..200.min(svg.len())]);
    assert!(svg.contains("pendulum-pets / pendulum / cem"), "the title");
    for label in ["episode", "return", "model loss", "val loss", "explore", "plan", "eval mean (min..max)"] {
        assert!(svg.contains(&format!(">{label}")) || svg.contains(label), "SVG should contain `{label}`");
    }
    let lines = polylines(&svg);
    assert!(lines.contains(&6), "the returns' line through the 6 episodes: {lines:?}");
    assert!(lines.contains(&5), "the model loss line through the 5 episodes with a loss: {lines:?}");
    assert!(svg.matches("<circle").count() >= 6 + 5 + 5, "a marker per episode and per loss value");
}

#[test]
fn experience_on_the_x_axis() {
    let d = Dir::new();
    let run = d.file("run.json", &learning_run("pets", 0.0));
    let svg_path = d.path("x.svg");
    let out = ami(&["plot", path(&run), "--x", "experience", "-o", path(&svg_path)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains("experience (steps)"));

    // A plain planning run has no experience to plot against.
    let plain = d.file("plain.json", r#"{"task":"pendulum","returns":[-150.0,-160.0]}"#);
    let out = ami(&["plot", path(&plain), "--x", "experience", "-o", path(&d.path("p.svg"))]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("plain.json") && text(&out.stderr).contains("experience"), "{}", text(&out.stderr));
}

#[test]
fn a_plain_run_plots_its_returns_and_skips_non_finite_ones() {
    let d = Dir::new();
    // The whole stdout of `ami run --json`: the JSON is the last line starting with `{`.
    let stdout = "ami run: agent pendulum, task pendulum, planner cem, executor sequential, 4 episode(s), seeds 0..3\n\
                  episode seed   0: return   -150.000  steps  200  plan 3.00 ms/step\n\
                  mean return over 4 episode(s): nan\n\
                  {\"agent\":\"pendulum\",\"task\":\"pendulum\",\"planner\":\"mppi\",\"returns\":[-150.0,null,-140.0,-130.0],\"seeds\":[0,1,2,3]}\n";
    let run = d.file("stdout.txt", stdout);
    let svg_path = d.path("plain.svg");
    let out = ami(&["plot", path(&run), "-o", path(&svg_path)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("skipped 1 non-finite"), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains("pendulum / pendulum / mppi"));
    assert!(!svg.contains("model loss"), "no loss panel without losses");
    assert!(polylines(&svg).contains(&3), "a line through the 3 finite returns: {:?}", polylines(&svg));

    // The default output: the input with the extension .png.
    let out = ami(&["plot", path(&run)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(png_size(&std::fs::read(d.path("stdout.png")).unwrap()), (900, 700));
}

#[test]
fn extreme_values_are_skipped_and_never_stall_the_axes() {
    let d = Dir::new();
    let run = d.file(
        "extreme.json",
        r#"{"returns":[1e308,-1e308,1.0,2.0,3.0],"learning":{"episodes":[
            {"return":1e308,"model_loss":1e-300,"steps":10},{"return":-1e308,"model_loss":1e300,"steps":10},
            {"return":1.0,"model_loss":"NaN","val_loss":-1.0,"steps":10},{"return":2.0,"model_loss":0.5,"steps":10},
            {"return":3.0,"model_loss":0.25,"val_loss":0.0,"steps":10}]},
            "eval":{"returns":[1e308,2.0],"after_episode":1e308}}"#,
    );
    for out_name in ["extreme.svg", "extreme.png"] {
        let out = ami_within(&["plot", path(&run), "-o", path(&d.path(out_name)), "--x", "experience"], 30);
        let err = text(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("skipped 2 non-finite (or beyond ±1e300) return(s) (episode 0, 1)"), "{err}");
        assert!(err.contains("loss value(s) outside 1e-100..1e100"), "{err}");
    }
    let svg = std::fs::read_to_string(d.path("extreme.svg")).unwrap();
    assert!(polylines(&svg).contains(&3), "the 3 drawable returns: {:?}", polylines(&svg));
    let out = ami(&["plot", path(&run), "--target", "1e308", "-o", path(&d.path("t.svg"))]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn the_output_of_ami_run_json_plots() {
    let d = Dir::new();
    let out = ami(&["run", "--task", "pointmass", "--episodes", "2", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run = d.file("pointmass.txt", &text(&out.stdout));
    let png = d.path("pointmass.png");
    let out = ami(&["plot", path(&run), "-o", path(&png), "--width", "400", "--height", "300"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(png_size(&std::fs::read(&png).unwrap()), (400, 300));
}

#[test]
fn two_runs_overlay_with_their_labels() {
    let d = Dir::new();
    let a = d.file("single.json", &learning_run("pets-single", 0.0));
    let b = d.file("ensemble.json", &learning_run("pets-ensemble", 150.0));
    let svg_path = d.path("cmp.svg");
    let out = ami(&["plot", path(&a), path(&b), "--label", "one model", "--label", "five models", "-o", path(&svg_path)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains(">one model<") || svg.contains("one model"), "legend label 1");
    assert!(svg.contains("five models"), "legend label 2");
    assert!(svg.contains("pets-single vs pets-ensemble / pendulum / cem"), "the title names both agents");
    assert_eq!(polylines(&svg).iter().filter(|&&n| n == 6).count(), 2, "a returns line per run: {:?}", polylines(&svg));

    // Without labels, the legend names the runs by their file stems; PNG too.
    let svg_path = d.path("cmp2.svg");
    let out = ami(&["plot", path(&a), path(&b), "-o", path(&svg_path)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains("single") && svg.contains("ensemble"));
    let png = d.path("cmp.png");
    let out = ami(&["plot", path(&a), path(&b), "-o", path(&png)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(png_size(&std::fs::read(&png).unwrap()), (900, 700));
}

#[test]
fn bad_input_exits_2_naming_the_file() {
    let d = Dir::new();
    let good = d.file("good.json", r#"{"returns":[1.0,2.0]}"#);
    let bad_json = d.file("bad.json", "{\"returns\": [1, 2\n");
    let no_returns = d.file("noreturns.json", r#"{"agent":"a","task":"t","mean_return":3.0}"#);
    let not_object = d.file("array.json", "[1, 2, 3]");
    let nan_only = d.file("nan.json", r#"{"returns":[null,null]}"#);
    let json_named_png = d.file("run.png", r#"{"returns":[1.0]}"#);
    let missing = d.path("missing.json");
    let no_dir = d.path("no/such/dir/c.png");
    let out_svg = d.path("out.svg");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec![path(&missing), "-o", path(&out_svg)], vec!["missing.json", "cannot read"]),
        (vec![path(&bad_json), "-o", path(&out_svg)], vec!["bad.json", "JSON"]),
        (vec![path(&no_returns), "-o", path(&out_svg)], vec!["noreturns.json", "`returns`"]),
        (vec![path(&not_object), "-o", path(&out_svg)], vec!["array.json", "not an object"]),
        (vec![path(&nan_only), "-o", path(&out_svg)], vec!["nan.json", "nothing to plot"]),
        (vec![path(&good), "-o", "curve.jpg"], vec!["curve.jpg", ".png or .svg"]),
        (vec![path(&good), "-o", "curve"], vec!["curve", ".png or .svg"]),
        (vec![path(&good), "-o", path(&no_dir)], vec!["no/such/dir", "does not exist"]),
        (vec![path(&json_named_png)], vec!["run.png", "one of the input files"]),
        (vec![path(&good), "--label", "a", "--label", "b", "-o", path(&out_svg)], vec!["label"]),
        (vec![path(&good), "--width", "10", "-o", path(&out_svg)], vec!["10"]),
        (vec![path(&good), "--target", "nan", "-o", path(&out_svg)], vec!["nan"]),
        (vec![path(&good), "--x", "time", "-o", path(&out_svg)], vec!["time"]),
    ];
    for (args, needles) in cases {
        let mut all = vec!["plot"];
        all.extend(&args);
        let out = ami(&all);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        for needle in needles {
            assert!(err.contains(needle), "{args:?}: stderr should mention `{needle}`: {err}");
        }
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert!(!out_svg.exists(), "nothing is written on bad input");
    assert_eq!(std::fs::read_to_string(&json_named_png).unwrap(), r#"{"returns":[1.0]}"#, "an input is never overwritten");
}

#[test]
fn a_maze_trace_draws_the_maze_the_paths_and_the_subgoals() {
    let d = Dir::new();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/maze-wall.toml");
    let trace = d.path("trace.json");
    let out = ami(&["run", path(&example), "--episodes", "1", "--trace", path(&trace)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&trace).unwrap()).unwrap();
    let ep = &v["episodes"][0];
    let steps = ep["path"].as_array().unwrap().len();
    assert!(steps > 100, "one point a tick: {steps}");
    assert_eq!(v["maze"].as_array().unwrap().len(), 11, "the maze's rows");
    assert_eq!(ep["goal"], serde_json::json!([8.5, 7.5, 0.0, 0.0]));
    let subgoals = ep["levels"]["high"]["subgoals"].as_array().unwrap().len();
    assert!(subgoals >= 3 && !ep["levels"]["high"]["avoided"].as_array().unwrap().is_empty(), "{ep}");
    let svg_path = d.path("maze.svg");
    let out = ami(&["plot", path(&trace), "-o", path(&svg_path)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    // The path is one polyline of every tick's position.
    assert!(polylines(&svg).contains(&steps), "{:?} vs {steps}", polylines(&svg));
    assert!(svg.contains("high subgoals") && svg.contains("planned round") && svg.contains("seed 0 success"));
    // A trace with another file is refused, as is a trace without a maze.
    let out = ami(&["plot", path(&trace), path(&trace), "-o", path(&d.path("x.svg"))]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let nomaze = d.file("nomaze.json", r#"{"trace": 1, "task": "pendulum", "maze": null, "episodes": []}"#);
    let out = ami(&["plot", path(&nomaze), "-o", path(&d.path("y.svg"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a maze trace"), "{}", text(&out.stderr));
}
