//! Usage texts of every command, worded and laid out exactly like Litestream v0.3.13's (tabs,
//! blank lines and trailing whitespace included) with the program name changed to `walstream`.
//!
//! What must stay true: the text is printed to stdout as is; `{config}` stands for the default
//! config path (`LITESTREAM_CONFIG` or `/etc/litestream.yml`), which Litestream prints there.

/// `-config PATH` as every command prints it.
macro_rules! config_arg {
    () => {
        "\t-config PATH\n\t    Specifies the configuration file.\n\t    Defaults to {config}\n\n"
    };
}
/// `-no-expand-env` as every command prints it.
macro_rules! no_expand_env_arg {
    () => {
        "\t-no-expand-env\n\t    Disables environment variable expansion in configuration file.\n\n"
    };
}
/// The two configuration arguments, in Litestream's order.
macro_rules! config_args {
    () => {
        concat!(config_arg!(), no_expand_env_arg!())
    };
}
/// `-replica NAME` of the listing commands.
macro_rules! replica_filter_arg {
    () => {
        "\t-replica NAME\n\t    Optional, filter by a specific replica.\n\n"
    };
}
/// `-json` of the listing commands (walstream's, after Litestream's flags).
macro_rules! listing_json_arg {
    () => {
        "\t-json\n\t    walstream: print the rows as a JSON array of objects, one\n\t    field per column, instead of the table.\n\n"
    };
}
/// Description, usage lines and configuration arguments of a command taking a database path
/// or a replica URL.
macro_rules! db_command_head {
    ($intro:literal, $cmd:literal) => {
        concat!($intro, "\n\n", db_or_url_usage!($cmd), config_args!())
    };
}
/// The usage lines of a command taking a database path or a replica URL.
macro_rules! db_or_url_usage {
    ($cmd:literal) => {
        concat!(
            "Usage:\n\n\twalstream ",
            $cmd,
            " [arguments] DB_PATH\n\n\twalstream ",
            $cmd,
            " [arguments] REPLICA_URL\n\nArguments:\n\n"
        )
    };
}

/// Placeholder replaced by the default config path.
const CONFIG_PLACEHOLDER: &str = "{config}";
const MAIN: &str = r#"walstream is a tool for replicating SQLite databases.

Usage:

	walstream <command> [arguments]

The commands are:

	backup       creates, uploads, lists, pins, expires and deletes backups of a database
	databases    list databases specified in config file
	generations  list available generations for a database
	ltx          list LTX files of a Litestream v0.5 replica
	replicate    runs a server to replicate databases
	restore      recovers database backup from a replica
	snapshot     asks a running walstream replicate to take a snapshot now
	snapshots    list available snapshots for a database
	status       prints the status of a running walstream replicate
	sync         asks a running walstream replicate to sync a database now
	version      prints the binary version
	wal          list available WAL files for a database

"#;
const VERSION: &str = r#"Prints the version.

Usage:

	walstream version

"#;
const DATABASES: &str = concat!(
    r#"The databases command lists all databases in the configuration file.

Usage:

	walstream databases [arguments]

Arguments:

"#,
    config_args!(),
    listing_json_arg!(),
);
const GENERATIONS: &str = concat!(
    r#"The generations command lists all generations for a database or replica. It also
lists stats about their lag behind the primary database and the time range they
cover.

Usage:

	walstream generations [arguments] DB_PATH
	
	walstream generations [arguments] REPLICA_URL

Arguments:

"#,
    config_args!(),
    r#"	-replica NAME
	    Optional, filters by replica.

"#,
    listing_json_arg!(),
);
const SNAPSHOTS: &str = concat!(
    db_command_head!(
        "The snapshots command lists all snapshots available for a database or replica.",
        "snapshots"
    ),
    replica_filter_arg!(),
    listing_json_arg!(),
    r#"Examples:

	# List all snapshots for a database.
	$ walstream snapshots /path/to/db

	# List all snapshots on S3.
	$ walstream snapshots -replica s3 /path/to/db

	# List all snapshots by replica URL.
	$ walstream snapshots s3://mybkt/db

"#,
);
const WAL: &str = concat!(
    db_command_head!(
        "The wal command lists all wal segments available for a database.",
        "wal"
    ),
    replica_filter_arg!(),
    r#"	-generation NAME
	    Optional, filter by a specific generation.

"#,
    listing_json_arg!(),
    r#"Examples:

	# List all WAL segments for a database.
	$ walstream wal /path/to/db

	# List all WAL segments on S3 for a specific generation.
	$ walstream wal -replica s3 -generation xxxxxxxx /path/to/db

	# List all WAL segments for replica URL.
	$ walstream wal s3://mybkt/db

"#,
);
const BACKUP: &str = concat!(
    r#"The backup command creates, uploads, lists, pins, expires, deletes, compares and
exports backups of a database in its backups folder (dbs[].backups.path, default
<db dir>/backups/<db file name>), the same folder the HTTP admin API uses. No
running server is needed: create copies the database with SQLite's online backup
API, safe while it is in use; upload keeps a copy of FILE (a SQLite database,
at most dbs[].backups.max-upload-size bytes, that passes integrity_check) as a
backup of kind uploaded. A pinned backup never expires and is not deleted until
unpinned; expire applies every kind's retention policy (dbs[].backups.retention)
and prints why each backup is kept or expires.

Usage:

	walstream backup create [arguments] DB_PATH

	walstream backup upload [arguments] DB_PATH FILE

	walstream backup list [arguments] DB_PATH

	walstream backup delete [arguments] DB_PATH ID

	walstream backup pin [arguments] DB_PATH ID

	walstream backup unpin [arguments] DB_PATH ID

	walstream backup expire [arguments] DB_PATH

	walstream backup compare [arguments] DB_PATH A B

	walstream backup export -table TABLE [arguments] DB_PATH ID|live|TIME

Arguments:

"#,
    config_args!(),
    r#"	-name NAME
	    create, upload: name of the backup. Defaults to its id.

	-description TEXT
	    create, upload: free text stored with the backup.

	-label KEY=VALUE
	    create, upload: a label stored with the backup (repeatable, at most 32; KEY is
	    1-63 of a-z 0-9 _ . -, VALUE at most 256 bytes without control characters).
	    list: show only backups with this label (repeatable; all must match).

	-kind KIND
	    list: show only manual, pre-restore, scheduled or uploaded backups.

	-table TABLE
	    compare: show only this table's changed rows (counts cover every table).
	    export: the table to write as CSV (required).

	-offset N
	    compare: skip the first N changed rows (the next page).

	-o PATH
	    export: write the CSV to PATH instead of stdout.

	-since TIME, -until TIME
	    list: show only backups created at or after / at or before TIME
	    (RFC 3339, e.g. 2026-12-01T00:00:00Z).

	-limit N
	    list: show at most the newest N (1-1000) backups.
	    compare: show at most N (1-1000, default 100) changed rows.

	-json
	    list: print the backups as a JSON array of the HTTP API's records
	    (without download_url).
	    expire: print the verdicts as a JSON array (id, name, kind, created,
	    pinned, keep, reasons), as POST .../backups/expire answers them.
	    compare: print the HTTP API's comparison object.

	-dry-run
	    expire: print what would expire; delete nothing.

A and B of compare (and the source of export) are backup ids, "live" (the
database as it is now, read as one consistent snapshot), or an RFC 3339 time
(the first replica restored to that point). Rows "added" are in B and not in A, "removed" in A
and not in B, "changed" in both with different values, matched by rowid or by
the primary key of a WITHOUT ROWID table.

"#,
);
const RESTORE: &str = concat!(
    db_command_head!(
        "\nThe restore command recovers a database from a previous snapshot and WAL.",
        "restore"
    ),
    r#"	-replica NAME
	    Restore from a specific replica.
	    Defaults to replica with latest data.

	-generation NAME
	    Restore from a specific generation.
	    Defaults to generation with latest data.

	-index NUM
	    Restore up to a specific hex-encoded WAL index (inclusive).
	    Defaults to use the highest available index.

	-timestamp TIMESTAMP
	    Restore to a specific point-in-time.
	    Defaults to use the latest available backup.

	-o PATH
	    Output path of the restored database.
	    Defaults to original DB path.

	-if-db-not-exists
	    Returns exit code of 0 if the database already exists.

	-if-replica-exists
	    Returns exit code of 0 if no backups found.

	-parallelism NUM
	    Determines the number of WAL files downloaded in parallel.
	    Defaults to 8

	-v
	    Verbose output.

	-integrity-check MODE
	    walstream: verify the restored database before it is moved
	    into place: full (PRAGMA integrity_check), quick
	    (PRAGMA quick_check) or none. Defaults to full

	-if-db-damaged
	    walstream: like -if-db-not-exists, but an existing database is
	    kept only if it passes PRAGMA quick_check; a damaged one is
	    restored from the replica and moved aside (with its -wal and
	    -shm) to DB.damaged-<time>, never deleted. Exits 1 when no
	    replica holds a backup (the damaged file stays in place).

	-txid TXID
	    Litestream v0.5 replicas: restore up to a specific
	    16-digit hex transaction ID (inclusive).

	-dry-run
	    Print the restore plan without writing anything: which LTX
	    files from which levels (v0.5 replicas), or which snapshot
	    and WAL segments of which generation (v0.3 replicas).

	-json
	    With -dry-run, print the plan as JSON; otherwise print a
	    JSON summary of the finished v0.5 restore.

	DIR
	    walstream: the "dir" of a directory entry of the config in
	    place of DB_PATH restores every database found in that entry's
	    replicas (matching its pattern) to OUTDIR/<relative path> with
	    -o OUTDIR, else to its place under DIR. -parallelism NUM then
	    bounds how many databases restore at once (each downloads one
	    WAL file at a time); -if-db-not-exists and -if-replica-exists
	    apply per database. Prints one line per database and exits 1
	    if any database failed.


Examples:

	# Restore latest replica for database to original location.
	$ walstream restore /path/to/db

	# Restore replica for database to a given point in time.
	$ walstream restore -timestamp 2020-01-01T00:00:00Z /path/to/db

	# Restore latest replica for database to new /tmp directory
	$ walstream restore -o /tmp/db /path/to/db

	# Restore database from latest generation on S3.
	$ walstream restore -replica s3 /path/to/db

	# Restore database from specific generation on S3.
	$ walstream restore -replica s3 -generation xxxxxxxx /path/to/db

"#,
);
const REPLICATE: &str = concat!(
    r#"The replicate command starts a server to monitor & replicate databases. 
You can specify your database & replicas in a configuration file or you can
replicate a single database file by specifying its path and its replicas in the
command line arguments.

Usage:

	walstream replicate [arguments]

	walstream replicate [arguments] DB_PATH REPLICA_URL [REPLICA_URL...]

Arguments:

"#,
    config_arg!(),
    r#"	-exec CMD
	    Executes a subcommand. walstream will exit when the child
	    process exits. Useful for simple process management.

"#,
    no_expand_env_arg!(),
    r#"	-shutdown-timeout DURATION
	    walstream: deadline for the final sync after SIGINT/SIGTERM.
	    Defaults to the config's shutdown-sync-timeout, else 30s

	-heartbeat-interval DURATION
	    walstream: replaces the config's heartbeat-interval (at
	    least 1s instead of 1m); needs heartbeat-url in the config

"#,
);

const LTX: &str = concat!(
    db_command_head!(
        "The ltx command lists all LTX files available for a database.",
        "ltx"
    ),
    r#"	-replica NAME
	    walstream: list this replica of the database (default: the
	    first one).

	-level LEVEL
	    Compaction level to list (0-9 or "all").
	    Defaults to 0.

	-json
	    Output raw JSON instead of human-readable text.

Examples:

	# List all LTX files for a database.
	$ walstream ltx /path/to/db

	# List all LTX files for replica URL.
	$ walstream ltx s3://mybkt/db

	# List LTX files at snapshot level (level 9).
	$ walstream ltx -level 9 /path/to/db

	# List LTX files across all compaction levels.
	$ walstream ltx -level all /path/to/db

"#,
);

/// The arguments `sync` and `snapshot` share after their own.
macro_rules! control_args {
    () => {
        concat!(
            "\t-timeout DURATION\n\t    How long the running instance may take (Go duration).\n\t    Defaults to 30s\n\n",
            "\t-json\n\t    Print the instance's answer as JSON.\n\n",
            "\t-addr URL\n\t    Address of the running instance, e.g. http://localhost:9090.\n\t    Defaults to the addr of the configuration file (its\n\t    http-token is sent).\n\n",
            config_args!(),
            "\tDB\n\t    The database's name as walstream status shows it, or its path.\n\n",
        )
    };
}
const SYNC: &str = concat!(
    r#"The sync command asks a running walstream replicate to sync a database
to its replicas now (for a preStop hook or before maintenance).

Usage:

	walstream sync [arguments] DB

Arguments:

	-wait
	    Wait until every replica holds the database's current position.
	    Without it the command returns once the sync has started.

"#,
    control_args!(),
);
const SNAPSHOT: &str = concat!(
    r#"The snapshot command asks a running walstream replicate to take a snapshot
of a database on every replica now, and waits for it.

Usage:

	walstream snapshot [arguments] DB

Arguments:

"#,
    control_args!(),
);

/// The usage text of `command` (`""` for the program's own usage), or `None` if unknown.
pub fn usage(command: &str, default_config: &str) -> Option<String> {
    let text = match command {
        "" => MAIN,
        "version" => VERSION,
        "databases" => DATABASES,
        "generations" => GENERATIONS,
        "snapshots" => SNAPSHOTS,
        "wal" => WAL,
        "restore" => RESTORE,
        "replicate" => REPLICATE,
        "backup" => BACKUP,
        "ltx" => LTX,
        "sync" => SYNC,
        "snapshot" => SNAPSHOT,
        _ => return None,
    };
    Some(text.replace(CONFIG_PLACEHOLDER, default_config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_usage_with_config_default() {
        for c in [
            "databases",
            "generations",
            "snapshots",
            "wal",
            "restore",
            "replicate",
        ] {
            let u = usage(c, "/x/y.yml").unwrap();
            assert!(u.contains("Defaults to /x/y.yml\n"), "{c}");
            assert!(u.contains(&format!("walstream {c} [arguments]")), "{c}");
            assert!(!u.contains("litestream"), "{c}");
        }
        assert!(usage("", "").unwrap().ends_with("database\n\n"));
        assert!(usage("nope", "").is_none());
    }
}
