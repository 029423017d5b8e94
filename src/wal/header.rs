//! WAL file header (32 bytes) and frame header (24 bytes): decode, validate, encode (spec §2).
//!
//! What must stay true: `parse` accepts only headers SQLite itself would accept (magic, version,
//! power-of-two page size in 512..=65536, header checksum); `encode(parse(b)) == b`.

use std::io::Read;

use super::{
    FRAME_HEADER_SIZE, MAX_PAGE_SIZE, MIN_PAGE_SIZE, WAL_HEADER_SIZE, WAL_MAGIC_BE, WAL_MAGIC_LE,
    WAL_VERSION, WalError, checksum, frame_size,
};

/// The 32-byte WAL file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WalHeader {
    pub magic: u32,
    pub version: u32,
    pub page_size: u32,
    pub checkpoint_seq: u32,
    pub salt1: u32,
    pub salt2: u32,
    pub checksum1: u32,
    pub checksum2: u32,
}

impl WalHeader {
    /// A header with its checksum computed, e.g. to build WAL files in tests.
    pub fn new(big_endian: bool, page_size: u32, checkpoint_seq: u32, salts: (u32, u32)) -> Self {
        let mut h = WalHeader {
            magic: if big_endian {
                WAL_MAGIC_BE
            } else {
                WAL_MAGIC_LE
            },
            version: WAL_VERSION,
            page_size,
            checkpoint_seq,
            salt1: salts.0,
            salt2: salts.1,
            checksum1: 0,
            checksum2: 0,
        };
        (h.checksum1, h.checksum2) = h.compute_checksum();
        h
    }

    /// Decodes and validates the first 32 bytes of `buf` (magic, version, page size, checksum).
    pub fn parse(buf: &[u8]) -> Result<Self, WalError> {
        let h = Self::decode(buf)?;
        if h.magic != WAL_MAGIC_LE && h.magic != WAL_MAGIC_BE {
            return Err(WalError::BadMagic { magic: h.magic });
        }
        if h.version != WAL_VERSION {
            return Err(WalError::BadVersion { version: h.version });
        }
        if !is_valid_page_size(h.page_size) {
            return Err(WalError::BadPageSize {
                page_size: h.page_size,
            });
        }
        let computed = h.compute_checksum();
        if computed != h.checksum() {
            return Err(WalError::HeaderChecksum {
                stored: h.checksum(),
                computed,
            });
        }
        Ok(h)
    }

    /// Decodes the fields without validating them (only the length is checked).
    pub fn decode(buf: &[u8]) -> Result<Self, WalError> {
        let Some(b) = buf.get(..WAL_HEADER_SIZE) else {
            return Err(WalError::ShortHeader { len: buf.len() });
        };
        let w = |i: usize| be_u32(b, i * 4);
        Ok(WalHeader {
            magic: w(0),
            version: w(1),
            page_size: w(2),
            checkpoint_seq: w(3),
            salt1: w(4),
            salt2: w(5),
            checksum1: w(6),
            checksum2: w(7),
        })
    }

    /// The 32 on-disk bytes.
    pub fn encode(&self) -> [u8; WAL_HEADER_SIZE] {
        let fields = [
            self.magic,
            self.version,
            self.page_size,
            self.checkpoint_seq,
            self.salt1,
            self.salt2,
            self.checksum1,
            self.checksum2,
        ];
        let mut out = [0u8; WAL_HEADER_SIZE];
        for (chunk, v) in out.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&v.to_be_bytes());
        }
        out
    }

    /// True when checksum words are read big-endian (magic `0x377f0683`).
    pub fn big_endian_checksum(&self) -> bool {
        self.magic & 1 == 1
    }

    /// The stored header checksum, which seeds the first frame's checksum.
    pub fn checksum(&self) -> (u32, u32) {
        (self.checksum1, self.checksum2)
    }

    /// The checksum over bytes 0..24 as it should be stored.
    pub fn compute_checksum(&self) -> (u32, u32) {
        let bytes = self.encode();
        checksum(self.big_endian_checksum(), (0, 0), &bytes[..24])
    }

    /// `(salt1, salt2)`.
    pub fn salts(&self) -> (u32, u32) {
        (self.salt1, self.salt2)
    }

    /// Size of one frame of this WAL.
    pub fn frame_size(&self) -> u64 {
        frame_size(self.page_size)
    }

    /// Builds one valid frame continuing the chain from `seed`; returns its bytes and the new
    /// running checksum. `page.len()` must equal the page size. Used to build WALs in tests.
    pub fn encode_frame(
        &self,
        seed: (u32, u32),
        pgno: u32,
        commit: u32,
        page: &[u8],
    ) -> (Vec<u8>, (u32, u32)) {
        debug_assert_eq!(page.len() as u64, u64::from(self.page_size));
        let mut fh = FrameHeader {
            pgno,
            commit,
            salt1: self.salt1,
            salt2: self.salt2,
            checksum1: 0,
            checksum2: 0,
        };
        let big = self.big_endian_checksum();
        let sum = checksum(big, checksum(big, seed, &fh.encode()[..8]), page);
        (fh.checksum1, fh.checksum2) = sum;
        let mut frame = Vec::with_capacity(FRAME_HEADER_SIZE + page.len());
        frame.extend_from_slice(&fh.encode());
        frame.extend_from_slice(page);
        (frame, sum)
    }
}

/// Reads and validates the WAL header at the current position of `r`.
pub fn read_header<R: Read>(r: &mut R) -> Result<WalHeader, WalError> {
    let mut buf = [0u8; WAL_HEADER_SIZE];
    let len = read_full(r, &mut buf).map_err(|source| WalError::Io { offset: 0, source })?;
    if len < WAL_HEADER_SIZE {
        return Err(WalError::ShortHeader { len });
    }
    WalHeader::parse(&buf)
}

/// The 24-byte header in front of each frame's page content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    pub pgno: u32,
    /// Database size in pages after the commit for a commit frame, 0 otherwise.
    pub commit: u32,
    pub salt1: u32,
    pub salt2: u32,
    pub checksum1: u32,
    pub checksum2: u32,
}

impl FrameHeader {
    /// Decodes the first 24 bytes of `buf`; `offset` is only used for the error.
    pub fn parse(buf: &[u8], offset: u64) -> Result<Self, WalError> {
        let Some(b) = buf.get(..FRAME_HEADER_SIZE) else {
            return Err(WalError::ShortFrameHeader {
                offset,
                len: buf.len(),
            });
        };
        let w = |i: usize| be_u32(b, i * 4);
        Ok(FrameHeader {
            pgno: w(0),
            commit: w(1),
            salt1: w(2),
            salt2: w(3),
            checksum1: w(4),
            checksum2: w(5),
        })
    }

    /// The 24 on-disk bytes.
    pub fn encode(&self) -> [u8; FRAME_HEADER_SIZE] {
        let fields = [
            self.pgno,
            self.commit,
            self.salt1,
            self.salt2,
            self.checksum1,
            self.checksum2,
        ];
        let mut out = [0u8; FRAME_HEADER_SIZE];
        for (chunk, v) in out.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&v.to_be_bytes());
        }
        out
    }

    /// True for the last frame of a transaction.
    pub fn is_commit(&self) -> bool {
        self.commit != 0
    }

    /// `(salt1, salt2)`.
    pub fn salts(&self) -> (u32, u32) {
        (self.salt1, self.salt2)
    }

    /// The stored cumulative checksum.
    pub fn checksum(&self) -> (u32, u32) {
        (self.checksum1, self.checksum2)
    }
}

pub(super) fn is_valid_page_size(ps: u32) -> bool {
    ps.is_power_of_two() && (MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&ps)
}

/// Big-endian u32 at `i`; callers pass slices already checked to be long enough.
fn be_u32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
pub(super) fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec §1.7 sample: header and first frame header of a real offset-0 segment.
    const SAMPLE_HEADER: [u8; 32] = [
        0x37, 0x7f, 0x06, 0x82, 0x00, 0x2d, 0xe2, 0x18, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x15, 0xd1, 0x9b, 0x6f, 0x0c, 0xf8, 0x82, 0xbb, 0x44, 0x82, 0xd4, 0x28, 0xb7, 0xed,
        0xa3, 0xd9,
    ];
    const SAMPLE_FRAME: [u8; 24] = [
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x15, 0xd1, 0x9b, 0x6f, 0x0c, 0xf8, 0x82,
        0xbb, 0x7d, 0xd5, 0xab, 0x32, 0xb6, 0x90, 0xf0, 0x24,
    ];

    #[test]
    fn parses_the_spec_sample() {
        let h = WalHeader::parse(&SAMPLE_HEADER).expect("sample header is valid");
        assert_eq!(h.magic, WAL_MAGIC_LE);
        assert!(!h.big_endian_checksum());
        assert_eq!(h.version, 3_007_000);
        assert_eq!(h.page_size, 4096);
        assert_eq!(h.checkpoint_seq, 0);
        assert_eq!(h.salts(), (0x15d1_9b6f, 0x0cf8_82bb));
        assert_eq!(h.checksum(), (0x4482_d428, 0xb7ed_a3d9));
        assert_eq!(h.compute_checksum(), h.checksum());
        assert_eq!(h.encode(), SAMPLE_HEADER);
        assert_eq!(
            WalHeader::new(false, 4096, 0, (0x15d1_9b6f, 0x0cf8_82bb)),
            h,
            "new() computes the same checksum"
        );

        let f = FrameHeader::parse(&SAMPLE_FRAME, 32).expect("24 bytes");
        assert_eq!((f.pgno, f.commit), (1, 0));
        assert!(!f.is_commit());
        assert_eq!(f.salts(), h.salts());
        assert_eq!(f.checksum(), (0x7dd5_ab32, 0xb690_f024));
        assert_eq!(f.encode(), SAMPLE_FRAME);
    }

    #[test]
    fn rejects_invalid_headers() {
        let mutate = |i: usize, v: u8| {
            let mut b = SAMPLE_HEADER;
            b[i] = v;
            WalHeader::parse(&b)
        };
        assert!(matches!(
            mutate(3, 0x84),
            Err(WalError::BadMagic { magic: 0x377f_0684 })
        ));
        assert!(matches!(mutate(7, 0x19), Err(WalError::BadVersion { .. })));
        assert!(matches!(
            mutate(10, 0x11),
            Err(WalError::BadPageSize { page_size: 0x1100 })
        ));
        assert!(matches!(
            mutate(10, 0x01),
            Err(WalError::BadPageSize { page_size: 256 })
        ));
        assert!(matches!(
            mutate(16, 0x16),
            Err(WalError::HeaderChecksum { .. })
        ));
        assert!(matches!(
            mutate(31, 0xda),
            Err(WalError::HeaderChecksum { .. })
        ));
        assert!(matches!(
            WalHeader::parse(&SAMPLE_HEADER[..31]),
            Err(WalError::ShortHeader { len: 31 })
        ));
        assert!(matches!(
            FrameHeader::parse(&SAMPLE_FRAME[..10], 4152),
            Err(WalError::ShortFrameHeader {
                offset: 4152,
                len: 10
            })
        ));
    }

    #[test]
    fn page_size_bounds() {
        for ps in [512, 1024, 4096, 32_768, 65_536] {
            assert!(is_valid_page_size(ps), "{ps}");
            let h = WalHeader::new(true, ps, 3, (1, 2));
            assert_eq!(WalHeader::parse(&h.encode()).expect("valid"), h);
        }
        for ps in [0, 1, 256, 511, 513, 3000, 131_072] {
            assert!(!is_valid_page_size(ps), "{ps}");
        }
    }

    #[test]
    fn read_header_reports_short_input() {
        let mut short: &[u8] = &SAMPLE_HEADER[..20];
        assert!(matches!(
            read_header(&mut short),
            Err(WalError::ShortHeader { len: 20 })
        ));
        let mut full: &[u8] = &SAMPLE_HEADER;
        assert_eq!(read_header(&mut full).expect("valid").page_size, 4096);
    }
}
