//! A small deterministic PRNG (SplitMix64) for the crash suite: the workload of transaction `k`
//! and the driver's decisions of round `r` are pure functions of (seed, k) / (seed, r).
//!
//! Must stay true: the sequence for a given seed never changes (the expected database content is
//! recomputed from it), and nothing here reads the clock or the OS entropy source.

/// SplitMix64 (Steele, Lea, Flood 2014): fast, full-period, good enough for test data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `(seed, stream, index)`: different streams (workload, driver) and indices
    /// (transaction, round) give unrelated sequences.
    pub fn derive(seed: u64, stream: u64, index: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        let mixed = r.next_u64() ^ index.wrapping_mul(0xE703_7ED1_A0B4_28DB);
        Rng(mixed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }

    /// A uniformly chosen element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as u64) as usize]
    }

    /// `len` pseudo-random bytes (incompressible, so large transactions stay large after LZ4).
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// `len` lowercase letters.
    pub fn text(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        while s.len() < len {
            let mut x = self.next_u64();
            for _ in 0..8 {
                if s.len() == len {
                    break;
                }
                s.push(char::from(b'a' + (x % 26) as u8));
                x >>= 8;
            }
        }
        s
    }
}
