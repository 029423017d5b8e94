//! `walstream backup compare` and `walstream backup export`: what is inside backups, without a
//! running server, on the same backups folder as `walstream backup create`.
//!
//! - `compare [-table T] [-offset N] [-limit N] [-json] DB_PATH A B` (A and B: backup ids, RFC
//!   3339 times — the first replica restored to that point — or `live`) prints the schema
//!   differences, per-table row counts and the rows added, removed or changed from A to B (one
//!   page; `-json` prints the HTTP API's object);
//! - `export -table T [-o FILE] DB_PATH ID|live|TIME` writes the table as CSV (SQLite's own `-csv
//!   -header` output) to stdout or FILE.
//!
//! What must stay true: both only read (backups immutable, the live database read-only); an
//! export to FILE is written to a temporary name beside it and renamed only once complete, so
//! a failed export leaves nothing behind.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::parse_flags;
use super::source::{backup_store, config_flag_set};
use super::stdout::{print_json, write_stdout};
use crate::admin::compare::{Comparison, Page, Source};
use crate::admin::export::export_csv;
use crate::admin::sources::{PointReplica, compare_sources, resolve};

pub(super) fn compare(args: &[String]) -> anyhow::Result<()> {
    let fs = config_flag_set(|fs| {
        fs.string("table", "")
            .string("offset", "")
            .string("limit", "")
            .bool("json", false);
    });
    let p = parse_flags(&fs, args, "backup")?;
    let [db, a, b] = p.args.as_slice() else {
        bail!("usage: walstream backup compare [arguments] DB_PATH A B (backup ids or live)");
    };
    let given = |name: &str| p.is_set(name).then(|| p.str(name));
    let page = Page::new(
        given("table").map(String::from),
        given("offset"),
        given("limit"),
    )?;
    let (a, b) = (Source::parse(a)?, Source::parse(b)?);
    let store = backup_store(p.str("config"), p.bool("no-expand-env"), db)?;
    let replica = point_replica(&p, db, [&a, &b])?;
    let point = replica.as_ref().map(|r| PointReplica {
        name: &r.name,
        client: &r.client,
    });
    let c = super::block_on(compare_sources(&store, (&a, &b), page, point))??;
    if p.bool("json") {
        return print_json(&c);
    }
    write_stdout(&render(&c))
}

/// The human form of a comparison.
fn render(c: &Comparison) -> String {
    let mut out = String::new();
    if c.identical {
        out.push_str("identical\n");
    }
    for (mark, list) in [("+", &c.schema.added), ("-", &c.schema.removed)] {
        for o in list.iter() {
            out.push_str(&format!("schema {mark} {} {}\n", o.kind, o.name));
        }
    }
    for o in &c.schema.changed {
        out.push_str(&format!("schema ~ {} {}\n", o.kind, o.name));
    }
    let mut table = super::table::Table::new();
    table.row(["table", "rows_a", "rows_b", "added", "removed", "changed"]);
    let n = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    for t in &c.tables {
        let counts = |v: u64| {
            if t.compared {
                v.to_string()
            } else {
                "-".into()
            }
        };
        table.row([
            t.name.clone(),
            n(t.rows_a),
            n(t.rows_b),
            counts(t.added),
            counts(t.removed),
            counts(t.changed),
        ]);
    }
    out.push_str(&table.render());
    for r in &c.rows {
        let json = |v: &Option<Vec<serde_json::Value>>| {
            v.as_ref()
                .map(|v| serde_json::Value::from(v.clone()).to_string())
        };
        let key = serde_json::Value::from(r.key.clone());
        out.push_str(&format!("{} {} {key}", r.change, r.table));
        if let Some(a) = json(&r.a) {
            out.push_str(&format!(" a={a}"));
        }
        if let Some(b) = json(&r.b) {
            out.push_str(&format!(" b={b}"));
        }
        out.push('\n');
    }
    if let Some(next) = c.next_offset {
        out.push_str(&format!("more rows: -offset {next}\n"));
    }
    out
}

pub(super) fn export(args: &[String]) -> anyhow::Result<()> {
    let fs = config_flag_set(|fs| {
        fs.string("table", "").string("o", "");
    });
    let p = parse_flags(&fs, args, "backup")?;
    let [db, source] = p.args.as_slice() else {
        bail!("usage: walstream backup export -table TABLE [arguments] DB_PATH ID|live|TIME");
    };
    if p.str("table").is_empty() {
        bail!("walstream backup export: -table is required");
    }
    let source = Source::parse(source)?;
    let store = backup_store(p.str("config"), p.bool("no-expand-env"), db)?;
    let replica = point_replica(&p, db, [&source])?;
    let point = replica.as_ref().map(|r| PointReplica {
        name: &r.name,
        client: &r.client,
    });
    let resolved = super::block_on(resolve(&store, &source, point))??;
    let from = resolved.side();
    if p.str("o").is_empty() {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        export_csv(from, p.str("table"), &mut out)?;
        return out.flush().context("flush stdout");
    }
    let target = PathBuf::from(p.str("o"));
    let tmp = crate::admin::backups::side_file(&target, ".tmp");
    let written = (|| {
        let file =
            std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        let mut out = std::io::BufWriter::new(file);
        export_csv(from, p.str("table"), &mut out)?;
        let file = out.into_inner().context("flush CSV")?;
        file.sync_all()
            .with_context(|| format!("sync {}", tmp.display()))?;
        std::fs::rename(&tmp, &target).with_context(|| format!("rename to {}", target.display()))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The database's first replica, when one of `sources` is a point in time (it is restored from
/// it); a database without replicas is then an error.
fn point_replica<const N: usize>(
    p: &super::flags::Parsed,
    db: &str,
    sources: [&Source; N],
) -> anyhow::Result<Option<super::source::SourceReplica>> {
    if !sources.iter().any(|s| matches!(s, Source::At(_))) {
        return Ok(None);
    }
    let src = super::source::resolve(super::source::SourceArgs {
        config: p.str("config"),
        no_expand_env: p.bool("no-expand-env"),
        replica: "",
        target: db,
    })?;
    match src.replicas.into_iter().next() {
        Some(r) => Ok(Some(r)),
        None => bail!("database {db} has no replica to restore a point in time from"),
    }
}
