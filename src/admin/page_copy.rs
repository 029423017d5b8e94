//! The copy of a live restore, page by page: only the pages of the live database that differ
//! from the target are written, so the application's writers wait for the changed pages, not
//! for a copy of the whole file.
//!
//! ```text
//! mark, write lock held   a read transaction on live starts (data_version D0) and the WAL's
//!   for a moment:         committed end M is noted, while no commit can be under way
//! pass 1, no lock:        compare every page of target and live (sqlite_dbpage on both)
//!                         → set of differing pages
//! write lock:             BEGIN IMMEDIATE; data_version still D0 → write that set, page 1 last;
//!                         otherwise compare again the pages of the WAL frames after M (what
//!                         the application committed meanwhile), or every page when the WAL
//!                         restarted since M, and write what differs
//! commit                  one transaction: readers see the old or the new content, never a mix
//! ```
//!
//! What must stay true:
//! - after the commit every page of the live database equals the target's, with two fields of
//!   page 1 set as SQLite's backup API sets them: the WAL format bytes (18, 19 = 2) and a schema
//!   cookie above both sides' (offset 40), so every other connection reloads its schema;
//! - the set written without a second comparison is used only when no other connection has
//!   committed since it was computed (`PRAGMA data_version`, read inside the write lock);
//!   otherwise every page a commit since could have changed is compared again: those of the
//!   valid WAL frames after M (same salts, checksum chain continued from M), a superset of
//!   the commits since the snapshot; a restarted WAL (new salts) means all pages;
//! - the file is truncated (last statement of the transaction, as `sqlite_dbpage` requires)
//!   when the target has fewer pages; a target with more pages appends them;
//! - when `sqlite_dbpage` is missing (SQLite built without `SQLITE_ENABLE_DBPAGE_VTAB`; this
//!   project's `.cargo/config.toml` enables it) or the live database is not in WAL mode, the
//!   caller copies the whole file with the backup API instead ([`copy_changed_pages`] answers
//!   `None` and has changed nothing);
//! - memory is one bit per page of the larger side, two pages, and the page numbers committed
//!   during the first comparison.

use std::cmp::Ordering;
use std::path::Path;

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};

use rusqlite::{Connection, ErrorCode, OptionalExtension};

use super::AdminError;
use super::sqlite::LOCK_WAIT;
use crate::wal::{FrameScanner, WAL_HEADER_SIZE, WalHeader, read_header};

/// What the copy did, for the restore's log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCopy {
    /// Pages of the target (the live database's size afterwards).
    pub pages: u64,
    /// Pages written (page 1 always is).
    pub written: u64,
    /// What was compared again under the write lock.
    pub recheck: Recheck,
}

/// What the copy compared again under the write lock, after the first comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recheck {
    /// Nothing: no other connection had committed since the first comparison.
    Nothing,
    /// The pages the application's commits since then wrote, found in the WAL.
    WalPages(u64),
    /// Every page: the WAL restarted since the first comparison, so it cannot tell.
    Everything,
}

impl std::fmt::Display for PageCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of {} pages written", self.written, self.pages)?;
        match self.recheck {
            Recheck::Nothing => Ok(()),
            Recheck::WalPages(n) => write!(f, ", {n} pages committed meanwhile compared again"),
            Recheck::Everything => write!(f, ", all pages compared again (the WAL restarted)"),
        }
    }
}

/// Copies `src` (the prepared target) into `dst` (a connection to the live database at
/// `dst_path`, used for nothing else afterwards) writing only the pages that differ, in one
/// write transaction. `None`: this copy is not possible here (no `sqlite_dbpage`, live not in
/// WAL mode, page sizes differ) and nothing was changed.
pub fn copy_changed_pages(
    src: &Connection,
    dst: &Connection,
    dst_path: &Path,
) -> Result<Option<PageCopy>, AdminError> {
    copy_with(src, dst, dst_path, || {})
}

/// [`copy_changed_pages`], running `between` after the first comparison and before the write
/// lock (tests commit there to take the second comparison's path).
fn copy_with(
    src: &Connection,
    dst: &Connection,
    dst_path: &Path,
    between: impl FnOnce(),
) -> Result<Option<PageCopy>, AdminError> {
    let sqlite = |what: &'static str| AdminError::sqlite(what, dst_path);
    if !has_dbpage(src) || !has_dbpage(dst) {
        return Ok(None);
    }
    let mode: String = dst
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(sqlite("read journal mode"))?;
    let page_size = |c: &Connection| c.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0));
    if !mode.eq_ignore_ascii_case("wal")
        || page_size(src).map_err(sqlite("read page size"))?
            != page_size(dst).map_err(sqlite("read page size"))?
    {
        return Ok(None);
    }
    let wal = crate::restore::output::with_suffix(dst_path, "-wal");

    // Pass 1 compares under a read transaction only; the application keeps writing. Its
    // snapshot starts while another connection holds the write lock for a moment, so no
    // commit is under way and the WAL's committed end is exactly the snapshot's.
    let (version, mark) = {
        let gate = super::sqlite::open_existing(dst_path)?;
        begin_immediate(&gate, dst_path)?;
        dst.execute_batch("BEGIN").map_err(sqlite("begin read"))?;
        let version = data_version(dst).map_err(sqlite("read data version"));
        let mark = wal_mark(&wal);
        let _ = gate.execute_batch("ROLLBACK");
        (version?, mark?)
    };
    let first = compare(src, dst);
    dst.execute_batch("COMMIT").map_err(sqlite("end read"))?;
    let mut diff = first.map_err(sqlite("compare pages"))?;
    between();

    begin_immediate(dst, dst_path)?;
    let written = (|| {
        let same = data_version(dst).map_err(sqlite("read data version"))? == version;
        let recheck = if same {
            Recheck::Nothing
        } else {
            let since = match &mark {
                Some(m) => pages_since(&wal, m)?,
                None => None,
            };
            match since {
                Some(pages) => {
                    recompare(src, dst, &mut diff, &pages).map_err(sqlite("compare pages"))?;
                    Recheck::WalPages(pages.len() as u64)
                }
                None => {
                    diff = compare(src, dst).map_err(sqlite("compare pages"))?;
                    Recheck::Everything
                }
            }
        };
        let written = write(src, dst, &diff).map_err(sqlite("write pages"))?;
        Ok::<_, AdminError>(PageCopy {
            pages: u64::from(diff.src_pages),
            written,
            recheck,
        })
    })();
    match written {
        Ok(done) => {
            dst.execute_batch("COMMIT")
                .map_err(sqlite("commit restore"))?;
            Ok(Some(done))
        }
        Err(e) => {
            // Nothing of a failed copy may stay: the rollback undoes every page written.
            let _ = dst.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Where the WAL's committed frames end, at a moment no commit is under way.
struct WalMark {
    salts: (u32, u32),
    end: u64,
    checksum: (u32, u32),
}

/// The WAL's committed end, or `None` when there is no WAL with a valid header (then nothing
/// can be learnt from it later and a change means comparing everything again).
fn wal_mark(wal: &Path) -> Result<Option<WalMark>, AdminError> {
    let Some((header, mut file)) = open_wal(wal)? else {
        return Ok(None);
    };
    let start = WAL_HEADER_SIZE as u64;
    let mut scan = FrameScanner::new(&header, header.checksum(), start);
    let summary = scan
        .scan(&mut BufReader::new(&mut file), |_, _| Ok(()))
        .map_err(wal_error(wal))?;
    Ok(Some(WalMark {
        salts: header.salts(),
        end: summary.commit_end,
        checksum: summary.commit_checksum,
    }))
}

/// The page numbers of every valid frame after `mark` (commits made since, and the tail of
/// one under way, which can only add pages to compare), or `None` when the WAL restarted.
fn pages_since(wal: &Path, mark: &WalMark) -> Result<Option<Vec<u32>>, AdminError> {
    let Some((header, mut file)) = open_wal(wal)? else {
        return Ok(None);
    };
    if header.salts() != mark.salts {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(mark.end))
        .map_err(AdminError::io("read", wal))?;
    let mut scan = FrameScanner::new(&header, mark.checksum, mark.end);
    let mut pages = Vec::new();
    scan.scan(&mut BufReader::new(&mut file), |frame, _| {
        pages.push(frame.pgno);
        Ok(())
    })
    .map_err(wal_error(wal))?;
    pages.sort_unstable();
    pages.dedup();
    Ok(Some(pages))
}

fn open_wal(wal: &Path) -> Result<Option<(WalHeader, File)>, AdminError> {
    let mut file = match File::open(wal) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AdminError::io("open", wal)(e)),
    };
    // An empty or truncated WAL, or a header SQLite would not use either: nothing to learn.
    Ok(read_header(&mut file).ok().map(|h| (h, file)))
}

fn wal_error(wal: &Path) -> impl FnOnce(crate::wal::WalError) -> AdminError + '_ {
    move |e| AdminError::io("read", wal)(std::io::Error::other(e.to_string()))
}

/// Compares `pages` again (live now against the target) and updates `diff` for them, plus
/// the live size.
fn recompare(
    src: &Connection,
    dst: &Connection,
    diff: &mut Diff,
    pages: &[u32],
) -> rusqlite::Result<()> {
    let mut s = src.prepare("SELECT data FROM sqlite_dbpage WHERE pgno = ?1")?;
    let mut d = dst.prepare("SELECT data FROM sqlite_dbpage WHERE pgno = ?1")?;
    diff.dst_pages = dst.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    for &pgno in pages {
        if pgno > diff.src_pages {
            continue; // the truncation removes it
        }
        let a: Vec<u8> = s.query_row([pgno], |r| r.get(0))?;
        let b: Option<Vec<u8>> = d.query_row([pgno], |r| r.get(0)).optional()?;
        if b.as_deref() == Some(&a[..]) {
            diff.clear(pgno);
        } else {
            diff.set(pgno);
        }
    }
    Ok(())
}

fn has_dbpage(conn: &Connection) -> bool {
    conn.prepare("SELECT 1 FROM sqlite_dbpage WHERE pgno = 1")
        .is_ok()
}

fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
}

/// `BEGIN IMMEDIATE`, waiting at most [`LOCK_WAIT`] for the application's write transaction.
fn begin_immediate(conn: &Connection, path: &Path) -> Result<(), AdminError> {
    conn.busy_timeout(LOCK_WAIT)
        .map_err(AdminError::sqlite("set busy timeout", path))?;
    let began = conn.execute_batch("BEGIN IMMEDIATE");
    conn.busy_timeout(super::sqlite::BUSY_TIMEOUT)
        .map_err(AdminError::sqlite("set busy timeout", path))?;
    match began {
        Ok(()) => Ok(()),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {
            Err(AdminError::LockTimeout {
                path: path.to_path_buf(),
                seconds: LOCK_WAIT.as_secs(),
            })
        }
        Err(e) => Err(AdminError::sqlite("begin restore", path)(e)),
    }
}

/// The pages that differ between the two databases, as one bit per page number.
struct Diff {
    bits: Vec<u64>,
    src_pages: u32,
    dst_pages: u32,
}

impl Diff {
    fn set(&mut self, pgno: u32) {
        let i = (pgno / 64) as usize;
        if self.bits.len() <= i {
            self.bits.resize(i + 1, 0);
        }
        self.bits[i] |= 1 << (pgno % 64);
    }

    fn clear(&mut self, pgno: u32) {
        if let Some(word) = self.bits.get_mut((pgno / 64) as usize) {
            *word &= !(1 << (pgno % 64));
        }
    }

    fn pages(&self) -> impl Iterator<Item = u32> + '_ {
        self.bits.iter().enumerate().flat_map(|(i, &word)| {
            (0..64)
                .filter(move |b| word & (1 << b) != 0)
                .map(move |b| i as u32 * 64 + b)
        })
    }
}

/// Walks both databases' pages in order (`sqlite_dbpage` yields them by page number) and notes
/// every page number whose content differs or that only one side has.
fn compare(src: &Connection, dst: &Connection) -> rusqlite::Result<Diff> {
    let mut s = src.prepare("SELECT pgno, data FROM sqlite_dbpage")?;
    let mut d = dst.prepare("SELECT pgno, data FROM sqlite_dbpage")?;
    let (mut s_side, mut d_side) = (Side::new(s.query([])?), Side::new(d.query([])?));
    let mut diff = Diff {
        bits: Vec::new(),
        src_pages: 0,
        dst_pages: 0,
    };
    s_side.advance()?;
    d_side.advance()?;
    loop {
        // A side that has ended sorts after every page of the other.
        let order = match (s_side.pgno, d_side.pgno) {
            (None, None) => return Ok(diff),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(pa), Some(pb)) => pa.cmp(&pb),
        };
        match order {
            Ordering::Equal => {
                if s_side.data != d_side.data {
                    diff.set(s_side.page());
                }
                (diff.src_pages, diff.dst_pages) = (s_side.page(), d_side.page());
                s_side.advance()?;
                d_side.advance()?;
            }
            Ordering::Less => {
                diff.set(s_side.page());
                diff.src_pages = s_side.page();
                s_side.advance()?;
            }
            Ordering::Greater => {
                diff.dst_pages = d_side.page();
                d_side.advance()?;
            }
        }
    }
}

/// One database's page cursor: the current page number and a copy of its bytes.
struct Side<'s> {
    rows: rusqlite::Rows<'s>,
    pgno: Option<u32>,
    data: Vec<u8>,
}

impl<'s> Side<'s> {
    fn new(rows: rusqlite::Rows<'s>) -> Self {
        Side {
            rows,
            pgno: None,
            data: Vec::new(),
        }
    }

    fn page(&self) -> u32 {
        self.pgno.unwrap_or(0)
    }

    fn advance(&mut self) -> rusqlite::Result<()> {
        match self.rows.next()? {
            Some(row) => {
                self.pgno = Some(row.get(0)?);
                self.data.clear();
                self.data.extend_from_slice(row.get_ref(1)?.as_bytes()?);
            }
            None => self.pgno = None,
        }
        Ok(())
    }
}

/// Writes every differing page of `src` into `dst` (inside the caller's write transaction),
/// then page 1, truncates `dst` to `src`'s size, and last raises the schema cookie. Returns
/// the pages written.
///
/// The order matters. The writing connection's b-tree layer keeps its parse of pages it has
/// read (page 1 above all), which raw page writes do not refresh, so after the first write it
/// must not read the database through SQL again: page 1 keeps the live cookie until the end,
/// because a changed cookie makes the next statement reload the schema through that stale
/// parse. The truncation must follow every page write (`sqlite_dbpage` forgets it at the next
/// one); `PRAGMA schema_version` then writes the new cookie into page 1 without parsing it.
/// The caller discards this connection afterwards; every other connection reloads its pages
/// and schema when it sees the commit.
fn write(src: &Connection, dst: &Connection, diff: &Diff) -> rusqlite::Result<u64> {
    let mut read = src.prepare("SELECT data FROM sqlite_dbpage WHERE pgno = ?1")?;
    let mut put = dst.prepare("INSERT INTO sqlite_dbpage(pgno, data) VALUES (?1, ?2)")?;
    let live_cookie: u32 = dst.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    let mut page1: Vec<u8> = read.query_row([1], |r| r.get(0))?;
    let src_cookie = u32::from_be_bytes([page1[40], page1[41], page1[42], page1[43]]);
    // Kept positive: SQLite reads the cookie as a signed 32-bit number.
    let cookie = (live_cookie.max(src_cookie) % 0x7fff_fff0) + 1;
    let mut raise = dst.prepare(&format!("PRAGMA schema_version = {cookie}"))?;
    let mut written = 0;
    for pgno in diff.pages().filter(|&p| p > 1) {
        let data: Vec<u8> = read.query_row([pgno], |r| r.get(0))?;
        put.execute(rusqlite::params![pgno, data])?;
        written += 1;
    }
    page1[40..44].copy_from_slice(&live_cookie.to_be_bytes());
    page1[18] = 2; // WAL format: write version
    page1[19] = 2; // WAL format: read version
    put.execute(rusqlite::params![1, page1])?;
    written += 1;
    if diff.dst_pages > diff.src_pages {
        put.execute(rusqlite::params![
            diff.src_pages + 1,
            Option::<Vec<u8>>::None
        ])?;
    }
    raise.execute([])?;
    Ok(written)
}

#[cfg(test)]
#[path = "page_copy_tests.rs"]
mod tests;
