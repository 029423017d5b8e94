//! Unit tests of the LTX encoder: round trips through [`super::Reader`], agreement with real
//! v0.5.17 files (`tests/fixtures/ltx/`) and with the unchecked test encoder, and every input
//! the writer must refuse.

use super::testkit::{encode, header};
use super::writer::{WriteError, Writer, encode_to_vec};
use super::*;

type Pages = Vec<(u32, Vec<u8>)>;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/ltx/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).expect("read fixture")
}

fn decode(bytes: &[u8]) -> (Header, Trailer, Pages) {
    let mut r = Reader::new(bytes, "obj").expect("header");
    let mut pages = Vec::new();
    while let Some((pgno, page)) = r.next_page().expect("page") {
        pages.push((pgno, page.to_vec()));
    }
    let (h, t) = r.finish().expect("tail");
    (h, t, pages)
}

fn page(pgno: u32, size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| ((i as u32 / 7) ^ pgno.wrapping_mul(31)) as u8)
        .collect()
}

fn write(h: Header, pages: &Pages) -> Result<Vec<u8>, WriteError> {
    let refs: Vec<(u32, &[u8])> = pages.iter().map(|(p, d)| (*p, d.as_slice())).collect();
    encode_to_vec(h, &refs)
}

/// The page index of a file: (pgno, offset, size) triples, read from the tail as the VFS does.
fn index_of(bytes: &[u8]) -> Vec<(u64, u64, u64)> {
    let n = bytes.len();
    let len_at = n - TRAILER_SIZE - 8;
    let len = u64::from_be_bytes(bytes[len_at..len_at + 8].try_into().expect("8 bytes")) as usize;
    let mut idx = &bytes[len_at - len..len_at];
    let mut next = || {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = idx[0];
            idx = &idx[1..];
            v |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return v;
            }
        }
    };
    let mut out = Vec::new();
    loop {
        let pgno = next();
        if pgno == 0 {
            return out;
        }
        out.push((pgno, next(), next()));
    }
}

#[test]
fn round_trips_through_the_reader() {
    let pages: Pages = [1, 2, 3, 9].iter().map(|&p| (p, page(p, 4096))).collect();
    let h = Header {
        wal_offset: 32,
        wal_size: 4 * 4120,
        wal_salt1: 7,
        wal_salt2: 9,
        ..header(5, 5, 9, 4096, 1_700_000_000_123)
    };
    let bytes = write(h, &pages).expect("write");
    let (got_h, trailer, got) = decode(&bytes);
    assert_eq!(got_h, h);
    assert_eq!(got, pages);
    assert_eq!(trailer.post_apply_checksum, 0);
    // Each index entry points at its page header and spans the whole frame.
    let index = index_of(&bytes);
    assert_eq!(index.len(), 4);
    let mut at = HEADER_SIZE as u64;
    for ((pgno, off, size), (want, _)) in index.iter().zip(&pages) {
        assert_eq!((*pgno, *off), (u64::from(*want), at));
        let o = *off as usize;
        assert_eq!(&bytes[o..o + 4], &want.to_be_bytes());
        at += size;
    }
    assert_eq!(
        &bytes[at as usize..at as usize + 6],
        &[0u8; 6],
        "end marker"
    );
}

#[test]
fn equals_the_unchecked_test_encoder() {
    let pages: Pages = [2, 4].iter().map(|&p| (p, page(p, 1024))).collect();
    let h = header(3, 4, 4, 1024, 42);
    assert_eq!(write(h, &pages).expect("write"), encode(&h, &pages, false));
}

/// Real v0.5.17 files re-encoded from their own header, pages and LZ4 blocks are byte-identical
/// (layout, page index, end marker, trailer and file checksum); with our own compressor (whose
/// blocks are shorter) they decode to the same header and pages.
#[test]
fn matches_real_v0_5_17_files() {
    for name in ["l0.ltx", "l2-compacted.ltx", "l9-snapshot.ltx"] {
        let real = fixture(name);
        let (h, _, pages) = decode(&real);
        let index = index_of(&real);
        assert_eq!(index.len(), pages.len(), "{name}");
        let mut w = Writer::new(Vec::new(), h).expect("header");
        for ((pgno, data), (_, off, size)) in pages.iter().zip(&index) {
            let block = &real[*off as usize + 10..(off + size) as usize];
            w.write_page_block(*pgno, data, block).expect("page");
        }
        let (ours, checksum) = w.finish().expect("finish");
        assert_eq!(ours, real, "{name}: byte-identical");
        let stored = u64::from_be_bytes(real[real.len() - 8..].try_into().expect("8"));
        assert_eq!(checksum, stored, "{name}");
        let (h2, _, pages2) = decode(&write(h, &pages).expect("write"));
        assert_eq!((h2, pages2), (h, pages), "{name}");
    }
}

#[test]
fn refuses_what_restore_would_refuse() {
    let h = header(2, 2, 4, 512, 0);
    let p = |n: u32| page(n, 512);
    let cases: [(Pages, &str); 4] = [
        (vec![(2, p(2)), (1, p(1))], "ascend"),
        (vec![(2, p(2)), (2, p(2))], "ascend"),
        (vec![(5, p(5))], "above the commit"),
        (vec![(2, page(2, 100))], "one page long"),
    ];
    for (pages, want) in cases {
        let err = write(h, &pages).expect_err(want).to_string();
        assert!(err.contains(want), "{err} should mention {want}");
    }
    let big = header(2, 2, 3_000_000, 512, 0);
    let lock = lock_page(512);
    let err = write(big, &vec![(lock, p(lock))]).expect_err("lock");
    assert!(err.to_string().contains("lock page"), "{err}");
    assert!(matches!(write(h, &vec![]), Err(WriteError::Empty)));
    let headers = [
        (Header { flags: 0, ..h }, "flags"),
        (Header { commit: 0, ..h }, "commit"),
        (Header { min_txid: 0, ..h }, "zero"),
        (
            Header {
                page_size: 1000,
                ..h
            },
            "page size",
        ),
        (Header { wal_size: 8, ..h }, "WAL offset"),
    ];
    for (bad, want) in headers {
        let err = Writer::new(Vec::new(), bad).err().expect(want).to_string();
        assert!(err.contains(want), "{err} should mention {want}");
    }
}

#[test]
fn streams_without_buffering_pages() {
    // The sink sees each frame as it is written: after N pages it holds header + N frames.
    let h = header(1, 1, 3, 512, 0);
    let mut w = Writer::new(Vec::new(), h).expect("header");
    w.write_page(1, &page(1, 512)).expect("p1");
    let after_one = w_len(&w);
    w.write_page(3, &page(3, 512)).expect("p3");
    assert!(w_len(&w) > after_one && after_one > HEADER_SIZE);
}

fn w_len(w: &Writer<Vec<u8>>) -> usize {
    w.bytes_written() as usize
}
