//! Replica key layout: pure formatting and parsing of Litestream v0.3.13 replica paths (spec §1.1).
//!
//! ```text
//! <root>/generations/<gen>/snapshots/<index:08x>.snapshot.lz4
//! <root>/generations/<gen>/wal/<index:08x>_<offset:08x>.wal.lz4
//! ```
//!
//! What must stay true:
//! - Keys are slash-joined and cleaned exactly like Go's `path.Join`: no double slashes, no
//!   trailing slash, `.`/`..` resolved, an empty root yields a relative key, and a leading `/`
//!   on the root (explicit config path) is kept.
//! - Parsers accept exactly what Litestream's regexes accept (`^[0-9a-f]{16}$`,
//!   `^[0-9a-f]{8}\.snapshot\.lz4$`, `^[0-9a-f]{8}_[0-9a-f]{8}\.wal\.lz4$`); upper-case hex,
//!   `*.tmp` and anything else are rejected so listings skip them.
//! - Nothing here does I/O.

/// Name of the folder that holds the generations of one database (its presence marks a root).
pub const GENERATIONS: &str = "generations";
const SNAPSHOTS: &str = "snapshots";
const WAL: &str = "wal";
const SNAPSHOT_EXT: &str = ".snapshot.lz4";
const SEGMENT_EXT: &str = ".wal.lz4";
/// Length of a generation id in hex characters (8 random bytes).
pub const GENERATION_LEN: usize = 16;

/// `<root>/generations`.
pub fn generations_dir(root: &str) -> String {
    join(&[root, GENERATIONS])
}

/// `<root>/generations/<gen>`.
pub fn generation_dir(root: &str, generation: &str) -> String {
    join(&[root, GENERATIONS, generation])
}

/// `<root>/generations/<gen>/snapshots`.
pub fn snapshots_dir(root: &str, generation: &str) -> String {
    join(&[root, GENERATIONS, generation, SNAPSHOTS])
}

/// `<root>/generations/<gen>/wal`.
pub fn wal_dir(root: &str, generation: &str) -> String {
    join(&[root, GENERATIONS, generation, WAL])
}

/// `<root>/generations/<gen>/snapshots/<index:08x>.snapshot.lz4`.
pub fn snapshot_key(root: &str, generation: &str, index: u32) -> String {
    join(&[
        root,
        GENERATIONS,
        generation,
        SNAPSHOTS,
        &snapshot_file_name(index),
    ])
}

/// `<root>/generations/<gen>/wal/<index:08x>_<offset:08x>.wal.lz4`.
pub fn segment_key(root: &str, generation: &str, index: u32, offset: u64) -> String {
    join(&[
        root,
        GENERATIONS,
        generation,
        WAL,
        &segment_file_name(index, offset),
    ])
}

/// `<index:08x>.snapshot.lz4`.
pub fn snapshot_file_name(index: u32) -> String {
    format!("{index:08x}{SNAPSHOT_EXT}")
}

/// `<index:08x>_<offset:08x>.wal.lz4`. Like Litestream, an offset ≥ 2^32 is written with more
/// than 8 digits, which no reader accepts; callers keep one WAL cycle below 4 GiB.
pub fn segment_file_name(index: u32, offset: u64) -> String {
    format!("{index:08x}_{offset:08x}{SEGMENT_EXT}")
}

/// Returns `name` if it is a generation id (`^[0-9a-f]{16}$`).
pub fn parse_generation(name: &str) -> Option<&str> {
    is_valid_generation(name).then_some(name)
}

/// True if `s` is exactly 16 lowercase hex digits.
pub fn is_valid_generation(s: &str) -> bool {
    s.len() == GENERATION_LEN && is_lower_hex(s)
}

/// Parses `<index:08x>.snapshot.lz4` into its index.
pub fn parse_snapshot_name(name: &str) -> Option<u32> {
    parse_hex8(name.strip_suffix(SNAPSHOT_EXT)?)
}

/// Parses `<index:08x>_<offset:08x>.wal.lz4` into `(index, offset)`.
pub fn parse_segment_name(name: &str) -> Option<(u32, u64)> {
    let stem = name.strip_suffix(SEGMENT_EXT)?;
    let (index, offset) = stem.split_once('_')?;
    Some((parse_hex8(index)?, u64::from(parse_hex8(offset)?)))
}

/// A replica position as Litestream prints it: `<gen>/<index:08x>:<offset decimal>`.
pub fn format_position(generation: &str, index: u32, offset: u64) -> String {
    format!("{generation}/{index:08x}:{offset}")
}

/// Exactly 8 lowercase hex digits (`u32::from_str_radix` alone would accept `+` and upper case).
fn parse_hex8(s: &str) -> Option<u32> {
    if s.len() != 8 || !is_lower_hex(s) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Go `path.Join`: joins the non-empty parts with `/` and cleans the result.
pub fn join(parts: &[&str]) -> String {
    let joined = parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    if joined.is_empty() {
        return String::new();
    }
    clean(&joined)
}

/// Go `path.Clean` (shared with the config module's path rules).
fn clean(path: &str) -> String {
    crate::config::clean_unix_path(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GEN: &str = "041e29e3fd6ffa54";

    #[test]
    fn spec_example_segment_key_round_trips() {
        let key = "generations/041e29e3fd6ffa54/wal/00000000_00004080.wal.lz4";
        assert_eq!(segment_key("", GEN, 0, 16512), key);
        let name = key.rsplit('/').next().expect("key has a file name");
        assert_eq!(parse_segment_name(name), Some((0, 16512)));
    }

    #[test]
    fn keys_are_joined_and_cleaned_like_go_path_join() {
        let cases: &[(&str, &str)] = &[
            (
                "",
                "generations/041e29e3fd6ffa54/snapshots/0000000a.snapshot.lz4",
            ),
            (
                "db",
                "db/generations/041e29e3fd6ffa54/snapshots/0000000a.snapshot.lz4",
            ),
            (
                "db/",
                "db/generations/041e29e3fd6ffa54/snapshots/0000000a.snapshot.lz4",
            ),
            (
                "/x",
                "/x/generations/041e29e3fd6ffa54/snapshots/0000000a.snapshot.lz4",
            ),
            (
                "//x//y/",
                "/x/y/generations/041e29e3fd6ffa54/snapshots/0000000a.snapshot.lz4",
            ),
            (
                "/",
                "/generations/041e29e3fd6ffa54/snapshots/0000000a.snapshot.lz4",
            ),
            (
                ".",
                "generations/041e29e3fd6ffa54/snapshots/0000000a.snapshot.lz4",
            ),
            (
                "a/./b/../c",
                "a/c/generations/041e29e3fd6ffa54/snapshots/0000000a.snapshot.lz4",
            ),
            (
                "/../a",
                "/a/generations/041e29e3fd6ffa54/snapshots/0000000a.snapshot.lz4",
            ),
            (
                "../a",
                "../a/generations/041e29e3fd6ffa54/snapshots/0000000a.snapshot.lz4",
            ),
        ];
        for (root, want) in cases {
            assert_eq!(snapshot_key(root, GEN, 10), *want, "root {root:?}");
        }
    }

    #[test]
    fn directory_helpers() {
        assert_eq!(generations_dir(""), "generations");
        assert_eq!(generations_dir("/r/"), "/r/generations");
        assert_eq!(generation_dir("r", GEN), format!("r/generations/{GEN}"));
        assert_eq!(
            snapshots_dir("r", GEN),
            format!("r/generations/{GEN}/snapshots")
        );
        assert_eq!(wal_dir("", GEN), format!("generations/{GEN}/wal"));
        assert_eq!(
            segment_key("/b", GEN, 0x1f, 32),
            format!("/b/generations/{GEN}/wal/0000001f_00000020.wal.lz4")
        );
    }

    #[test]
    fn file_names() {
        assert_eq!(snapshot_file_name(0), "00000000.snapshot.lz4");
        assert_eq!(snapshot_file_name(u32::MAX), "ffffffff.snapshot.lz4");
        assert_eq!(segment_file_name(1, 8272), "00000001_00002050.wal.lz4");
        // Like Go's %08x: wider offsets are not truncated (and then not parsed back).
        let wide = segment_file_name(0, 1 << 32);
        assert_eq!(wide, "00000000_100000000.wal.lz4");
        assert_eq!(parse_segment_name(&wide), None);
    }

    #[test]
    fn parse_rejections() {
        let bad_snapshots = [
            "",
            "0000000a.snapshot.lz4.tmp",
            "0000000A.snapshot.lz4",
            "000000a.snapshot.lz4",
            "00000000a.snapshot.lz4",
            "+000000a.snapshot.lz4",
            "0000000a.snapshot",
            "0000000a.snapshot.LZ4",
            "0000000g.snapshot.lz4",
            " 000000a.snapshot.lz4",
            "00000000_00000000.wal.lz4",
        ];
        for name in bad_snapshots {
            assert_eq!(parse_snapshot_name(name), None, "{name:?}");
        }
        let bad_segments = [
            "",
            "00000000_00000000.wal.lz4.tmp",
            "00000000_0000000A.wal.lz4",
            "0000000_000000000.wal.lz4",
            "00000000-00000000.wal.lz4",
            "00000000_00000000_00000000.wal.lz4",
            "00000000_00000000.wal",
            "00000000.wal.lz4",
            "00000000_+0000000.wal.lz4",
            "00000000.snapshot.lz4",
        ];
        for name in bad_segments {
            assert_eq!(parse_segment_name(name), None, "{name:?}");
        }
        let bad_generations = [
            "",
            "041e29e3fd6ffa5",
            "041e29e3fd6ffa540",
            "041E29E3FD6FFA54",
            "041e29e3fd6ffa5g",
            "041e29e3fd6ffa54.tmp",
            "+41e29e3fd6ffa54",
        ];
        for name in bad_generations {
            assert_eq!(parse_generation(name), None, "{name:?}");
            assert!(!is_valid_generation(name), "{name:?}");
        }
    }

    #[test]
    fn parse_acceptances() {
        assert_eq!(parse_snapshot_name("0000000a.snapshot.lz4"), Some(10));
        assert_eq!(parse_snapshot_name("ffffffff.snapshot.lz4"), Some(u32::MAX));
        assert_eq!(
            parse_segment_name("7fffffff_ffffffff.wal.lz4"),
            Some((0x7fff_ffff, 0xffff_ffff))
        );
        assert_eq!(parse_generation(GEN), Some(GEN));
    }

    #[test]
    fn position_format() {
        assert_eq!(
            format_position(GEN, 0, 16512),
            "041e29e3fd6ffa54/00000000:16512"
        );
        assert_eq!(format_position(GEN, 0x1a, 0), "041e29e3fd6ffa54/0000001a:0");
    }

    /// splitmix64: a deterministic generator so failures reproduce.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn round_trips_over_random_values() {
        let mut state = 7;
        for _ in 0..2000 {
            let index = next(&mut state) as u32;
            let offset = next(&mut state) & 0xffff_ffff;
            let generation = format!("{:016x}", next(&mut state));
            assert_eq!(parse_generation(&generation), Some(generation.as_str()));
            assert_eq!(parse_snapshot_name(&snapshot_file_name(index)), Some(index));
            let seg = segment_file_name(index, offset);
            assert_eq!(parse_segment_name(&seg), Some((index, offset)));
            let key = segment_key("/root", &generation, index, offset);
            assert_eq!(key, format!("{}/{seg}", wal_dir("/root", &generation)));
        }
    }
}
