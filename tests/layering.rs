//! The module graph of `src/` stays layered and acyclic (issue 18): every top-level module uses
//! only modules of lower layers ([`LAYERS`]), and inside a directory module no two files use
//! each other in a circle (its `mod.rs`, the parent every child may use, is left out).
//!
//! What must stay true:
//! - the edges are read from the source text: `crate::…` and `super::…` paths (with `use`
//!   groups expanded), comments and string literals excluded, test code excluded (a
//!   `#[cfg(test)]` inline module, a `#[cfg(test)]` `use`, and files declared `#[cfg(test)] mod
//!   x;`), `walstream::…` paths in `main.rs`;
//! - every failure names the file, the edge and both layers; a module missing from [`LAYERS`]
//!   fails too, so a new module gets a place before it gets dependencies;
//! - the checker itself is proved able to fail (`checker_*` tests feed it synthetic edges).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules from the bottom. A module may use modules of lower rows only. Rows split
/// the issue's coarser layers where one member needs another: `gofmt`, `rt` and `crc64` are
/// leaves under `config`; `ltx` uses `lz4`; `restore` sits under `replica` (validation runs a
/// restore) and `admin` (live restore); `metrics` sits under `server` (the `/metrics` route).
const LAYERS: &[&[&str]] = &[
    &["gofmt", "rt", "crc64"],
    &["config", "wal", "lz4"],
    &["ltx"],
    &["storage"],
    &["db", "discover"],
    &["restore"],
    &["replica", "admin"],
    &["replicate"],
    &["state"],
    &["metrics"],
    &["server"],
    &["cli", "fuzzing"],
    &["main"],
];

/// One use of module `to` by module `from`, found in `file`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    file: String,
    from: String,
    to: String,
}

#[test]
fn module_graph_is_layered_and_acyclic() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = scan(&src);
    assert!(files.len() > 50, "found only {} source files", files.len());
    let mut problems = check_layers(&module_edges(&files), LAYERS);
    problems.extend(check_file_cycles(&files));
    assert!(
        problems.is_empty(),
        "forbidden module edges:\n{}",
        problems.join("\n")
    );
}

#[test]
fn checker_reports_an_upward_edge_with_its_file() {
    let edges = vec![edge("src/storage/client.rs", "storage", "replica")];
    let problems = check_layers(&edges, LAYERS);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("src/storage/client.rs") && problems[0].contains("storage -> replica"),
        "{}",
        problems[0]
    );
}

#[test]
fn checker_reports_same_layer_edges_circles_and_unknown_modules() {
    let layers: &[&[&str]] = &[&["a", "b"], &["c"]];
    let edges = vec![
        edge("src/a.rs", "a", "b"),
        edge("src/c.rs", "c", "a"),
        edge("src/c.rs", "c", "zzz"),
    ];
    let problems = check_layers(&edges, layers);
    assert!(
        problems.iter().any(|p| p.contains("a -> b")),
        "{problems:?}"
    );
    assert!(problems.iter().any(|p| p.contains("zzz")), "{problems:?}");
    assert!(
        !problems.iter().any(|p| p.contains("c -> a")),
        "{problems:?}"
    );
    let circle = [("x", "y", "f1"), ("y", "z", "f2"), ("z", "x", "f3")];
    let graph = circle
        .iter()
        .map(|(a, b, f)| edge(f, a, b))
        .collect::<Vec<_>>();
    let found = find_cycle(&graph).expect("a circle");
    assert_eq!(found.len(), 3, "{found:?}");
}

#[test]
fn paths_are_resolved_from_use_groups_and_super_chains() {
    let text = "use crate::{storage::{layout, Op}, rt};\n\
                use super::super::super::db::Pos;\n\
                // crate::server::nothing\n\
                let s = \"crate::metrics\";\n\
                fn f() { crate::wal::x(); }\n\
                #[cfg(test)]\nmod tests {\n use crate::cli;\n}\n";
    let file = SourceFile {
        path: "src/replica/deep/x.rs".into(),
        module: vec!["replica".into(), "deep".into(), "x".into()],
        text: text.into(),
    };
    let tops: BTreeSet<String> = file
        .references()
        .into_iter()
        .filter_map(|p| p.first().cloned())
        .collect();
    let want: BTreeSet<String> = ["storage", "rt", "db", "wal"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(tops, want);
}

fn edge(file: &str, from: &str, to: &str) -> Edge {
    Edge {
        file: file.into(),
        from: from.into(),
        to: to.into(),
    }
}

/// Upward, same-layer and unknown-module edges, one line each.
fn check_layers(edges: &[Edge], layers: &[&[&str]]) -> Vec<String> {
    let rank: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, row)| row.iter().map(move |m| (*m, i)))
        .collect();
    let mut problems = BTreeSet::new();
    for e in edges {
        match (rank.get(e.from.as_str()), rank.get(e.to.as_str())) {
            (Some(f), Some(t)) if t < f => {}
            (Some(f), Some(t)) => {
                problems.insert(format!(
                    "{}: {} -> {} (layer {f} uses layer {t}; only lower layers are allowed)",
                    e.file, e.from, e.to
                ));
            }
            _ => {
                problems.insert(format!(
                    "{}: {} -> {} (module missing from LAYERS in tests/layering.rs)",
                    e.file, e.from, e.to
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(edges) {
        problems.insert(format!("circle between modules: {}", describe(&cycle)));
    }
    problems.into_iter().collect()
}

/// Circles among the files of each directory module (mod.rs excluded).
fn check_file_cycles(files: &[SourceFile]) -> Vec<String> {
    let mut by_module: BTreeMap<String, Vec<Edge>> = BTreeMap::new();
    let children: BTreeSet<(String, String)> = files
        .iter()
        .filter(|f| f.module.len() >= 2)
        .map(|f| (f.module[0].clone(), f.module[1].clone()))
        .collect();
    for f in files.iter().filter(|f| f.module.len() >= 2) {
        let (top, me) = (&f.module[0], &f.module[1]);
        for p in f.references() {
            let sibling = match p.as_slice() {
                [t, s, ..] if t == top && s != me => s,
                _ => continue,
            };
            if children.contains(&(top.clone(), sibling.clone())) {
                by_module
                    .entry(top.clone())
                    .or_default()
                    .push(edge(&f.path, me, sibling));
            }
        }
    }
    by_module
        .iter()
        .filter_map(|(top, edges)| {
            let cycle = find_cycle(edges)?;
            Some(format!(
                "circle between files of {top}/: {}",
                describe(&cycle)
            ))
        })
        .collect()
}

fn describe(cycle: &[Edge]) -> String {
    cycle
        .iter()
        .map(|e| format!("{} -> {} ({})", e.from, e.to, e.file))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One circle of the graph, as its edges in order, if there is any.
fn find_cycle(edges: &[Edge]) -> Option<Vec<Edge>> {
    let mut out: BTreeMap<&str, Vec<&Edge>> = BTreeMap::new();
    for e in edges.iter().filter(|e| e.from != e.to) {
        out.entry(e.from.as_str()).or_default().push(e);
    }
    let mut done = BTreeSet::new();
    for start in out.keys() {
        let mut path = Vec::new();
        if let Some(c) = visit(start, &out, &mut path, &mut done) {
            return Some(c);
        }
    }
    None
}

fn visit<'a>(
    node: &'a str,
    out: &BTreeMap<&'a str, Vec<&'a Edge>>,
    path: &mut Vec<&'a Edge>,
    done: &mut BTreeSet<&'a str>,
) -> Option<Vec<Edge>> {
    if let Some(i) = path.iter().position(|e| e.from == node) {
        return Some(path[i..].iter().map(|e| (*e).clone()).collect());
    }
    if done.contains(node) {
        return None;
    }
    for e in out.get(node).into_iter().flatten() {
        path.push(e);
        if let Some(c) = visit(&e.to, out, path, done) {
            return Some(c);
        }
        path.pop();
    }
    done.insert(node);
    None
}

/// A non-test source file, its module path (`src/a/b.rs` → `[a, b]`) and its text.
struct SourceFile {
    path: String,
    module: Vec<String>,
    text: String,
}

/// Every non-test `.rs` file under `src`.
fn scan(src: &Path) -> Vec<SourceFile> {
    let mut paths = Vec::new();
    walk(src, &mut paths);
    let test_only = test_only_files(&paths);
    let root = src.parent().unwrap_or(src);
    paths
        .into_iter()
        .filter(|p| !test_only.contains(p))
        .map(|p| {
            let rel = p.strip_prefix(src).unwrap_or(&p);
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            SourceFile {
                path: p.strip_prefix(root).unwrap_or(&p).display().to_string(),
                module: module_path(rel),
                text,
            }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read dir {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// `a/b.rs` → `[a, b]`, `a/mod.rs` → `[a]`, `lib.rs` → `[]`, `main.rs` → `[main]`.
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

/// Files declared as `#[cfg(test)] [#[path = "…"]] mod x;` by their parent.
fn test_only_files(paths: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for p in paths {
        let Ok(text) = std::fs::read_to_string(p) else {
            continue;
        };
        let dir = child_dir(p);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, l) in lines.iter().enumerate() {
            if *l != "#[cfg(test)]" {
                continue;
            }
            let mut j = i + 1;
            let mut explicit = None;
            while let Some(attr) = lines.get(j).filter(|l| l.starts_with("#[")) {
                if let Some(v) = attr.strip_prefix("#[path = \"") {
                    explicit = v.strip_suffix("\"]").map(|v| p.with_file_name(v));
                }
                j += 1;
            }
            let Some(name) = lines.get(j).and_then(|l| declared_child(l)) else {
                continue;
            };
            out.insert(explicit.unwrap_or_else(|| dir.join(format!("{name}.rs"))));
            out.insert(dir.join(name).join("mod.rs"));
        }
    }
    out
}

/// The directory holding the children of the module in file `p`.
fn child_dir(p: &Path) -> PathBuf {
    let parent = p.parent().unwrap_or(Path::new("")).to_path_buf();
    match p.file_name().and_then(|n| n.to_str()) {
        Some("mod.rs" | "lib.rs" | "main.rs") => parent,
        Some(name) => parent.join(name.trim_end_matches(".rs")),
        None => parent,
    }
}

/// `mod x;` / `pub(crate) mod x;` → `x`.
fn declared_child(line: &str) -> Option<&str> {
    let rest = line.strip_suffix(';')?;
    let rest = rest.rsplit_once("mod ")?.1;
    rest.chars()
        .all(|c| c.is_alphanumeric() || c == '_')
        .then_some(rest)
}

/// Top-level module edges of every file.
fn module_edges(files: &[SourceFile]) -> Vec<Edge> {
    let mut out = BTreeSet::new();
    for f in files {
        let Some(from) = f.module.first() else {
            continue;
        };
        for p in f.references() {
            if let Some(to) = p.first().filter(|to| *to != from) {
                out.insert(edge(&f.path, from, to));
            }
        }
    }
    out.into_iter().collect()
}

impl SourceFile {
    /// Absolute module paths (without the crate name) this file refers to.
    fn references(&self) -> Vec<Vec<String>> {
        let code = strip_comments_and_strings(&without_tests(&self.text));
        let mut out = Vec::new();
        let bytes = code.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let boundary = i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != b'$';
            if boundary && let Some((base, len)) = self.path_root(&code[i..]) {
                let mut paths = Vec::new();
                parse_tree(&code[i + len..], &mut Vec::new(), &mut paths);
                for p in paths {
                    out.push(base.iter().cloned().chain(p).collect());
                }
                i += len;
            } else {
                i += 1;
            }
        }
        out
    }

    /// The module a path starting at `s` is relative to, and the length of its prefix.
    fn path_root(&self, s: &str) -> Option<(Vec<String>, usize)> {
        let krate = if self.module.first().is_some_and(|m| m == "main") {
            "walstream::"
        } else {
            "crate::"
        };
        if s.starts_with(krate) {
            return Some((Vec::new(), krate.len()));
        }
        let mut len = 0;
        while s[len..].starts_with("super::") {
            len += "super::".len();
        }
        let ups = len / "super::".len();
        (ups > 0 && ups <= self.module.len())
            .then(|| (self.module[..self.module.len() - ups].to_vec(), len))
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Expands `a::b::{c, d::{e, f}}` at the start of `s` into paths, appended to `out`.
fn parse_tree(s: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let bytes = s.as_bytes();
    let mut i = 0;
    let depth = prefix.len();
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'{' {
            i += 1;
            loop {
                i += parse_tree(&s[i..], prefix, out);
                while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == b'}' {
                    prefix.truncate(depth);
                    return i + 1;
                }
            }
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        if start == i {
            break;
        }
        let seg = &s[start..i];
        if seg != "self" {
            prefix.push(seg.to_string());
        }
        if s[i..].starts_with("::") {
            i += 2;
        } else {
            break;
        }
    }
    out.push(prefix.clone());
    prefix.truncate(depth);
    i
}

/// The text without `#[cfg(test)]` items: an inline module ends the non-test part of a file
/// (test modules come last), a `use` is dropped.
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        match lines.peek().map(|l| l.trim()) {
            Some(next) if next.contains("mod ") && next.ends_with('{') => break,
            Some(next) if next.starts_with("use ") => {
                for l in lines.by_ref() {
                    if l.trim_end().ends_with(';') {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Replaces comments and the contents of string and char literals with spaces.
fn strip_comments_and_strings(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        let skip = if rest.starts_with("//") {
            rest.find('\n').unwrap_or(rest.len())
        } else if let Some(body) = rest.strip_prefix("/*") {
            body.find("*/").map_or(rest.len(), |e| e + 4)
        } else if rest.starts_with('"') {
            string_len(rest)
        } else if (rest.starts_with("r\"") || rest.starts_with("r#"))
            && (i == 0 || !is_ident(b[i - 1]))
        {
            raw_string_len(rest)
        } else if rest.starts_with('\'') {
            char_len(rest)
        } else {
            0
        };
        if skip == 0 {
            let c = rest.chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        } else {
            out.push(' ');
            i += skip;
        }
    }
    out
}

/// Length of the string literal at the start of `s` (which starts with `"`).
fn string_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() && b[i] != b'"' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    (i + 1).min(b.len())
}

/// Length of the raw string literal at the start of `s` (`r"…"`, `r#"…"#`), 0 if none.
fn raw_string_len(s: &str) -> usize {
    let hashes = s[1..].bytes().take_while(|b| *b == b'#').count();
    if s.as_bytes().get(1 + hashes) != Some(&b'"') {
        return 0;
    }
    let close = format!("\"{}", "#".repeat(hashes));
    let body = 2 + hashes;
    s[body..]
        .find(&close)
        .map_or(s.len(), |e| body + e + close.len())
}

/// Length of the char literal at the start of `s` (`'x'`, `'\n'`), 0 for a lifetime.
fn char_len(s: &str) -> usize {
    match s.char_indices().nth(1) {
        Some((_, '\\')) => s.get(3..).and_then(|t| t.find('\'')).map_or(0, |e| e + 4),
        Some((_, c)) => {
            let end = 1 + c.len_utf8();
            if s[end..].starts_with('\'') {
                end + 1
            } else {
                0
            }
        }
        None => 0,
    }
}
