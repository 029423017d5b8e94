//! CRC-64/ISO as Go's `crc64.New(crc64.MakeTable(crc64.ISO))` computes it (the LTX file
//! checksum, spec §2.5), eight bytes per step ("slicing by 8") so that checksumming a restore
//! keeps up with LZ4 decoding.
//!
//! What must stay true: every value equals `crate::replica::crc64` (the byte-wise reference) for
//! any input and any split of it (tested below).

const POLY_REVERSED: u64 = 0xD800_0000_0000_0000;

static TABLES: [[u64; 256]; 8] = make_tables();

const fn make_tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REVERSED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

/// A running CRC-64/ISO.
#[derive(Debug, Clone, Copy, Default)]
pub struct Crc64 {
    /// The register, stored complemented so `Default` (0) is the empty checksum.
    state: u64,
}

impl Crc64 {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        let t = &TABLES;
        let mut crc = !self.state;
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let v = crc ^ u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            crc = t[7][(v & 0xff) as usize]
                ^ t[6][((v >> 8) & 0xff) as usize]
                ^ t[5][((v >> 16) & 0xff) as usize]
                ^ t[4][((v >> 24) & 0xff) as usize]
                ^ t[3][((v >> 32) & 0xff) as usize]
                ^ t[2][((v >> 40) & 0xff) as usize]
                ^ t[1][((v >> 48) & 0xff) as usize]
                ^ t[0][(v >> 56) as usize];
        }
        for &b in chunks.remainder() {
            crc = t[0][((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
        }
        self.state = !crc;
    }

    pub fn sum(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::crc64 as reference;

    #[test]
    fn check_value_and_reference_agree_over_splits() {
        let mut c = Crc64::new();
        c.update(b"123456789");
        assert_eq!(c.sum(), 0xB909_56C7_75A4_1001);
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for split in [0, 1, 7, 8, 9, 100, 4093, 5000] {
            let mut c = Crc64::new();
            c.update(&data[..split]);
            c.update(&data[split..]);
            assert_eq!(c.sum(), reference::checksum(&data), "split {split}");
        }
    }
}
