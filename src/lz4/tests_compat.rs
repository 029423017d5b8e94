//! Interoperability tests: frames written by other encoders (lz4_flex's `FrameEncoder` in every
//! spec §1.3 variant, and committed fixtures from the reference liblz4 via python-lz4, see
//! `tests/fixtures/lz4/make_fixtures.py`), and our frames read by lz4_flex's `FrameDecoder`.

use std::io::{Read, Write};

use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

use super::tests::{Prng, mixed};
use super::*;

fn flex_encode(info: FrameInfo, data: &[u8]) -> Vec<u8> {
    let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
    // Feed in uneven pieces so block boundaries do not line up with writes.
    for piece in data.chunks(777_777) {
        enc.write_all(piece).expect("write to Vec");
    }
    enc.finish().expect("finish to Vec")
}

#[test]
fn lz4_flex_agrees_on_our_framing() {
    let data = mixed(5 << 20, 21);
    let info = FrameInfo::new()
        .block_size(BlockSize::Max4MB)
        .block_mode(BlockMode::Independent)
        .content_checksum(true);
    let theirs = flex_encode(info, &data);
    let ours = compress(&data);
    assert_eq!(
        &theirs[..7],
        &ours[..7],
        "same header for the same settings"
    );
    assert_eq!(&theirs[..7], &FRAME_HEADER);
    assert_eq!(decompress(&theirs).expect("theirs"), data);
    let mut back = Vec::new();
    FrameDecoder::new(&ours[..])
        .read_to_end(&mut back)
        .expect("lz4_flex reads ours");
    assert_eq!(back, data);
}

#[test]
fn reads_every_variant_lz4_flex_can_write() {
    let mut data = mixed(3 << 20, 22);
    // Repeat an early stretch later so linked blocks carry back-references across blocks.
    let early = data[10_000..200_000].to_vec();
    data.extend_from_slice(&early);
    let variants = [
        (
            "linked 64 KiB, no content checksum",
            FrameInfo::new().block_mode(BlockMode::Linked),
        ),
        (
            "64 KiB independent",
            FrameInfo::new().block_size(BlockSize::Max64KB),
        ),
        (
            "256 KiB linked + checksum",
            FrameInfo::new()
                .block_size(BlockSize::Max256KB)
                .block_mode(BlockMode::Linked)
                .content_checksum(true),
        ),
        (
            "1 MiB blocks",
            FrameInfo::new()
                .block_size(BlockSize::Max1MB)
                .content_checksum(true),
        ),
        (
            "content size",
            FrameInfo::new()
                .block_size(BlockSize::Max4MB)
                .content_size(Some(data.len() as u64))
                .content_checksum(true),
        ),
        (
            "no content checksum",
            FrameInfo::new().block_size(BlockSize::Max4MB),
        ),
        (
            "block checksums",
            FrameInfo::new()
                .block_size(BlockSize::Max1MB)
                .block_checksums(true)
                .content_checksum(true),
        ),
        (
            "linked + block checksums",
            FrameInfo::new()
                .block_mode(BlockMode::Linked)
                .block_checksums(true),
        ),
    ];
    for (name, info) in variants {
        let info = match info.block_size {
            BlockSize::Auto => info.block_size(BlockSize::Max64KB),
            _ => info,
        };
        let frame = flex_encode(info, &data);
        let got = decompress(&frame).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == data, "{name}: content differs");
        let mut via_reader = Vec::new();
        decoder(&frame[..])
            .read_to_end(&mut via_reader)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(via_reader == data, "{name}: reader content differs");
    }
}

#[test]
fn reads_linked_frames_with_small_flushed_blocks() {
    // Flushing after every small write yields short linked blocks that reference several
    // earlier short blocks: the 64 KiB window must be assembled from many blocks.
    let mut data = Vec::new();
    for i in 0..4000 {
        data.extend_from_slice(
            format!("line {} of a repeating log {}\n", i % 50, i % 7).as_bytes(),
        );
    }
    let info = FrameInfo::new()
        .block_mode(BlockMode::Linked)
        .block_size(BlockSize::Max64KB)
        .content_checksum(true);
    let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
    for piece in data.chunks(3000) {
        enc.write_all(piece).expect("write to Vec");
        enc.flush().expect("flush to Vec");
    }
    let frame = enc.finish().expect("finish to Vec");
    assert!(
        frame.len() < data.len() / 4,
        "blocks really reference each other"
    );
    assert_eq!(decompress(&frame).expect("small linked blocks"), data);
}

#[test]
fn block_checksum_and_content_size_mismatches_are_caught() {
    let data = mixed(300_000, 23);
    let info = FrameInfo::new()
        .block_size(BlockSize::Max64KB)
        .block_checksums(true);
    let mut frame = flex_encode(info, &data);
    frame[200] ^= 0x04; // inside the first block's data
    assert!(
        matches!(
            decompress(&frame),
            Err(Lz4Error::BlockChecksum { offset: 7, .. })
        ),
        "{:?}",
        decompress(&frame)
    );

    let info = FrameInfo::new().content_size(Some(data.len() as u64));
    let mut frame = flex_encode(info.block_size(BlockSize::Max64KB), &data);
    // Content size is bytes 6..14; change it and recompute the header checksum (byte 14).
    frame[6..14].copy_from_slice(&(data.len() as u64 + 1).to_le_bytes());
    frame[14] = (twox_hash::XxHash32::oneshot(0, &frame[4..14]) >> 8) as u8;
    match decompress(&frame) {
        Err(Lz4Error::ContentSize { expected, actual }) => {
            assert_eq!(
                (expected, actual),
                (data.len() as u64 + 1, data.len() as u64)
            );
        }
        other => panic!("want ContentSize, got {other:?}"),
    }
}

/// Mirror of `content(with_noise)` in `tests/fixtures/lz4/make_fixtures.py`.
fn fixture_content(with_noise: bool) -> Vec<u8> {
    let mut text = Vec::new();
    for i in 0..1200 {
        let line = format!(
            "row {i:05}: the quick brown fox jumps over the lazy dog {}\n",
            i % 97
        );
        text.extend_from_slice(line.as_bytes());
    }
    let mut out = Vec::new();
    if with_noise {
        out.extend_from_slice(&text[..65536]);
        let mut x: u64 = 12345;
        for _ in 0..65536 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.push((x >> 56) as u8);
        }
    } else {
        out.extend_from_slice(&text);
    }
    out.extend_from_slice(&text);
    out
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/lz4/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

#[test]
fn reads_reference_liblz4_fixtures() {
    let cases = [
        ("linked_64k_no_content_checksum.lz4", true),
        ("hc_1m_blocks.lz4", false),
        ("linked_hc_content_size.lz4", false),
        ("block_checksums.lz4", false),
        ("skippable_and_concatenated.lz4", false),
    ];
    for (name, with_noise) in cases {
        let frame = fixture(name);
        let want = fixture_content(with_noise);
        let got = decompress(&frame).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            got == want,
            "{name}: content differs ({} vs {} bytes)",
            got.len(),
            want.len()
        );
    }
    // The reference library stored the incompressible block raw (high bit of the size word).
    let linked = fixture("linked_64k_no_content_checksum.lz4");
    assert_eq!(linked[4] & 0x20, 0, "blocks are linked");
    let first = u32::from_le_bytes(linked[7..11].try_into().expect("4")) as usize;
    let second = u32::from_le_bytes(linked[11 + first..15 + first].try_into().expect("4"));
    assert_eq!(second, 0x8000_0000 | 65536);
}

#[test]
fn corrupt_reference_fixtures_are_rejected() {
    let mut frame = fixture("block_checksums.lz4");
    frame[20] ^= 0x01;
    assert!(matches!(
        decompress(&frame),
        Err(Lz4Error::BlockChecksum { .. })
    ));

    let mut frame = fixture("hc_1m_blocks.lz4");
    let last = frame.len() - 1;
    frame[last] ^= 0x01;
    assert!(matches!(
        decompress(&frame),
        Err(Lz4Error::ContentChecksum { .. })
    ));

    // Random flips in linked blocks: always an error, never silently different data.
    let frame = fixture("linked_hc_content_size.lz4");
    let want = fixture_content(false);
    let mut rng = Prng(24);
    for _ in 0..100 {
        let pos = 20 + (rng.next() as usize) % (frame.len() - 20);
        let mut bad = frame.clone();
        bad[pos] ^= 0x20;
        match decompress(&bad) {
            Ok(out) => panic!("flip at {pos} decoded (same content: {})", out == want),
            Err(e) => assert!(!matches!(e, Lz4Error::Io(_)), "{e}"),
        }
    }
}
