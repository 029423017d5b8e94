//! Writing a restore onto the temporary database file: the snapshot bytes, then each WAL index's
//! committed frames written straight to their pages (synchronous; runs on a blocking thread).
//!
//! Why direct page writes equal Litestream's result: Litestream lets SQLite run
//! `PRAGMA wal_checkpoint(TRUNCATE)` on each index's WAL. A complete checkpoint copies, for every
//! page, its newest frame from the valid committed prefix of the WAL to `(pgno−1)·page_size`,
//! then truncates the database file to `nPage·page_size` of the last commit (and touches nothing
//! when the WAL holds no frame). Writing every frame in WAL order and then truncating the same
//! way produces the same bytes; pages beyond `nPage` are cut off by the truncation either way.
//!
//! What must stay true:
//! - Nothing SQLite would ignore is ever applied, and anything SQLite would silently skip is an
//!   error here instead: bad WAL header, salt or checksum-chain break, page number 0, a partial
//!   frame, an index that does not end on a commit frame, offset gaps between segments, a
//!   snapshot shorter than its header's page count, a page-size mismatch. Each error names the
//!   object key and the WAL offset.
//! - Bytes may arrive split anywhere (across segments or decoder blocks).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::wal::{FRAME_HEADER_SIZE, FrameHeader, WAL_HEADER_SIZE, WalHeader, checksum};

use super::error::RestoreError;

/// Bytes of the SQLite database header this module reads.
const DB_HEADER_LEN: usize = 100;
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Writes the decompressed snapshot sequentially to the start of the file.
pub struct SnapshotSink<'f> {
    file: &'f File,
    path: &'f Path,
    key: String,
    len: u64,
    head: Vec<u8>,
}

/// What the applied snapshot looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbInfo {
    /// File length after the snapshot.
    pub len: u64,
    /// Page size from the database header; `None` for an empty snapshot.
    pub page_size: Option<u32>,
    /// The snapshot ends before the page count its header announces: the pages it lacks, which
    /// the replay of its WAL index must write (see [`SnapshotSink::finish`]).
    pub torn: Option<TornSnapshot>,
}

/// A snapshot shorter than its header (copied while a checkpoint extended the file): which
/// pages the replay of its own WAL index must supply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornSnapshot {
    pub key: String,
    pub len: u64,
    pub pages: u32,
    pub page_size: u32,
}

impl TornSnapshot {
    /// First page (1-based) the snapshot does not hold in full.
    fn first_missing(&self) -> u32 {
        u32::try_from(self.len / u64::from(self.page_size)).map_or(u32::MAX, |n| n + 1)
    }
}

/// Which of a torn snapshot's missing pages the replay wrote.
struct Coverage {
    torn: TornSnapshot,
    seen: Vec<bool>,
}

impl Coverage {
    fn new(torn: TornSnapshot) -> Coverage {
        let n = torn.pages.saturating_sub(torn.first_missing()) as usize + 1;
        Coverage {
            seen: vec![false; n],
            torn,
        }
    }

    fn note(&mut self, pgno: u32) {
        if let Some(i) = pgno.checked_sub(self.torn.first_missing())
            && let Some(slot) = self.seen.get_mut(i as usize)
        {
            *slot = true;
        }
    }

    /// The snapshot's truncation error unless every missing page up to `db_pages` (the size
    /// after the index) was written.
    fn check(self, db_pages: Option<u32>) -> Result<(), RestoreError> {
        let limit = db_pages.unwrap_or(self.torn.pages);
        let first = self.torn.first_missing();
        let covered = self
            .seen
            .iter()
            .enumerate()
            .all(|(i, &seen)| seen || first.saturating_add(i as u32) > limit);
        if covered {
            return Ok(());
        }
        Err(RestoreError::SnapshotTruncated {
            key: self.torn.key,
            len: self.torn.len,
            pages: self.torn.pages,
            page_size: self.torn.page_size,
        })
    }
}

impl<'f> SnapshotSink<'f> {
    pub fn new(file: &'f File, path: &'f Path, key: impl Into<String>) -> Self {
        SnapshotSink {
            file,
            path,
            key: key.into(),
            len: 0,
            head: Vec::with_capacity(DB_HEADER_LEN),
        }
    }

    pub fn write(&mut self, data: &[u8]) -> Result<(), RestoreError> {
        let want = DB_HEADER_LEN
            .saturating_sub(self.head.len())
            .min(data.len());
        self.head.extend_from_slice(&data[..want]);
        if want > 0 && self.head.len() == DB_HEADER_LEN {
            preallocate(self.file, &self.head);
        }
        self.file
            .write_all_at(data, self.len)
            .map_err(|e| RestoreError::io("write", self.path, e))?;
        self.len += data.len() as u64;
        Ok(())
    }

    /// Checks the header against the length written. `index_replayed`: the WAL index the
    /// snapshot was taken in is replayed from its start next. Litestream v0.3 copies the live
    /// database file while checkpoints may run, so its snapshot can hold a new header page whose
    /// page count runs past the bytes copied; replaying that whole index rewrites every page
    /// such a checkpoint wrote, so a short snapshot is then accepted (the final integrity check
    /// still guards the result) and only refused when nothing would repair it.
    pub fn finish(self, index_replayed: bool) -> Result<DbInfo, RestoreError> {
        if self.len == 0 {
            return Ok(DbInfo {
                len: 0,
                torn: None,
                page_size: None,
            });
        }
        let not_sqlite = || RestoreError::SnapshotNotSqlite {
            key: self.key.clone(),
        };
        let h = &self.head;
        if h.len() < DB_HEADER_LEN || &h[..16] != SQLITE_MAGIC {
            return Err(not_sqlite());
        }
        let page_size = match u16::from_be_bytes([h[16], h[17]]) {
            1 => 65_536,
            n => u32::from(n),
        };
        if !page_size.is_power_of_two() || !(512..=65_536).contains(&page_size) {
            return Err(not_sqlite());
        }
        let be = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let (change_counter, pages, valid_for) = (be(24), be(28), be(92));
        // The in-header size is only meaningful when SQLite would trust it (file format §1.3.7).
        if pages > 0
            && change_counter == valid_for
            && self.len < u64::from(pages) * u64::from(page_size)
        {
            if index_replayed {
                tracing::info!(snapshot = %self.key, bytes = self.len, header_pages = pages,
                    "snapshot shorter than its header (copied during a checkpoint); \
                     replaying its WAL index must supply the missing pages");
                return Ok(DbInfo {
                    len: self.len,
                    page_size: Some(page_size),
                    torn: Some(TornSnapshot {
                        key: self.key,
                        len: self.len,
                        pages,
                        page_size,
                    }),
                });
            }
            return Err(RestoreError::SnapshotTruncated {
                key: self.key,
                len: self.len,
                pages,
                page_size,
            });
        }
        Ok(DbInfo {
            len: self.len,
            page_size: Some(page_size),
            torn: None,
        })
    }
}

/// Reserves the disk blocks of the database size the header announces (when SQLite would trust
/// it), without changing the file length: the filesystem then allocates once instead of on
/// every write. Best effort — a filesystem without `fallocate` just allocates as it goes.
fn preallocate(file: &File, head: &[u8]) {
    use std::os::fd::AsRawFd;
    let Some(len) = header_db_len(head) else {
        return;
    };
    let Ok(len) = libc::off_t::try_from(len) else {
        return;
    };
    // SAFETY: plain syscall on an open descriptor; no memory is passed.
    let _ = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, len) };
}

/// `pages × page_size` from a database header, if the header's size field is valid.
fn header_db_len(h: &[u8]) -> Option<u64> {
    if h.len() < DB_HEADER_LEN || &h[..16] != SQLITE_MAGIC {
        return None;
    }
    let page_size = match u16::from_be_bytes([h[16], h[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let be = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let (change_counter, pages, valid_for) = (be(24), be(28), be(92));
    (pages > 0 && change_counter == valid_for).then(|| u64::from(pages) * page_size)
}

/// State once the WAL header of the index has been read.
struct Chain {
    header: WalHeader,
    big_endian: bool,
    sum: (u32, u32),
    frame_size: usize,
}

/// Result of applying one index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSummary {
    pub frames: u64,
    /// Database size in pages after the last commit, if any frame was applied.
    pub db_pages: Option<u32>,
    pub page_size: u32,
}

/// Validates one WAL index's bytes and applies its frames to the database file.
pub struct IndexApplier<'f> {
    file: &'f File,
    path: &'f Path,
    generation: String,
    index: u32,
    db_page_size: Option<u32>,
    chain: Option<Chain>,
    /// Bytes of a header or frame not yet complete.
    pending: Vec<u8>,
    /// WAL bytes received so far (the offset the next segment must start at).
    received: u64,
    /// WAL bytes in complete headers/frames (the offset of `pending`).
    consumed: u64,
    key: String,
    last_frame: Option<LastFrame>,
    frames: u64,
    db_pages: Option<u32>,
    run: PageRun,
    /// Set for the snapshot's own index when the snapshot was torn.
    coverage: Option<Coverage>,
}

/// Most bytes of consecutive pages gathered into one write.
const MAX_RUN: usize = 1 << 20;

/// Pages with consecutive numbers, written with one `pwrite` (SQLite writes each transaction's
/// pages in page-number order, so runs are common). Runs hold distinct pages in frame order, so
/// writing a run at once never reorders two writes of the same page.
#[derive(Default)]
struct PageRun {
    first: u64,
    pages: u64,
    buf: Vec<u8>,
}

impl PageRun {
    fn push(
        &mut self,
        file: &File,
        path: &Path,
        pgno: u32,
        page: &[u8],
    ) -> Result<(), RestoreError> {
        let pgno = u64::from(pgno);
        let extends = self.pages > 0 && pgno == self.first + self.pages;
        if !extends || self.buf.len() + page.len() > MAX_RUN {
            self.flush(file, path)?;
            self.first = pgno;
        }
        self.buf.extend_from_slice(page);
        self.pages += 1;
        Ok(())
    }

    fn flush(&mut self, file: &File, path: &Path) -> Result<(), RestoreError> {
        if self.pages == 0 {
            return Ok(());
        }
        let page_size = (self.buf.len() as u64) / self.pages;
        file.write_all_at(&self.buf, (self.first - 1) * page_size)
            .map_err(|e| RestoreError::io("write", path, e))?;
        self.buf.clear();
        self.pages = 0;
        Ok(())
    }
}

struct LastFrame {
    key: String,
    offset: u64,
    commit: bool,
}

impl<'f> IndexApplier<'f> {
    pub fn new(
        file: &'f File,
        path: &'f Path,
        generation: &str,
        index: u32,
        db_page_size: Option<u32>,
    ) -> Self {
        IndexApplier {
            file,
            path,
            generation: generation.to_string(),
            index,
            db_page_size,
            chain: None,
            pending: Vec::new(),
            received: 0,
            consumed: 0,
            key: String::new(),
            last_frame: None,
            frames: 0,
            db_pages: None,
            run: PageRun::default(),
            coverage: None,
        }
    }

    /// This index must write every page `torn` lacks (up to the database size it ends with),
    /// or `finish` fails with the snapshot's truncation error.
    pub fn must_repair(&mut self, torn: TornSnapshot) {
        self.coverage = Some(Coverage::new(torn));
    }

    /// Starts the next segment; its offset must be where the previous one ended.
    pub fn begin_segment(&mut self, key: &str, offset: u64) -> Result<(), RestoreError> {
        if offset != self.received {
            return Err(RestoreError::Gap {
                key: key.to_string(),
                expected: self.received,
                got: offset,
            });
        }
        self.key = key.to_string();
        Ok(())
    }

    /// Feeds decompressed WAL bytes in order.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), RestoreError> {
        self.received += data.len() as u64;
        while !data.is_empty() {
            let unit = self.unit_len();
            if self.pending.is_empty() && data.len() >= unit {
                let (whole, rest) = data.split_at(unit);
                self.consume(whole)?;
                data = rest;
                continue;
            }
            let take = (unit - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == unit {
                let unit_bytes = std::mem::take(&mut self.pending);
                self.consume(&unit_bytes)?;
                self.pending = unit_bytes;
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// Ends the index: checks it ended on a commit frame and truncates the file like SQLite's
    /// checkpoint does.
    pub fn finish(self) -> Result<IndexSummary, RestoreError> {
        let offset = self.consumed;
        let Some(chain) = &self.chain else {
            return Err(RestoreError::WalHeader {
                key: self.key,
                source: format!("wal header: short read: {} bytes", self.pending.len()).into(),
            });
        };
        if !self.pending.is_empty() {
            return Err(RestoreError::TruncatedFrame {
                generation: self.generation,
                index: self.index,
                key: self.key,
                offset,
            });
        }
        if let Some(last) = &self.last_frame
            && !last.commit
        {
            return Err(RestoreError::NotCommitted {
                generation: self.generation.clone(),
                index: self.index,
                key: last.key.clone(),
                offset: last.offset,
            });
        }
        if let Some(c) = self.coverage {
            c.check(self.db_pages)?;
        }
        let page_size = chain.header.page_size;
        let mut run = self.run;
        run.flush(self.file, self.path)?;
        if let Some(pages) = self.db_pages {
            let len = u64::from(pages) * u64::from(page_size);
            self.file
                .set_len(len)
                .map_err(|e| RestoreError::io("truncate", self.path, e))?;
        }
        Ok(IndexSummary {
            frames: self.frames,
            db_pages: self.db_pages,
            page_size,
        })
    }

    fn unit_len(&self) -> usize {
        self.chain
            .as_ref()
            .map_or(WAL_HEADER_SIZE, |c| c.frame_size)
    }

    /// Handles one complete header or frame.
    fn consume(&mut self, unit: &[u8]) -> Result<(), RestoreError> {
        let offset = self.consumed;
        self.consumed += unit.len() as u64;
        match &self.chain {
            None => self.start(unit),
            Some(_) => self.apply_frame(unit, offset),
        }
    }

    fn start(&mut self, unit: &[u8]) -> Result<(), RestoreError> {
        let header = WalHeader::parse(unit).map_err(|e| RestoreError::WalHeader {
            key: self.key.clone(),
            source: Box::new(e),
        })?;
        if let Some(db) = self.db_page_size
            && db != header.page_size
        {
            return Err(RestoreError::PageSize {
                key: self.key.clone(),
                wal: header.page_size,
                db,
            });
        }
        self.chain = Some(Chain {
            big_endian: header.big_endian_checksum(),
            sum: header.checksum(),
            frame_size: FRAME_HEADER_SIZE + header.page_size as usize,
            header,
        });
        Ok(())
    }

    fn apply_frame(&mut self, frame: &[u8], offset: u64) -> Result<(), RestoreError> {
        let Some(chain) = self.chain.as_mut() else {
            return Ok(()); // unreachable: consume() only calls this with a chain
        };
        let fh = FrameHeader::parse(frame, offset).map_err(|e| RestoreError::WalHeader {
            key: self.key.clone(),
            source: Box::new(e),
        })?;
        if fh.salts() != chain.header.salts() {
            return Err(RestoreError::FrameSalt {
                key: self.key.clone(),
                offset,
            });
        }
        let (head, page) = frame.split_at(FRAME_HEADER_SIZE);
        let sum = checksum(
            chain.big_endian,
            checksum(chain.big_endian, chain.sum, &head[..8]),
            page,
        );
        if sum != fh.checksum() {
            return Err(RestoreError::FrameChecksum {
                key: self.key.clone(),
                offset,
            });
        }
        if fh.pgno == 0 {
            return Err(RestoreError::FramePageZero {
                key: self.key.clone(),
                offset,
            });
        }
        chain.sum = sum;
        if let Some(c) = self.coverage.as_mut() {
            c.note(fh.pgno);
        }
        self.run.push(self.file, self.path, fh.pgno, page)?;
        self.frames += 1;
        if fh.is_commit() {
            self.db_pages = Some(fh.commit);
        }
        self.note_last_frame(offset, fh.is_commit());
        Ok(())
    }

    fn note_last_frame(&mut self, offset: u64, commit: bool) {
        match &mut self.last_frame {
            Some(last) => {
                if last.key != self.key {
                    last.key.clone_from(&self.key);
                }
                last.offset = offset;
                last.commit = commit;
            }
            None => {
                self.last_frame = Some(LastFrame {
                    key: self.key.clone(),
                    offset,
                    commit,
                })
            }
        }
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
