//! Attach and the sync tick of one database (spec §3.2–§3.4), run on a blocking thread while
//! holding the database's state mutex.
//!
//! What must stay true:
//! - continuity is verified exactly like Litestream v0.3.13 (`verify`), in the same order and
//!   with the same reason strings, so a meta dir Litestream left behind is continued when (and
//!   only when) Litestream itself would continue it;
//! - a new generation writes its shadow `00000000.wal` before the generation file (tmp +
//!   rename), then removes every other generation;
//! - a header change with frames in the shadow is a WAL restart: the old shadow is finished
//!   (frames that still validate against its salts) before shadow `index+1` starts.

use std::fs::{self, File};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use tracing::{info, warn};

use super::conn::Conns;
use super::error::DbError;
use super::file::DbFile;
use super::meta::{Perms, new_generation_id};
use super::shadow::{Copied, copy_to_shadow, init_shadow, prefix_of, read_prefix, whole_header};
use super::{Attached, Pos, Shared, SyncOutcome};
use crate::rt::lock;
use crate::wal::{WAL_HEADER_SIZE, align, frame_size};

/// Litestream's `MaxIndex`: reaching it starts a new generation.
pub const MAX_INDEX: u32 = 0x7FFF_FFFF;

/// The exact `reason=` strings of `sync: new generation` (spec §3.4).
pub mod reason {
    pub const NO_GENERATION: &str = "no generation exists";
    pub const MAX_INDEX: &str = "max index exceeded";
    pub const NO_SHADOW_WAL: &str = "no shadow wal";
    pub const SHORT_SHADOW_WAL: &str = "short shadow wal";
    pub const WAL_TRUNCATED: &str = "wal truncated by another process";
    pub const HEADER_ONLY_MISMATCH: &str = "wal header only, mismatched";
    pub const WAL_OVERWRITTEN: &str = "wal overwritten by another process";
}

/// Outcome of the continuity check.
enum Verdict {
    /// `shadows`: `(index, size)` of every shadow file of the generation, as listed by the
    /// check (the rest of the tick works from it instead of listing again).
    Continue {
        generation: String,
        shadows: Vec<(u32, u64)>,
    },
    NewGeneration(&'static str),
}

/// Where the shadow WAL stands after copying.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Advanced {
    pub index: u32,
    /// Aligned size of shadow `index`.
    pub shadow_size: u64,
    /// Aligned size of the real WAL before the copy.
    pub wal_size: u64,
    /// Bytes appended to shadow `index` by this copy.
    pub appended: u64,
}

impl Shared {
    /// The attach sequence (spec §3.2). Idempotent.
    pub(crate) fn attach(&self) -> Result<(), DbError> {
        let mut slot = self.lock_attached();
        if slot.is_some() {
            return Ok(());
        }
        match fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DbError::NotFound {
                    path: self.path.clone(),
                });
            }
            Err(e) => return Err(DbError::io(&self.path, "stat database")(e)),
            Ok(m) if !m.is_file() => {
                return Err(DbError::NotADatabase {
                    path: self.path.clone(),
                });
            }
            Ok(_) => {}
        }
        let perms = Perms::of(&self.path)?;
        let conns = Conns::attach(&self.path, self.busy_timeout)?;
        let page_size = conns.page_size()?;
        let database_id = conns.read_database_id()?.unwrap_or(0);
        perms.mkdir_all(self.meta.root())?;
        self.meta.remove_tmp_files()?;
        if let Err(error) = self.headers_match() {
            warn!(db = %self.path.display(), error = %error,
                "init: cannot determine last wal position, clearing generation");
            self.meta.remove_generation()?;
        }
        let generation = self.meta.read_generation()?;
        self.meta.remove_other_generations(generation.as_deref())?;
        self.page_size.store(page_size, Ordering::Release);
        self.database_id.store(database_id, Ordering::Release);
        let (db_file, identity) = self.db_file(&conns)?;
        *slot = Some(Attached {
            conns,
            page_size,
            perms,
            db_file: Arc::new(db_file),
            identity,
        });
        self.open.store(true, Ordering::Release);
        Ok(())
    }

    /// The read handle snapshots use and the (device, inode) identity of the attached file:
    /// SQLite's reader descriptor when it names the file at the path, else a handle of our own
    /// (kept open until detach, see `Attached::db_file`).
    fn db_file(&self, conns: &Conns) -> Result<(DbFile, (u64, u64)), DbError> {
        use std::os::unix::fs::MetadataExt;
        let stat = |m: fs::Metadata| (m.dev(), m.ino());
        let at_path = fs::metadata(&self.path)
            .map(stat)
            .map_err(DbError::io(&self.path, "stat database"))?;
        if let Some(file) = conns.borrow_file(at_path) {
            return Ok((file, at_path));
        }
        let own = File::open(&self.path).map_err(DbError::io(&self.path, "open database"))?;
        let identity = own
            .metadata()
            .map(stat)
            .map_err(DbError::io(&self.path, "stat database"))?;
        Ok((DbFile::from(own), identity))
    }

    /// Step 8 of attach: the real WAL header must equal the newest shadow's header.
    fn headers_match(&self) -> Result<(), String> {
        let Some(generation) = self.meta.read_generation().map_err(|e| e.to_string())? else {
            return Ok(());
        };
        let (index, _) = self
            .meta
            .current_index(&generation)
            .map_err(|e| format!("cannot determine current shadow wal path: {e}"))?;
        let shadow = self.meta.shadow_path(&generation, index);
        let real = match read_header(&self.wal_path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!("no primary wal: {e}"));
            }
            Err(e) => return Err(format!("primary wal header: {}", go_eof(&e))),
            Ok(h) => h,
        };
        let copy = match read_header(&shadow) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err("no shadow wal".to_string());
            }
            Err(e) => return Err(format!("shadow wal header: {}", go_eof(&e))),
            Ok(h) => h,
        };
        if real != copy {
            return Err(format!(
                "wal header mismatch {} <> {} on {}",
                hex(&real),
                hex(&copy),
                shadow.display()
            ));
        }
        Ok(())
    }

    /// One sync tick (spec §3.3): continuity, copy, checkpoint policy, cleanup, publish.
    pub(crate) fn tick(&self, att: &mut Attached) -> Result<SyncOutcome, DbError> {
        att.conns.acquire_read()?;
        self.ensure_wal_exists(att)?;
        let mut new_generation = None;
        let (generation, mut shadows) = match self.verify(att.page_size)? {
            Verdict::Continue {
                generation,
                shadows,
            } => (generation, Some(shadows)),
            Verdict::NewGeneration(why) => {
                let generation = self.create_generation(att)?;
                info!(db = %self.path.display(), generation = %generation, reason = why,
                    "sync: new generation");
                new_generation = Some(why);
                (generation, None)
            }
        };
        let mut adv = match &shadows {
            Some(files) => self.advance_from(att, &generation, max_index(files))?,
            None => self.advance(att, &generation)?,
        };
        // Like Litestream, the time rule does not apply on the tick that starts a generation.
        let db_age = new_generation
            .is_none()
            .then(|| self.db_mtime_age())
            .flatten();
        let mode = self
            .policy
            .decide(att.page_size, adv.wal_size, adv.shadow_size, db_age);
        let mut checkpoint = None;
        if let Some(mode) = mode
            && let Some(after) = self.checkpoint(att, &generation, mode)?
        {
            adv = after;
            checkpoint = Some(mode);
            shadows = None; // the checkpoint may have started another shadow file
        }
        if let Some(files) = shadows.as_mut() {
            // Listed before the copy: shadow `adv.index` grew by what was appended (a copy that
            // appends first cuts a torn tail, so the file then ends exactly at the shadow end).
            let copied = adv.index == max_index(files);
            match files.iter_mut().find(|(i, _)| *i == adv.index) {
                Some((_, size)) if copied && adv.appended > 0 => *size = adv.shadow_size,
                Some(_) if copied => {}
                _ => shadows = None, // a WAL restart started the next file
            }
        }
        self.clean(&generation, adv.index, shadows.as_deref())?;
        Ok(SyncOutcome {
            pos: Pos {
                generation,
                index: adv.index,
                offset: adv.shadow_size,
            },
            changed: false, // filled in by the caller, which knows the previous position
            new_generation,
            checkpoint,
        })
    }

    /// Step 1: the WAL must hold at least a header; otherwise force a write.
    fn ensure_wal_exists(&self, att: &Attached) -> Result<(), DbError> {
        match fs::metadata(&self.wal_path) {
            Ok(m) if m.len() >= WAL_HEADER_SIZE as u64 => Ok(()),
            _ => att.conns.upsert_seq(false),
        }
    }

    /// Litestream's `verify`: can the current generation be continued?
    fn verify(&self, page_size: u32) -> Result<Verdict, DbError> {
        let Some(generation) = self.meta.read_generation()? else {
            return Ok(Verdict::NewGeneration(reason::NO_GENERATION));
        };
        let wal_len = fs::metadata(&self.wal_path)
            .map_err(DbError::io(&self.wal_path, "stat wal"))?
            .len();
        let wal_size = align(wal_len, page_size);
        let shadows = self.meta.shadow_files(&generation)?;
        let index = max_index(&shadows);
        if index >= MAX_INDEX {
            return Ok(Verdict::NewGeneration(reason::MAX_INDEX));
        }
        let shadow = self.meta.shadow_path(&generation, index);
        let shadow_len = match fs::metadata(&shadow) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Verdict::NewGeneration(reason::NO_SHADOW_WAL));
            }
            Err(e) => return Err(DbError::io(&shadow, "stat shadow wal")(e)),
        };
        let shadow_size = align(shadow_len, page_size);
        let header = WAL_HEADER_SIZE as u64;
        if shadow_size < header {
            return Ok(Verdict::NewGeneration(reason::SHORT_SHADOW_WAL));
        }
        if shadow_size > wal_size {
            return Ok(Verdict::NewGeneration(reason::WAL_TRUNCATED));
        }
        // Each file is opened once for its header and its last synced frame.
        let real_file =
            File::open(&self.wal_path).map_err(DbError::io(&self.wal_path, "read wal header"))?;
        let real = header_of(&real_file).map_err(DbError::io(&self.wal_path, "read wal header"))?;
        let copy_file =
            File::open(&shadow).map_err(DbError::io(&shadow, "read shadow wal header"))?;
        let copy = header_of(&copy_file).map_err(DbError::io(&shadow, "read shadow wal header"))?;
        if shadow_size == header && real != copy {
            return Ok(Verdict::NewGeneration(reason::HEADER_ONLY_MISMATCH));
        }
        if shadow_size > header {
            let fs = frame_size(page_size);
            let offset = shadow_size - fs;
            let real = read_exact_at(&real_file, offset, fs as usize)
                .map_err(DbError::io(&self.wal_path, "read last synced wal page"))?;
            let copy = read_exact_at(&copy_file, offset, fs as usize)
                .map_err(DbError::io(&shadow, "read last synced shadow wal page"))?;
            if real != copy {
                return Ok(Verdict::NewGeneration(reason::WAL_OVERWRITTEN));
            }
        }
        Ok(Verdict::Continue {
            generation,
            shadows,
        })
    }

    /// A new generation: shadow `00000000.wal` first, then the generation file, then cleanup.
    fn create_generation(&self, att: &Attached) -> Result<String, DbError> {
        let generation = new_generation_id();
        att.perms
            .mkdir_all(&self.meta.generation_dir(&generation))?;
        let shadow = self.meta.shadow_path(&generation, 0);
        let copied = init_shadow(&self.wal_path, &shadow, att.page_size, &att.perms)?;
        self.note_copy(&copied);
        self.meta.write_generation(&generation, &att.perms)?;
        self.meta.remove_other_generations(Some(&generation))?;
        self.reset_floors();
        Ok(generation)
    }

    /// Copies new committed frames into the current shadow; on a WAL restart (header change)
    /// finishes the old shadow and starts `index+1` from the new header.
    pub(crate) fn advance(&self, att: &Attached, generation: &str) -> Result<Advanced, DbError> {
        let (index, _) = self.meta.current_index(generation)?;
        self.advance_from(att, generation, index)
    }

    /// [`Self::advance`] from shadow `index`, the generation's highest.
    fn advance_from(
        &self,
        att: &Attached,
        generation: &str,
        index: u32,
    ) -> Result<Advanced, DbError> {
        let shadow = self.meta.shadow_path(generation, index);
        let first = copy_to_shadow(&self.wal_path, &shadow, att.page_size)?;
        self.note_copy(&first);
        if first.same_header {
            return Ok(Advanced {
                index,
                shadow_size: first.shadow_size,
                wal_size: first.wal_size,
                appended: first.appended,
            });
        }
        let next = self.meta.shadow_path(generation, index + 1);
        let started = init_shadow(&self.wal_path, &next, att.page_size, &att.perms)?;
        self.note_copy(&started);
        Ok(Advanced {
            index: index + 1,
            shadow_size: started.shadow_size,
            wal_size: first.wal_size,
            appended: started.appended,
        })
    }

    /// Removes other generations and shadow files every replica has moved past. `shadows`: the
    /// generation's shadow files as they are now, when the tick knows them (else listed here);
    /// with them, also records the shadow total for [`Shared::publish`].
    fn clean(
        &self,
        generation: &str,
        current: u32,
        shadows: Option<&[(u32, u64)]>,
    ) -> Result<(), DbError> {
        self.remove_other_generations(generation)?;
        let bound = self.shadow_cleanup_bound(current);
        let Some(files) = shadows else {
            if let Some(bound) = bound {
                self.meta.remove_shadow_below(generation, bound)?;
            }
            return Ok(());
        };
        let mut total = 0;
        for &(index, size) in files {
            if bound.is_some_and(|b| index < b) {
                self.meta.remove_shadow(generation, index)?;
            } else {
                total += size;
            }
        }
        *lock(&self.shadow_total) = Some((generation.to_string(), current, total));
        Ok(())
    }

    /// Deletes every entry of `generations/` except `generation`; skipped while the directory's
    /// modification time is the one seen right after the last such cleanup (nothing was added
    /// since), so a quiet tick costs one `stat` instead of a listing.
    fn remove_other_generations(&self, generation: &str) -> Result<(), DbError> {
        let dir = self.meta.generations_dir();
        let mtime = || fs::metadata(&dir).and_then(|m| m.modified()).ok();
        let seen = mtime();
        {
            let last = lock(&self.generations_clean);
            if seen.is_some() && last.as_ref() == Some(&(generation.to_string(), seen)) {
                return Ok(());
            }
        }
        self.meta.remove_other_generations(Some(generation))?;
        *lock(&self.generations_clean) = Some((generation.to_string(), mtime()));
        Ok(())
    }

    /// Time since the main database file was last modified.
    fn db_mtime_age(&self) -> Option<std::time::Duration> {
        let modified = fs::metadata(&self.path).and_then(|m| m.modified()).ok()?;
        SystemTime::now().duration_since(modified).ok()
    }

    fn note_copy(&self, c: &Copied) {
        self.with_stats(|s| {
            s.total_wal_bytes += c.appended;
            s.max_copy_buffer = s.max_copy_buffer.max(c.buffer_bytes);
        });
    }

    /// Runs `tick` with the stats Litestream keeps per sync.
    pub(crate) fn timed_tick(&self, att: &mut Attached) -> Result<SyncOutcome, DbError> {
        let started = Instant::now();
        let result = self.tick(att);
        let elapsed = started.elapsed().as_secs_f64();
        self.with_stats(|s| {
            s.sync_count += 1;
            s.sync_seconds += elapsed;
            if result.is_err() {
                s.sync_error_count += 1;
            }
        });
        result
    }
}

/// The highest index of `(index, size)` shadow files (0 when there is none).
fn max_index(files: &[(u32, u64)]) -> u32 {
    files.iter().map(|&(i, _)| i).max().unwrap_or(0)
}

/// Exactly `len` bytes of `file` at `offset`.
fn read_exact_at(file: &File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// The first 32 bytes of an open WAL file; a shorter file is an `UnexpectedEof` error.
fn header_of(file: &File) -> std::io::Result<Vec<u8>> {
    whole_header(prefix_of(file, WAL_HEADER_SIZE)?)
}

/// The first 32 bytes of a WAL file; a shorter file is an `UnexpectedEof` error.
fn read_header(path: &Path) -> std::io::Result<Vec<u8>> {
    whole_header(read_prefix(path, WAL_HEADER_SIZE)?)
}

/// Go's wording for short reads (`EOF` / `unexpected EOF`), as Litestream logs them.
fn go_eof(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        e.get_ref()
            .map(|inner| inner.to_string())
            .unwrap_or_else(|| "EOF".to_string())
    } else {
        e.to_string()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
