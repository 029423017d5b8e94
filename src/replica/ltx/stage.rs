//! Blocking file work of the LTX writer: scanning shadow WAL frames into a [`PagePlan`], and
//! encoding L0 files, full images and merges into local staging files that are then uploaded.
//!
//! What must stay true:
//! - Memory: one page buffer per open input plus the page plan (one entry per distinct page of
//!   the WAL range), plus at most about [`IN_MEMORY_MAX`] for an L0 encoded in memory; a full
//!   image of any size streams page by page from the database file.
//! - A staged file is complete (fsynced, checksummed) before it is uploaded, and a failed
//!   staging removes its partial file. An L0 whose pages total at most [`IN_MEMORY_MAX`] is
//!   encoded in memory instead (complete and checksummed the same way), never staged.
//! - A full image holds every page 1..=commit except the lock page; a page found neither in the
//!   WAL frames nor in the database file is an error, never a zero page.

use std::fs::File;
use std::io::{self, BufWriter};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::plan::{FrameLoc, PagePlan, ShadowRange};
use crate::ltx::{Header, Reader, Writer, lock_page};
use crate::wal::{FRAME_HEADER_SIZE, WAL_HEADER_SIZE, WalHeader, frame_size};

/// Why staging failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("ltx: {0}")]
    Write(#[from] crate::ltx::WriteError),
    #[error("{0}")]
    Read(#[from] crate::ltx::LtxError),
    #[error("full image: page {0} is neither in the WAL nor in the database file")]
    MissingPage(u32),
    #[error("compaction without inputs")]
    NoInputs,
    #[error("compaction input {0} has another page size")]
    PageSizes(String),
    #[error("shadow wal {path}: {detail}")]
    Shadow { path: PathBuf, detail: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StageError + '_ {
    move |source| StageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Adds the frames of `ranges` (in order) to `plan`; `shadow(index)` names each index's file.
pub fn scan_frames(
    plan: &mut PagePlan,
    ranges: &[ShadowRange],
    page_size: u32,
    shadow: &dyn Fn(u32) -> PathBuf,
) -> Result<(), StageError> {
    scan_frames_in(plan, ranges, page_size, &mut ShadowFiles::new(shadow))
}

/// [`scan_frames`] reading through `files` (which keeps each shadow file open for later reads).
pub fn scan_frames_in(
    plan: &mut PagePlan,
    ranges: &[ShadowRange],
    page_size: u32,
    files: &mut ShadowFiles<'_>,
) -> Result<(), StageError> {
    let fs = frame_size(page_size);
    for r in ranges {
        let mut head = [0u8; FRAME_HEADER_SIZE];
        let mut at = r.start;
        while at + fs <= r.end {
            files.read_at(r.index, &mut head, at)?;
            let pgno = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let commit = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
            if pgno == 0 {
                return Err(StageError::Shadow {
                    path: (files.shadow)(r.index),
                    detail: format!("frame at {at} has page number 0"),
                });
            }
            let loc = FrameLoc {
                index: r.index,
                offset: at,
            };
            plan.add_frame(pgno, commit, loc);
            at += fs;
        }
    }
    Ok(())
}

/// The salts of a shadow WAL file's header.
pub fn shadow_salts(path: &Path) -> Result<(u32, u32), StageError> {
    let file = File::open(path).map_err(io_err(path))?;
    salts_of(&file, path)
}

fn salts_of(file: &File, path: &Path) -> Result<(u32, u32), StageError> {
    let mut buf = [0u8; WAL_HEADER_SIZE];
    file.read_exact_at(&mut buf, 0).map_err(io_err(path))?;
    let header = WalHeader::decode(&buf).map_err(|e| StageError::Shadow {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    Ok(header.salts())
}

/// Shadow WAL files of one generation, each opened once (on first use) and read positionally:
/// one sync scans, reads the salts and encodes pages through the same descriptors.
pub struct ShadowFiles<'a> {
    shadow: &'a dyn Fn(u32) -> PathBuf,
    open: Vec<(u32, File)>,
}

impl<'a> ShadowFiles<'a> {
    /// `shadow(index)` names each index's file.
    pub fn new(shadow: &'a dyn Fn(u32) -> PathBuf) -> ShadowFiles<'a> {
        ShadowFiles {
            shadow,
            open: Vec::new(),
        }
    }

    fn file(&mut self, index: u32) -> Result<&File, StageError> {
        let slot = match self.open.iter().position(|(i, _)| *i == index) {
            Some(slot) => slot,
            None => {
                let path = (self.shadow)(index);
                let f = File::open(&path).map_err(io_err(&path))?;
                self.open.push((index, f));
                self.open.len() - 1
            }
        };
        Ok(&self.open[slot].1)
    }

    fn read_at(&mut self, index: u32, buf: &mut [u8], at: u64) -> Result<(), StageError> {
        let file = self.file(index)?;
        file.read_exact_at(buf, at)
            .map_err(|source| StageError::Io {
                path: (self.shadow)(index),
                source,
            })
    }

    /// The salts of shadow `index`'s header.
    pub fn salts(&mut self, index: u32) -> Result<(u32, u32), StageError> {
        let path = (self.shadow)(index);
        salts_of(self.file(index)?, &path)
    }

    fn read_page(&mut self, loc: FrameLoc, buf: &mut [u8]) -> Result<(), StageError> {
        self.read_at(loc.index, buf, loc.offset + FRAME_HEADER_SIZE as u64)
    }
}

/// A staging file being written; removed on drop unless kept.
struct Staged {
    path: PathBuf,
    keep: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Creates the staging file and the encoder writing `header` into it.
fn create(path: &Path, header: Header) -> Result<(Writer<BufWriter<File>>, Staged), StageError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let file = File::create(path).map_err(io_err(path))?;
    let staged = Staged {
        path: path.to_path_buf(),
        keep: false,
    };
    Ok((Writer::new(BufWriter::new(file), header)?, staged))
}

fn finish(w: Writer<BufWriter<File>>, mut staged: Staged) -> Result<u64, StageError> {
    let path = staged.path.clone();
    let (buf, _) = w.finish()?;
    let file = buf
        .into_inner()
        .map_err(|e| io_err(&path)(e.into_error()))?;
    file.sync_all().map_err(io_err(&path))?;
    let len = file.metadata().map_err(io_err(&path))?.len();
    staged.keep = true;
    Ok(len)
}

/// Writes an LTX file of the pages in `plan` (all from shadow frames) to `out`; returns its size.
pub fn stage_delta(
    out: &Path,
    header: Header,
    plan: &PagePlan,
    shadow: &dyn Fn(u32) -> PathBuf,
) -> Result<u64, StageError> {
    let (w, staged) = create(out, header)?;
    let w = write_delta_pages(w, plan, &mut ShadowFiles::new(shadow))?;
    finish(w, staged)
}

/// Largest page payload (pages × page size) of an L0 encoded in memory instead of a staging
/// file: the usual L0 of a sync holds a few pages, and skipping the file saves its create,
/// fsync, re-open and removal on every sync.
pub const IN_MEMORY_MAX: u64 = 1 << 20;

/// An encoded L0: in memory, or staged in a file of the given size.
#[derive(Debug)]
pub enum Encoded {
    Memory(Vec<u8>),
    File(u64),
}

/// The L0 of the pages in `plan` (read through `files`): in memory when their payload is at
/// most [`IN_MEMORY_MAX`], else staged in `out` like [`stage_delta`].
pub fn encode_delta(
    out: &Path,
    header: Header,
    plan: &PagePlan,
    files: &mut ShadowFiles<'_>,
) -> Result<Encoded, StageError> {
    let payload = plan.pages.len() as u64 * u64::from(header.page_size);
    if payload > IN_MEMORY_MAX {
        let (w, staged) = create(out, header)?;
        let w = write_delta_pages(w, plan, files)?;
        return finish(w, staged).map(Encoded::File);
    }
    // LZ4 output can exceed its input a little; the index and trailer are small.
    let capacity = crate::ltx::HEADER_SIZE + payload as usize + payload as usize / 16 + 256;
    let w = Writer::new(Vec::with_capacity(capacity), header)?;
    let w = write_delta_pages(w, plan, files)?;
    Ok(Encoded::Memory(w.finish()?.0))
}

fn write_delta_pages<W: io::Write>(
    mut w: Writer<W>,
    plan: &PagePlan,
    files: &mut ShadowFiles<'_>,
) -> Result<Writer<W>, StageError> {
    let mut page = vec![0u8; w.header().page_size as usize];
    for (&pgno, &loc) in &plan.pages {
        files.read_page(loc, &mut page)?;
        w.write_page(pgno, &page)?;
    }
    Ok(w)
}

/// Writes a full image: every page 1..=commit (except the lock page), from `frames` when there,
/// else from the database file.
pub fn stage_image(
    out: &Path,
    header: Header,
    frames_plan: &PagePlan,
    shadow: &dyn Fn(u32) -> PathBuf,
    db_file: &File,
) -> Result<u64, StageError> {
    let (mut w, staged) = create(out, header)?;
    let mut frames = ShadowFiles::new(shadow);
    let ps = header.page_size as usize;
    let mut page = vec![0u8; ps];
    let lock = lock_page(header.page_size);
    for pgno in (1..=header.commit).filter(|&p| p != lock) {
        match frames_plan.pages.get(&pgno) {
            Some(&loc) => frames.read_page(loc, &mut page)?,
            None => read_db_page(db_file, pgno, &mut page)?,
        }
        w.write_page(pgno, &page)?;
    }
    finish(w, staged)
}

fn read_db_page(db: &File, pgno: u32, page: &mut [u8]) -> Result<(), StageError> {
    let at = u64::from(pgno - 1) * page.len() as u64;
    db.read_exact_at(page, at).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => StageError::MissingPage(pgno),
        _ => StageError::Io {
            path: PathBuf::from("database file"),
            source: e,
        },
    })
}

/// Merges LTX files (oldest first) into one named `min-max` with timestamp `ts_ms`: the newest
/// version of each page wins, pages above the last input's commit are dropped (§4.2). Every
/// input is read as a stream (one page each); returns the output's header and size.
pub fn stage_merge(
    out: &Path,
    (min_txid, max_txid): (u64, u64),
    ts_ms: i64,
    inputs: &[PathBuf],
) -> Result<(Header, u64), StageError> {
    let mut readers = Vec::with_capacity(inputs.len());
    for p in inputs {
        let f = File::open(p).map_err(io_err(p))?;
        readers.push(Reader::new(f, &p.display().to_string())?);
    }
    let (Some(first), Some(last)) = (readers.first(), readers.last()) else {
        return Err(StageError::NoInputs);
    };
    let page_size = first.header().page_size;
    if let Some(r) = readers.iter().find(|r| r.header().page_size != page_size) {
        return Err(StageError::PageSizes(r.name().to_string()));
    }
    let header = Header {
        flags: crate::ltx::FLAG_NO_CHECKSUM,
        page_size,
        commit: last.header().commit,
        min_txid,
        max_txid,
        timestamp_ms: ts_ms,
        ..Header::default()
    };
    let (mut w, staged) = create(out, header)?;
    // Current page of each reader, refilled as it is consumed.
    let mut heads: Vec<Option<(u32, Vec<u8>)>> = Vec::with_capacity(readers.len());
    for r in &mut readers {
        heads.push(r.next_page()?.map(|(p, d)| (p, d.to_vec())));
    }
    while let Some(pgno) = heads.iter().flatten().map(|(p, _)| *p).min() {
        // The newest input holding this page wins; every input holding it advances.
        let mut chosen: Option<Vec<u8>> = None;
        for (head, r) in heads.iter_mut().zip(readers.iter_mut()) {
            if head.as_ref().is_some_and(|(p, _)| *p == pgno) {
                chosen = head.take().map(|(_, d)| d);
                *head = r.next_page()?.map(|(p, d)| (p, d.to_vec()));
            }
        }
        if let Some(data) = chosen.filter(|_| pgno <= header.commit) {
            w.write_page(pgno, &data)?;
        }
    }
    for r in readers {
        r.finish()?;
    }
    Ok((header, finish(w, staged)?))
}
