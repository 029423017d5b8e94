//! `walstream databases [-config P] [-no-expand-env] [-json]`: the databases of the config file
//! with their replica names joined by `,` (spec §6.1), or with `-json` (walstream) as an array of
//! `{path, replicas}` with `replicas` an array of names.
//!
//! What must stay true: no positional arguments (`too many arguments`); paths are the absolute
//! paths from the config; a DB without replicas prints an empty second column (still padded, as
//! Go's tabwriter does) and `"replicas": []` in JSON.

use serde::Serialize;

use super::flags::FlagSet;
use super::list::{self, ListingRow};
use super::parse_flags;
use super::source;
use crate::config::Config;

/// One database of the config file.
#[derive(Debug, Serialize)]
struct DatabaseRow {
    path: String,
    replicas: Vec<String>,
}

impl ListingRow for DatabaseRow {
    const HEADER: &'static [&'static str] = &["path", "replicas"];

    fn cells(&self) -> Vec<String> {
        vec![self.path.clone(), self.replicas.join(",")]
    }
}

pub(super) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut fs = FlagSet::new();
    source::register_config_flags(&mut fs).bool("json", false);
    let p = parse_flags(&fs, args, "databases")?;
    let json = list::json_output(&p);
    if !p.args.is_empty() {
        anyhow::bail!("too many arguments");
    }
    let cfg = source::load_config(p.str("config"), p.bool("no-expand-env"))?;
    list::print_rows(&rows(&cfg), json)
}

fn rows(cfg: &Config) -> Vec<DatabaseRow> {
    cfg.dbs
        .iter()
        .map(|db| DatabaseRow {
            path: db.path.display().to_string(),
            replicas: db.replicas.iter().map(|r| r.name.clone()).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<DatabaseRow> {
        vec![
            DatabaseRow {
                path: "/tmp/lt/db.sqlite".into(),
                replicas: vec!["file".into(), "other".into()],
            },
            DatabaseRow {
                path: "/tmp/lt/db2.sqlite".into(),
                replicas: vec![],
            },
        ]
    }

    #[test]
    fn table_and_json_from_the_same_rows() {
        let rows = sample();
        assert_eq!(
            list::table_of(&rows).render(),
            "path                replicas\n\
             /tmp/lt/db.sqlite   file,other\n\
             /tmp/lt/db2.sqlite  \n"
        );
        assert_eq!(
            serde_json::to_value(&rows).unwrap(),
            serde_json::json!([
                {"path": "/tmp/lt/db.sqlite", "replicas": ["file", "other"]},
                {"path": "/tmp/lt/db2.sqlite", "replicas": []}
            ])
        );
    }
}
