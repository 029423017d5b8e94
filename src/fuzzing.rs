//! Fuzzing harnesses: one entry point per parser of untrusted bytes, shared by the cargo-fuzz
//! targets in `fuzz/` and by the deterministic `tests/fuzz_harness.rs` run in CI.
//!
//! What must stay true:
//! - Every function here accepts any byte slice and returns normally. A panic is a bug in the
//!   parser under test (or a broken invariant asserted here), never an expected outcome.
//! - The harnesses check cheap invariants of the parsers (round trips, chunked == one-shot
//!   decoding, scan offsets on frame boundaries); they do no I/O and read no process
//!   environment, so a crash input reproduces anywhere.
//! - Not a stable API: hidden from the docs, for the fuzz targets and tests only.

use std::io::Cursor;

use crate::config;
use crate::gofmt;
use crate::lz4;
use crate::storage::layout;
use crate::wal::{self, FrameHeader, FrameScanner, ScanSummary, WalHeader};

/// WAL parser: header validation, frame headers and the frame scanner.
///
/// The first byte picks a mode so the fuzzer reaches the scanner without having to forge
/// checksums: `0..=127` parses `data[1..]` as a raw WAL file; `128..=255` builds a valid
/// header from a few input bytes and repairs the salts and checksums of the first frames of
/// the rest, so the commit bookkeeping sees valid chains of varying length.
pub fn wal(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode < 128 {
        wal_raw(rest);
    } else {
        wal_synth(mode, rest);
    }
}

fn wal_raw(data: &[u8]) {
    if let Ok(h) = WalHeader::decode(data) {
        assert_eq!(&h.encode()[..], &data[..wal::WAL_HEADER_SIZE]);
    }
    for offset in (0..data.len()).step_by(wal::FRAME_HEADER_SIZE).take(64) {
        if let Ok(fh) = FrameHeader::parse(&data[offset..], offset as u64) {
            assert_eq!(
                &fh.encode()[..],
                &data[offset..offset + wal::FRAME_HEADER_SIZE]
            );
        }
    }
    let Ok(header) = WalHeader::parse(data) else {
        return;
    };
    let _ = wal::read_header(&mut Cursor::new(data));
    scan_both_ways(&header, &data[wal::WAL_HEADER_SIZE..]);
    let mut cursor = Cursor::new(data);
    let _ = wal::read_seed_checksum(&mut cursor, &header, data.len() as u64);
}

fn wal_synth(mode: u8, data: &[u8]) {
    let page_size = wal::MIN_PAGE_SIZE << (mode % 8);
    let word = |i: usize| {
        let b = |j: usize| data.get(i + j).copied().unwrap_or(0);
        u32::from_be_bytes([b(0), b(1), b(2), b(3)])
    };
    let header = WalHeader::new(mode & 8 != 0, page_size, word(0), (word(4), word(8)));
    let body = data.get(12..).unwrap_or_default();
    let repaired = (usize::from(mode) >> 4) & 7;
    let frames = repair_frames(&header, body, repaired);
    let mut file = header.encode().to_vec();
    file.extend_from_slice(&frames);
    wal_raw(&file);
    let summary = scan_both_ways(&header, &frames);
    let whole = frames.len() / header.frame_size() as usize;
    assert!(
        summary.frames >= repaired.min(whole) as u64,
        "repaired frames must validate: {summary:?}"
    );
}

/// Rewrites the salts and checksums of the first `count` whole frames of `body` so that they
/// continue `header`'s chain.
fn repair_frames(header: &WalHeader, body: &[u8], count: usize) -> Vec<u8> {
    let mut out = body.to_vec();
    let fs = header.frame_size() as usize;
    let mut sum = header.checksum();
    for frame in out.chunks_exact_mut(fs).take(count) {
        frame[8..12].copy_from_slice(&header.salt1.to_be_bytes());
        frame[12..16].copy_from_slice(&header.salt2.to_be_bytes());
        let be = header.big_endian_checksum();
        sum = wal::checksum(be, sum, &frame[..8]);
        sum = wal::checksum(be, sum, &frame[wal::FRAME_HEADER_SIZE..]);
        frame[16..20].copy_from_slice(&sum.0.to_be_bytes());
        frame[20..24].copy_from_slice(&sum.1.to_be_bytes());
    }
    out
}

/// Scans `frames` (the bytes after the header) from a slice and from a reader; both must agree
/// and respect the scanner's invariants.
fn scan_both_ways(header: &WalHeader, frames: &[u8]) -> ScanSummary {
    let start = wal::WAL_HEADER_SIZE as u64;
    let from_slice = FrameScanner::new(header, header.checksum(), start).scan_slice(frames);
    let mut seen = 0u64;
    let from_reader = FrameScanner::new(header, header.checksum(), start)
        .scan(&mut Cursor::new(frames), |_, _| {
            seen += 1;
            Ok(())
        })
        .expect("scanning an in-memory reader cannot fail");
    assert_eq!(from_slice, from_reader, "slice and reader scans differ");
    assert_eq!(seen, from_slice.frames);
    let fs = header.frame_size();
    let s = from_slice;
    assert!(s.commit_end <= s.valid_end && s.committed_frames <= s.frames);
    assert_eq!(s.valid_end - s.start, s.frames * fs);
    assert_eq!(s.commit_end - s.start, s.committed_frames * fs);
    assert!(s.valid_end - s.start <= frames.len() as u64);
    assert_eq!(wal::align(s.valid_end, header.page_size), s.valid_end);
    s
}

/// LZ4 frame reader: one-shot, chunked push decoding and the `Read` adapter must agree; and
/// the encoder's output for the same bytes must decode back to them.
pub fn lz4(data: &[u8]) {
    let whole = lz4::decompress(data);
    let chunk = data.first().map_or(1, |&b| usize::from(b % 61) + 1);
    let chunked = decompress_chunked(data, chunk);
    match (&whole, &chunked) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "chunked decoding differs"),
        (Err(_), Err(_)) => {}
        _ => panic!("one-shot {whole:?} vs chunked ({chunk}) {chunked:?}"),
    }
    let mut via_read = Vec::new();
    let read = std::io::Read::read_to_end(&mut lz4::decoder(data), &mut via_read);
    assert_eq!(
        read.is_ok(),
        whole.is_ok(),
        "Read adapter: {read:?} vs {whole:?}"
    );
    if let Ok(plain) = &whole {
        assert_eq!(&via_read, plain);
    }
    let packed = lz4::compress(data);
    assert!(packed.starts_with(&lz4::FRAME_HEADER));
    let back = lz4::decompress(&packed).expect("our own frame must decode");
    assert_eq!(back, data, "compress/decompress round trip");
}

fn decompress_chunked(data: &[u8], chunk: usize) -> Result<Vec<u8>, lz4::Lz4Error> {
    lz4::decompress_pieces(data.chunks(chunk))
}

/// Object key parser: generation ids, snapshot and segment names, and key joining. Every name
/// that parses must format back to itself; every key built from any root must parse back.
pub fn key(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for name in text.split('/').chain([text.as_ref()]) {
        check_name(name);
    }
    let (root, generation) = text.split_once('\n').unwrap_or((text.as_ref(), ""));
    let index = data
        .iter()
        .fold(0u32, |a, &b| a.rotate_left(5) ^ u32::from(b));
    let offset = u64::from(index.rotate_left(13));
    let seg = layout::segment_key(root, generation, index, offset);
    let snap = layout::snapshot_key(root, generation, index);
    assert!(
        !seg.contains("//") && !snap.contains("//"),
        "{seg} / {snap}"
    );
    let seg_name = seg.rsplit('/').next().unwrap_or_default();
    assert_eq!(layout::parse_segment_name(seg_name), Some((index, offset)));
    let snap_name = snap.rsplit('/').next().unwrap_or_default();
    assert_eq!(layout::parse_snapshot_name(snap_name), Some(index));
    let _ = layout::format_position(generation, index, offset);
}

fn check_name(name: &str) {
    if let Some(generation) = layout::parse_generation(name) {
        assert!(layout::is_valid_generation(generation) && generation == name);
    }
    if let Some(index) = layout::parse_snapshot_name(name) {
        assert_eq!(layout::snapshot_file_name(index), name);
    }
    if let Some((index, offset)) = layout::parse_segment_name(name) {
        assert_eq!(layout::segment_file_name(index, offset), name);
    }
}

/// Config loader: YAML text (with `$VAR` expansion from a fixed fake environment) to a
/// validated config, plus the replica URL and Go duration parsers it uses.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env = |name: &str| match name {
        "HOME" => Some("/home/fuzz".to_string()),
        "EMPTY" => Some(String::new()),
        n if n.starts_with("FUZZ") => Some(format!("value-of-{n}")),
        _ => None,
    };
    for expand in [false, true] {
        let _ = config::parse_with_env(text, expand, None, &env);
    }
    for line in text.lines().take(16) {
        let line = line.trim();
        if config::is_url(line) {
            let _ = config::parse_replica_url(line);
            let _ = config::redact_password(line);
        }
        if let Ok(nanos) = gofmt::parse_go_duration_nanos(line) {
            let printed = gofmt::format_go_duration(i128::from(nanos));
            assert_eq!(
                gofmt::parse_go_duration_nanos(&printed),
                Ok(nanos),
                "duration {line:?} printed as {printed:?}"
            );
        }
    }
}
