//! Unit tests of the age stream wrappers: round trips over chunk boundaries, interoperability
//! with the age crate's own one-shot API, and every refusal of the read rules.

use super::*;

const IDENTITY: &str = "AGE-SECRET-KEY-1GQ9778VQXMMJVE8SK7J6VT8UJ4HDQAJUVSFCWCM02D8GEWQ72PVQ2Y5J33";
const KEY: &str = "generations/0123456789abcdef/wal/00000003_00000000.wal.lz4";

fn test_identity() -> Identity {
    IDENTITY.parse().expect("test identity")
}

fn keys_for(identity: &Identity) -> AgeKeys {
    AgeKeys::new(vec![identity.clone()], vec![identity.to_public()])
}

/// Deterministic pseudo-random bytes.
fn data(len: usize) -> Vec<u8> {
    crate::storage::pseudo_random(len, 0x2545_f491_4f6c_dd1d)
}

fn chunked(bytes: &[u8], size: usize) -> BoxStream<'static, io::Result<Bytes>> {
    let chunks: Vec<io::Result<Bytes>> = bytes
        .chunks(size.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks).boxed()
}

fn stored(bytes: Vec<u8>, size: usize) -> BoxStream<'static, Result<Bytes, StorageError>> {
    let chunks: Vec<Result<Bytes, StorageError>> = bytes
        .chunks(size.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks).boxed()
}

async fn encrypt(plain: &[u8], chunk: usize, keys: &AgeKeys) -> Vec<u8> {
    let parts: Vec<Bytes> = encrypt_body(chunked(plain, chunk), keys)
        .try_collect()
        .await
        .expect("encrypt");
    parts.concat()
}

async fn decrypt_all(
    cipher: Vec<u8>,
    chunk: usize,
    keys: &AgeKeys,
) -> Result<Vec<u8>, StorageError> {
    let body = decrypt_body(stored(cipher, chunk), KEY, keys).await?;
    let parts: Vec<Bytes> = body.try_collect().await?;
    Ok(parts.concat())
}

fn age_source(err: &StorageError) -> &AgeError {
    match err {
        StorageError::Age { key, source } => {
            assert_eq!(key, KEY);
            source
        }
        other => panic!("expected an age error, got {other:?}"),
    }
}

#[tokio::test]
async fn round_trip_across_stream_chunk_boundaries() {
    let keys = keys_for(&test_identity());
    for len in [
        0,
        1,
        STREAM_CHUNK - 1,
        STREAM_CHUNK,
        STREAM_CHUNK + 1,
        3 * STREAM_CHUNK + 7,
    ] {
        let plain = data(len);
        for chunk in [1000, STREAM_CHUNK, 200_000] {
            let cipher = encrypt(&plain, chunk, &keys).await;
            assert!(cipher.starts_with(AGE_MAGIC), "len {len}");
            for read_chunk in [1, 7, 4096, 1 << 20] {
                if read_chunk == 1 && len > STREAM_CHUNK {
                    continue; // byte-by-byte reading of large inputs only slows the test
                }
                let got = decrypt_all(cipher.clone(), read_chunk, &keys)
                    .await
                    .expect("decrypt");
                assert!(got == plain, "len {len} chunk {chunk} read {read_chunk}");
            }
        }
    }
}

#[tokio::test]
async fn interoperates_with_the_age_crate_one_shot_api() {
    let identity = test_identity();
    let keys = keys_for(&identity);
    let plain = data(100_000);
    let ours = encrypt(&plain, 5000, &keys).await;
    let theirs = ::age::decrypt(&identity, &ours).expect("age::decrypt");
    assert!(theirs == plain);

    let cipher = ::age::encrypt(&identity.to_public(), &plain).expect("age::encrypt");
    let got = decrypt_all(cipher, 333, &keys).await.expect("decrypt");
    assert!(got == plain);
}

#[tokio::test]
async fn truncated_ciphertext_is_an_error() {
    let keys = keys_for(&test_identity());
    let plain = data(2 * STREAM_CHUNK + 10);
    let cipher = encrypt(&plain, 10_000, &keys).await;
    for cut in [1, 17, cipher.len() - 2 * STREAM_CHUNK] {
        let short = cipher[..cipher.len() - cut].to_vec();
        let err = decrypt_all(short, 4096, &keys)
            .await
            .expect_err("truncated ciphertext must fail");
        assert!(matches!(age_source(&err), AgeError::Payload(_)), "{err}");
    }
    let mut altered = cipher.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    let err = decrypt_all(altered, 4096, &keys)
        .await
        .expect_err("altered");
    assert!(matches!(age_source(&err), AgeError::Payload(_)), "{err}");
}

#[tokio::test]
async fn wrong_identity_names_the_object() {
    let writer = keys_for(&Identity::generate());
    let cipher = encrypt(b"secret rows", 4, &writer).await;
    let reader = keys_for(&test_identity());
    let err = decrypt_all(cipher, 4096, &reader)
        .await
        .expect_err("wrong identity");
    assert!(matches!(age_source(&err), AgeError::NoMatchingIdentity));
    assert_eq!(
        err.to_string(),
        format!("{KEY}: encrypted with age, but no configured identity matches")
    );
}

#[tokio::test]
async fn encrypted_object_without_identities_is_refused() {
    let keys = keys_for(&test_identity());
    let cipher = encrypt(b"rows", 4, &keys).await;
    let recipients_only = AgeKeys::new(Vec::new(), vec![test_identity().to_public()]);
    let err = decrypt_all(cipher, 3, &recipients_only)
        .await
        .expect_err("no identities");
    assert!(matches!(age_source(&err), AgeError::NoIdentities));
}

#[tokio::test]
async fn plain_objects_pass_through_only_without_identities() {
    let plain = b"\x04\x22\x4d\x18 plain lz4 frame".to_vec();
    let got = decrypt_all(plain.clone(), 2, &AgeKeys::default())
        .await
        .expect("plain without identities");
    assert_eq!(got, plain);
    let err = decrypt_all(plain, 2, &keys_for(&test_identity()))
        .await
        .expect_err("plain with identities");
    assert!(matches!(age_source(&err), AgeError::NotEncrypted));
    let empty = decrypt_all(Vec::new(), 2, &AgeKeys::default())
        .await
        .expect("empty object");
    assert!(empty.is_empty());
}

#[tokio::test]
async fn transport_errors_keep_their_storage_error() {
    let keys = keys_for(&test_identity());
    let cipher = encrypt(&data(3 * STREAM_CHUNK), 50_000, &keys).await;
    let head = Bytes::copy_from_slice(&cipher[..STREAM_CHUNK]);
    let raw = stream::iter([
        Ok(head),
        Err(StorageError::NotFound {
            key: "vanished".into(),
        }),
    ])
    .boxed();
    let body = decrypt_body(raw, KEY, &keys).await.expect("header is fine");
    let err = body
        .try_collect::<Vec<Bytes>>()
        .await
        .expect_err("transport error");
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn without_recipients_the_body_is_untouched() {
    let plain = data(1000);
    let out: Vec<Bytes> = encrypt_body(chunked(&plain, 100), &AgeKeys::default())
        .try_collect()
        .await
        .expect("plain");
    assert_eq!(out.len(), 10);
    assert_eq!(out.concat(), plain);
}

#[tokio::test]
async fn client_encrypts_uploads_and_decrypts_downloads() {
    use crate::config::ReplicaTarget;
    use crate::storage::{Op, ReplicaClient};
    const GENERATION: &str = "0123456789abcdef";
    let dir = tempfile::tempdir().expect("tempdir");
    let target = ReplicaTarget::File {
        path: dir.path().to_path_buf(),
    };
    let plain_client = ReplicaClient::new(&target).expect("client");
    let client = plain_client.clone().with_age(keys_for(&test_identity()));
    let plain = Bytes::from(data(300_000));
    let body = plain.clone();
    let stored = client
        .put_segment(GENERATION, 1, 0, || {
            stream::iter([Ok::<_, io::Error>(body.clone())])
        })
        .await
        .expect("put");
    let key = crate::storage::layout::segment_key("", GENERATION, 1, 0);
    let on_disk = std::fs::read(dir.path().join(&key)).expect("stored file");
    assert!(on_disk.starts_with(AGE_MAGIC));
    assert_eq!(
        stored,
        on_disk.len() as u64,
        "PUT size is the encrypted size"
    );
    assert!(stored > plain.len() as u64);

    let got: Vec<Bytes> = client
        .open_segment(GENERATION, 1, 0)
        .await
        .expect("open")
        .try_collect()
        .await
        .expect("read");
    assert!(got.concat() == plain.as_ref());
    assert_eq!(
        client.stats().bytes(Op::Get),
        stored,
        "GET counts stored bytes"
    );

    let Err(err) = plain_client.open_segment(GENERATION, 1, 0).await else {
        panic!("an encrypted object read without identities must fail");
    };
    assert_eq!(
        err.to_string(),
        format!("{key}: encrypted with age, but the replica has no age identities configured")
    );
}

/// Regression: a stored body shorter than the age header must not be polled after its end
/// (object streams built with `unfold` panic when polled again).
#[tokio::test]
async fn short_bodies_are_not_polled_after_their_end() {
    let raw = stream::unfold(0u8, |n| async move {
        (n == 0).then(|| (Ok(Bytes::from_static(b"\x04\x22\x4d\x18")), 1))
    })
    .boxed();
    let body = decrypt_body(raw, KEY, &AgeKeys::default())
        .await
        .expect("plain");
    let parts: Vec<Bytes> = body.try_collect().await.expect("read");
    assert_eq!(parts.concat(), b"\x04\x22\x4d\x18");
}
