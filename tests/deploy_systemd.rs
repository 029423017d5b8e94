//! deploy/systemd with the real binary: `systemd-analyze verify` and `security --offline` on the
//! unit, the unit's directives against its config (hardening, `ReadWritePaths` covering every
//! database folder, `TimeoutStopSec` above the final-sync deadline), and the unit's `ExecStart`
//! run on the example config with the example environment file: it replicates, stops with exit 0
//! on the unit's `KillSignal`, and the README's restore command brings the rows back.
//!
//! Host paths are mapped to temporary directories (`/etc/walstream/` → a config directory,
//! `/var/lib/app/` → a data directory), the replica URL to a `file://` directory and `addr` to a
//! free loopback port. What must stay true: the unit, config, environment file and restore
//! command are read from the repository, never copied here; every mapping asserts that the text
//! it replaces exists, so a changed file fails this test instead of being tested in an old form.
//! `systemd-analyze` must be installed (the test fails, naming it, when it is not).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::sqlite::restored_count;
use common::{
    DEADLINE, Proc, describe, insert, open_app, poll_until, replace_existing, repo_file, run,
    walstream_bin,
};

const UNIT: &str = "deploy/systemd/walstream.service";
const CONFIG: &str = "deploy/systemd/walstream.yml";
const ENV_FILE: &str = "deploy/systemd/walstream.env.example";
const HOST_ADDR: &str = "addr: \"127.0.0.1:9090\"";

/// The unit's `[section]` → key → values (a key may repeat), comments and blank lines skipped.
fn parse_unit(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{UNIT}: not key=value: {line:?}"));
        out.entry(section.clone())
            .or_default()
            .entry(key.trim().to_string())
            .or_default()
            .push(value.trim().to_string());
    }
    out
}

/// The one value of `[Service] key`.
fn service(key: &str) -> String {
    let unit = parse_unit(&repo_file(UNIT));
    let values = unit
        .get("Service")
        .and_then(|s| s.get(key))
        .unwrap_or_else(|| panic!("{UNIT} has no {key}="));
    assert_eq!(values.len(), 1, "{key}= set more than once: {values:?}");
    values[0].clone()
}

/// Seconds of a systemd time span such as `90s`, `2min`, `1min 30s` or `90`.
fn seconds(span: &str) -> u64 {
    span.split_whitespace()
        .map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            let n: u64 = digits
                .parse()
                .unwrap_or_else(|_| panic!("time span {span:?}"));
            match &part[digits.len()..] {
                "" | "s" | "sec" => n,
                "m" | "min" => n * 60,
                "h" => n * 3600,
                unit => panic!("time span {span:?}: unit {unit:?}"),
            }
        })
        .sum()
}

fn systemd_analyze() -> Command {
    let found = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "systemd-analyze is needed to check {UNIT} (Debian: apt-get install systemd)"
    );
    Command::new("systemd-analyze")
}

/// The unit with its `ExecStart` program replaced by the binary under test, in a temp dir.
fn unit_for_test(dir: &Path) -> PathBuf {
    let exec = service("ExecStart");
    let program = exec.split_whitespace().next().expect("ExecStart program");
    let text = replace_existing(
        &repo_file(UNIT),
        &format!("ExecStart={program} "),
        &format!("ExecStart={} ", walstream_bin().display()),
    );
    let path = dir.join("walstream.service");
    std::fs::write(&path, text).expect("write unit");
    path
}

#[test]
fn unit_verifies_and_rates_well_with_systemd_analyze() {
    let (_keep, dir) = common::tempdir();
    let unit = unit_for_test(&dir);
    let mut verify = systemd_analyze();
    verify.arg("verify").arg(&unit);
    let out = run(&mut verify);
    // Unknown keys or bad values are warnings with exit 0: any output is a finding.
    assert!(
        out.stderr.is_empty() && out.stdout.is_empty(),
        "{}",
        describe(&verify, &out)
    );
    let mut security = systemd_analyze();
    security
        .args(["security", "--offline=yes", "--threshold=25"])
        .arg(&unit);
    run(&mut security);
}

#[test]
fn unit_is_hardened_and_fits_its_config() {
    for (key, want) in [
        ("Type", "simple"),
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
    ] {
        assert_eq!(service(key), want, "{key}=");
    }
    let user = service("User");
    assert!(
        !user.is_empty() && user != "root" && user != "0",
        "User={user}"
    );
    let env_file = service("EnvironmentFile");
    assert!(
        env_file
            .trim_start_matches('-')
            .starts_with("/etc/walstream/"),
        "EnvironmentFile={env_file}"
    );
    let exec = service("ExecStart");
    assert!(
        exec.ends_with(" replicate -config /etc/walstream/walstream.yml"),
        "ExecStart={exec}"
    );

    // The final sync's deadline plus the HTTP drain fit before SIGKILL.
    let config: serde_yaml::Value = serde_yaml::from_str(&repo_file(CONFIG)).expect("YAML");
    let deadline = match config["shutdown-sync-timeout"].as_str() {
        Some(d) => walstream::gofmt::parse_go_duration(d).expect("duration"),
        None => walstream::replicate::DEFAULT_SHUTDOWN_TIMEOUT,
    };
    let stop = Duration::from_secs(seconds(&service("TimeoutStopSec")));
    assert!(
        stop > deadline + walstream::replicate::SERVICE_DRAIN_MIN,
        "TimeoutStopSec {stop:?} leaves no room after the final sync ({deadline:?})"
    );

    // walstream writes beside every database: it must be under a writable path.
    let writable: Vec<PathBuf> = service("ReadWritePaths")
        .split_whitespace()
        .map(|p| PathBuf::from(p.trim_start_matches('-')))
        .collect();
    let dbs = config["dbs"].as_sequence().expect("dbs");
    assert!(!dbs.is_empty());
    for db in dbs {
        let path = Path::new(db["path"].as_str().expect("dbs[].path"));
        let folder = path.parent().expect("database folder");
        assert!(
            writable.iter().any(|w| folder.starts_with(w)),
            "{} is not under ReadWritePaths {writable:?}",
            folder.display()
        );
    }
}

/// One host's filesystem: config and data directories, the environment file's variables.
struct Host {
    _tmp: tempfile::TempDir,
    etc: PathBuf,
    data: PathBuf,
    env: Vec<(String, String)>,
}

impl Host {
    fn new(replica: &Path) -> Host {
        let (tmp, root) = common::tempdir();
        let (etc, data) = (root.join("etc"), root.join("data"));
        std::fs::create_dir_all(&etc).expect("mkdir etc");
        std::fs::create_dir_all(&data).expect("mkdir data");
        let mut host = Host {
            _tmp: tmp,
            etc,
            data,
            env: Vec::new(),
        };
        let config = replace_existing(&repo_file(CONFIG), HOST_ADDR, "addr: \"127.0.0.1:0\"");
        let config = host.map(&config);
        std::fs::write(host.etc.join("walstream.yml"), config).expect("write config");
        // The environment file's KEY=value lines, with the replica on a local folder.
        let url = format!("file://{}", replica.display());
        let text = repo_file(ENV_FILE);
        let mut replaced = false;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{ENV_FILE}: not KEY=value: {line:?}"));
            let value = if key == "WALSTREAM_REPLICA_URL" {
                replaced = true;
                url.clone()
            } else {
                value.to_string()
            };
            host.env.push((key.to_string(), value));
        }
        assert!(replaced, "{ENV_FILE} sets no WALSTREAM_REPLICA_URL");
        host
    }

    /// Host paths to this host's directories.
    fn map(&self, s: &str) -> String {
        s.replace("/etc/walstream/", &format!("{}/", self.etc.display()))
            .replace("/var/lib/app/", &format!("{}/", self.data.display()))
    }

    fn db(&self) -> PathBuf {
        self.data.join("app.db")
    }

    /// `walstream ARGS` from a host command line (program word dropped), mapped, with the
    /// environment file's variables and nothing else of ours.
    fn walstream(&self, words: &[&str]) -> Command {
        let mut cmd = Command::new(walstream_bin());
        cmd.args(words.iter().map(|w| self.map(w)))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

/// The application commits rows `from..from + n` (table t of the shared test schema).
fn app_writes(db: &Path, from: i64, n: i64) {
    let app = open_app(db);
    for id in from..from + n {
        insert(&app, id);
    }
}

/// The README's restore command: the words after `exec ` of its `walstream restore` line.
fn readme_restore() -> Vec<String> {
    let readme = repo_file("README.md");
    let line = readme
        .lines()
        .find(|l| l.contains("exec walstream restore "))
        .expect("the README's systemd restore command");
    let start = line.find("exec walstream restore ").expect("exec") + "exec ".len();
    let rest = &line[start..];
    let end = rest.find('\'').expect("closing quote of sh -c");
    rest[..end].split_whitespace().map(str::to_string).collect()
}

#[test]
fn exec_start_replicates_stops_on_kill_signal_and_readme_restore_brings_rows_back() {
    let replicas = tempfile::tempdir().expect("tempdir");
    let replica = replicas.path().join("app");
    let host = Host::new(&replica);
    app_writes(&host.db(), 0, 100);

    let exec = service("ExecStart");
    let words: Vec<&str> = exec.split_whitespace().collect();
    let (program, args) = words.split_first().expect("ExecStart");
    assert!(program.ends_with("/walstream"), "ExecStart={exec}");
    let log = host.data.with_file_name("walstream.log");
    let mut proc = Proc::spawn("walstream", host.walstream(args), &log);
    let base = proc.base_url();
    let client = reqwest::blocking::Client::new();
    poll_until(
        DEADLINE,
        "/readyz 200 (the replica holds the database)",
        || {
            client
                .get(format!("{base}/readyz"))
                .send()
                .is_ok_and(|r| r.status().as_u16() == 200)
        },
    );
    app_writes(&host.db(), 100, 20);

    // The unit's KillSignal: the final sync runs, and the exit is clean (no restart).
    let signal = match service("KillSignal").as_str() {
        "SIGTERM" => libc::SIGTERM,
        "SIGINT" => libc::SIGINT,
        other => panic!("KillSignal={other}"),
    };
    proc.signal(signal);
    let (status, text) = proc.wait();
    assert!(status.success(), "exit {status}; log:\n{text}");
    assert!(text.contains("walstream shut down"), "{text}");

    // The README's restore, after the damaged file was moved aside.
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", host.db().display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}.broken{suffix}", host.db().display()));
            std::fs::rename(&from, &to).expect("move aside");
        }
    }
    let words = readme_restore();
    assert_eq!(words[0], "walstream", "{words:?}");
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    let mut restore = host.walstream(&args);
    run(&mut restore);
    assert_eq!(restored_count(&host.db()), 120, "rows restored");
}
