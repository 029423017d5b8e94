//! CRC-64/GO-ISO, the checksum Litestream v0.3.13's validator prints (Go's
//! `crc64.New(crc64.MakeTable(crc64.ISO))`): reflected polynomial `0xD800000000000000`, initial
//! value and final xor all ones; also the LTX file checksum of Litestream v0.5 (spec §2.5).
//! Table-driven (eight bytes per step), streamed over a reader in fixed-size chunks.
//!
//! What must stay true: the value equals Go's for every input (check value of `"123456789"` is
//! `0xb90956c775a41001`); [`Crc64::update`] over any split of the input gives the same result as
//! over the whole; [`checksum_file_range`] uses one fixed buffer whatever the file size.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;

/// Go's `crc64.ISO`, in reversed (LSB-first) form.
const ISO_POLY_REVERSED: u64 = 0xD800_0000_0000_0000;
/// Bytes read per call when checksumming a file.
pub const CHUNK_BYTES: usize = 1 << 20;

static TABLES: [[u64; 256]; 8] = make_tables();

/// Table 0 is the classic byte table; table k advances a byte that sits k bytes further back,
/// so eight bytes are folded per step ("slicing by 8": a restore's LTX checksums keep up with
/// LZ4 decoding).
const fn make_tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ ISO_POLY_REVERSED
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

/// A running CRC-64/GO-ISO.
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

/// The checksum of `data` in one call.
pub fn checksum(data: &[u8]) -> u64 {
    let mut c = Crc64::new();
    c.update(data);
    c.sum()
}

/// Checksum of everything `reader` yields, read in [`CHUNK_BYTES`] chunks.
pub fn checksum_reader(mut reader: impl Read) -> std::io::Result<u64> {
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut c = Crc64::new();
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(c.sum()),
            Ok(n) => c.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Checksum of bytes `[0, len)` of `file` (or up to EOF if shorter), read positionally so a
/// handle shared with other readers is never moved.
pub fn checksum_file_range(file: &File, len: u64) -> std::io::Result<u64> {
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut c = Crc64::new();
    let mut offset = 0u64;
    while offset < len {
        let want = usize::try_from(len - offset).map_or(CHUNK_BYTES, |n| n.min(CHUNK_BYTES));
        let n = match file.read_at(&mut buf[..want], offset) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        c.update(&buf[..n]);
        offset += n as u64;
    }
    Ok(c.sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value_matches_go_crc64_iso() {
        assert_eq!(checksum(b"123456789"), 0xb909_56c7_75a4_1001);
        assert_eq!(checksum(b""), 0);
    }

    /// The plain bit-at-a-time definition, for comparison.
    fn reference(data: &[u8]) -> u64 {
        let mut crc = !0u64;
        for &b in data {
            crc ^= u64::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ ISO_POLY_REVERSED
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn split_updates_equal_one_update() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let whole = checksum(&data);
        assert_eq!(whole, reference(&data));
        for len in [0, 1, 7, 8, 9, 100, 4093] {
            assert_eq!(
                checksum(&data[..len]),
                reference(&data[..len]),
                "length {len}"
            );
        }
        for split in [0, 1, 7, 4096, 9_999, 10_000] {
            let mut c = Crc64::new();
            c.update(&data[..split]);
            c.update(&data[split..]);
            assert_eq!(c.sum(), whole, "split at {split}");
        }
        assert_ne!(whole, checksum(&data[1..]));
    }

    #[test]
    fn file_range_and_reader_agree_across_chunks() {
        let mut path = std::env::temp_dir();
        path.push(format!("walstream-crc64-{}", std::process::id()));
        let data: Vec<u8> = (0..(CHUNK_BYTES + 12_345))
            .map(|i| (i % 253) as u8)
            .collect();
        std::fs::write(&path, &data).expect("write temp file");
        let file = File::open(&path).expect("open temp file");
        let whole = checksum(&data);
        assert_eq!(
            checksum_file_range(&file, data.len() as u64).ok(),
            Some(whole)
        );
        // A length past EOF reads to EOF; a shorter one stops there.
        assert_eq!(checksum_file_range(&file, u64::MAX).ok(), Some(whole));
        assert_eq!(
            checksum_file_range(&file, 100).ok(),
            Some(checksum(&data[..100]))
        );
        assert_eq!(checksum_reader(&file).ok(), Some(whole));
        let _ = std::fs::remove_file(&path);
    }
}
