//! Table output identical to Go's `text/tabwriter` as Litestream v0.3.13 configures it
//! (`tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)`): minwidth 0, padding 2, pad with spaces,
//! left-aligned, no flags.
//!
//! What must stay true (compared byte for byte with the real binary's output):
//! - a cell is text terminated by a tab; the last cell of a line (after the last tab) is not part
//!   of any column and is written unpadded;
//! - a column block is a run of consecutive lines that all have a terminated cell in that column;
//!   its width is the widest cell (in characters) + 2, and every terminated cell in it is padded
//!   to that width, even an empty one (so a row with an empty last value ends with spaces);
//! - blocks nest: inside a block, the next column is laid out per run of lines again.

use std::io::{self, Write};

/// Collects rows and renders them like Go's tabwriter on [`Table::render`].
#[derive(Debug, Clone, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

/// Space added to the widest cell of each column (Litestream's `padding` argument).
const PADDING: usize = 2;

impl Table {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one line; every value but the last becomes a tab-terminated cell.
    pub fn row<I, S>(&mut self, cells: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// The rendered text, one `\n`-terminated line per row.
    pub fn render(&self) -> String {
        let mut widths: Vec<Vec<usize>> = self.rows.iter().map(|_| Vec::new()).collect();
        self.layout(0, self.rows.len(), 0, &mut widths);
        let mut out = String::new();
        for (row, row_widths) in self.rows.iter().zip(&widths) {
            let last = row.len().saturating_sub(1);
            for (j, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if j < last {
                    let pad = row_widths[j].saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }

    /// Writes the rendered table to `w`.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(self.render().as_bytes())
    }

    /// Number of terminated cells (cells that belong to a column) in row `i`.
    fn terminated(&self, i: usize) -> usize {
        self.rows[i].len().saturating_sub(1)
    }

    /// Go's `format`: assigns widths for `column` over lines `[start, end)`, recursing into the
    /// next column for each block of lines that have a cell in this column.
    fn layout(&self, start: usize, end: usize, column: usize, widths: &mut [Vec<usize>]) {
        let mut line = start;
        while line < end {
            if column >= self.terminated(line) {
                line += 1;
                continue;
            }
            let block_start = line;
            let mut width = 0;
            while line < end && column < self.terminated(line) {
                width = width.max(self.rows[line][column].chars().count() + PADDING);
                line += 1;
            }
            for w in &mut widths[block_start..line] {
                w.push(width);
            }
            self.layout(block_start, line, column + 1, widths);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn litestream_databases_layout() {
        // Output of `litestream databases` (v0.3.13) for a three-database config.
        let mut t = Table::new();
        t.row(["path", "replicas"])
            .row(["/tmp/lt/db.sqlite", "file,other"])
            .row(["/tmp/lt/db2.sqlite", ""]);
        assert_eq!(
            t.render(),
            "path                replicas\n\
             /tmp/lt/db.sqlite   file,other\n\
             /tmp/lt/db2.sqlite  \n"
        );
    }

    #[test]
    fn header_only_table() {
        let mut t = Table::new();
        t.row(crate::cli::wal::WAL_HEADER);
        assert_eq!(
            t.render(),
            "replica  generation  index  offset  size  created\n"
        );
    }

    #[test]
    fn widest_cell_sets_column_and_last_cell_unpadded() {
        let mut t = Table::new();
        t.row(["name", "generation", "lag"])
            .row(["file", "041e29e3fd6ffa54", "9m13s"])
            .row(["s3", "6e2ba44860bb8fbd", "8m51.123s"]);
        assert_eq!(
            t.render(),
            "name  generation        lag\n\
             file  041e29e3fd6ffa54  9m13s\n\
             s3    6e2ba44860bb8fbd  8m51.123s\n"
        );
    }

    #[test]
    fn ragged_rows_form_separate_blocks() {
        // Line 2 has no terminated cell in column 1, so column 1 of lines 1 and 3 are separate
        // blocks, while column 0 spans all three lines.
        let mut t = Table::new();
        t.row(["a", "bbbbbb", "c"])
            .row(["aa", "x"])
            .row(["a", "b", "c"]);
        assert_eq!(t.render(), "a   bbbbbb  c\naa  x\na   b  c\n");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut t = Table::new();
        t.row(["é", "x"]).row(["ab", "y"]);
        assert_eq!(t.render(), "é   x\nab  y\n");
    }
}
