//! Exports one table of a backup (or of the live database) as CSV, streamed row by row,
//! byte for byte what SQLite's own shell prints for `sqlite3 -csv -header DB 'SELECT * FROM T'`:
//! a header of the column names, `\n` after every row (the `-csv` option keeps the shell's
//! newline; only its `.mode csv` command switches to `\r\n`), NULL as an empty field, numbers in
//! SQLite's own text form (every column is read `CAST(… AS TEXT)`), and a field quoted (`"`, inner quotes doubled) when it is empty or
//! holds a comma, a quote, an apostrophe, a space, a control character or any byte outside
//! printable ASCII.
//!
//! What must stay true: the source is opened read-only (a backup `immutable=1`, the live
//! database `mode=ro`) inside one read transaction, so the export is one consistent snapshot;
//! only a table named in the schema can be exported (a view or a missing name is an error naming
//! it); memory is one row at a time.

use std::io::Write;

use rusqlite::types::ValueRef;

use super::AdminError;
use super::compare::{Side, check_table_name, quote};

/// Writes `table` of `side` to `out` as CSV; returns the number of data rows.
pub fn export_csv(side: Side<'_>, table: &str, out: &mut dyn Write) -> Result<u64, AdminError> {
    check_table_name(table)?;
    let path = side.path().to_path_buf();
    let conn = super::compare::open_side(side)?;
    let sqlite = |op| AdminError::sqlite(op, &path);
    conn.execute_batch("BEGIN").map_err(sqlite("begin"))?;
    let kind: Option<String> = conn
        .query_row(
            "SELECT type FROM src.sqlite_schema WHERE name = ?1 AND type = 'table'",
            [table],
            |r| r.get(0),
        )
        .ok();
    if kind.is_none() {
        return Err(AdminError::invalid(
            "table",
            format!("no table {table:?} in {}", path.display()),
        ));
    }
    let names: Vec<String> = conn
        .prepare(&format!("SELECT * FROM src.{} LIMIT 0", quote(table)))
        .map_err(sqlite("read table"))?
        .column_names()
        .map(String::from)
        .collect();
    let cast: Vec<String> = names
        .iter()
        .map(|n| format!("CAST({} AS TEXT)", quote(n)))
        .collect();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT {} FROM src.{}",
            cast.join(", "),
            quote(table)
        ))
        .map_err(sqlite("read table"))?;
    let write_err = |e| AdminError::io("write CSV of", &path)(e);
    let line = |out: &mut dyn Write, fields: &mut dyn Iterator<Item = Option<Vec<u8>>>| {
        let mut first = true;
        for f in fields {
            if !first {
                out.write_all(b",")?;
            }
            first = false;
            // NULL is an empty, unquoted field.
            if let Some(f) = f {
                write_field(out, &f)?;
            }
        }
        out.write_all(b"\n")
    };
    line(out, &mut names.iter().map(|n| Some(n.as_bytes().to_vec()))).map_err(write_err)?;
    let mut rows = stmt.query([]).map_err(sqlite("read table"))?;
    let mut n = 0u64;
    while let Some(row) = rows.next().map_err(sqlite("read table"))? {
        let mut fields = Vec::with_capacity(names.len());
        for i in 0..names.len() {
            let v = row.get_ref(i).map_err(sqlite("read table"))?;
            fields.push(bytes_of(v));
        }
        let mut it = fields.into_iter();
        line(out, &mut it).map_err(write_err)?;
        n += 1;
    }
    out.flush().map_err(write_err)?;
    Ok(n)
}

/// A field's bytes: SQLite's own text conversion (the query casts every column to TEXT, as
/// `sqlite3_column_text` does); `None` for NULL.
fn bytes_of(v: ValueRef<'_>) -> Option<Vec<u8>> {
    Some(match v {
        // The shell prints `sqlite3_column_text`, a C string: bytes up to the first NUL.
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            t.split(|&b| b == 0).next().unwrap_or(&[]).to_vec()
        }
        ValueRef::Integer(i) => i.to_string().into_bytes(),
        ValueRef::Real(f) => f.to_string().into_bytes(),
        ValueRef::Null => return None,
    })
}

/// Whether SQLite's shell quotes a field holding `b`.
fn needs_quote(b: u8) -> bool {
    b <= b' ' || b == b'"' || b == b'\'' || b == b',' || b >= 0x7f
}

fn write_field(out: &mut dyn Write, field: &[u8]) -> std::io::Result<()> {
    if !field.is_empty() && !field.iter().copied().any(needs_quote) {
        return out.write_all(field);
    }
    out.write_all(b"\"")?;
    for chunk in field.split(|&b| b == b'"').enumerate() {
        if chunk.0 > 0 {
            out.write_all(b"\"\"")?;
        }
        out.write_all(chunk.1)?;
    }
    out.write_all(b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_when_sqlite_quotes_them() {
        let mut out = Vec::new();
        for f in [
            &b"plain"[..],
            b"",
            b"a,b",
            b"say \"hi\"",
            b"a b",
            b"caf\xc3\xa9",
        ] {
            write_field(&mut out, f).unwrap();
            out.push(b'|');
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "plain|\"\"|\"a,b\"|\"say \"\"hi\"\"\"|\"a b\"|\"café\"|"
        );
    }
}
