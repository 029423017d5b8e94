//! Unit tests of the LTX decoder: real files written by Litestream v0.5.17
//! (`tests/fixtures/ltx/`), hand-built files from [`super::testkit`], and every damage the
//! decoder must refuse.

use super::testkit::{encode, header};
use super::*;

type Pages = Vec<(u32, Vec<u8>)>;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/ltx/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).expect("read fixture")
}

/// Decodes every page of `bytes`; returns the header and the pages.
fn decode(bytes: &[u8]) -> Result<(Header, Pages), LtxError> {
    let mut r = Reader::new(bytes, "obj")?;
    let mut pages = Vec::new();
    while let Some((pgno, page)) = r.next_page()? {
        pages.push((pgno, page.to_vec()));
    }
    let (h, _) = r.finish()?;
    Ok((h, pages))
}

fn page(pgno: u32, size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u32 ^ pgno.wrapping_mul(31)) as u8)
        .collect()
}

#[test]
fn reads_real_v0_5_17_files_and_reencodes_them() {
    for name in ["l0.ltx", "l2-compacted.ltx", "l9-snapshot.ltx"] {
        let bytes = fixture(name);
        let (h, pages) = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(h.page_size, 4096, "{name}");
        assert!(h.no_checksum(), "{name}: v0.5.17 always sets flag 0x2");
        assert!(!pages.is_empty(), "{name}");
        // The LZ4 bytes differ between compressors; everything decoded must survive a round trip.
        let again = decode(&encode(&h, &pages, false)).expect("re-encoded decodes");
        assert_eq!(again, (h, pages), "{name}");
    }
    let (h, pages) = decode(&fixture("l9-snapshot.ltx")).expect("snapshot");
    assert_eq!(h.min_txid, 1);
    let pgnos: Vec<u32> = pages.iter().map(|p| p.0).collect();
    assert_eq!(
        pgnos,
        (1..=h.commit).collect::<Vec<_>>(),
        "a snapshot holds every page"
    );
    assert_eq!(&pages[0].1[..16], b"SQLite format 3\0");
}

#[test]
fn worked_example_fields() {
    let (h, pages) = decode(&fixture("l0.ltx")).expect("l0");
    assert_eq!((h.min_txid, h.max_txid), (0x3e, 0x3e));
    assert_eq!(h.wal_offset, 32);
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].0, 3);
}

#[test]
fn both_page_encodings_round_trip() {
    let pages: Vec<(u32, Vec<u8>)> = [1, 2, 5].iter().map(|&p| (p, page(p, 1024))).collect();
    let h = header(1, 3, 5, 1024, 1_700_000_000_000);
    for legacy in [false, true] {
        let (got_h, got) = decode(&encode(&h, &pages, legacy)).expect("decodes");
        assert_eq!(got_h, h);
        assert_eq!(got, pages, "legacy={legacy}");
    }
}

fn kind_of(bytes: &[u8]) -> String {
    let err = decode(bytes).expect_err("must fail");
    assert_eq!(err.name, "obj");
    err.kind.to_string()
}

#[test]
fn damage_is_refused_with_a_reason() {
    let pages: Vec<(u32, Vec<u8>)> = [1, 2].iter().map(|&p| (p, page(p, 512))).collect();
    let good = encode(&header(1, 1, 2, 512, 0), &pages, false);
    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(kind_of(&bad).contains("invalid magic"));
    let mut bad = good.clone();
    bad[120] ^= 0xff; // inside the first compressed page
    let msg = kind_of(&bad);
    assert!(
        msg.contains("checksum") || msg.contains("LZ4") || msg.contains("decompresses"),
        "{msg}"
    );
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(kind_of(&bad).contains("file checksum mismatch"));
    for cut in [50, 110, good.len() - 20, good.len() - 1] {
        assert!(kind_of(&good[..cut]).contains("truncated"), "cut at {cut}");
    }
    let mut longer = good.clone();
    longer.push(0);
    assert!(kind_of(&longer).contains("after the trailer"));
}

#[test]
fn header_rules() {
    let ok = header(2, 3, 1, 4096, 0);
    assert!(Header::parse(&ok.encode()).is_ok());
    let cases = [
        (Header { flags: 1, ..ok }, "flags"),
        (
            Header {
                page_size: 1000,
                ..ok
            },
            "page size",
        ),
        (
            Header {
                page_size: 256,
                ..ok
            },
            "page size",
        ),
        (Header { min_txid: 0, ..ok }, "zero"),
        (Header { min_txid: 4, ..ok }, "above max"),
        (
            Header {
                pre_apply_checksum: CHECKSUM_FLAG | 1,
                ..ok
            },
            "pre-apply",
        ),
        (Header { wal_size: 10, ..ok }, "WAL offset required"),
    ];
    for (h, want) in cases {
        let err = Header::parse(&h.encode()).expect_err(want).to_string();
        assert!(err.contains(want), "{err} should mention {want}");
    }
    let checksummed = Header {
        flags: 0,
        pre_apply_checksum: 5,
        ..ok
    };
    assert!(
        Header::parse(&checksummed.encode()).is_err(),
        "bit 63 required"
    );
}

#[test]
fn page_rules() {
    let h = header(2, 2, 4, 512, 0);
    let cases: [(Pages, &str); 3] = [
        (vec![(2, page(2, 512)), (1, page(1, 512))], "ascend"),
        (vec![(5, page(5, 512))], "above the commit"),
        (vec![(2, page(2, 100))], "not the page size"),
    ];
    for (pages, want) in cases {
        let msg = kind_of(&encode(&h, &pages, false));
        assert!(msg.contains(want), "{msg} should mention {want}");
    }
    let big = header(2, 2, 3_000_000, 512, 0);
    let lock = lock_page(512);
    let msg = kind_of(&encode(&big, &[(lock, page(lock, 512))], false));
    assert!(msg.contains("lock page"), "{msg}");
}

#[test]
fn names_and_txids() {
    assert_eq!(
        parse_file_name("0000000000000001-000000000000000a.ltx"),
        Some((1, 10))
    );
    for bad in [
        "0000000000000001-000000000000000A.ltx",
        "000000000000001-000000000000000a.ltx",
        "0000000000000001-000000000000000a.ltx.tmp",
        "0000000000000001_000000000000000a.ltx",
    ] {
        assert_eq!(parse_file_name(bad), None, "{bad}");
    }
    assert_eq!(file_name(1, 0x22), "0000000000000001-0000000000000022.ltx");
    assert_eq!(lock_page(4096), 262_145);
}
