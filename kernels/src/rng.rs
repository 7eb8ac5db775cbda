//! Counter-based noise streams: every sample of every iteration has its own
//! stream, derived from a key by hashing, so sampling can run on any thread
//! in any order and still give bit-identical noise.

use rand::RngCore;
use rand_distr::{Distribution, StandardNormal};

/// SplitMix64: a tiny, fast generator (one add and two multiplies per
/// 64 bits), good enough for sampling noise.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

/// The SplitMix64 finaliser: a bijective 64-bit mix.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SplitMix64 {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// The stream of sample `index` under `key` (keys of different
    /// iterations and calls come from [`derive_key`]).
    pub fn stream(key: u64, index: u64) -> Self {
        Self(mix64(key ^ mix64(index.wrapping_add(0x9e37_79b9_7f4a_7c15))))
    }
    /// A standard normal `f32` (ziggurat).
    #[inline]
    pub fn normal(&mut self) -> f32 {
        StandardNormal.sample(self)
    }
}

/// A child key of `key` for `label` (e.g. an iteration number).
pub fn derive_key(key: u64, label: u64) -> u64 {
    mix64(key.wrapping_add(mix64(label ^ 0xd1b5_4a32_d192_ed03)))
}

impl RngCore for SplitMix64 {
    #[inline]
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
