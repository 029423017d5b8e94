//! One directory level of a replica as [`super::ReplicaClient`] consumes it ([`DirListing`]),
//! from `object_store`'s answer or straight from the local file system (file backend); the Azure
//! List Blobs request (`azure_list`) builds the same type. Which way a client lists is
//! [`super::Lister`].
//!
//! What must stay true:
//! - Names are single path segments (no `/`); `created_at` is the backend's CreatedAt source of
//!   spec §1.6 (file mtime, S3/GCS listing time, Azure `Creation-Time`).
//! - The local listing behaves like Go's `os.ReadDir` as Litestream's file client uses it: a
//!   missing directory lists as empty, any other failure (e.g. `not a directory` when the replica
//!   path or `generations` is a regular file) is an error; a generation must be a real directory
//!   (a symlink is not, like `DirEntry.IsDir`); an entry that vanishes between the directory read
//!   and its `lstat` (concurrent retention) is skipped.

use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};
use object_store::ListResult;

/// Sub-directories (common prefixes) and files of one directory, unsorted.
#[derive(Debug, Default, PartialEq)]
pub(super) struct DirListing {
    pub dirs: Vec<String>,
    pub files: Vec<ListedFile>,
}

#[derive(Debug, PartialEq)]
pub(super) struct ListedFile {
    pub name: String,
    /// Stored size in bytes.
    pub size: u64,
    pub created_at: DateTime<Utc>,
}

impl DirListing {
    /// The listing `object_store` returned (CreatedAt = `last_modified`).
    pub fn from_store(result: ListResult) -> Self {
        let dirs = result
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        let files = result
            .objects
            .into_iter()
            .filter_map(|meta| {
                Some(ListedFile {
                    name: meta.location.filename()?.to_string(),
                    size: meta.size,
                    created_at: meta.last_modified,
                })
            })
            .collect();
        DirListing { dirs, files }
    }

    /// Appends the entries of a further page.
    pub fn append(&mut self, mut page: DirListing) {
        self.dirs.append(&mut page.dirs);
        self.files.append(&mut page.files);
    }
}

/// Lists the local directory `dir` (see the module rules). Names that are not UTF-8 are skipped
/// (no replica name is).
pub(super) fn list_local(dir: &Path) -> io::Result<DirListing> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DirListing::default()),
        other => other?,
    };
    let mut listing = DirListing::default();
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let meta = match entry.metadata() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            other => other?,
        };
        if meta.is_dir() {
            listing.dirs.push(name);
        } else {
            listing.files.push(ListedFile {
                name,
                size: meta.len(),
                created_at: meta.modified()?.into(),
            });
        }
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_listing_splits_dirs_and_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(tmp.path().join("d")).expect("mkdir");
        std::fs::write(tmp.path().join("f"), b"12345").expect("write");
        std::os::unix::fs::symlink(tmp.path().join("d"), tmp.path().join("link")).expect("ln");
        let mut l = list_local(tmp.path()).expect("lists");
        l.files.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(
            l.dirs,
            vec!["d"],
            "a symlink to a directory is not a directory"
        );
        let names: Vec<&str> = l.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, vec!["f", "link"]);
        assert_eq!(l.files[0].size, 5);
    }

    #[test]
    fn missing_is_empty_but_a_file_is_an_error() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            list_local(&tmp.path().join("missing")).expect("missing lists"),
            DirListing::default()
        );
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        let err = list_local(&file).expect_err("a file is not a directory");
        assert_eq!(err.kind(), io::ErrorKind::NotADirectory, "{err}");
        let err = list_local(&file.join("generations")).expect_err("below a file");
        assert_eq!(err.kind(), io::ErrorKind::NotADirectory, "{err}");
    }
}
