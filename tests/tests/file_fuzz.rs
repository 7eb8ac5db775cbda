//! Seeded mutation fuzzers over the files ami reads besides agent files
//! (those are `config_fuzz.rs`): short-term memory files, model weights
//! (ensembles and JEPAs, safetensors) and maze files. Thousands of random
//! edits of valid files (bits flipped, bytes set, header fields overwritten
//! with huge or odd numbers, text cut or extended; for memory files the
//! checksum is recomputed half the time so the edits reach the parser
//! behind it) must give `Ok` or a typed error naming the file, never a
//! panic, an abort or an allocation the file's size cannot justify.
//! `AMI_FUZZ_SEED` picks another reproducible set of cases.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use ami_agents::tasks::maze::Maze;
use ami_core::{CoreError, RingMemory, ShortTermMemory, TransitionRef};
use ndarray::array;

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
}

fn seed(salt: u64) -> Rng {
    let s = std::env::var("AMI_FUZZ_SEED").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0x5eed);
    Rng(s ^ salt)
}

/// Numbers that break naive size arithmetic.
const ODD: [u64; 8] = [0, 1, 255, 65_535, u32::MAX as u64, 1 << 40, u64::MAX / 2, u64::MAX];

/// One random edit of `b`, biased towards the first `header` bytes.
fn mutate(b: &[u8], header: usize, rng: &mut Rng) -> Vec<u8> {
    let mut v = b.to_vec();
    for _ in 0..1 + rng.below(4) {
        let region = if rng.below(2) == 0 { header.min(v.len()).max(1) } else { v.len().max(1) };
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(region);
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(region);
                v[i] = rng.next() as u8;
            }
            2 if v.len() >= 8 => {
                // An odd number over a 4- or 8-byte field.
                let i = rng.below(region.min(v.len() - 8) + 1);
                let x = ODD[rng.below(ODD.len())].to_le_bytes();
                let w = if rng.below(2) == 0 { 4 } else { 8 };
                v[i..i + w].copy_from_slice(&x[..w]);
            }
            3 => v.truncate(rng.below(v.len() + 1)),
            4 => {
                let i = rng.below(v.len() + 1);
                let extra: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                v.splice(i..i, extra);
            }
            _ => {}
        }
    }
    v
}

/// Runs `f` on `cases` mutations of `valid`; counts the outcomes. A panic
/// fails the test with the case number.
fn fuzz(what: &str, cases: usize, mut f: impl FnMut(usize, &mut Rng) -> Result<(), CoreError>) -> (usize, usize) {
    let (mut ok, mut refused) = (0, 0);
    let mut rng = seed(what.len() as u64 * 0x9e37);
    for case in 0..cases {
        match catch_unwind(AssertUnwindSafe(|| f(case, &mut rng))) {
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) => {
                let msg = e.to_string();
                assert!(msg.contains("fuzz."), "{what} case {case}: the error names the file: {msg}");
                refused += 1;
            }
            Err(_) => panic!("{what} case {case} panicked"),
        }
    }
    (ok, refused)
}

#[test]
fn mutated_memory_files_never_panic_or_abort() {
    let mut m = RingMemory::new(3, 2, 16).unwrap();
    for t in 0..12 {
        let (s, a, n) = (array![t as f32, 1.0, -2.0], array![0.5f32, -0.5], array![t as f32 + 1.0, 1.0, -2.0]);
        m.push(&TransitionRef { t, state: s.view(), action: a.view(), cost: t as f32, next_state: n.view(), imagined: t % 3 == 0, terminated: t == 11 })
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fuzz.memory");
    m.save(&file).unwrap();
    let valid = std::fs::read(&file).unwrap();
    assert!(RingMemory::from_bytes(&valid, &file).is_ok());
    let (ok, refused) = fuzz("memory", 4000, |_, rng| {
        let mut b = mutate(&valid, 36, rng);
        // Half the time the checksum is made right again.
        if rng.below(2) == 0 && b.len() >= 4 {
            let n = b.len() - 4;
            let crc = crc32fast::hash(&b[..n]);
            b[n..].copy_from_slice(&crc.to_le_bytes());
        }
        RingMemory::from_bytes(&b, &file).map(|_| ())
    });
    assert!(refused > 3000 && ok + refused == 4000, "ok {ok}, refused {refused}");
    // A header declaring a huge ring with a right checksum is refused before
    // anything is allocated.
    let mut b = valid[..36].to_vec();
    b[20..28].copy_from_slice(&(1u64 << 40).to_le_bytes());
    b[28..36].copy_from_slice(&0u64.to_le_bytes());
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    let e = RingMemory::from_bytes(&b, &file).unwrap_err().to_string();
    assert!(e.contains("more than the 1000000 a memory may hold"), "{e}");
}

#[test]
fn mutated_weight_files_never_panic() {
    let spec = ami_learn::EnsembleSpec::new(3, 1, vec![8, 8]);
    let ens = ami_learn::Ensemble::new(spec, 7).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fuzz.safetensors");
    ami_learn::io::save(&ens, &file).unwrap();
    let valid = std::fs::read(&file).unwrap();
    let header = 8 + u64::from_le_bytes(valid[..8].try_into().unwrap()) as usize;
    let (ok, refused) = fuzz("ensemble", 2500, |_, rng| ami_learn::io::from_bytes(&mutate(&valid, header, rng), &file).map(|_| ()));
    assert!(refused > 1500, "ok {ok}, refused {refused}");
    let jepa_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agents/examples/models/wall-jepa.safetensors");
    let jepa = std::fs::read(&jepa_file).unwrap();
    let header = 8 + u64::from_le_bytes(jepa[..8].try_into().unwrap()) as usize;
    let named = dir.path().join("fuzz.jepa.safetensors");
    let (ok, refused) = fuzz("jepa", 1000, |_, rng| ami_learn::Jepa::from_bytes(&mutate(&jepa, header, rng), &named).map(|_| ()));
    assert!(refused > 500, "ok {ok}, refused {refused}");
}

#[test]
fn mutated_maze_files_never_panic() {
    let valid = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../agents/examples/mazes/two-doors.txt")).unwrap();
    const PIECES: [&str; 10] = ["#", ".", "S", "G", " ", "\n", "\t", "é", "#################################################################", "\r\n"];
    let (mut ok, mut refused) = (0, 0);
    let mut rng = seed(0xa11);
    for case in 0..2500 {
        let mut t: Vec<char> = valid.chars().collect();
        for _ in 0..1 + rng.below(6) {
            let i = rng.below(t.len() + 1);
            match rng.below(4) {
                0 if i < t.len() => {
                    t.remove(i);
                }
                1 => t.splice(i..i, PIECES[rng.below(PIECES.len())].chars()).for_each(drop),
                2 => t.truncate(i),
                _ => {
                    // A line repeated many times: a huge maze.
                    let line: String = t.iter().take_while(|c| **c != '\n').collect();
                    let many = line.repeat(1 + rng.below(200)) + "\n";
                    t.splice(i..i, many.chars()).for_each(drop);
                }
            }
        }
        let text: String = t.into_iter().collect();
        match catch_unwind(AssertUnwindSafe(|| Maze::parse(&text, "fuzz.maze"))) {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(e)) => {
                assert!(e.to_string().contains("fuzz.maze"), "case {case}: the error names the file: {e}");
                refused += 1;
            }
            Err(_) => panic!("maze case {case} panicked:\n{text}"),
        }
    }
    assert!(ok > 0 && refused > 500, "ok {ok}, refused {refused}");
}
