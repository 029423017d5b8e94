//! Tests of our own frames: exact header bytes, round trips, corruption and truncation errors,
//! incremental APIs and bounded buffering.

use std::io::Read;

use bytes::Bytes;
use futures::StreamExt;

use super::*;

/// splitmix64, so every failure reproduces.
pub(super) struct Prng(pub(super) u64);

impl Prng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(super) fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Deterministic data alternating 1 MiB of compressible text (tagged with the seed and its
/// position) with 1 MiB of random bytes.
pub(super) fn mixed(len: usize, seed: u64) -> Vec<u8> {
    static TEXT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let text = TEXT.get_or_init(|| {
        let mut t = Vec::with_capacity(MIB + 64);
        let mut i = 0u64;
        while t.len() < MIB {
            t.extend_from_slice(format!("page {i} of the sqlite database {}\n", i % 13).as_bytes());
            i += 1;
        }
        t.truncate(MIB);
        t
    });
    let mut out = Vec::with_capacity(len);
    let mut rng = Prng(seed);
    for k in 0..len.div_ceil(MIB) {
        let start = out.len();
        if k % 2 == 0 {
            out.extend_from_slice(text);
            out[start..start + 16]
                .copy_from_slice(&[seed.to_le_bytes(), (k as u64).to_le_bytes()].concat());
        } else {
            out.resize(start + MIB, 0);
            rng.fill(&mut out[start..]);
        }
    }
    out.truncate(len);
    out
}

const MIB: usize = 1 << 20;

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Prng(seed).fill(&mut v);
    v
}

/// Block size words of one of our frames (header is the fixed 7 bytes, no block checksums).
fn block_words(frame: &[u8]) -> Vec<u32> {
    let mut words = Vec::new();
    let mut pos = FRAME_HEADER.len();
    loop {
        let w = u32::from_le_bytes(frame[pos..pos + 4].try_into().expect("4 bytes"));
        if w == 0 {
            assert_eq!(pos + 8, frame.len(), "end mark + checksum end the frame");
            return words;
        }
        words.push(w);
        pos += 4 + (w & 0x7fff_ffff) as usize;
    }
}

#[test]
fn header_is_exactly_litestreams() {
    assert_eq!(FRAME_HEADER, [0x04, 0x22, 0x4D, 0x18, 0x64, 0x70, 0xB9]);
    // HC = second byte of xxHash32 over FLG, BD.
    assert_eq!(
        (twox_hash::XxHash32::oneshot(0, &[0x64, 0x70]) >> 8) as u8,
        0xB9
    );
    assert_eq!(&compress(b"hello")[..7], &FRAME_HEADER);
    assert_eq!(&compress(&mixed(5 << 20, 1))[..7], &FRAME_HEADER);
    // Empty input: header, end mark, xxHash32("") = 0x02cc5d05.
    let empty = compress(b"");
    assert_eq!(&empty[..7], &FRAME_HEADER);
    assert_eq!(&empty[7..], &[0, 0, 0, 0, 0x05, 0x5d, 0xcc, 0x02]);
}

#[test]
fn round_trips_and_block_layout() {
    let cases: &[(usize, usize)] = &[
        (0, 0),
        (1, 1),
        (1000, 1),
        (BLOCK_SIZE, 1),
        (BLOCK_SIZE + 1, 2),
        (12 << 20, 3),
    ];
    for &(len, blocks) in cases {
        let data = mixed(len, len as u64);
        let frame = compress(&data);
        let words = block_words(&frame);
        assert_eq!(words.len(), blocks, "len {len}");
        let content_checksum = u32::from_le_bytes(frame[frame.len() - 4..].try_into().expect("4"));
        assert_eq!(content_checksum, twox_hash::XxHash32::oneshot(0, &data));
        assert_eq!(decompress(&frame).expect("round trip"), data, "len {len}");
    }
}

/// Feeds `frame` in `chunk`-byte pieces to `dec`, returning every block it hands out.
fn decode_blocks(dec: &mut Decoder, frame: &[u8], chunk: usize) -> Result<Vec<Bytes>, Lz4Error> {
    let mut blocks = Vec::new();
    for mut piece in frame.chunks(chunk) {
        while !piece.is_empty() {
            let (used, block) = dec.feed(piece)?;
            piece = &piece[used..];
            blocks.extend(block);
        }
    }
    dec.finish()?;
    Ok(blocks)
}

#[test]
fn pooled_decoder_matches_and_recycles_full_blocks() {
    // Two full compressible blocks, a partial one; then a frame of one raw (incompressible) block.
    let data = mixed(2 * BLOCK_SIZE + 12_345, 21);
    let frame = compress(&data);
    let pool = BlockPool::new(4);
    let mut dec = Decoder::with_pool(pool.clone());
    let blocks = decode_blocks(&mut dec, &frame, 1 << 20).expect("pooled decode");
    assert_eq!(
        blocks.iter().map(Bytes::len).collect::<Vec<_>>(),
        [BLOCK_SIZE, BLOCK_SIZE, 12_345]
    );
    assert_eq!(blocks.concat(), data);
    assert_eq!(
        pool.idle(),
        1,
        "the partial block was copied out, its buffer kept"
    );
    drop(blocks);
    assert_eq!(pool.idle(), 3, "full blocks come back when dropped");

    let noise = random(300_000, 22);
    let out = decode_blocks(
        &mut Decoder::with_pool(pool.clone()),
        &compress(&noise),
        4096,
    );
    assert_eq!(out.expect("raw block").concat(), noise);

    // A corrupt compressed block is still an error, and its buffer is not lost.
    let mut bad = frame.clone();
    bad[20] ^= 0xff;
    let err = decode_blocks(&mut Decoder::with_pool(pool.clone()), &bad, 1 << 20);
    assert!(err.is_err(), "corrupt frame decoded");
    assert!(pool.idle() >= 3, "{} idle", pool.idle());
}

#[test]
fn incompressible_block_is_stored_raw_and_compressible_is_not() {
    let noise = random(100_000, 9);
    let frame = compress(&noise);
    assert_eq!(block_words(&frame), vec![0x8000_0000 | 100_000]);
    assert_eq!(frame.len(), 7 + 4 + 100_000 + 8);
    assert_eq!(&frame[11..11 + 100_000], &noise[..]);
    assert_eq!(decompress(&frame).expect("raw block"), noise);

    let zeros = compress(&vec![0u8; 1 << 20]);
    let words = block_words(&zeros);
    assert_eq!(words.len(), 1);
    assert_eq!(words[0] & 0x8000_0000, 0);
    assert!(words[0] < 10_000, "{}", words[0]);
}

#[test]
fn flipped_content_checksum_is_reported() {
    let data = mixed(300_000, 3);
    let mut frame = compress(&data);
    let last = frame.len() - 1;
    frame[last] ^= 0x01;
    let stored = u32::from_le_bytes(frame[last - 3..].try_into().expect("4"));
    match decompress(&frame) {
        Err(Lz4Error::ContentChecksum { expected, actual }) => {
            assert_eq!(expected, stored);
            assert_eq!(actual, twox_hash::XxHash32::oneshot(0, &data));
        }
        other => panic!("want ContentChecksum, got {other:?}"),
    }
    let msg = decompress(&frame).expect_err("corrupt").to_string();
    assert!(msg.starts_with("lz4: content checksum mismatch"), "{msg}");
}

#[test]
fn flipped_data_bytes_never_decode_silently() {
    let data = mixed(200_000, 4);
    let frame = compress(&data);
    let mut rng = Prng(5);
    // Positions inside block data (after header + size word, before the end mark).
    for _ in 0..200 {
        let pos = 11 + (rng.next() as usize) % (frame.len() - 11 - 8);
        let mut bad = frame.clone();
        bad[pos] ^= 1 << (rng.next() % 8);
        match decompress(&bad) {
            Ok(out) => panic!("flip at {pos} decoded ({} bytes)", out.len()),
            Err(e) => assert!(
                matches!(
                    e,
                    Lz4Error::ContentChecksum { .. }
                        | Lz4Error::CorruptBlock { .. }
                        | Lz4Error::BlockTooBig { .. }
                        | Lz4Error::Truncated { .. }
                        | Lz4Error::BadMagic { .. }
                ),
                "flip at {pos}: {e}"
            ),
        }
    }
    // A flip in a raw block can only be caught by the content checksum.
    let mut raw = compress(&random(5000, 6));
    raw[100] ^= 0x80;
    assert!(matches!(
        decompress(&raw),
        Err(Lz4Error::ContentChecksum { .. })
    ));
}

#[test]
fn every_truncation_is_an_error() {
    let frame = compress(&mixed(3000, 7));
    for len in 0..frame.len() {
        match decompress(&frame[..len]) {
            Err(Lz4Error::Truncated { offset }) => assert_eq!(offset, len as u64),
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
    // Cut exactly at a block boundary (lz4_flex's FrameDecoder would accept this as complete).
    let big = compress(&mixed(BLOCK_SIZE + 500, 8));
    let second_block = 7 + 4 + (block_words(&big)[0] & 0x7fff_ffff) as usize;
    let err = decompress(&big[..second_block]).expect_err("cut at a block boundary");
    assert!(matches!(err, Lz4Error::Truncated { .. }), "{err}");
    assert!(err.to_string().starts_with("lz4: truncated frame"), "{err}");
}

#[test]
fn non_lz4_input_is_bad_magic() {
    let err = decompress(b"age-encryption.org/v1\n-> X25519 abc").expect_err("not lz4");
    assert!(
        matches!(
            err,
            Lz4Error::BadMagic {
                offset: 0,
                found: 0x2d656761
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with("lz4: bad magic number"),
        "{err}"
    );
    // Trailing garbage after a complete frame is rejected too.
    let mut frame = compress(b"data");
    let end = frame.len() as u64;
    frame.extend_from_slice(b"garbage!");
    assert!(matches!(decompress(&frame), Err(Lz4Error::BadMagic { offset, .. }) if offset == end));
    // Legacy format is recognised but not accepted.
    let legacy = [0x02, 0x21, 0x4c, 0x18, 0, 0, 0, 0];
    assert!(matches!(
        decompress(&legacy),
        Err(Lz4Error::Unsupported { .. })
    ));
}

/// Rewrites FLG/BD of one of our frames and fixes the header checksum.
fn with_descriptor(frame: &[u8], flg: u8, bd: u8) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[4] = flg;
    f[5] = bd;
    f[6] = (twox_hash::XxHash32::oneshot(0, &[flg, bd]) >> 8) as u8;
    f
}

#[test]
fn descriptor_errors() {
    let frame = compress(b"descriptor test");
    let mut bad_hc = frame.clone();
    bad_hc[6] ^= 0xff;
    assert!(matches!(
        decompress(&bad_hc),
        Err(Lz4Error::HeaderChecksum {
            offset: 4,
            expected: 0xB9,
            ..
        })
    ));
    let cases = [
        (0x66, 0x70), // reserved FLG bit
        (0x64, 0xF0), // reserved BD bit
        (0x64, 0x71), // reserved BD low bits
        (0x64, 0x30), // block size code 3
        (0x64, 0x80), // block size code 8 (lz4_flex's non-standard 8 MiB)
    ];
    for (flg, bd) in cases {
        let err = decompress(&with_descriptor(&frame, flg, bd)).expect_err("invalid");
        assert!(
            matches!(err, Lz4Error::BadDescriptor { .. }),
            "{flg:#x} {bd:#x}: {err}"
        );
    }
    let v2 = with_descriptor(&frame, 0xA4, 0x70);
    assert!(matches!(decompress(&v2), Err(Lz4Error::Unsupported { .. })));
    let dict = with_descriptor(&frame, 0x65, 0x70);
    // FLG says a 4-byte dict id follows; the parser needs those bytes before checking HC.
    let mut dict = dict[..6].to_vec();
    dict.extend_from_slice(&[1, 2, 3, 4]);
    dict.push((twox_hash::XxHash32::oneshot(0, &dict[4..10]) >> 8) as u8);
    assert!(matches!(
        decompress(&dict),
        Err(Lz4Error::Unsupported {
            what: "dictionary id",
            ..
        })
    ));
}

#[test]
fn oversized_block_is_rejected_before_buffering() {
    // 64 KiB frame (BD 0x40) whose first block claims 1 MiB.
    let mut f = with_descriptor(&compress(b""), 0x64, 0x40)[..7].to_vec();
    f.extend_from_slice(&(1u32 << 20).to_le_bytes());
    let mut dec = Decoder::new();
    let err = dec.feed(&f).expect_err("too big");
    assert!(matches!(
        err,
        Lz4Error::BlockTooBig {
            offset: 7,
            size: 1_048_576,
            max: 65_536
        }
    ));
}

#[test]
fn byte_at_a_time_feeding_and_tiny_reads_match() {
    let data = mixed(BLOCK_SIZE + 70_000, 10);
    let frame = compress(&data);
    let mut dec = Decoder::new();
    let mut out = Vec::new();
    for chunk in frame.chunks(1) {
        let (used, block) = dec.feed(chunk).expect("valid");
        assert_eq!(used, 1);
        if let Some(b) = block {
            out.extend_from_slice(&b);
        }
    }
    dec.finish().expect("complete");
    assert_eq!(dec.frames(), 1);
    assert_eq!(out, data);

    /// A source that returns at most 3 bytes per read.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(3);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let mut r = decoder(Trickle(&frame));
    let mut got = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let n = r.read(&mut buf).expect("valid");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, data);
}

#[test]
fn reader_errors_carry_the_lz4_error() {
    let mut frame = compress(&mixed(10_000, 11));
    let last = frame.len() - 2;
    frame[last] ^= 0x10;
    let mut out = Vec::new();
    let err = decoder(&frame[..])
        .read_to_end(&mut out)
        .expect_err("corrupt");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(matches!(
        Lz4Error::from_io(err),
        Lz4Error::ContentChecksum { .. }
    ));

    let frame = compress(b"short");
    let err = decoder(&frame[..frame.len() - 1])
        .read_to_end(&mut Vec::new())
        .expect_err("truncated");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(matches!(Lz4Error::from_io(err), Lz4Error::Truncated { .. }));
    let plain = std::io::Error::other("disk on fire");
    assert!(matches!(Lz4Error::from_io(plain), Lz4Error::Io(_)));
}

#[test]
fn incremental_encoder_matches_one_shot_in_any_chunking() {
    let data = mixed(9 << 20, 12);
    let whole = compress(&data);
    for chunk in [1 << 10, 999_999, BLOCK_SIZE, BLOCK_SIZE + 3, 20 << 20] {
        let mut enc = Encoder::new();
        let mut out = Vec::new();
        for piece in data.chunks(chunk) {
            out.extend_from_slice(&enc.write(piece));
            assert!(enc.buffered() < BLOCK_SIZE);
        }
        out.extend_from_slice(&enc.finish());
        assert!(out == whole, "chunk {chunk}: encodings differ");
    }
}

const BIG: usize = 64 << 20;
const CHUNK: usize = 1 << 20;

/// Chunk `i` of the 64 MiB input, generated on demand so no test holds the whole input:
/// every third chunk is random, the others are text tagged with their index.
fn big_chunk(i: usize) -> Vec<u8> {
    if i % 3 == 2 {
        random(CHUNK, i as u64)
    } else {
        mixed(CHUNK, i as u64)
    }
}

/// Checks decoded output against `big_chunk` in order, across chunk boundaries.
#[derive(Default)]
struct Expect {
    next_chunk: usize,
    chunk: Vec<u8>,
    pos: usize,
    total: usize,
}

impl Expect {
    fn check(&mut self, mut got: &[u8]) {
        while !got.is_empty() {
            if self.pos == self.chunk.len() {
                self.chunk = big_chunk(self.next_chunk);
                self.next_chunk += 1;
                self.pos = 0;
            }
            let n = got.len().min(self.chunk.len() - self.pos);
            assert!(
                got[..n] == self.chunk[self.pos..self.pos + n],
                "mismatch near {}",
                self.total
            );
            (got, self.pos, self.total) = (&got[n..], self.pos + n, self.total + n);
        }
    }
}

#[test]
fn sync_codec_buffers_stay_bounded_over_64_mib() {
    let mut enc = Encoder::new();
    let mut dec = Decoder::new();
    let mut expect = Expect::default();
    let mut check = |compressed: &[u8], dec: &mut Decoder| {
        let mut rest = compressed;
        while !rest.is_empty() {
            let (used, block) = dec.feed(rest).expect("valid");
            assert!(
                dec.buffered() <= BLOCK_SIZE + 8,
                "decoder holds {}",
                dec.buffered()
            );
            rest = &rest[used..];
            if let Some(b) = block {
                assert!(b.len() <= BLOCK_SIZE);
                expect.check(&b);
            }
        }
    };
    for i in 0..BIG / CHUNK {
        let out = enc.write(&big_chunk(i));
        assert!(
            enc.buffered() < BLOCK_SIZE,
            "encoder holds {}",
            enc.buffered()
        );
        assert!(
            out.len() <= BLOCK_SIZE + 64,
            "one write emitted {} bytes",
            out.len()
        );
        check(&out, &mut dec);
    }
    check(&enc.finish(), &mut dec);
    dec.finish().expect("complete");
    assert_eq!(expect.total, BIG);
}

#[tokio::test]
async fn streams_keep_lag_bounded_over_64_mib() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let source = futures::stream::iter(0..BIG / CHUNK).map(move |i| {
        counter.fetch_add(CHUNK, Ordering::SeqCst);
        Ok::<_, std::io::Error>(Bytes::from(big_chunk(i)))
    });
    let compressed = compress_stream(source).map(|r| {
        let b = r.expect("compress");
        assert!(
            b.len() <= BLOCK_SIZE + 64,
            "compressed item of {} bytes",
            b.len()
        );
        Ok::<_, std::io::Error>(b)
    });
    let mut plain = std::pin::pin!(decompress_stream(compressed));
    let mut expect = Expect::default();
    while let Some(item) = plain.next().await {
        let b = item.expect("decompress");
        expect.check(&b);
        // Neither stage may run ahead by more than a block each, plus one input chunk.
        let lag = pulled.load(Ordering::SeqCst) - expect.total;
        assert!(
            lag <= 2 * BLOCK_SIZE + CHUNK,
            "{lag} bytes pulled but not yet decoded"
        );
    }
    assert_eq!(expect.total, BIG);
}

#[test]
fn codec_types_and_streams_can_move_to_tasks() {
    fn check<T: Send + 'static>(_: T) {}
    check(Encoder::new());
    check(Decoder::new());
    check(decoder(std::io::empty()));
    check(compress_stream(futures::stream::empty::<
        std::io::Result<Bytes>,
    >()));
    check(decompress_stream(futures::stream::empty::<
        std::io::Result<Bytes>,
    >()));
}

#[tokio::test]
async fn decompress_stream_reports_truncation_and_input_errors() {
    let frame = Bytes::from(compress(&mixed(BLOCK_SIZE + 10, 13)));
    let cut = frame.slice(..frame.len() - 5);
    let items: Vec<_> = decompress_stream(futures::stream::iter([Ok(cut)]))
        .collect()
        .await;
    assert!(
        matches!(items.last(), Some(Err(Lz4Error::Truncated { .. }))),
        "{items:?}"
    );

    let failing = futures::stream::iter([
        Ok(frame.slice(..100)),
        Err(std::io::Error::other("network reset")),
        Ok(frame.slice(100..)),
    ]);
    let items: Vec<_> = decompress_stream(failing).collect().await;
    assert_eq!(items.len(), 1, "stream ends after the error");
    assert!(matches!(&items[0], Err(Lz4Error::Io(e)) if e.to_string() == "network reset"));

    let input = futures::stream::iter([Ok(Bytes::new()), Ok(Bytes::from_static(b""))]);
    let out: Vec<_> = compress_stream(input).collect().await;
    let bytes: Vec<u8> = out
        .into_iter()
        .flat_map(|r| r.expect("ok").to_vec())
        .collect();
    assert_eq!(bytes, compress(b""));
}
