//! Compares two SQLite databases (two backups, a backup and the live database, or either and the
//! replica restored to a point in time — `admin::sources`): schema
//! objects added, removed or changed, per-table row counts, and rows added, removed or changed
//! by primary key, with a page of the changed rows themselves.
//!
//! Both files are attached read-only to one in-memory connection (`a` and `b`) inside one read
//! transaction, so the live database is compared as one consistent snapshot. Every difference
//! is found by SQLite itself: `NOT EXISTS` lookups on the other side's primary key (or rowid)
//! and a join on it for changed rows, so nothing is held in memory beyond one page of rows —
//! memory stays flat in the databases' size, and key equality follows the table's own
//! collations.
//!
//! What must stay true:
//! - nothing is ever written: backups are attached `immutable=1`, the live database `mode=ro`;
//! - "added" means present in `b` and not in `a`, "removed" the reverse (`b` is the newer side
//!   by convention: compare a backup with `live` to see what changed since it);
//! - rows are compared only for ordinary tables whose definition (`CREATE` text) is the same on
//!   both sides; any other table present on both sides still gets its row counts and says why
//!   its rows were not compared;
//! - a page never holds more than [`MAX_LIMIT`] rows, and shown values are cut to
//!   [`MAX_TEXT`] characters / [`MAX_BLOB`] bytes (their full length is given).

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use serde_json::{Value, json};

use super::AdminError;

/// Rows shown per page unless asked otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// Most rows one page may show.
pub const MAX_LIMIT: usize = 1000;
/// Longest text value shown, in characters.
const MAX_TEXT: usize = 1024;
/// Longest blob prefix shown, in bytes.
const MAX_BLOB: usize = 64;

/// Which page of changed rows to show.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Only this table's rows (counts and schema always cover every table).
    pub table: Option<String>,
    pub offset: u64,
    pub limit: usize,
}

impl Page {
    /// Checks a caller's page: `limit` 1..=[`MAX_LIMIT`] (default [`DEFAULT_LIMIT`]).
    pub fn new(
        table: Option<String>,
        offset: Option<&str>,
        limit: Option<&str>,
    ) -> Result<Page, AdminError> {
        let offset = match offset {
            None => 0,
            Some(o) => o.parse().map_err(|_| {
                AdminError::invalid("offset", format!("{:?} is not a whole number", cut(o)))
            })?,
        };
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    AdminError::invalid("limit", format!("{:?} must be 1 to {MAX_LIMIT}", cut(l)))
                })?,
        };
        if let Some(t) = &table {
            check_table_name(t)?;
        }
        Ok(Page {
            table,
            offset,
            limit,
        })
    }
}

/// A schema object (table, index, view or trigger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaObject {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub sql: Option<String>,
}

/// A schema object whose definition differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaChange {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub sql_a: Option<String>,
    pub sql_b: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct SchemaDiff {
    pub added: Vec<SchemaObject>,
    pub removed: Vec<SchemaObject>,
    pub changed: Vec<SchemaChange>,
}

/// Row counts and differences of one table.
#[derive(Debug, Serialize)]
pub struct TableDiff {
    pub name: String,
    /// `None` when the table does not exist on that side.
    pub rows_a: Option<u64>,
    pub rows_b: Option<u64>,
    /// Whether rows were compared by key (then `added`, `removed`, `changed` are exact).
    pub compared: bool,
    /// Why rows were not compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The key the rows were matched by (`rowid` or the primary key's columns).
    pub key: Vec<String>,
    /// The columns of `a` and `b` in a row change, in this order.
    pub columns: Vec<String>,
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
}

/// One row that differs.
#[derive(Debug, Serialize)]
pub struct RowChange {
    pub table: String,
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    pub key: Vec<Value>,
    /// The row in `a` (absent for `added`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<Vec<Value>>,
}

/// What [`compare`] found.
#[derive(Debug, Serialize)]
pub struct Comparison {
    pub schema: SchemaDiff,
    pub tables: Vec<TableDiff>,
    /// Whether any table, row or schema object differs.
    pub identical: bool,
    pub offset: u64,
    pub rows: Vec<RowChange>,
    /// The offset of the next page, when there are more changed rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
}

/// One side of a comparison: a backup file (never modified) or the live database.
#[derive(Debug, Clone, Copy)]
pub enum Side<'a> {
    Backup(&'a Path),
    Live(&'a Path),
}

impl Side<'_> {
    pub fn path(&self) -> &Path {
        match self {
            Side::Backup(p) | Side::Live(p) => p,
        }
    }

    /// The read-only URI SQLite attaches.
    fn uri(&self) -> Result<String, AdminError> {
        let path = self.path();
        let abs = std::path::absolute(path).map_err(AdminError::io("resolve", path))?;
        let text = abs.to_str().ok_or_else(|| {
            AdminError::invalid("path", format!("{} is not UTF-8", abs.display()))
        })?;
        let mut uri = String::from("file:");
        for c in text.chars() {
            match c {
                '%' => uri.push_str("%25"),
                '?' => uri.push_str("%3f"),
                '#' => uri.push_str("%23"),
                c => uri.push(c),
            }
        }
        uri.push_str(match self {
            Side::Backup(_) => "?immutable=1",
            Side::Live(_) => "?mode=ro",
        });
        Ok(uri)
    }
}

/// What a caller names as one side of a comparison or the source of an export: `live`, a
/// backup id, or an RFC 3339 time (the first replica at that point in time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Live,
    Backup(String),
    /// The replica restored to this time.
    At(DateTime<Utc>),
}

impl Source {
    /// `live`, an RFC 3339 time, or a backup id (checked before any path is built).
    pub fn parse(text: &str) -> Result<Source, AdminError> {
        if text == "live" {
            return Ok(Source::Live);
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(text) {
            return Ok(Source::At(t.with_timezone(&Utc)));
        }
        super::names::check_id(text)?;
        Ok(Source::Backup(text.to_string()))
    }
}

/// A table name a caller may give: 1..=256 bytes without control characters.
pub fn check_table_name(name: &str) -> Result<(), AdminError> {
    if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
        return Err(AdminError::invalid(
            "table",
            format!(
                "{:?} must be 1 to 256 bytes without control characters",
                cut(name)
            ),
        ));
    }
    Ok(())
}

/// `name` as an SQL identifier.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}

/// A fresh in-memory connection with each side attached read-only under its alias.
pub(super) fn attach(sides: &[(Side<'_>, &str)]) -> Result<Connection, AdminError> {
    let memory = Path::new(":memory:");
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_in_memory_with_flags(flags).map_err(AdminError::sqlite("open", memory))?;
    conn.busy_timeout(super::sqlite::BUSY_TIMEOUT)
        .map_err(AdminError::sqlite("set busy timeout", memory))?;
    for (side, alias) in sides {
        if !side.path().is_file() {
            return Err(AdminError::Io {
                op: "open",
                path: side.path().to_path_buf(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        conn.execute(&format!("ATTACH DATABASE ?1 AS {alias}"), [side.uri()?])
            .map_err(AdminError::sqlite("open", side.path()))?;
    }
    Ok(conn)
}

/// A connection with `side` attached read-only as `src`.
pub(super) fn open_side(side: Side<'_>) -> Result<Connection, AdminError> {
    attach(&[(side, "src")])
}

/// Compares `a` with `b` and returns the differences with one page of changed rows.
pub fn compare(a: Side<'_>, b: Side<'_>, page: &Page) -> Result<Comparison, AdminError> {
    let conn = attach(&[(a, "a"), (b, "b")])?;
    let err = |op| AdminError::sqlite(op, b.path());
    conn.execute_batch("BEGIN").map_err(err("begin"))?;
    let schema_a = schema(&conn, "a").map_err(AdminError::sqlite("read schema", a.path()))?;
    let schema_b = schema(&conn, "b").map_err(AdminError::sqlite("read schema", b.path()))?;
    let diff = schema_diff(&schema_a, &schema_b);
    let tables = tables(&conn, &schema_a, &schema_b).map_err(err("compare tables"))?;
    let (rows, next_offset) = rows_page(&conn, &tables, page).map_err(err("read rows"))?;
    let _ = conn.execute_batch("COMMIT");
    let identical = diff.added.is_empty()
        && diff.removed.is_empty()
        && diff.changed.is_empty()
        && tables
            .iter()
            .all(|t| t.rows_a == t.rows_b && t.added + t.removed + t.changed == 0);
    Ok(Comparison {
        schema: diff,
        tables,
        identical,
        offset: page.offset,
        rows,
        next_offset,
    })
}

/// The user's schema objects of `db` (`sqlite_*` and Litestream's `_litestream_*` excluded),
/// ordered by type and name.
pub(super) fn schema(conn: &Connection, db: &str) -> rusqlite::Result<Vec<SchemaObject>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT type, name, sql FROM {db}.sqlite_schema \
         WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
           AND name NOT LIKE '\\_litestream\\_%' ESCAPE '\\' \
         ORDER BY type, name"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok(SchemaObject {
            kind: r.get(0)?,
            name: r.get(1)?,
            sql: r.get(2)?,
        })
    })?;
    rows.collect()
}

pub(super) fn schema_diff(a: &[SchemaObject], b: &[SchemaObject]) -> SchemaDiff {
    let find = |list: &[SchemaObject], o: &SchemaObject| {
        list.iter()
            .find(|x| x.kind == o.kind && x.name == o.name)
            .cloned()
    };
    let mut diff = SchemaDiff::default();
    for o in a {
        match find(b, o) {
            None => diff.removed.push(o.clone()),
            Some(other) if other.sql != o.sql => diff.changed.push(SchemaChange {
                kind: o.kind.clone(),
                name: o.name.clone(),
                sql_a: o.sql.clone(),
                sql_b: other.sql,
            }),
            Some(_) => {}
        }
    }
    diff.added = b.iter().filter(|o| find(a, o).is_none()).cloned().collect();
    diff
}

/// How one table's rows are matched between the two sides.
struct Shape {
    key: Vec<String>,
    columns: Vec<String>,
}

/// The key (`rowid`, or the primary key of a `WITHOUT ROWID` table) and columns of `table` in
/// `db`; `None` for tables whose rows cannot be compared (virtual or shadow tables).
fn shape(conn: &Connection, db: &str, table: &str) -> rusqlite::Result<Option<Shape>> {
    let listed: Option<(String, bool)> = conn
        .query_row(
            "SELECT type, wr FROM pragma_table_list WHERE schema = ?1 AND name = ?2",
            [db, table],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok();
    let Some((kind, without_rowid)) = listed else {
        return Ok(None);
    };
    if kind != "table" {
        return Ok(None);
    }
    let mut stmt = conn.prepare("SELECT name, pk FROM pragma_table_info(?1, ?2) ORDER BY cid")?;
    let cols: Vec<(String, i64)> = stmt
        .query_map([table, db], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let columns = cols.iter().map(|(n, _)| n.clone()).collect();
    let key = if without_rowid {
        let mut pk: Vec<&(String, i64)> = cols.iter().filter(|(_, pk)| *pk > 0).collect();
        pk.sort_by_key(|(_, pk)| *pk);
        pk.into_iter().map(|(n, _)| n.clone()).collect()
    } else {
        vec!["rowid".to_string()]
    };
    Ok(Some(Shape { key, columns }))
}

fn count(conn: &Connection, db: &str, table: &str) -> rusqlite::Result<u64> {
    count_of(conn, &format!("SELECT count(*) FROM {db}.{}", quote(table)))
}

/// The count one `SELECT count(*) …` answers.
fn count_of(conn: &Connection, sql: &str) -> rusqlite::Result<u64> {
    let n: i64 = conn.query_row(sql, [], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// `x.k1 = y.k1 AND …` over the key columns.
fn key_match(key: &[String]) -> String {
    key.iter()
        .map(|k| format!("x.{0} = y.{0}", quote(k)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `x.c1 IS NOT y.c1 OR …` over every column.
fn differs(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| format!("x.{0} IS NOT y.{0}", quote(c)))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// The three row-difference queries of one table: (change, FROM … WHERE …, which sides
/// the selected rows come from).
fn difference_queries(table: &str, shape: &Shape) -> [(&'static str, String); 3] {
    let t = quote(table);
    let on = key_match(&shape.key);
    [
        (
            "removed",
            format!("FROM a.{t} AS x WHERE NOT EXISTS (SELECT 1 FROM b.{t} AS y WHERE {on})"),
        ),
        (
            "added",
            format!("FROM b.{t} AS y WHERE NOT EXISTS (SELECT 1 FROM a.{t} AS x WHERE {on})"),
        ),
        (
            "changed",
            format!(
                "FROM a.{t} AS x JOIN b.{t} AS y ON {on} WHERE {}",
                differs(&shape.columns)
            ),
        ),
    ]
}

fn tables(
    conn: &Connection,
    schema_a: &[SchemaObject],
    schema_b: &[SchemaObject],
) -> rusqlite::Result<Vec<TableDiff>> {
    let mut names: Vec<&SchemaObject> = schema_a
        .iter()
        .chain(schema_b)
        .filter(|o| o.kind == "table")
        .collect();
    names.sort_by(|x, y| x.name.cmp(&y.name));
    names.dedup_by(|x, y| x.name == y.name);
    let mut out = Vec::with_capacity(names.len());
    for o in names {
        let sql_of = |list: &[SchemaObject]| {
            list.iter()
                .find(|x| x.kind == "table" && x.name == o.name)
                .map(|x| x.sql.clone())
        };
        let (sql_a, sql_b) = (sql_of(schema_a), sql_of(schema_b));
        let mut t = TableDiff {
            name: o.name.clone(),
            rows_a: None,
            rows_b: None,
            compared: false,
            note: None,
            key: Vec::new(),
            columns: Vec::new(),
            added: 0,
            removed: 0,
            changed: 0,
        };
        let shape_a = match sql_a {
            Some(_) => shape(conn, "a", &o.name)?,
            None => None,
        };
        let shape_b = match sql_b {
            Some(_) => shape(conn, "b", &o.name)?,
            None => None,
        };
        if shape_a.is_some() {
            t.rows_a = Some(count(conn, "a", &o.name)?);
        }
        if shape_b.is_some() {
            t.rows_b = Some(count(conn, "b", &o.name)?);
        }
        match (sql_a, sql_b, shape_a) {
            (Some(x), Some(y), Some(shape)) if x == y && shape_b.is_some() => {
                for (change, from) in difference_queries(&o.name, &shape) {
                    let n = count_of(conn, &format!("SELECT count(*) {from}"))?;
                    match change {
                        "removed" => t.removed = n,
                        "added" => t.added = n,
                        _ => t.changed = n,
                    }
                }
                t.compared = true;
                t.key = shape.key;
                t.columns = shape.columns;
            }
            (Some(_), Some(_), _) if shape_b.is_some() => {
                t.note = Some("table definition differs; only row counts compared".into())
            }
            (Some(_), Some(_), _) => {
                t.note = Some("not an ordinary table; rows not compared".into())
            }
            _ => {}
        }
        out.push(t);
    }
    Ok(out)
}

/// One page of changed rows, in table order and, per table, removed, added, changed; and the
/// next page's offset when more remain.
fn rows_page(
    conn: &Connection,
    tables: &[TableDiff],
    page: &Page,
) -> rusqlite::Result<(Vec<RowChange>, Option<u64>)> {
    let mut skip = page.offset;
    let mut rows = Vec::new();
    let mut total = 0u64;
    let chosen = tables
        .iter()
        .filter(|t| t.compared)
        .filter(|t| page.table.as_ref().is_none_or(|name| *name == t.name));
    for t in chosen {
        let shape = Shape {
            key: t.key.clone(),
            columns: t.columns.clone(),
        };
        for (change, from) in difference_queries(&t.name, &shape) {
            let n = match change {
                "removed" => t.removed,
                "added" => t.added,
                _ => t.changed,
            };
            total += n;
            if skip >= n {
                skip -= n;
                continue;
            }
            let room = page.limit - rows.len();
            if room == 0 {
                continue;
            }
            let fetched = changed_rows(conn, t, change, &from, skip, room)?;
            skip = 0;
            rows.extend(fetched);
        }
    }
    let shown_to = page.offset + rows.len() as u64;
    Ok((rows, (shown_to < total).then_some(shown_to)))
}

fn changed_rows(
    conn: &Connection,
    t: &TableDiff,
    change: &'static str,
    from: &str,
    skip: u64,
    limit: usize,
) -> rusqlite::Result<Vec<RowChange>> {
    let side = |alias: &str, list: &[String]| -> Vec<String> {
        list.iter()
            .map(|c| format!("{alias}.{}", quote(c)))
            .collect()
    };
    let key_side = if change == "added" { "y" } else { "x" };
    let mut select = side(key_side, &t.key);
    let (with_a, with_b) = (change != "added", change != "removed");
    if with_a {
        select.extend(side("x", &t.columns));
    }
    if with_b {
        select.extend(side("y", &t.columns));
    }
    let order = side(key_side, &t.key).join(", ");
    let sql = format!(
        "SELECT {} {from} ORDER BY {order} LIMIT {limit} OFFSET {skip}",
        select.join(", ")
    );
    let mut stmt = conn.prepare(&sql)?;
    let (nk, nc) = (t.key.len(), t.columns.len());
    let rows = stmt.query_map([], |r| {
        let values = |from: usize, n: usize| -> rusqlite::Result<Vec<Value>> {
            (from..from + n).map(|i| Ok(shown(r.get_ref(i)?))).collect()
        };
        let a = if with_a { Some(values(nk, nc)?) } else { None };
        let b_from = if with_a { nk + nc } else { nk };
        let b = if with_b {
            Some(values(b_from, nc)?)
        } else {
            None
        };
        Ok(RowChange {
            table: t.name.clone(),
            change,
            key: values(0, nk)?,
            a,
            b,
        })
    })?;
    rows.collect()
}

/// A value as JSON: numbers and text as themselves (text cut to [`MAX_TEXT`] characters with
/// its full length), a blob as `{"blob": hex of its first MAX_BLOB bytes, "bytes": length}`.
pub fn shown(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(f) if f.is_finite() => json!(f),
        ValueRef::Real(f) => json!(f.to_string()),
        ValueRef::Text(t) => {
            let text = String::from_utf8_lossy(t);
            let chars = text.chars().count();
            if chars <= MAX_TEXT {
                json!(text)
            } else {
                let head: String = text.chars().take(MAX_TEXT).collect();
                json!({"text": head, "chars": chars})
            }
        }
        ValueRef::Blob(b) => {
            let hex: String = b
                .iter()
                .take(MAX_BLOB)
                .map(|x| format!("{x:02x}"))
                .collect();
            json!({"blob": hex, "bytes": b.len()})
        }
    }
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
