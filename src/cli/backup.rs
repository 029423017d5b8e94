//! `walstream backup create|upload|list|delete|pin|unpin|expire [arguments] DB_PATH [ID|FILE]`: the admin
//! API's backups without a running server, on the same backups folder (`dbs[].backups`).
//!
//! What must stay true: `create` takes the copy with SQLite's online backup API on the database
//! file (safe while an application and `walstream replicate` run) and applies the same
//! retention as the server; ids are validated before any path is built; the database must be
//! in the config file (`database not found in config: <abs path>`), like the other commands;
//! labels and list filters are checked by the same code as the HTTP API's (a bad one is a
//! one-line error naming it), and `list -json` prints the API's record objects without
//! `download_url` (there is no server to download from); `expire` applies the same policies
//! (`admin::retention`) and `-dry-run` deletes nothing; `upload` keeps a copy of a database
//! file through the same checks as `POST …/backups/upload` (`BackupStore::upload`), and a
//! refused file leaves the folder as it was; every change (create, upload, delete, pin, unpin,
//! expire) holds the database's cross-process operation lock (`admin::lock`), so it never runs
//! beside a sidecar's restore. `compare` and `export` are in `cli::backup_data`.

use anyhow::{Context, bail};

use super::stdout::print_json;
use super::table::Table;
use super::{parse_flags, print_table, print_usage_and_stop, source};
use crate::admin::backups::NewBackup;
use crate::admin::names::parse_labels;
use crate::admin::{BackupFilter, BackupKind, BackupStore, CreatedBy, OpGuard, OpLock};

/// Runs `backup SUBCOMMAND …` with the arguments after the word `backup`.
pub(super) fn run(args: &[String]) -> anyhow::Result<()> {
    let (sub, rest) = match args.split_first() {
        Some((s, rest)) => (s.as_str(), rest),
        None => ("", args),
    };
    match sub {
        "create" => create(rest),
        "upload" => upload(rest),
        "list" => list(rest),
        "delete" => delete(rest),
        "pin" => pin(rest, true),
        "unpin" => pin(rest, false),
        "expire" => expire(rest),
        "compare" => super::backup_data::compare(rest),
        "export" => super::backup_data::export(rest),
        "" | "help" | "-h" | "-help" | "--help" => print_usage_and_stop("backup"),
        other => bail!(
            "walstream backup {other}: unknown subcommand (create, upload, list, delete, pin, unpin, expire, compare or export)"
        ),
    }
}

/// The flags of `create` and `upload`: `-name`, `-description`, `-label` (repeatable).
fn labelled_flags() -> super::flags::FlagSet {
    source::config_flag_set(|fs| {
        fs.string("name", "")
            .string("description", "")
            .strings("label");
    })
}

/// The backup `p`'s flags describe, of `kind`, made by the CLI.
fn new_backup(p: &super::flags::Parsed, kind: BackupKind) -> anyhow::Result<NewBackup<'_>> {
    Ok(NewBackup {
        kind,
        name: Some(p.str("name")).filter(|n| !n.is_empty()),
        description: Some(p.str("description")),
        source: None,
        labels: parse_labels(p.strings("label"))?,
        created_by: CreatedBy::Cli,
    })
}

fn create(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&labelled_flags(), args, "backup")?;
    let [db] = p.args.as_slice() else {
        bail!("usage: walstream backup create [arguments] DB_PATH");
    };
    let req = new_backup(&p, BackupKind::Manual)?;
    let store = source::backup_store(p.str("config"), p.bool("no-expand-env"), db)?;
    let _lock = locked(&store, "backup")?;
    let record = store.create(req).with_context(|| format!("back up {db}"))?;
    print_created(&store, &record);
    Ok(())
}

fn upload(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&labelled_flags(), args, "backup")?;
    let [db, file] = p.args.as_slice() else {
        bail!("usage: walstream backup upload [arguments] DB_PATH FILE");
    };
    let req = new_backup(&p, BackupKind::Uploaded)?;
    let store = source::backup_store(p.str("config"), p.bool("no-expand-env"), db)?;
    let body = std::fs::File::open(file).with_context(|| format!("open {file}"))?;
    let _lock = locked(&store, "upload")?;
    let record = store
        .upload(body, req)
        .with_context(|| format!("upload {file} as a backup of {db}"))?;
    print_created(&store, &record);
    Ok(())
}

/// `<id>\t<size> bytes\tsha256 <hash>\t<path>` of a new backup.
fn print_created(store: &crate::admin::BackupStore, record: &crate::admin::BackupRecord) {
    println!(
        "{}\t{} bytes\tsha256 {}\t{}",
        record.id,
        record.size,
        record.sha256,
        store.data_path(&record.id).display()
    );
}

fn list(args: &[String]) -> anyhow::Result<()> {
    let fs = source::config_flag_set(|fs| {
        fs.string("kind", "")
            .strings("label")
            .string("limit", "")
            .string("since", "")
            .string("until", "")
            .bool("json", false);
    });
    let p = parse_flags(&fs, args, "backup")?;
    let [db] = p.args.as_slice() else {
        bail!("usage: walstream backup list [arguments] DB_PATH");
    };
    let given = |name: &str| p.is_set(name).then(|| p.str(name));
    let filter = BackupFilter::parse(given("kind"), p.strings("label"), given("limit"))?
        .with_range(given("since"), given("until"))?;
    let store = source::backup_store(p.str("config"), p.bool("no-expand-env"), db)?;
    let records = store.list_filtered(&filter)?;
    if p.bool("json") {
        return print_json(&records);
    }
    let mut table = Table::new();
    table.row(["id", "kind", "created", "size", "pinned", "name", "labels"]);
    for r in records {
        let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        table.row([
            r.id,
            r.kind.as_str().to_string(),
            r.created,
            r.size.to_string(),
            if r.pinned { "yes" } else { "no" }.to_string(),
            r.name,
            labels.join(","),
        ]);
    }
    print_table(&table)
}

fn delete(args: &[String]) -> anyhow::Result<()> {
    let p = parse_flags(&source::config_flag_set(|_| {}), args, "backup")?;
    let [db, id] = p.args.as_slice() else {
        bail!("usage: walstream backup delete [arguments] DB_PATH ID");
    };
    let store = source::backup_store(p.str("config"), p.bool("no-expand-env"), db)?;
    let _lock = locked(&store, "delete")?;
    store.delete(id)?;
    Ok(())
}

fn pin(args: &[String], pinned: bool) -> anyhow::Result<()> {
    let p = parse_flags(&source::config_flag_set(|_| {}), args, "backup")?;
    let [db, id] = p.args.as_slice() else {
        let sub = if pinned { "pin" } else { "unpin" };
        bail!("usage: walstream backup {sub} [arguments] DB_PATH ID");
    };
    let store = source::backup_store(p.str("config"), p.bool("no-expand-env"), db)?;
    let _lock = locked(&store, if pinned { "pin" } else { "unpin" })?;
    store.set_pinned(id, pinned)?;
    Ok(())
}

fn expire(args: &[String]) -> anyhow::Result<()> {
    let fs = source::config_flag_set(|fs| {
        fs.bool("dry-run", false).bool("json", false);
    });
    let p = parse_flags(&fs, args, "backup")?;
    let [db] = p.args.as_slice() else {
        bail!("usage: walstream backup expire [arguments] DB_PATH");
    };
    let store = source::backup_store(p.str("config"), p.bool("no-expand-env"), db)?;
    let _lock = if p.bool("dry-run") {
        None
    } else {
        Some(locked(&store, "expire")?)
    };
    let verdicts = store
        .expire(p.bool("dry-run"))
        .with_context(|| format!("expire backups of {db}"))?;
    if p.bool("json") {
        return print_json(&verdicts);
    }
    let mut table = Table::new();
    table.row(["id", "kind", "created", "verdict", "reasons"]);
    for v in verdicts {
        table.row([
            v.id,
            v.kind.as_str().to_string(),
            v.created,
            if v.keep { "keep" } else { "expire" }.to_string(),
            v.reasons.join(", "),
        ]);
    }
    print_table(&table)
}

/// The database's operation lock across processes (the sidecar's API and schedule, other
/// `walstream backup` runs), held until dropped; a busy lock is an error naming its holder.
fn locked(store: &BackupStore, op: &'static str) -> anyhow::Result<OpGuard> {
    let lock = OpLock::new(&store.db_path().display().to_string(), Some(store.clone()));
    Ok(lock.try_begin(op)?)
}
