//! The databases of a replica tree: every relative path `rel` below the client's root that holds
//! a Litestream v0.3 replica (`<root>/<rel>/generations/`), as written for the databases of a
//! directory entry (one replica root per database, see `config::DirConfig::db_config`).
//!
//! How: a breadth-first walk with one delimiter listing per directory, through the client's own
//! lister (local `read_dir` for file replicas, `list_with_delimiter` for S3/GCS, List Blobs for
//! Azure), [`WALK_CONCURRENCY`] listings at a time. It never descends into a `generations`
//! folder, so the cost is one LIST per directory of the tree above the databases, not one per
//! object (a flat listing would page through every snapshot and WAL segment).
//!
//! What must stay true: results are sorted, `/`-joined, relative, never empty (a replica at the
//! root itself belongs to no directory database); symlinked directories of a file replica are
//! not followed (the local lister does not report them as directories); nothing is created.

use futures::{StreamExt, TryStreamExt, stream};

use super::{ReplicaClient, StorageError, layout};

/// Directory listings in flight during a walk.
pub const WALK_CONCURRENCY: usize = 16;

impl ReplicaClient {
    /// Relative paths of the database replicas below the root, at most `max_depth` names deep
    /// (`None` = any depth), sorted.
    pub async fn database_roots(
        &self,
        max_depth: Option<usize>,
    ) -> Result<Vec<String>, StorageError> {
        let mut found = Vec::new();
        let mut level = vec![String::new()];
        let mut depth = 0;
        while !level.is_empty() {
            let listings: Vec<(String, Vec<String>)> = stream::iter(level)
                .map(|rel| async move {
                    let key = layout::join(&[self.root(), &rel]);
                    let listing = self.list_dir(&key).await?;
                    Ok::<_, StorageError>((rel, listing.dirs))
                })
                .buffer_unordered(WALK_CONCURRENCY)
                .try_collect()
                .await?;
            let deeper = max_depth.is_none_or(|max| depth < max);
            level = Vec::new();
            for (rel, dirs) in listings {
                if !rel.is_empty() && dirs.iter().any(|d| d == layout::GENERATIONS) {
                    found.push(rel.clone());
                }
                if deeper {
                    let children = dirs.into_iter().filter(|d| d != layout::GENERATIONS);
                    level.extend(children.map(|d| layout::join(&[&rel, &d])));
                }
            }
            depth += 1;
        }
        found.sort();
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload, path::Path};

    use super::*;
    use crate::config::ReplicaTarget;

    const SEGMENT: &str = "generations/0123456789abcdef/wal/00000000_00000000.wal.lz4";

    async fn put(store: &InMemory, key: &str) {
        let path = Path::parse(key).expect("key");
        store
            .put(&path, PutPayload::from_static(b"x"))
            .await
            .expect("put");
    }

    #[tokio::test]
    async fn object_store_tree_with_nested_databases() {
        let store = InMemory::new();
        for rel in ["a.db", "eu/b.db", "eu/acme/c.db", "deep/x/y/z.db"] {
            put(&store, &format!("fleet/{rel}/{SEGMENT}")).await;
        }
        put(&store, "fleet/stray.txt").await;
        put(&store, "fleet/empty/readme").await;
        put(&store, "other/d.db/generations/0123456789abcdef/x").await;
        let client = ReplicaClient::with_store(Arc::new(store), "fleet", "s3");
        let all = client.database_roots(None).await.expect("walk");
        assert_eq!(all, ["a.db", "deep/x/y/z.db", "eu/acme/c.db", "eu/b.db"]);
        let top = client.database_roots(Some(1)).await.expect("walk");
        assert_eq!(top, ["a.db"]);
        let two = client.database_roots(Some(2)).await.expect("walk");
        assert_eq!(two, ["a.db", "eu/b.db"]);
    }

    #[tokio::test]
    async fn file_replica_tree_and_missing_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for rel in ["a.db", "x/b.db"] {
            let dir = tmp
                .path()
                .join(rel)
                .join("generations/0123456789abcdef/wal");
            std::fs::create_dir_all(&dir).expect("mkdir");
        }
        std::fs::create_dir_all(tmp.path().join("x/not-a-db")).expect("mkdir");
        std::os::unix::fs::symlink(tmp.path(), tmp.path().join("x/loop")).expect("link");
        let target = ReplicaTarget::File {
            path: tmp.path().to_path_buf(),
        };
        let client = ReplicaClient::new(&target).expect("client");
        assert_eq!(
            client.database_roots(None).await.expect("walk"),
            ["a.db", "x/b.db"]
        );
        let missing = ReplicaTarget::File {
            path: tmp.path().join("missing"),
        };
        let client = ReplicaClient::new(&missing).expect("client");
        assert!(client.database_roots(None).await.expect("walk").is_empty());
        assert!(!tmp.path().join("missing").exists(), "nothing is created");
    }
}
