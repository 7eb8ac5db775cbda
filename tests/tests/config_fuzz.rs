//! A seeded mutation fuzzer over agent files: thousands of random edits of
//! valid files (lines deleted, duplicated or swapped, values and keys
//! replaced, characters inserted, text truncated) must always give a clean
//! `Ok` or a clear error listing problems, never a panic. Files that still
//! load run two ticks without an error: what `ami check` accepts runs.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ami_agents::tasks::TaskKind;
use ami_agents::{load_str, task_agent_toml};
use ami_core::CoreError;
use ami_graph::{executor, ExecutorKind};

/// xorshift64*: a tiny seeded generator, so the cases are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const VALUES: &[&str] = &[
    "0",
    "-1",
    "1",
    "3",
    "2.5",
    "1e9",
    "-0.0",
    "nan",
    "inf",
    "\"x\"",
    "\"\"",
    "\"env.action\"",
    "\"perception.state\"",
    "\"actor.state\"",
    "true",
    "false",
    "[]",
    "[1, 2]",
    "[1.0, 1.0, 0.0, 0.0]",
    "{}",
    "{ a = 1 }",
    "[{ tick = 1, iterations = 2 }]",
    "[{ tick = 2, weights = { goal = 0.5 } }]",
    "9999999999999999999",
    "1979-05-27",
];
const KEYS: &[&str] = &[
    "name",
    "kind",
    "implementation",
    "rate",
    "background",
    "params",
    "from",
    "to",
    "delayed",
    "horizon",
    "samples",
    "elites",
    "bogus",
    "events",
    "goal",
    "capacity",
    "seeds",
    "executor",
];
const STRINGS: &[&str] = &[
    "\"env\"",
    "\"actor\"",
    "\"memory\"",
    "\"cem\"",
    "\"mppi\"",
    "\"ring\"",
    "\"schedule\"",
    "\"waypoints\"",
    "\"environment\"",
    "\"perception\"",
    "\"cost\"",
    "\"task\"",
    "\"actor.action\"",
    "\"env.done\"",
    "\"cost.cost\"",
    "\"a.b.c\"",
    "\"plugin:x/y\"",
    "\"parallel\"",
];
const CHARS: &[&str] = &["[", "]", "{", "}", "=", "\"", ".", ",", " ", "\n", "#", "'", "[[", "\\"];

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for _ in 0..1 + rng.below(3) {
        if lines.is_empty() {
            break;
        }
        let i = rng.below(lines.len());
        match rng.below(9) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            3 | 4 => {
                if let Some((k, _)) = lines[i].split_once(" = ") {
                    lines[i] = format!("{k} = {}", rng.pick(VALUES));
                }
            }
            5 => {
                if let Some((_, v)) = lines[i].split_once(" = ") {
                    lines[i] = format!("{} = {v}", rng.pick(KEYS));
                }
            }
            6 => {
                if let (Some(a), Some(b)) = (lines[i].find('"'), lines[i].rfind('"')) {
                    if b > a {
                        lines[i] = format!("{}{}{}", &lines[i][..a], rng.pick(STRINGS), &lines[i][b + 1..]);
                    }
                }
            }
            7 => {
                let l = &lines[i];
                let cut = (0..=l.len()).filter(|&c| l.is_char_boundary(c)).nth(rng.below(l.len() + 1)).unwrap_or(0);
                lines[i] = format!("{}{}{}", &l[..cut], rng.pick(CHARS), &l[cut..]);
            }
            _ => lines.truncate(i),
        }
    }
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

#[test]
fn mutated_agent_files_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../agents/examples");
    let mut bases: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    bases.push(task_agent_toml(TaskKind::CartPole, "mppi", &ami_agents::registry()).unwrap());
    bases.push(task_agent_toml(TaskKind::PointMass, "gd", &ami_agents::registry()).unwrap());
    // AMI_FUZZ_SEED picks another reproducible set of cases.
    let seed = std::env::var("AMI_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x9e37_79b9_7f4a_7c15u64);
    let mut rng = Rng(seed | 1);
    let (mut ok, mut refused) = (0, 0);
    const CASES: usize = 3000;
    for case in 0..CASES {
        let base = &bases[case % bases.len()];
        let text = mutate(base, &mut rng);
        let loaded = catch_unwind(AssertUnwindSafe(|| load_str(&text, "fuzz.toml"))).unwrap_or_else(|_| panic!("case {case}: the loader panicked on:\n{text}"));
        match loaded {
            Ok(g) => {
                ok += 1;
                let ran = catch_unwind(AssertUnwindSafe(|| {
                    let mut exec = executor(g.graph, ExecutorKind::Sequential);
                    exec.reset(case as u64).and_then(|_| exec.tick()).and_then(|_| exec.tick())
                }));
                // What loads runs: the first ticks do not fail.
                match ran {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => panic!("case {case}: loaded but its first ticks failed: {e}\n{text}"),
                    Err(_) => panic!("case {case}: running panicked on:\n{text}"),
                }
            }
            Err(e @ (CoreError::Invalid(_) | CoreError::Syntax { .. })) => {
                let problems = e.problems().unwrap_or_default();
                refused += 1;
                assert!(!problems.is_empty(), "case {case}: an error without problems");
                for p in &problems {
                    assert!(!p.message.is_empty(), "case {case}: a problem without message");
                    assert!(p.location.as_ref().is_some_and(|l| l.file == "fuzz.toml"), "case {case}: `{p}` has no location\n{text}");
                }
            }
            Err(e) => panic!("case {case}: not a validation error: {e}"),
        }
    }
    // The mutations exercise both outcomes.
    assert!(ok > CASES / 20 && refused > CASES / 4, "ok {ok}, refused {refused}");
}
