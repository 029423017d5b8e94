//! Recycled buffers for decoded LZ4 blocks.
//!
//! A restore decodes about one 4 MiB block per 4 MiB of database and hands each one to the disk
//! thread. Decoding into a fresh allocation (or into a scratch buffer and then copying) costs a
//! pass over every byte and, for fresh memory, a page fault per 4 KiB. With a [`BlockPool`] the
//! decoder writes a full block straight into a recycled buffer and hands it on as [`Bytes`]; the
//! buffer comes back to the pool when the consumer drops the last handle.
//!
//! What must stay true:
//! - The pool keeps at most `keep` idle buffers; more are freed, so what it retains never exceeds
//!   what was in flight at once anyway.
//! - Only buffers the decoded block fills completely are handed on (see
//!   [`BlockPool::finish_block`]), so a `Bytes` never pins more memory than its length.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// A shared stock of equally sized block buffers (cheap to clone).
#[derive(Debug, Clone)]
pub struct BlockPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    idle: Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

impl BlockPool {
    /// A pool that retains up to `keep` idle buffers.
    pub fn new(keep: usize) -> Self {
        BlockPool {
            inner: Arc::new(Inner {
                idle: Mutex::new(Vec::new()),
                keep,
            }),
        }
    }

    /// A buffer of exactly `len` initialized bytes (contents unspecified).
    pub(super) fn take(&self, len: usize) -> Vec<u8> {
        let reused = {
            let mut idle = self.lock();
            idle.iter()
                .position(|b| b.len() == len)
                .map(|i| idle.swap_remove(i))
        };
        // vec! of zeros is calloc: fresh pages are only touched as far as output is written.
        reused.unwrap_or_else(|| vec![0; len])
    }

    /// Turns a buffer holding `n` decoded bytes into the block handed on: the buffer itself
    /// when the block fills it, else a copy of the bytes (the buffer goes back to the pool).
    pub(super) fn finish_block(&self, buf: Vec<u8>, n: usize) -> Bytes {
        if n == buf.len() {
            return Bytes::from_owner(Pooled {
                buf,
                pool: self.clone(),
            });
        }
        let out = Bytes::copy_from_slice(&buf[..n]);
        self.give(buf);
        out
    }

    /// Returns a buffer to the pool (freed if the pool is full).
    pub(super) fn give(&self, buf: Vec<u8>) {
        let mut idle = self.lock();
        if idle.len() < self.inner.keep {
            idle.push(buf);
        }
    }

    /// Idle buffers held (for tests).
    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // A panic while holding the lock cannot leave the list inconsistent (push/remove only).
        crate::rt::lock(&self.inner.idle)
    }
}

/// A pooled buffer owned by a [`Bytes`]; goes back to its pool when dropped.
struct Pooled {
    buf: Vec<u8>,
    pool: BlockPool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_blocks_are_lent_and_come_back() {
        let pool = BlockPool::new(2);
        let mut buf = pool.take(8);
        buf.copy_from_slice(b"abcdefgh");
        let ptr = buf.as_ptr();
        let block = pool.finish_block(buf, 8);
        assert_eq!(&block[..], b"abcdefgh");
        assert_eq!(block.as_ptr(), ptr, "no copy for a full block");
        assert_eq!(pool.idle(), 0);
        let half = block.slice(4..);
        drop(block);
        assert_eq!(pool.idle(), 0, "a slice still holds the buffer");
        drop(half);
        assert_eq!(pool.idle(), 1);
        let again = pool.take(8);
        assert_eq!(again.as_ptr(), ptr, "the buffer is reused");
    }

    #[test]
    fn partial_blocks_are_copied_and_the_pool_is_capped() {
        let pool = BlockPool::new(1);
        let mut buf = pool.take(8);
        buf[..3].copy_from_slice(b"xyz");
        let block = pool.finish_block(buf, 3);
        assert_eq!(&block[..], b"xyz");
        assert_eq!(pool.idle(), 1, "the buffer went straight back");
        let (a, b) = (pool.take(8), pool.take(8));
        assert_eq!(pool.take(4).len(), 4, "other sizes get their own buffer");
        pool.give(a);
        pool.give(b);
        assert_eq!(pool.idle(), 1, "at most `keep` idle buffers");
    }
}
