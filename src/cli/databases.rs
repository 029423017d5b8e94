//! `walstream databases [-config P] [-no-expand-env]`: the databases of the config file with
//! their replica names joined by `,` (spec §6.1).
//!
//! What must stay true: no positional arguments (`too many arguments`); paths are the absolute
//! paths from the config; a DB without replicas prints an empty second column (still padded, as
//! Go's tabwriter does).

use super::flags::FlagSet;
use super::source;
use super::table::Table;
use super::{parse_flags, print_table};

pub(super) fn run(args: &[String]) -> anyhow::Result<()> {
    let mut fs = FlagSet::new();
    source::register_config_flags(&mut fs);
    let p = parse_flags(&fs, args, "databases")?;
    if !p.args.is_empty() {
        anyhow::bail!("too many arguments");
    }
    let cfg = source::load_config(p.str("config"), p.bool("no-expand-env"))?;
    let mut table = Table::new();
    table.row(["path", "replicas"]);
    for db in &cfg.dbs {
        let names: Vec<&str> = db.replicas.iter().map(|r| r.name.as_str()).collect();
        table.row([db.path.display().to_string(), names.join(",")]);
    }
    print_table(&table)
}
