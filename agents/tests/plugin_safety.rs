//! Plugin loading that cannot be tricked, through the `ami` binary: a pinned
//! library swapped while ami loads it is never loaded unverified, and
//! corrupt copies of a plugin (truncated, bytes changed in the dynamic
//! section, the program headers or anywhere) are refused with exit 2 or
//! load, but never crash ami.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{ami, ended, plugin_lib, Rng};

fn sha256_of(path: &Path) -> String {
    // The digest ami prints for the library.
    let out = ami(&["plugin", "inspect", "--json", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["sha256"].as_str().map(str::to_string).unwrap_or_else(|| panic!("no sha256 in {v}"))
}

#[test]
fn a_pinned_library_swapped_while_loading_is_never_loaded_unverified() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.so");
    let evil = dir.path().join("evil.so");
    std::fs::copy(plugin_lib("testkit"), &good).unwrap();
    // Another valid plugin: loaded in place of the pinned one, it would run.
    std::fs::copy(plugin_lib("acrobot"), &evil).unwrap();
    let target = dir.path().join("libtestkit.so");
    std::fs::copy(&good, &target).unwrap();
    let digest = sha256_of(&good);

    // Swap the two under the pinned path as fast as renames go.
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, dir, good, evil, target) = (stop.clone(), dir.path().to_path_buf(), good.clone(), evil.clone(), target.clone());
        std::thread::spawn(move || {
            let tmp = dir.join("next.so");
            let mut evil_next = true;
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::remove_file(&tmp);
                std::fs::hard_link(if evil_next { &evil } else { &good }, &tmp).unwrap();
                std::fs::rename(&tmp, &target).unwrap();
                evil_next = !evil_next;
            }
        })
    };
    let pin = format!("{}={digest}", target.display());
    let (mut verified, mut refused) = (0, 0);
    for race in 0..150 {
        let out = ami(&["list", "--plugin", target.to_str().unwrap(), "--plugin-sha256", &pin]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stdout.contains("plugin:acrobot/"), "race {race}: the swapped-in library was loaded unverified:\n{stdout}");
        match out.status.code() {
            Some(0) => {
                assert!(stdout.contains("plugin:testkit/"), "race {race}: {stdout}");
                verified += 1;
            }
            Some(2) => {
                assert!(stderr.contains("SHA-256 mismatch"), "race {race}: {stderr}");
                refused += 1;
            }
            _ => panic!("race {race}: {}: {stderr}", ended(&out)),
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    // Both outcomes happened: the swaps did race the loads.
    assert!(verified > 0 && refused > 0, "verified {verified}, refused {refused}");
}

/// `data` damaged in one of four ways, chosen by `case`.
fn corrupt(data: &[u8], case: usize, rng: &mut Rng) -> Vec<u8> {
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let dynamic = (0..phnum)
        .map(|i| phoff + i * phentsize)
        .find(|&o| u32::from_le_bytes(data[o..o + 4].try_into().unwrap()) == 2)
        .map(|o| (u64_at(o + 8), u64_at(o + 32)))
        .expect("a PT_DYNAMIC segment");
    let mut b = data.to_vec();
    match case % 4 {
        0 => b.truncate(64 + rng.below(data.len() - 64)),
        1 => {
            for _ in 0..1 + rng.below(8) {
                b[dynamic.0 + rng.below(dynamic.1)] = rng.next() as u8;
            }
        }
        2 => {
            for _ in 0..1 + rng.below(8) {
                b[phoff + rng.below(phnum * phentsize)] = rng.next() as u8;
            }
        }
        _ => {
            for _ in 0..1 + rng.below(32) {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
        }
    }
    b
}

#[test]
fn corrupt_copies_of_a_plugin_are_refused_and_never_crash_ami() {
    let data = std::fs::read(plugin_lib("testkit")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libtestkit.so");
    let mut rng = Rng(0x5eed_c0de);
    let (mut loaded, mut refused, mut crashed_child) = (0, 0, 0);
    for case in 0..200 {
        std::fs::write(&lib, corrupt(&data, case, &mut rng)).unwrap();
        // `plugin inspect` loads the library and creates each module.
        let out = ami(&["plugin", "inspect", lib.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => loaded += 1,
            Some(2) => {
                assert!(stderr.contains(&format!("plugin {}", lib.display())), "case {case}: the message names the file: {stderr}");
                crashed_child += usize::from(stderr.contains("crashed the child"));
                refused += 1;
            }
            _ => panic!("case {case}: ami must refuse a corrupt library, not end by {}: {stderr}", ended(&out)),
        }
    }
    // The loader itself crashes on some of them: those are the ones only a
    // child process could survive.
    assert!(crashed_child > 0 && refused > 50 && loaded > 0, "loaded {loaded}, refused {refused} ({crashed_child} crashed the probe)");
    // An agent run refuses them the same way (exit 2, the file named).
    let mut rng = Rng(7);
    for case in (1..40).step_by(4) {
        std::fs::write(&lib, corrupt(&data, case, &mut rng)).unwrap();
        let agent = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pendulum.toml");
        let out = ami(&["check", "--plugin", lib.to_str().unwrap(), agent]);
        assert!(matches!(out.status.code(), Some(0 | 2)), "case {case}: {}: {}", ended(&out), String::from_utf8_lossy(&out.stderr));
    }
}

/// `ami plugin inspect --json LIB | head -1`: the report is written by the
/// child process the library is inspected in; a closed stdout ends both
/// quietly (the status of a SIGPIPE, no panic), and the report itself is
/// the same whichever process writes it.
#[test]
fn inspect_runs_in_a_child_and_a_closed_stdout_ends_it_quietly() {
    use std::io::Read;
    let lib = plugin_lib("testkit");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ami"))
        .args(["plugin", "inspect", lib.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The reader is dropped here: the rest of the report meets a closed pipe.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 141)), "{}: {err}", ended(&out));
    assert!(!err.contains("panicked"), "{err}");
    // The child's report is the whole one: the loaded library's digest and
    // modules (`--no-load`, read in-process, has only the declaration).
    let json = |args: &[&str]| -> serde_json::Value { serde_json::from_slice(&ami(args).stdout).unwrap() };
    let (full, decl) =
        (json(&["plugin", "inspect", "--json", lib.to_str().unwrap()]), json(&["plugin", "inspect", "--json", "--no-load", lib.to_str().unwrap()]));
    assert_eq!(full["name"], decl["name"]);
    assert!(full["sha256"].as_str().is_some_and(|h| h.len() == 64) && decl["sha256"].is_null(), "{full}\n{decl}");
    assert!(full["modules"].as_array().is_some_and(|m| !m.is_empty()) && full["load_error"].is_null(), "{full}");
}
