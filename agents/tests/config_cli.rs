//! Agent files through the `ami` binary: every deliberately broken file in
//! `tests/broken/` is refused by `ami check` with exit code 2 and a message
//! naming the node, port and line its header expects; the examples pass
//! `ami check`, draw as DOT and run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn ami(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ami")).current_dir(env!("CARGO_MANIFEST_DIR")).args(args).output().expect("run ami")
}

/// One `# expect: KIND line=N node=X port=Y` header line.
#[derive(Debug)]
struct Expect {
    kind: String,
    line: usize,
    node: Option<String>,
    port: Option<String>,
}

fn expectations(path: &Path) -> Vec<Expect> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|l| {
            let mut it = l.split_whitespace();
            let kind = it.next().unwrap().to_string();
            let mut e = Expect { kind, line: 0, node: None, port: None };
            for kv in it {
                let (k, v) = kv.split_once('=').unwrap();
                match k {
                    "line" => e.line = v.parse().unwrap(),
                    "node" => e.node = Some(v.into()),
                    "port" => e.port = Some(v.into()),
                    _ => panic!("bad expect key {k}"),
                }
            }
            e
        })
        .collect()
}

fn broken_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect();
    files.sort();
    files
}

#[test]
fn every_validation_case_has_a_broken_file() {
    let kinds: Vec<String> = broken_files().iter().flat_map(|f| expectations(f)).map(|e| e.kind).collect();
    for k in [
        "Syntax",
        "UnknownKind",
        "UnknownImplementation",
        "MissingInput",
        "TypeMismatch",
        "DuplicateNode",
        "Cycle",
        "BadRate",
        "UnknownParameter",
        "ParameterType",
        "ParameterRange",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no broken file expects {k}");
    }
}

#[test]
fn broken_files_give_the_expected_problems_in_the_library() {
    for f in broken_files() {
        let exp = expectations(&f);
        assert!(!exp.is_empty(), "{}: no `# expect:` header", f.display());
        let err = ami_agents::load_file(&f).err().unwrap_or_else(|| panic!("{} was accepted", f.display()));
        let Some(problems) = err.problems() else { panic!("{}: not a validation error: {err}", f.display()) };
        for e in &exp {
            let want_loc = format!("{}:{}", f.display(), e.line);
            let found = problems.iter().any(|p| {
                format!("{:?}", p.kind) == e.kind
                    && p.location.as_ref().map(|l| l.to_string()).as_deref() == Some(want_loc.as_str())
                    && p.node == e.node
                    && (e.port.is_none() || p.port == e.port)
            });
            assert!(found, "{}: expected {e:?}, got:\n{err}", f.display());
        }
    }
}

#[test]
fn ami_check_exits_2_naming_node_port_and_line() {
    for f in broken_files() {
        let rel = f.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().to_str().unwrap().to_string();
        let out = ami(&["check", &rel]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{rel}: {err}");
        for e in expectations(&f) {
            let mut needle = format!("{rel}:{}: ", e.line);
            match (&e.node, &e.port) {
                // A parameter is named as one, never as a port.
                (Some(n), Some(p)) if e.kind.starts_with("Parameter") => needle.push_str(&format!("node `{n}`: parameter `{p}`")),
                (Some(n), Some(p)) if e.kind == "UnknownParameter" => needle.push_str(&format!("node `{n}`: unknown parameter `{p}`")),
                (Some(n), Some(p)) => needle.push_str(&format!("node `{n}`, port `{p}`")),
                (Some(n), None) => needle.push_str(&format!("node `{n}`")),
                _ => {}
            }
            assert!(err.contains(&needle), "{rel}: stderr should contain `{needle}`:\n{err}");
        }
        // `ami run FILE` and `ami graph FILE` refuse it the same way.
        assert_eq!(ami(&["graph", &rel, "--dot"]).status.code(), Some(2), "{rel}");
        assert_eq!(ami(&["run", &rel]).status.code(), Some(2), "{rel}");
    }
}

#[test]
fn examples_pass_check_draw_and_run() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        n += 1;
        let rel = format!("examples/{}", path.file_name().unwrap().to_str().unwrap());
        let out = ami(&["check", &rel]);
        assert!(out.status.success(), "{rel}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
        let dot = ami(&["graph", &rel, "--dot"]);
        assert!(dot.status.success());
        let dot = String::from_utf8(dot.stdout).unwrap();
        assert!(dot.starts_with("digraph agent {") && dot.contains("style=dashed"), "{dot}");
    }
    assert!(n >= 5, "expected the example files");
    // One short run through the binary (the full runs are in ami-tests).
    let out = ami(&["run", "examples/pointmass.toml", "--episodes", "1", "--seed", "3", "--executor", "parallel", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["task"], "pointmass");
    assert_eq!(v["executor"], "parallel");
    assert_eq!(v["seeds"], serde_json::json!([3]));
}

#[test]
fn file_and_task_conflict_and_missing_files_fail_cleanly() {
    let out = ami(&["run", "examples/pendulum.toml", "--task", "cartpole"]);
    assert_eq!(out.status.code(), Some(2));
    // A missing, unreadable or non-UTF-8 agent file is bad input: exit 2,
    // naming the file, from every subcommand that reads one.
    for cmd in ["check", "graph", "run"] {
        let out = ami(&[cmd, "no/such/file.toml"]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("cannot read agent file no/such/file.toml"), "{cmd}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let latin1 = dir.path().join("latin1.toml");
    std::fs::write(&latin1, b"[agent]\nname = \"caf\xe9\"\n").unwrap();
    let out = ami(&["check", latin1.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("latin1.toml") && err.contains("not UTF-8 text (invalid byte at offset 19)"), "{err}");
    // A TOML syntax error is reported as such, with its line, not as an
    // invalid graph.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[agent]\nname = \"x\"\n[[nodes]\n").unwrap();
    let out = ami(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:3: not valid TOML"), "{err}");
    assert!(!err.contains("invalid graph") && !err.contains("invalid agent:"), "{err}");
    // ... also in a file with a `[plugins]` table: the file is parsed
    // before any plugin is looked for.
    let plugged = dir.path().join("plugged.toml");
    std::fs::write(&plugged, "[plugins]\nload = [\"nosuch\"]\n[agent]\nname = \"x\"\n[[nodes]\n").unwrap();
    let out = ami(&["check", plugged.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("plugged.toml:5: not valid TOML") && !err.contains("nosuch"), "{err}");
    // A directory, a symbolic link loop or an empty name where a file is
    // expected: exit 2 naming it, from every subcommand that reads one.
    let folder = dir.path().join("folder.toml");
    std::fs::create_dir(&folder).unwrap();
    let (l1, l2) = (dir.path().join("loop1"), dir.path().join("loop2"));
    std::os::unix::fs::symlink(&l2, &l1).unwrap();
    std::os::unix::fs::symlink(&l1, &l2).unwrap();
    let (folder, l1) = (folder.to_str().unwrap(), l1.to_str().unwrap());
    for args in [
        &["check", folder][..],
        &["graph", l1],
        &["run", folder],
        &["plot", l1, "-o", "x.svg"],
        &["bench", "--workload", folder, "--planner", "cem"],
        &["bench", "--workload", l1, "--planner", "cem"],
        &["train", "--memory", folder, "-o", "w.safetensors"],
        &["plugin", "inspect", l1],
        &["run", "--task", "pendulum", "--plugin", ""],
        &["run", "--plugin-task", ""],
    ] {
        let out = ami(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        let named = args.iter().skip(1).any(|a| !a.is_empty() && a.contains('/') && err.contains(*a)) || err.contains("plugin ``");
        assert!(named && !err.contains("panicked"), "{args:?}: the message names the file: {err}");
    }
}

#[cfg(unix)]
#[test]
fn ctrl_c_finishes_the_tick_saves_memory_and_exits_130() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = std::env::temp_dir().join(format!("ami-ctrlc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mem = dir.join("memory.bin");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pointmass.toml"))
        .unwrap()
        .replace("params = { capacity = 10000 }", &format!("params = {{ capacity = 10000, save_path = {:?} }}", mem.display().to_string()));
    let file = dir.join("agent.toml");
    std::fs::write(&file, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ami"))
        .args(["run", file.to_str().unwrap(), "--episodes", "1000", "--executor", "parallel"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Wait for the first finished episode, then interrupt.
    while let Some(Ok(l)) = lines.next() {
        if l.starts_with("episode seed") {
            break;
        }
    }
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let saved = ami_core::RingMemory::load(&mem).expect("the memory was saved");
    assert!(ami_core::ShortTermMemory::len(&saved) >= 100, "at least the first episode's transitions");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_docs_implementation_table_is_the_registry() {
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/agent-files.md")).unwrap();
    let begin = docs.find("<!-- implementations:begin -->\n").expect("begin marker") + "<!-- implementations:begin -->\n".len();
    let end = docs.find("<!-- implementations:end -->").expect("end marker");
    let table = ami_agents::registry().markdown_table();
    assert_eq!(&docs[begin..end], table, "docs/agent-files.md is out of date: replace its table with `ami list --markdown`");
    // `ami list --markdown` prints the same table.
    let out = ami(&["list", "--markdown"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), table);
}

/// A memory that could not be saved is refused by `ami check`, not after
/// the first episode's work.
#[test]
fn a_save_path_in_a_missing_folder_is_refused_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pendulum.toml")).unwrap();
    for (save, needle) in [("no/such/folder/m.bin", "the folder"), (".", "is a directory: name a file")] {
        let file = dir.path().join("agent.toml");
        std::fs::write(&file, text.replace("params = { capacity = 10000 }", &format!("params = {{ capacity = 10000, save_path = {save:?} }}"))).unwrap();
        let out = ami(&["check", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{save}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("node `memory`") && err.contains("save_path") && err.contains(needle), "{save}: {err}");
    }
}

/// An environment node that cannot be built is one problem: the nodes that
/// only lack its task, and the inputs fed from it, say nothing more.
#[test]
fn a_broken_environment_is_one_problem_not_six() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pendulum.toml")).unwrap();
    assert!(text.contains("implementation = \"pendulum\""));
    for (broken, needle) in [
        (text.replace("implementation = \"pendulum\"", "implementation = \"pendulm\""), "unknown environment implementation `pendulm`"),
        (text.replace("implementation = \"pendulum\"", "implementation = \"wall\"\nparams = { step_size = 0.1 }"), "or a step could jump the wall"),
    ] {
        let file = dir.path().join("agent.toml");
        std::fs::write(&file, &broken).unwrap();
        let out = ami(&["check", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        let problems: Vec<&str> = err.lines().filter(|l| l.trim_start().starts_with("- ")).collect();
        assert_eq!(problems.len(), 1, "{err}");
        assert!(problems[0].contains("node `env`") && problems[0].contains(needle), "{err}");
    }
    // The same for any node others name: a cost node that fails to build
    // is one problem, not also "no cost node named `cost`" at the actor.
    let broken = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/bad_cost_weight.toml");
    let out = ami(&["check", broken.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = err.lines().filter(|l| l.trim_start().starts_with("- ")).collect();
    assert_eq!(problems.len(), 1, "{err}");
    assert!(problems[0].contains("node `cost`: parameter `weights`: unknown cost term `speed`"), "{err}");
    // And the weight it refuses for an unknown term is accepted for the
    // task's own one.
    let fixed = dir.path().join("weighted.toml");
    std::fs::write(&fixed, std::fs::read_to_string(&broken).unwrap().replace("speed = 2.0", "swingup = 2.0")).unwrap();
    let out = ami(&["check", fixed.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}
