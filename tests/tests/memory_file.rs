//! Short-term memory files: round trip, and refusal of damaged files.

use ami_core::rng::rng;
use ami_core::{CoreError, RingMemory, ShortTermMemory, TransitionRef};
use ndarray::array;

fn filled(n: u64, capacity: usize) -> RingMemory {
    let mut m = RingMemory::new(3, 2, capacity).unwrap();
    for t in 0..n {
        let x = t as f32;
        let (s, a, s2) = (array![x, x * 0.5, -x], array![x.sin(), x.cos()], array![x + 1.0, 0.25, f32::MAX]);
        m.push(&TransitionRef { t, state: s.view(), action: a.view(), cost: x * 1e-3, next_state: s2.view(), imagined: t % 3 == 0, terminated: t % 5 == 4 })
            .unwrap();
    }
    m
}

#[test]
fn save_load_round_trips_exactly_including_wrap_around() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stm.bin");
    let m = filled(13, 8); // wrapped: keeps t = 5..12
    m.save(&path).unwrap();
    let back = RingMemory::load(&path).unwrap();
    assert_eq!(back.len(), 8);
    assert_eq!(back.capacity(), 8);
    for i in 0..8 {
        assert_eq!(back.get(i), m.get(i), "transition {i}");
    }
    assert_eq!(back.get(0).unwrap().t, 5);
    // Same content, same samples.
    assert_eq!(back.sample(32, &mut rng(4)).unwrap(), m.sample(32, &mut rng(4)).unwrap());
    // Saving over an existing file replaces it.
    filled(2, 8).save(&path).unwrap();
    assert_eq!(RingMemory::load(&path).unwrap().len(), 2);
}

#[test]
fn truncated_file_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stm.bin");
    filled(5, 8).save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for cut in [bytes.len() - 1, bytes.len() - 7, 40, 10, 0] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = RingMemory::load(&path).unwrap_err();
        assert!(matches!(err, CoreError::CorruptFile { .. }), "cut {cut}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("stm.bin"), "message names the file: {msg}");
    }
}

#[test]
fn altered_or_foreign_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stm.bin");
    filled(5, 8).save(&path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let err = RingMemory::load(&path).unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");

    std::fs::write(&path, b"this is not a memory file at all, just some text").unwrap();
    let err = RingMemory::load(&path).unwrap_err();
    assert!(err.to_string().contains("bad magic"), "{err}");

    let err = RingMemory::load(&dir.path().join("missing.bin")).unwrap_err();
    assert!(matches!(err, CoreError::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.bin"), "{err}");
}

#[test]
fn a_failed_save_leaves_the_old_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stm.bin");
    filled(3, 8).save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    // Saving into a directory that does not exist fails and touches nothing.
    let err = filled(4, 8).save(&dir.path().join("no/such/dir/stm.bin")).unwrap_err();
    assert!(matches!(err, CoreError::Io { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // No temporary files are left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
