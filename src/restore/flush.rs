//! Early writeback of the temporary database: while the disk thread keeps writing, a helper
//! thread calls `fdatasync` every [`FLUSH_EVERY`] bytes, so the disk works during the download
//! instead of receiving the whole database at the final `fsync` (a large restore otherwise
//! leaves gigabytes of dirty pages for that one call).
//!
//! What must stay true: this only changes *when* bytes reach the disk, never which bytes; the
//! caller still does the final `fsync` and only then trusts the file; an error of an early
//! sync is reported by [`Flusher::finish`].

use std::fs::File;
use std::io;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

/// Bytes written between two early syncs.
pub const FLUSH_EVERY: u64 = 64 << 20;

/// Requests early syncs from a helper thread; requests made while one runs are merged.
pub struct Flusher {
    tx: Option<SyncSender<()>>,
    thread: Option<JoinHandle<io::Result<()>>>,
    pending: u64,
}

impl Flusher {
    /// Starts the helper thread on a second handle of `file`.
    pub fn start(file: &File) -> io::Result<Flusher> {
        let handle = file.try_clone()?;
        let (tx, rx) = sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("restore-flush".into())
            .spawn(move || run(&handle, &rx))?;
        Ok(Flusher {
            tx: Some(tx),
            thread: Some(thread),
            pending: 0,
        })
    }

    /// Counts `n` more written bytes; asks for a sync every [`FLUSH_EVERY`] bytes.
    pub fn wrote(&mut self, n: u64) {
        self.pending += n;
        if self.pending < FLUSH_EVERY {
            return;
        }
        self.pending = 0;
        if let Some(tx) = &self.tx {
            match tx.try_send(()) {
                Ok(()) | Err(TrySendError::Full(())) => {}
                // The helper stopped after an error; `finish` reports it.
                Err(TrySendError::Disconnected(())) => self.tx = None,
            }
        }
    }

    /// Stops the helper and returns the first error of an early sync, if any.
    pub fn finish(mut self) -> io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> io::Result<()> {
        self.tx = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("restore flush thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // On an error path the restore already fails; the helper only needs to stop.
        let _ = self.stop();
    }
}

fn run(file: &File, rx: &Receiver<()>) -> io::Result<()> {
    while rx.recv().is_ok() {
        file.sync_data()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn flushes_without_changing_bytes() {
        let tmp = tempfile::NamedTempFile::new().expect("temp");
        let file = tmp.reopen().expect("reopen");
        let mut f = Flusher::start(&file).expect("start");
        let block = vec![7u8; 1 << 20];
        for i in 0..130u64 {
            file.write_all_at(&block, i << 20).expect("write");
            f.wrote(1 << 20);
        }
        f.finish().expect("finish");
        let data = std::fs::read(tmp.path()).expect("read");
        assert_eq!(data.len(), 130 << 20);
        assert!(data.iter().all(|b| *b == 7));
    }
}
