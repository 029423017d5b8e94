//! Pure upload stepping (spec §4.2): given the replica position and the local shadow-WAL end,
//! what is the next byte range to upload?
//!
//! What must stay true: a range always starts exactly at the replica position (positions never
//! skip or repeat); the position moves to `(index+1, 0)` only when `index` is exhausted *and* the
//! local end is past it (so the shadow of `index` is final); the range for the current local index
//! ends at the published local offset, never at the raw file length (which may include bytes the
//! db has not yet published); a replica ahead of the local state is an error, never an upload.

/// Offset inside one shadow WAL index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexOffset {
    pub index: u32,
    pub offset: u64,
}

/// What to do next from a replica position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Upload `[offset, end)` of the shadow WAL of the replica's current index.
    Upload { end: u64 },
    /// The current index is fully uploaded and a later one exists: continue at `(index+1, 0)`.
    Advance,
    /// Nothing new to upload.
    Done,
}

/// Why the replica position is inconsistent with the local shadow WAL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error(
        "replica position {replica_index:08x}:{replica_offset} is ahead of local position {local_index:08x}:{local_offset}"
    )]
    Ahead {
        replica_index: u32,
        replica_offset: u64,
        local_index: u32,
        local_offset: u64,
    },
    #[error("shadow wal {index:08x} missing while the replica is at offset {offset}")]
    MissingShadow { index: u32, offset: u64 },
    #[error("shadow wal {index:08x} has {end} bytes, less than the replica offset {offset}")]
    ShadowShorter { index: u32, offset: u64, end: u64 },
}

/// Frame-aligned size of a WAL of `n` bytes (spec §3.3): 0 below the header, else header plus
/// whole frames.
pub fn align_wal_size(n: u64, page_size: u32) -> u64 {
    const HEADER: u64 = 32;
    let frame = 24 + u64::from(page_size);
    if n < HEADER {
        0
    } else {
        HEADER + (n - HEADER) / frame * frame
    }
}

/// Decides the next step from `replica` towards `local`.
///
/// `shadow_len` is the current byte length of the shadow WAL file of `replica.index` (`None` if
/// the file is missing); it is only consulted when `replica.index < local.index`, i.e. when that
/// shadow file is final.
pub fn next_step(
    replica: IndexOffset,
    local: IndexOffset,
    shadow_len: Option<u64>,
    page_size: u32,
) -> Result<Step, StepError> {
    if replica.index > local.index
        || (replica.index == local.index && replica.offset > local.offset)
    {
        return Err(StepError::Ahead {
            replica_index: replica.index,
            replica_offset: replica.offset,
            local_index: local.index,
            local_offset: local.offset,
        });
    }
    if replica.index == local.index {
        return Ok(if replica.offset < local.offset {
            Step::Upload { end: local.offset }
        } else {
            Step::Done
        });
    }
    let Some(len) = shadow_len else {
        return Err(StepError::MissingShadow {
            index: replica.index,
            offset: replica.offset,
        });
    };
    let end = align_wal_size(len, page_size);
    if replica.offset < end {
        Ok(Step::Upload { end })
    } else if replica.offset == end {
        Ok(Step::Advance)
    } else {
        Err(StepError::ShadowShorter {
            index: replica.index,
            offset: replica.offset,
            end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS: u32 = 4096;
    const FS: u64 = 24 + 4096;

    fn at(index: u32, offset: u64) -> IndexOffset {
        IndexOffset { index, offset }
    }

    #[test]
    fn alignment() {
        assert_eq!(align_wal_size(0, PS), 0);
        assert_eq!(align_wal_size(31, PS), 0);
        assert_eq!(align_wal_size(32, PS), 32);
        assert_eq!(align_wal_size(32 + FS - 1, PS), 32);
        assert_eq!(align_wal_size(32 + 2 * FS, PS), 32 + 2 * FS);
        assert_eq!(align_wal_size(32 + 3 * 536 + 535, 512), 32 + 3 * 536);
    }

    #[test]
    fn same_index_uploads_to_published_offset() {
        let s = next_step(at(0, 32), at(0, 32 + 3 * FS), Some(1 << 30), PS);
        assert_eq!(s, Ok(Step::Upload { end: 32 + 3 * FS }));
        assert_eq!(
            next_step(at(0, 0), at(0, 32), None, PS),
            Ok(Step::Upload { end: 32 })
        );
        assert_eq!(
            next_step(at(2, 32 + FS), at(2, 32 + FS), None, PS),
            Ok(Step::Done)
        );
    }

    #[test]
    fn older_index_finishes_then_advances() {
        let local = at(3, 32);
        assert_eq!(
            next_step(at(1, 32), local, Some(32 + 2 * FS), PS),
            Ok(Step::Upload { end: 32 + 2 * FS })
        );
        assert_eq!(
            next_step(at(1, 32 + 2 * FS), local, Some(32 + 2 * FS), PS),
            Ok(Step::Advance)
        );
        // Fresh index, only its header so far.
        assert_eq!(
            next_step(at(2, 0), local, Some(32), PS),
            Ok(Step::Upload { end: 32 })
        );
    }

    #[test]
    fn inconsistencies_are_errors() {
        assert!(matches!(
            next_step(at(4, 0), at(3, 32), Some(32), PS),
            Err(StepError::Ahead { .. })
        ));
        assert!(matches!(
            next_step(at(3, 32 + FS), at(3, 32), None, PS),
            Err(StepError::Ahead { .. })
        ));
        assert_eq!(
            next_step(at(1, 0), at(3, 32), None, PS),
            Err(StepError::MissingShadow {
                index: 1,
                offset: 0
            })
        );
        assert_eq!(
            next_step(at(1, 32 + FS), at(3, 32), Some(32), PS),
            Err(StepError::ShadowShorter {
                index: 1,
                offset: 32 + FS,
                end: 32
            })
        );
    }

    /// Walking from any position to the local end visits every byte exactly once.
    #[test]
    fn walk_covers_every_byte_once() {
        let lens = [32 + 5 * FS, 32, 32 + FS, 32 + 7 * FS];
        let local = at(3, 32 + 4 * FS);
        let mut pos = at(0, 0);
        let mut uploaded = vec![0u64; 4];
        loop {
            let len = lens.get(pos.index as usize).copied();
            match next_step(pos, local, len, PS).expect("consistent") {
                Step::Upload { end } => {
                    assert!(end > pos.offset);
                    uploaded[pos.index as usize] += end - pos.offset;
                    pos.offset = end;
                }
                Step::Advance => pos = at(pos.index + 1, 0),
                Step::Done => break,
            }
        }
        assert_eq!(pos, local);
        assert_eq!(uploaded, vec![lens[0], lens[1], lens[2], 32 + 4 * FS]);
    }
}
