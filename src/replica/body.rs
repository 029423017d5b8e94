//! Upload bodies: byte ranges of local files as re-creatable streams of chunks.
//!
//! What must stay true: a body is produced by a factory that can be called again (the storage
//! layer retries an upload by building a fresh body), each call reads from the start of the range
//! with positional reads (no shared file cursor), memory stays at one chunk per body, and a
//! shadow WAL file shorter than the range yields an `UnexpectedEof` error instead of a short
//! upload (an open snapshot handle instead ends at EOF: see [`Source::File`]).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;

use crate::db::DbFile;

/// Bytes read per chunk.
pub const CHUNK: usize = 1 << 20;

/// Where a range is read from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Opened on first read of each body (shadow WAL files).
    Path(PathBuf),
    /// Already open (the snapshot's consistent DB file handle). The file may legitimately shrink
    /// while read (another process's checkpoint), so EOF before the range end just ends the
    /// stream.
    File(Arc<DbFile>),
}

struct State {
    source: Source,
    file: Option<Arc<DbFile>>,
    pos: u64,
    end: u64,
}

/// `[start, end)` of `source` as a stream of chunks of at most [`CHUNK`] bytes.
pub fn range_stream(
    source: Source,
    start: u64,
    end: u64,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let state = State {
        source,
        file: None,
        pos: start,
        end,
    };
    futures::stream::try_unfold(state, |mut st| async move {
        if st.pos >= st.end {
            return Ok(None);
        }
        let file = match (&st.file, &st.source) {
            (Some(f), _) | (None, Source::File(f)) => f.clone(),
            (None, Source::Path(p)) => {
                let p = p.clone();
                let f =
                    crate::rt::spawn_blocking(move || File::open(&p).map_err(|e| annotate(e, &p)))
                        .await
                        .map_err(io::Error::other)??;
                Arc::new(DbFile::from(f))
            }
        };
        st.file = Some(file.clone());
        let want = usize::try_from(st.end - st.pos).map_or(CHUNK, |n| n.min(CHUNK));
        let at = st.pos;
        let chunk = crate::rt::spawn_blocking(move || read_up_to(&file, at, want))
            .await
            .map_err(io::Error::other)??;
        if chunk.len() < want {
            match st.source {
                Source::File(_) if chunk.is_empty() => return Ok(None),
                Source::File(_) => st.end = at + chunk.len() as u64,
                Source::Path(ref p) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} ends at {} before {}",
                            p.display(),
                            at + chunk.len() as u64,
                            st.end
                        ),
                    ));
                }
            }
        }
        st.pos += chunk.len() as u64;
        Ok(Some((chunk, st)))
    })
}

fn annotate(e: io::Error, path: &std::path::Path) -> io::Error {
    io::Error::new(e.kind(), format!("open {}: {e}", path.display()))
}

/// Reads up to `len` bytes at `at`; fewer only at EOF.
fn read_up_to(file: &File, at: u64, len: usize) -> io::Result<Bytes> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match file.read_at(&mut buf[done..], at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(done);
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    async fn collect(s: impl Stream<Item = io::Result<Bytes>>) -> io::Result<Vec<u8>> {
        let chunks: Vec<Bytes> = s.try_collect().await?;
        Ok(chunks.concat())
    }

    #[tokio::test]
    async fn reads_range_across_chunks_and_repeats() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(CHUNK * 2 + 100)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let (a, b) = (10u64, (CHUNK * 2 + 50) as u64);
        let got = collect(range_stream(Source::Path(path.clone()), a, b))
            .await
            .expect("read");
        assert_eq!(got, &data[a as usize..b as usize]);
        // Same handle read twice: positional reads do not share a cursor.
        let f = Arc::new(DbFile::from(File::open(&path).expect("open")));
        for _ in 0..2 {
            let got = collect(range_stream(Source::File(f.clone()), 0, data.len() as u64)).await;
            assert_eq!(got.expect("read"), data);
        }
        assert!(
            collect(range_stream(Source::Path(path), 5, 5))
                .await
                .expect("empty")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn short_file_and_missing_file_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, [1u8; 10]).expect("write");
        let err = collect(range_stream(Source::Path(path), 0, 20))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        // An open handle (snapshot) ends quietly at EOF instead.
        let f = Arc::new(DbFile::from(
            File::open(dir.path().join("f")).expect("open"),
        ));
        let got = collect(range_stream(Source::File(f), 4, 20))
            .await
            .expect("short ok");
        assert_eq!(got, vec![1u8; 6]);
        let err = collect(range_stream(Source::Path(dir.path().join("nope")), 0, 1))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
