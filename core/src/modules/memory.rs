use std::path::Path;

use ndarray::{Array1, Array2, ArrayView1};
use rand::Rng;

use crate::error::{CoreError, Result};
use crate::rng::AmiRng;

/// One stored step: at time `t`, in `state`, the agent took `action`, paid
/// intrinsic `cost` and reached `next_state`. `imagined` marks steps
/// predicted by the world model rather than perceived; `terminated` marks
/// a step whose `next_state` is terminal (the task ended there: no cost
/// comes after it), as opposed to an episode cut by a time limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// Time step.
    pub t: u64,
    /// State before the action.
    pub state: Vec<f32>,
    /// The action.
    pub action: Vec<f32>,
    /// Intrinsic cost of the transition.
    pub cost: f32,
    /// State after the action.
    pub next_state: Vec<f32>,
    /// Whether the step was imagined (predicted) rather than perceived.
    pub imagined: bool,
    /// Whether `next_state` is terminal.
    pub terminated: bool,
}

/// A batch of transitions, one row each, for training critics and world
/// models.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionBatch {
    /// Time steps `[batch]`.
    pub t: Vec<u64>,
    /// States `[batch, state_dim]`.
    pub states: Array2<f32>,
    /// Actions `[batch, action_dim]`.
    pub actions: Array2<f32>,
    /// Intrinsic costs `[batch]`.
    pub costs: Array1<f32>,
    /// Next states `[batch, state_dim]`.
    pub next_states: Array2<f32>,
    /// Imagined flags `[batch]`.
    pub imagined: Vec<bool>,
    /// Terminal flags `[batch]`.
    pub terminated: Vec<bool>,
}

/// Result of a soft key-value read: the attention-weighted next state and
/// cost of the stored transitions whose states are nearest the key.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftRead {
    /// Weighted next state.
    pub next_state: Array1<f32>,
    /// Weighted cost.
    pub cost: f32,
}

/// Short-term memory [paper §3.3, §4.9]: a bounded store of transitions,
/// read by time, by random batches and by key similarity, that can be saved
/// and loaded.
pub trait ShortTermMemory: Send {
    /// Width of a state.
    fn state_dim(&self) -> usize;
    /// Width of an action.
    fn action_dim(&self) -> usize;
    /// Maximum number of transitions kept; older ones are overwritten.
    fn capacity(&self) -> usize;
    /// Number of stored transitions.
    fn len(&self) -> usize;
    /// Whether nothing is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Stores a transition, overwriting the oldest when full.
    fn push(&mut self, tr: &TransitionRef<'_>) -> Result<()>;
    /// The `i`-th stored transition, oldest first.
    fn get(&self, i: usize) -> Option<Transition>;
    /// The most recent transition recorded at time `t`.
    fn by_time(&self, t: u64) -> Option<Transition>;
    /// `n` transitions drawn uniformly with replacement.
    fn sample(&self, n: usize, rng: &mut AmiRng) -> Result<TransitionBatch>;
    /// Soft key-value read: softmax over `-||state - key||^2 / temperature`.
    fn read_soft(&self, key: ArrayView1<'_, f32>, temperature: f32) -> Result<SoftRead>;
    /// Writes the memory to `path` atomically (a crash leaves the old file).
    fn save(&self, path: &Path) -> Result<()>;
    /// Forgets everything.
    fn clear(&mut self);
}

/// A borrowed transition, for [`ShortTermMemory::push`] without copies.
#[derive(Debug, Clone, Copy)]
pub struct TransitionRef<'a> {
    /// Time step.
    pub t: u64,
    /// State before the action.
    pub state: ArrayView1<'a, f32>,
    /// The action.
    pub action: ArrayView1<'a, f32>,
    /// Intrinsic cost.
    pub cost: f32,
    /// State after the action.
    pub next_state: ArrayView1<'a, f32>,
    /// Imagined or perceived.
    pub imagined: bool,
    /// Whether `next_state` is terminal.
    pub terminated: bool,
}

/// A ring buffer [`ShortTermMemory`] with contiguous storage.
#[derive(Debug, Clone, PartialEq)]
pub struct RingMemory {
    capacity: usize,
    len: usize,
    /// Index of the slot the next push writes.
    head: usize,
    t: Vec<u64>,
    imagined: Vec<bool>,
    terminated: Vec<bool>,
    costs: Vec<f32>,
    states: Array2<f32>,
    actions: Array2<f32>,
    next_states: Array2<f32>,
}

const MAGIC: &[u8; 8] = b"AMISTM\0\x01";
/// Version 2 stores a flags byte per transition (bit 0 imagined, bit 1
/// terminated) where version 1 stored the imagined flag (0 or 1); both
/// load.
const FORMAT_VERSION: u32 = 2;
const FLAG_IMAGINED: u8 = 1;
const FLAG_TERMINATED: u8 = 2;
const HEADER_LEN: usize = 8 + 4 + 4 + 4 + 8 + 8;
/// The most transitions a [`RingMemory`] holds (the `capacity` parameter's
/// bound; a file declaring more is refused before anything is allocated).
pub const MAX_CAPACITY: usize = 1_000_000;
/// The widest state or action a [`RingMemory`] stores.
pub const MAX_WIDTH: usize = 1 << 20;
/// The most floats a [`RingMemory`] allocates (`capacity * (2 * state +
/// action)`): 4 GiB.
pub const MAX_FLOATS: usize = 1 << 30;

impl RingMemory {
    /// An empty memory for states of width `state_dim`, actions of width
    /// `action_dim`, keeping at most `capacity` transitions.
    pub fn new(state_dim: usize, action_dim: usize, capacity: usize) -> Result<Self> {
        if capacity == 0 {
            return Err(CoreError::config("memory.capacity", "must be at least 1"));
        }
        if capacity > MAX_CAPACITY {
            return Err(CoreError::config("memory.capacity", format!("{capacity} transitions, more than the {MAX_CAPACITY} a memory may hold")));
        }
        if state_dim > MAX_WIDTH || action_dim > MAX_WIDTH {
            return Err(CoreError::config(
                "memory.width",
                format!("states of width {state_dim} and actions of width {action_dim}: each may be at most {MAX_WIDTH}"),
            ));
        }
        // Checked before anything is allocated: a ring of that many floats.
        let floats = capacity as u128 * (2 * state_dim + action_dim) as u128;
        if floats > MAX_FLOATS as u128 {
            return Err(CoreError::config(
                "memory.capacity",
                format!(
                    "{capacity} transitions of {} floats each need {floats} floats, more than the {MAX_FLOATS} (4 GiB) a memory may use",
                    2 * state_dim + action_dim
                ),
            ));
        }
        Ok(Self {
            capacity,
            len: 0,
            head: 0,
            t: vec![0; capacity],
            imagined: vec![false; capacity],
            terminated: vec![false; capacity],
            costs: vec![0.0; capacity],
            states: Array2::zeros((capacity, state_dim)),
            actions: Array2::zeros((capacity, action_dim)),
            next_states: Array2::zeros((capacity, state_dim)),
        })
    }

    fn slot(&self, i: usize) -> usize {
        (self.head + self.capacity - self.len + i) % self.capacity
    }

    fn transition_at_slot(&self, k: usize) -> Transition {
        Transition {
            t: self.t[k],
            state: self.states.row(k).to_vec(),
            action: self.actions.row(k).to_vec(),
            cost: self.costs[k],
            next_state: self.next_states.row(k).to_vec(),
            imagined: self.imagined[k],
            terminated: self.terminated[k],
        }
    }

    /// Loads a memory written by [`ShortTermMemory::save`]. A truncated,
    /// altered or foreign file is refused with [`CoreError::CorruptFile`].
    pub fn load(path: &Path) -> Result<Self> {
        let corrupt = |reason: String| CoreError::CorruptFile { path: path.to_path_buf(), reason };
        // No memory this build can hold is larger: refuse before reading.
        let largest = HEADER_LEN as u64 + 4 + 4 * MAX_FLOATS as u64 + 13 * MAX_CAPACITY as u64;
        let size = std::fs::metadata(path).map_err(|source| CoreError::Io { path: path.to_path_buf(), source })?.len();
        if size > largest {
            return Err(corrupt(format!("{size} bytes, larger than any memory this build can hold ({largest} bytes)")));
        }
        let bytes = std::fs::read(path).map_err(|source| CoreError::Io { path: path.to_path_buf(), source })?;
        Self::from_bytes(&bytes, path)
    }

    /// [`RingMemory::load`] from the bytes of a file; `path` names them in
    /// errors. Every size the header declares is checked before anything
    /// is allocated for it.
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self> {
        let corrupt = |reason: String| CoreError::CorruptFile { path: path.to_path_buf(), reason };
        if bytes.len() < HEADER_LEN + 4 {
            return Err(corrupt(format!("file is {} bytes, shorter than the {}-byte header", bytes.len(), HEADER_LEN + 4)));
        }
        if &bytes[..8] != MAGIC {
            return Err(corrupt("not an ami short-term memory file (bad magic)".into()));
        }
        let mut r = Reader { b: &bytes[8..] };
        let version = r.u32();
        if !(1..=FORMAT_VERSION).contains(&version) {
            return Err(corrupt(format!("format version {version}, this build reads versions 1 to {FORMAT_VERSION}")));
        }
        let known_flags = if version == 1 { FLAG_IMAGINED } else { FLAG_IMAGINED | FLAG_TERMINATED };
        let state_dim = r.u32() as usize;
        let action_dim = r.u32() as usize;
        let capacity = r.u64();
        let len = r.u64();
        if capacity == 0 || len > capacity {
            return Err(corrupt(format!("header says {len} transitions in capacity {capacity}")));
        }
        let record = 8 + 1 + 4 + 4 * (2 * state_dim + action_dim);
        let expected = (len as u128) * (record as u128) + HEADER_LEN as u128 + 4;
        if expected != bytes.len() as u128 {
            return Err(corrupt(format!("expected {expected} bytes for {len} transitions, found {} (truncated or extended)", bytes.len())));
        }
        let body_end = bytes.len() - 4;
        let stored_crc = u32::from_le_bytes(bytes[body_end..].try_into().expect("4 bytes"));
        let crc = crc32fast::hash(&bytes[..body_end]);
        if crc != stored_crc {
            return Err(corrupt(format!("checksum mismatch (stored {stored_crc:#010x}, computed {crc:#010x})")));
        }
        let capacity = usize::try_from(capacity).map_err(|_| corrupt("capacity too large".into()))?;
        // RingMemory::new checks the sizes before allocating anything.
        let mut m = RingMemory::new(state_dim, action_dim, capacity).map_err(|e| corrupt(format!("header: {e}")))?;
        let mut s = vec![0.0f32; state_dim];
        let mut a = vec![0.0f32; action_dim];
        let mut n = vec![0.0f32; state_dim];
        for _ in 0..len {
            let t = r.u64();
            let flags = r.u8();
            if flags & !known_flags != 0 {
                return Err(corrupt(format!("flags byte {flags:#04x} of the transition at tick {t} has unknown bits (format version {version})")));
            }
            let (imagined, terminated) = (flags & FLAG_IMAGINED != 0, flags & FLAG_TERMINATED != 0);
            let cost = r.f32();
            r.f32s(&mut s);
            r.f32s(&mut a);
            r.f32s(&mut n);
            m.push(&TransitionRef {
                t,
                state: ArrayView1::from(&s),
                action: ArrayView1::from(&a),
                cost,
                next_state: ArrayView1::from(&n),
                imagined,
                terminated,
            })?;
        }
        Ok(m)
    }
}

struct Reader<'a> {
    b: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (h, t) = self.b.split_at(N);
        self.b = t;
        h.try_into().expect("length checked before reading")
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.take())
    }
    fn f32s(&mut self, out: &mut [f32]) {
        for o in out {
            *o = self.f32();
        }
    }
}

impl ShortTermMemory for RingMemory {
    fn state_dim(&self) -> usize {
        self.states.ncols()
    }
    fn action_dim(&self) -> usize {
        self.actions.ncols()
    }
    fn capacity(&self) -> usize {
        self.capacity
    }
    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, tr: &TransitionRef<'_>) -> Result<()> {
        let (sd, ad) = (self.state_dim(), self.action_dim());
        for (what, v, d) in [("state", &tr.state, sd), ("action", &tr.action, ad), ("next_state", &tr.next_state, sd)] {
            if v.len() != d {
                return Err(CoreError::shape(format!("RingMemory::push({what})"), format!("length {d}"), format!("length {}", v.len())));
            }
        }
        let k = self.head;
        self.t[k] = tr.t;
        self.imagined[k] = tr.imagined;
        self.terminated[k] = tr.terminated;
        self.costs[k] = tr.cost;
        self.states.row_mut(k).assign(&tr.state);
        self.actions.row_mut(k).assign(&tr.action);
        self.next_states.row_mut(k).assign(&tr.next_state);
        self.head = (self.head + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
        Ok(())
    }

    fn get(&self, i: usize) -> Option<Transition> {
        (i < self.len).then(|| self.transition_at_slot(self.slot(i)))
    }

    fn by_time(&self, t: u64) -> Option<Transition> {
        (0..self.len).rev().map(|i| self.slot(i)).find(|&k| self.t[k] == t).map(|k| self.transition_at_slot(k))
    }

    fn sample(&self, n: usize, rng: &mut AmiRng) -> Result<TransitionBatch> {
        if self.len == 0 {
            return Err(CoreError::module("memory", "cannot sample from an empty memory"));
        }
        let (sd, ad) = (self.state_dim(), self.action_dim());
        let mut b = TransitionBatch {
            t: Vec::with_capacity(n),
            states: Array2::zeros((n, sd)),
            actions: Array2::zeros((n, ad)),
            costs: Array1::zeros(n),
            next_states: Array2::zeros((n, sd)),
            imagined: Vec::with_capacity(n),
            terminated: Vec::with_capacity(n),
        };
        for row in 0..n {
            let k = self.slot(rng.gen_range(0..self.len));
            b.t.push(self.t[k]);
            b.imagined.push(self.imagined[k]);
            b.terminated.push(self.terminated[k]);
            b.costs[row] = self.costs[k];
            b.states.row_mut(row).assign(&self.states.row(k));
            b.actions.row_mut(row).assign(&self.actions.row(k));
            b.next_states.row_mut(row).assign(&self.next_states.row(k));
        }
        Ok(b)
    }

    fn read_soft(&self, key: ArrayView1<'_, f32>, temperature: f32) -> Result<SoftRead> {
        if self.len == 0 {
            return Err(CoreError::module("memory", "cannot read from an empty memory"));
        }
        if key.len() != self.state_dim() {
            return Err(CoreError::shape("RingMemory::read_soft(key)", format!("length {}", self.state_dim()), format!("length {}", key.len())));
        }
        if !(temperature > 0.0 && temperature.is_finite()) {
            return Err(CoreError::config("read_soft.temperature", format!("must be positive and finite, got {temperature}")));
        }
        let slots: Vec<usize> = (0..self.len).map(|i| self.slot(i)).collect();
        let logits: Vec<f32> =
            slots.iter().map(|&k| -self.states.row(k).iter().zip(key.iter()).map(|(a, b)| (a - b) * (a - b)).sum::<f32>() / temperature).collect();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let w: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let z: f32 = w.iter().sum();
        let mut next_state = Array1::zeros(self.state_dim());
        let mut cost = 0.0;
        for (&k, &wk) in slots.iter().zip(&w) {
            let p = wk / z;
            next_state.scaled_add(p, &self.next_states.row(k));
            cost += p * self.costs[k];
        }
        Ok(SoftRead { next_state, cost })
    }

    fn save(&self, path: &Path) -> Result<()> {
        let (sd, ad) = (self.state_dim(), self.action_dim());
        let record = 8 + 1 + 4 + 4 * (2 * sd + ad);
        let mut buf = Vec::with_capacity(HEADER_LEN + self.len * record + 4);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        buf.extend_from_slice(&(sd as u32).to_le_bytes());
        buf.extend_from_slice(&(ad as u32).to_le_bytes());
        buf.extend_from_slice(&(self.capacity as u64).to_le_bytes());
        buf.extend_from_slice(&(self.len as u64).to_le_bytes());
        for i in 0..self.len {
            let k = self.slot(i);
            buf.extend_from_slice(&self.t[k].to_le_bytes());
            buf.push((u8::from(self.imagined[k]) * FLAG_IMAGINED) | (u8::from(self.terminated[k]) * FLAG_TERMINATED));
            buf.extend_from_slice(&self.costs[k].to_le_bytes());
            for row in [self.states.row(k), self.actions.row(k), self.next_states.row(k)] {
                for x in row {
                    buf.extend_from_slice(&x.to_le_bytes());
                }
            }
        }
        let crc = crc32fast::hash(&buf);
        buf.extend_from_slice(&crc.to_le_bytes());
        crate::fsio::write_atomic(path, &buf)
    }

    fn clear(&mut self) {
        self.len = 0;
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::rng;
    use ndarray::array;

    fn push(m: &mut RingMemory, t: u64, x: f32) {
        let s = array![x, -x];
        let a = array![x * 10.0];
        let n = array![x + 1.0, -x - 1.0];
        m.push(&TransitionRef { t, state: s.view(), action: a.view(), cost: x * 0.5, next_state: n.view(), imagined: t % 2 == 1, terminated: t % 3 == 2 })
            .unwrap();
    }

    #[test]
    fn ring_overwrites_oldest_and_reads_by_time() {
        let mut m = RingMemory::new(2, 1, 3).unwrap();
        for t in 0..5 {
            push(&mut m, t, t as f32);
        }
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(0).unwrap().t, 2);
        assert_eq!(m.get(2).unwrap().t, 4);
        assert!(m.get(3).is_none());
        assert!(m.by_time(1).is_none());
        let tr = m.by_time(3).unwrap();
        assert_eq!(tr.state, vec![3.0, -3.0]);
        assert_eq!(tr.action, vec![30.0]);
        assert_eq!(tr.next_state, vec![4.0, -4.0]);
        assert!(tr.imagined);
        assert!(!tr.terminated);
        assert!(m.by_time(2).unwrap().terminated);
    }

    /// A version-1 file (before terminal flags): header, records with an
    /// imagined byte of 0 or 1, checksum.
    fn version1_file(flags: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&8u64.to_le_bytes());
        b.extend_from_slice(&(flags.len() as u64).to_le_bytes());
        for (t, &f) in flags.iter().enumerate() {
            b.extend_from_slice(&(t as u64).to_le_bytes());
            b.push(f);
            for x in [0.5f32, t as f32, 1.0, t as f32 + 1.0] {
                b.extend_from_slice(&x.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    #[test]
    fn terminal_flags_survive_a_save_and_version_1_files_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = RingMemory::new(2, 1, 8).unwrap();
        for t in 0..6 {
            push(&mut m, t, t as f32);
        }
        let path = dir.path().join("m.stm");
        m.save(&path).unwrap();
        let back = RingMemory::load(&path).unwrap();
        assert_eq!(back, m);
        let flags: Vec<(bool, bool)> = (0..6).map(|i| back.get(i).map(|t| (t.imagined, t.terminated)).unwrap()).collect();
        assert_eq!(flags, vec![(false, false), (true, false), (false, true), (true, false), (false, false), (true, true)]);
        let old = dir.path().join("v1.stm");
        std::fs::write(&old, version1_file(&[0, 1, 0])).unwrap();
        let v1 = RingMemory::load(&old).unwrap();
        assert_eq!(v1.len(), 3);
        assert!(v1.get(1).unwrap().imagined && !v1.get(1).unwrap().terminated);
        assert_eq!(v1.get(2).unwrap().state, vec![2.0]);
        // Version 1 had no terminal bit: a 2 there is corruption.
        std::fs::write(&old, version1_file(&[0, 2])).unwrap();
        let err = RingMemory::load(&old).unwrap_err().to_string();
        assert!(err.contains("flags byte 0x02") && err.contains("tick 1") && err.contains("version 1"), "{err}");
    }

    #[test]
    fn sample_is_seeded_and_refuses_empty() {
        let mut m = RingMemory::new(2, 1, 10).unwrap();
        let mut r = rng(0);
        assert!(m.sample(4, &mut r).is_err());
        for t in 0..10 {
            push(&mut m, t, t as f32);
        }
        let a = m.sample(16, &mut rng(9)).unwrap();
        let b = m.sample(16, &mut rng(9)).unwrap();
        assert_eq!(a, b);
        for (row, &t) in a.t.iter().enumerate() {
            assert_eq!(a.states[[row, 0]], t as f32);
            assert_eq!(a.costs[row], t as f32 * 0.5);
        }
    }

    #[test]
    fn soft_read_attends_to_the_nearest_key() {
        let mut m = RingMemory::new(2, 1, 10).unwrap();
        push(&mut m, 0, 0.0);
        push(&mut m, 1, 5.0);
        let r = m.read_soft(array![5.0, -5.0].view(), 0.1).unwrap();
        assert!((r.next_state[0] - 6.0).abs() < 1e-4);
        assert!((r.cost - 2.5).abs() < 1e-4);
        assert!(m.read_soft(array![1.0].view(), 1.0).is_err());
    }

    #[test]
    fn wrong_widths_are_refused() {
        let mut m = RingMemory::new(2, 1, 3).unwrap();
        let s = array![1.0];
        let err = m
            .push(&TransitionRef { t: 0, state: s.view(), action: s.view(), cost: 0.0, next_state: s.view(), imagined: false, terminated: false })
            .unwrap_err();
        assert!(err.to_string().contains("RingMemory::push(state)"), "{err}");
        assert!(RingMemory::new(2, 1, 0).is_err());
    }
}
