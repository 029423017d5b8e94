//! age encryption of replica objects (spec §9): with recipients configured every uploaded body
//! is stored as `age(body)` (the body is already LZ4-framed, so objects are
//! age(LZ4(plaintext)) under the same `.lz4` names); reads detect the `age-encryption.org/v1`
//! header and decrypt with the configured identities.
//!
//! What must stay true:
//! - Streaming both ways with bounded memory: encryption holds one input chunk plus one 64 KiB
//!   STREAM chunk; decryption holds one 64 KiB STREAM chunk.
//! - Reading follows Litestream v0.3.13 (`replica.go`: `age.Decrypt` whenever identities are
//!   configured): an encrypted object needs a matching identity, and a plain object read by a
//!   replica with identities is refused ([`AgeError::NotEncrypted`]). Without identities a plain
//!   object passes through untouched. Every refusal names the object key and is never an LZ4
//!   error.
//! - A truncated or altered ciphertext is an error, never a short plaintext.
//! - Transport errors of the underlying object stream come out as the original [`StorageError`]
//!   (classification and retry decisions unchanged), not as decryption errors.
//! - Keys never appear in `Debug` output or messages.

use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use ::age::x25519::{Identity, Recipient};
use ::age::{DecryptError, Decryptor, Encryptor};
use bytes::Bytes;
use futures::io::AsyncReadExt;
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};

use super::StorageError;
use crate::config::AgeConfig;

/// First bytes of every age v1 file.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1";
/// Plaintext bytes per age STREAM chunk (also the size of the decrypted pieces yielded).
const STREAM_CHUNK: usize = 64 * 1024;

/// The age keys of one replica: recipients encrypt uploads, identities decrypt downloads.
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct AgeKeys {
    identities: Arc<[Identity]>,
    recipients: Arc<[Recipient]>,
}

impl AgeKeys {
    pub fn new(identities: Vec<Identity>, recipients: Vec<Recipient>) -> Self {
        Self {
            identities: identities.into(),
            recipients: recipients.into(),
        }
    }

    /// Parses a replica's `age:` settings; the error names the list entry, not the key.
    pub fn from_config(config: &AgeConfig) -> Result<Self, String> {
        Ok(Self::new(
            config.parsed_identities()?,
            config.parsed_recipients()?,
        ))
    }

    /// True when uploads are encrypted.
    pub fn encrypts(&self) -> bool {
        !self.recipients.is_empty()
    }

    /// True when downloads are decrypted (and must be encrypted).
    pub fn decrypts(&self) -> bool {
        !self.identities.is_empty()
    }
}

impl fmt::Debug for AgeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgeKeys")
            .field("identities", &self.identities.len())
            .field("recipients", &self.recipients.len())
            .finish()
    }
}

/// Why an object could not be read through age.
#[derive(Debug, thiserror::Error)]
pub enum AgeError {
    #[error("encrypted with age, but the replica has no age identities configured")]
    NoIdentities,
    #[error("encrypted with age, but no configured identity matches")]
    NoMatchingIdentity,
    #[error(
        "not encrypted with age, but the replica has age identities configured \
         (Litestream v0.3.13 refuses such objects too)"
    )]
    NotEncrypted,
    #[error("invalid age header: {0}")]
    Header(DecryptError),
    #[error("age ciphertext is corrupt or truncated: {0}")]
    Payload(io::Error),
}

/// `body` encrypted to `keys`' recipients, or `body` itself when there are none.
pub(super) fn encrypt_body(
    body: BoxStream<'static, io::Result<Bytes>>,
    keys: &AgeKeys,
) -> BoxStream<'static, io::Result<Bytes>> {
    if !keys.encrypts() {
        return body;
    }
    let state = Encrypting {
        plain: body,
        recipients: Arc::clone(&keys.recipients),
        writer: None,
        out: SharedBuf::default(),
        done: false,
    };
    stream::try_unfold(state, |mut st| async move {
        let next = st.next_chunk().await?;
        Ok(next.map(|chunk| (chunk, st)))
    })
    .boxed()
}

/// The encryptor writes into this buffer; the stream drains it after every input chunk.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn take(&self) -> Bytes {
        let mut buf = crate::rt::lock(&self.0);
        Bytes::from(std::mem::take(&mut *buf))
    }
}

impl Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut buf = crate::rt::lock(&self.0);
        buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Encrypting {
    plain: BoxStream<'static, io::Result<Bytes>>,
    recipients: Arc<[Recipient]>,
    writer: Option<::age::stream::StreamWriter<SharedBuf>>,
    out: SharedBuf,
    done: bool,
}

impl Encrypting {
    /// The next non-empty piece of ciphertext, `None` once the final chunk was yielded.
    async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        if self.writer.is_none() {
            self.writer = Some(self.start()?);
        }
        loop {
            let Some(writer) = self.writer.as_mut() else {
                return Ok(None);
            };
            match self.plain.next().await {
                Some(chunk) => writer.write_all(&chunk?)?,
                None => {
                    if let Some(writer) = self.writer.take() {
                        writer.finish()?;
                    }
                    self.done = true;
                    return Ok(Some(self.out.take()));
                }
            }
            let ready = self.out.take();
            if !ready.is_empty() {
                return Ok(Some(ready));
            }
        }
    }

    /// A fresh file key and header for this upload attempt.
    fn start(&self) -> io::Result<::age::stream::StreamWriter<SharedBuf>> {
        let recipients = self.recipients.iter().map(|r| r as &dyn ::age::Recipient);
        let encryptor = Encryptor::with_recipients(recipients).map_err(io::Error::other)?;
        encryptor.wrap_output(self.out.clone())
    }
}

/// Applies the read rules of the module header to the stored bytes `raw` of object `key`.
pub(super) async fn decrypt_body(
    raw: BoxStream<'static, Result<Bytes, StorageError>>,
    key: &str,
    keys: &AgeKeys,
) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
    let (head, rest) = peek(raw, AGE_MAGIC.len()).await?;
    let encrypted = starts_with_magic(&head);
    let whole = stream::iter(head.into_iter().map(Ok)).chain(rest).boxed();
    match (encrypted, keys.decrypts()) {
        (false, false) => Ok(whole),
        (false, true) => Err(age_error(key, AgeError::NotEncrypted)),
        (true, false) => Err(age_error(key, AgeError::NoIdentities)),
        (true, true) => decrypt(whole, key, &keys.identities).await,
    }
}

/// Reads chunks until at least `want` bytes (or the end) are buffered. An ended stream is never
/// polled again (the returned rest is then empty): `unfold`-based streams panic otherwise.
async fn peek(
    mut raw: BoxStream<'static, Result<Bytes, StorageError>>,
    want: usize,
) -> Result<(Vec<Bytes>, BoxStream<'static, Result<Bytes, StorageError>>), StorageError> {
    let mut head = Vec::new();
    let mut have = 0;
    while have < want {
        match raw.next().await {
            Some(chunk) => {
                let chunk = chunk?;
                have += chunk.len();
                head.push(chunk);
            }
            None => return Ok((head, stream::empty().boxed())),
        }
    }
    Ok((head, raw))
}

fn starts_with_magic(head: &[Bytes]) -> bool {
    let mut prefix = Vec::with_capacity(AGE_MAGIC.len());
    for chunk in head {
        let need = AGE_MAGIC.len() - prefix.len();
        prefix.extend_from_slice(&chunk[..need.min(chunk.len())]);
    }
    prefix == AGE_MAGIC
}

async fn decrypt(
    whole: BoxStream<'static, Result<Bytes, StorageError>>,
    key: &str,
    identities: &[Identity],
) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
    let reader = whole.map_err(io::Error::other).into_async_read();
    let decryptor = Decryptor::new_async_buffered(reader)
        .await
        .map_err(|e| header_error(key, e))?;
    let ids = identities.iter().map(|i| i as &dyn ::age::Identity);
    let plain = decryptor
        .decrypt_async(ids)
        .map_err(|e| header_error(key, e))?;
    let key = key.to_string();
    let body = stream::try_unfold((plain, key), |(mut plain, key)| async move {
        let mut buf = vec![0u8; STREAM_CHUNK];
        let n = plain
            .read(&mut buf)
            .await
            .map_err(|e| payload_error(&key, e))?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), (plain, key))))
    });
    Ok(body.boxed())
}

fn header_error(key: &str, e: DecryptError) -> StorageError {
    match e {
        DecryptError::NoMatchingKeys => age_error(key, AgeError::NoMatchingIdentity),
        DecryptError::Io(io) => payload_error(key, io),
        other => age_error(key, AgeError::Header(other)),
    }
}

/// The transport error that `e` carries, or a payload error.
fn payload_error(key: &str, e: io::Error) -> StorageError {
    if e.get_ref().is_some_and(|inner| inner.is::<StorageError>()) {
        if let Some(Ok(storage)) = e.into_inner().map(|inner| inner.downcast::<StorageError>()) {
            return *storage;
        }
        return age_error(
            key,
            AgeError::Payload(io::Error::other("lost transport error")),
        );
    }
    age_error(key, AgeError::Payload(e))
}

fn age_error(key: &str, source: AgeError) -> StorageError {
    StorageError::Age {
        key: key.to_string(),
        source,
    }
}

#[cfg(test)]
#[path = "age_tests.rs"]
mod tests;
