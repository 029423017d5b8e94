//! Frame scanner: walks consecutive WAL frames from a seed checksum, validating salts and the
//! checksum chain, and reports where the last valid commit ends (spec §2, §3.3).
//!
//! Used by the shadow-WAL copier (copy only up to the last commit) and by restore verification.
//! What must stay true: the scan stops at the first short, salt-mismatched or checksum-mismatched
//! frame; `commit_end` never covers a frame after that point nor an uncommitted tail.

use std::io::{Read, Seek, SeekFrom};

use super::header::read_full;
use super::{
    FRAME_HEADER_SIZE, FrameHeader, WAL_HEADER_SIZE, WalError, WalHeader, align, checksum,
};

/// Why a scan stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanStop {
    /// The input ended exactly on a frame boundary.
    Eof,
    /// The input ended inside the frame at `offset` (`len` bytes of it were present).
    ShortRead { offset: u64, len: usize },
    /// The frame at `offset` carries salts from another WAL cycle (stale frame).
    SaltMismatch {
        offset: u64,
        expected: (u32, u32),
        found: (u32, u32),
    },
    /// The frame at `offset` does not continue the checksum chain (torn or corrupt).
    ChecksumMismatch {
        offset: u64,
        expected: (u32, u32),
        found: (u32, u32),
    },
}

/// Result of scanning frames. Offsets are absolute WAL file offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanSummary {
    /// Offset the scan started at.
    pub start: u64,
    /// Valid frames read, including any uncommitted tail.
    pub frames: u64,
    /// Offset just past the last valid frame.
    pub valid_end: u64,
    /// Valid frames up to and including the last commit frame.
    pub committed_frames: u64,
    /// Offset just past the last valid commit frame (`start` if there was none).
    pub commit_end: u64,
    /// Running checksum at `commit_end` (the seed if there was no commit): the seed to continue.
    pub commit_checksum: (u32, u32),
    /// Database size in pages recorded by the last valid commit frame.
    pub db_size: Option<u32>,
    /// Why the scan stopped.
    pub stop: ScanStop,
}

/// Validates consecutive frames of one WAL cycle.
#[derive(Debug, Clone)]
pub struct FrameScanner {
    big_endian: bool,
    salts: (u32, u32),
    frame_size: usize,
    checksum: (u32, u32),
    offset: u64,
}

impl FrameScanner {
    /// A scanner for frames of `header`'s cycle starting at `offset`, continuing the chain from
    /// `seed` (the header checksum for the first frame, else the previous frame's checksum).
    pub fn new(header: &WalHeader, seed: (u32, u32), offset: u64) -> Self {
        FrameScanner {
            big_endian: header.big_endian_checksum(),
            salts: header.salts(),
            frame_size: FRAME_HEADER_SIZE + header.page_size as usize,
            checksum: seed,
            offset,
        }
    }

    /// Offset of the next frame to validate.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Size of one frame (header + page) of this WAL.
    pub fn frame_size(&self) -> u64 {
        self.frame_size as u64
    }

    /// Running checksum after the last validated frame.
    pub fn checksum(&self) -> (u32, u32) {
        self.checksum
    }

    /// Validates the frame at the current offset (`frame` = header + page) and advances past
    /// it; on failure the scanner is left unchanged and the reason is returned.
    pub fn check_frame(&mut self, frame: &[u8]) -> Result<FrameHeader, ScanStop> {
        let offset = self.offset;
        if frame.len() < self.frame_size {
            return Err(ScanStop::ShortRead {
                offset,
                len: frame.len(),
            });
        }
        let frame = &frame[..self.frame_size];
        let fh = FrameHeader::parse(frame, offset).map_err(|_| ScanStop::ShortRead {
            offset,
            len: frame.len(),
        })?;
        if fh.salts() != self.salts {
            return Err(ScanStop::SaltMismatch {
                offset,
                expected: self.salts,
                found: fh.salts(),
            });
        }
        let sum = checksum(self.big_endian, self.checksum, &frame[..8]);
        let sum = checksum(self.big_endian, sum, &frame[FRAME_HEADER_SIZE..]);
        if sum != fh.checksum() {
            return Err(ScanStop::ChecksumMismatch {
                offset,
                expected: sum,
                found: fh.checksum(),
            });
        }
        self.checksum = sum;
        self.offset += self.frame_size as u64;
        Ok(fh)
    }

    /// Reads frames from `r` (positioned at [`Self::offset`]) until one is invalid or the input
    /// ends, calling `on_frame` with each valid frame's header and bytes (header + page).
    /// An error from reading or from `on_frame` is returned as [`WalError::Io`] at the frame.
    pub fn scan<R, F>(&mut self, r: &mut R, mut on_frame: F) -> Result<ScanSummary, WalError>
    where
        R: Read,
        F: FnMut(&FrameHeader, &[u8]) -> std::io::Result<()>,
    {
        let mut acc = Accumulator::new(self);
        let mut buf = vec![0u8; self.frame_size];
        loop {
            let offset = self.offset;
            let len = read_full(r, &mut buf).map_err(|source| WalError::Io { offset, source })?;
            if len == 0 {
                return Ok(acc.finish(self, ScanStop::Eof));
            }
            match self.check_frame(&buf[..len]) {
                Ok(fh) => {
                    on_frame(&fh, &buf).map_err(|source| WalError::Io { offset, source })?;
                    acc.add(self, &fh);
                }
                Err(stop) => return Ok(acc.finish(self, stop)),
            }
        }
    }

    /// Like [`Self::scan`] over an in-memory byte range that starts at [`Self::offset`].
    pub fn scan_slice(&mut self, data: &[u8]) -> ScanSummary {
        let mut acc = Accumulator::new(self);
        let mut rest = data;
        loop {
            if rest.is_empty() {
                return acc.finish(self, ScanStop::Eof);
            }
            match self.check_frame(rest) {
                Ok(fh) => {
                    acc.add(self, &fh);
                    rest = &rest[self.frame_size..];
                }
                Err(stop) => return acc.finish(self, stop),
            }
        }
    }
}

/// Running totals of a scan.
struct Accumulator {
    start: u64,
    frames: u64,
    committed_frames: u64,
    commit_end: u64,
    commit_checksum: (u32, u32),
    db_size: Option<u32>,
}

impl Accumulator {
    fn new(s: &FrameScanner) -> Self {
        Accumulator {
            start: s.offset,
            frames: 0,
            committed_frames: 0,
            commit_end: s.offset,
            commit_checksum: s.checksum,
            db_size: None,
        }
    }

    fn add(&mut self, s: &FrameScanner, fh: &FrameHeader) {
        self.frames += 1;
        if fh.is_commit() {
            self.committed_frames = self.frames;
            self.commit_end = s.offset;
            self.commit_checksum = s.checksum;
            self.db_size = Some(fh.commit);
        }
    }

    fn finish(self, s: &FrameScanner, stop: ScanStop) -> ScanSummary {
        ScanSummary {
            start: self.start,
            frames: self.frames,
            valid_end: s.offset,
            committed_frames: self.committed_frames,
            commit_end: self.commit_end,
            commit_checksum: self.commit_checksum,
            db_size: self.db_size,
            stop,
        }
    }
}

/// The checksum to seed a scan that continues an existing WAL file of length `len` (e.g. a
/// shadow WAL): the stored checksum of its last whole frame, or the header checksum when it
/// holds no frame. `r` must be the file `header` was read from.
pub fn read_seed_checksum<R: Read + Seek>(
    r: &mut R,
    header: &WalHeader,
    len: u64,
) -> Result<(u32, u32), WalError> {
    let end = align(len, header.page_size);
    if end <= WAL_HEADER_SIZE as u64 {
        return Ok(header.checksum());
    }
    let offset = end - header.frame_size();
    let io_err = |source| WalError::Io { offset, source };
    r.seek(SeekFrom::Start(offset)).map_err(io_err)?;
    let mut buf = [0u8; FRAME_HEADER_SIZE];
    let n = read_full(r, &mut buf).map_err(io_err)?;
    Ok(FrameHeader::parse(&buf[..n], offset)?.checksum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::frame_offset;
    use std::io::Cursor;

    const PS: u32 = 512;

    /// A WAL with `commits[i]` = commit field of frame i (0 = not a commit).
    fn build(header: &WalHeader, commits: &[u32]) -> Vec<u8> {
        let mut wal = header.encode().to_vec();
        let mut sum = header.checksum();
        for (i, &commit) in commits.iter().enumerate() {
            let page = vec![i as u8 ^ 0x5a; PS as usize];
            let (frame, next) = header.encode_frame(sum, i as u32 + 1, commit, &page);
            wal.extend_from_slice(&frame);
            sum = next;
        }
        wal
    }

    fn scan_all(header: &WalHeader, wal: &[u8]) -> ScanSummary {
        FrameScanner::new(header, header.checksum(), 32).scan_slice(&wal[32..])
    }

    #[test]
    fn stops_at_last_commit_and_reports_uncommitted_tail() {
        for big in [false, true] {
            let h = WalHeader::new(big, PS, 0, (11, 22));
            let wal = build(&h, &[0, 2, 0, 0, 5, 0, 0]);
            let s = scan_all(&h, &wal);
            assert_eq!(s.stop, ScanStop::Eof);
            assert_eq!(s.frames, 7);
            assert_eq!(s.valid_end, wal.len() as u64);
            assert_eq!(s.committed_frames, 5);
            assert_eq!(s.commit_end, frame_offset(5, PS));
            assert_eq!(s.db_size, Some(5));
            // The commit checksum is the stored checksum of frame 5.
            let f5 = FrameHeader::parse(&wal[frame_offset(4, PS) as usize..], 0).expect("frame");
            assert_eq!(s.commit_checksum, f5.checksum());
        }
    }

    #[test]
    fn reader_and_slice_scans_agree_and_callback_sees_each_frame() {
        let h = WalHeader::new(false, PS, 1, (7, 8));
        let wal = build(&h, &[0, 2, 3, 0]);
        let mut seen = Vec::new();
        let mut cursor = Cursor::new(&wal[32..]);
        let s = FrameScanner::new(&h, h.checksum(), 32)
            .scan(&mut cursor, |fh, bytes| {
                seen.push((fh.pgno, bytes.len()));
                Ok(())
            })
            .expect("in-memory read");
        assert_eq!(s, scan_all(&h, &wal));
        assert_eq!(seen, vec![(1, 536), (2, 536), (3, 536), (4, 536)]);
    }

    #[test]
    fn flipped_byte_stops_before_the_frame() {
        let h = WalHeader::new(false, PS, 0, (1, 2));
        let mut wal = build(&h, &[1, 2, 3, 4]);
        let bad = frame_offset(2, PS);
        wal[bad as usize + 100] ^= 1;
        let s = scan_all(&h, &wal);
        assert!(matches!(s.stop, ScanStop::ChecksumMismatch { offset, .. } if offset == bad));
        assert_eq!((s.frames, s.commit_end, s.valid_end), (2, bad, bad));
    }

    #[test]
    fn stale_salt_and_short_frame() {
        let h = WalHeader::new(false, PS, 0, (1, 2));
        let old = WalHeader::new(false, PS, 0, (0, 2));
        let mut wal = build(&h, &[1]);
        wal.extend_from_slice(&build(&old, &[0, 1])[frame_offset(1, PS) as usize..]);
        let s = scan_all(&h, &wal);
        let at = frame_offset(1, PS);
        assert_eq!(
            s.stop,
            ScanStop::SaltMismatch {
                offset: at,
                expected: (1, 2),
                found: (0, 2)
            }
        );
        assert_eq!(s.commit_end, at);

        let short = &build(&h, &[1, 2])[..frame_offset(2, PS) as usize - 1];
        let s = scan_all(&h, short);
        assert_eq!(
            s.stop,
            ScanStop::ShortRead {
                offset: at,
                len: 535
            }
        );
        assert_eq!(s.commit_end, at);
    }

    #[test]
    fn no_commit_keeps_seed_and_start() {
        let h = WalHeader::new(false, PS, 0, (1, 2));
        let wal = build(&h, &[0, 0]);
        let s = scan_all(&h, &wal);
        assert_eq!((s.frames, s.committed_frames, s.commit_end), (2, 0, 32));
        assert_eq!(s.commit_checksum, h.checksum());
        assert_eq!(s.db_size, None);
    }

    #[test]
    fn seed_from_existing_file_continues_the_chain() {
        let h = WalHeader::new(false, PS, 0, (3, 4));
        let wal = build(&h, &[0, 2, 0, 4]);
        let mut file = Cursor::new(wal.clone());
        assert_eq!(
            read_seed_checksum(&mut file, &h, 32).expect("seed"),
            h.checksum()
        );
        // A shadow holding two frames (plus a partial third) continues at frame 3.
        let len = frame_offset(2, PS) + 10;
        let seed = read_seed_checksum(&mut file, &h, len).expect("seed");
        let start = frame_offset(2, PS);
        let s = FrameScanner::new(&h, seed, start).scan_slice(&wal[start as usize..]);
        assert_eq!(
            (s.stop, s.frames, s.commit_end),
            (ScanStop::Eof, 2, wal.len() as u64)
        );
        // A wrong seed is caught on the first frame.
        let s = FrameScanner::new(&h, h.checksum(), start).scan_slice(&wal[start as usize..]);
        assert!(matches!(s.stop, ScanStop::ChecksumMismatch { .. }));
    }
}
