//! The commands of deploy/base's StatefulSet, run with the real binary: the `restore` init
//! container, the `replicate` sidecar with the base config (deploy/base/walstream.yml), its
//! probes and its preStop hook. Pod paths are mapped to temporary directories (`/data/` → a
//! volume directory, `/etc/walstream/` → a config directory), the replica URL (set by the
//! overlays) to a `file://` directory, and the config's `addr` to a loopback port.
//!
//! What must stay true: arguments, probe paths, hook command and config are read from the
//! manifests, never copied here; every mapping asserts that the text it replaces exists, so a
//! changed manifest fails this test instead of being silently tested in an old form.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::sqlite::restored_count;
use common::{
    DEADLINE, Proc, describe, poll_until, replace_existing, repo_file, run, unique_name,
    walstream_bin,
};
use serde_yaml::Value;

const POD_ADDR: &str = "addr: \":9090\"";
const POD_API: &str = "http://127.0.0.1:9090";

/// The pod template's containers (init and main) of deploy/base/statefulset.yaml.
fn pod_container(name: &str) -> Value {
    let sts: Value = serde_yaml::from_str(&repo_file("deploy/base/statefulset.yaml"))
        .expect("deploy/base/statefulset.yaml is YAML");
    let spec = &sts["spec"]["template"]["spec"];
    let all = [&spec["initContainers"], &spec["containers"]];
    all.iter()
        .filter_map(|v| v.as_sequence())
        .flatten()
        .find(|c| c["name"].as_str() == Some(name))
        .cloned()
        .unwrap_or_else(|| panic!("no container {name:?} in deploy/base/statefulset.yaml"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("expected a list, got {v:?}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

/// One pod's filesystem: the data volume and the mounted config directory.
struct Pod {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    etc: PathBuf,
    replica_url: String,
    token: String,
}

impl Pod {
    /// A pod whose replica is `replica` and whose config is deploy/base/walstream.yml with
    /// `addr` on a free loopback port.
    fn new(replica: &Path) -> Pod {
        let (tmp, root) = common::tempdir();
        let (data, etc) = (root.join("data"), root.join("etc"));
        std::fs::create_dir_all(&data).expect("mkdir data");
        std::fs::create_dir_all(&etc).expect("mkdir etc");
        let pod = Pod {
            _tmp: tmp,
            data,
            etc,
            replica_url: format!("file://{}", replica.display()),
            token: unique_name("token"),
        };
        let config = replace_existing(
            &repo_file("deploy/base/walstream.yml"),
            POD_ADDR,
            "addr: \"127.0.0.1:0\"",
        );
        std::fs::write(pod.etc.join("walstream.yml"), pod.map(&config)).expect("write config");
        pod
    }

    fn db(&self) -> PathBuf {
        self.data.join("app.db")
    }

    /// Pod paths to this pod's directories.
    fn map(&self, s: &str) -> String {
        s.replace("/data/", &format!("{}/", self.data.display()))
            .replace("/etc/walstream/", &format!("{}/", self.etc.display()))
    }

    /// `walstream ARGS` as the container `name` runs it (args mapped, overlay environment).
    fn walstream(&self, name: &str) -> Command {
        let args: Vec<String> = strings(&pod_container(name)["args"])
            .iter()
            .map(|a| self.map(a))
            .collect();
        let mut cmd = Command::new(walstream_bin());
        cmd.args(args)
            .env("WALSTREAM_REPLICA_URL", &self.replica_url)
            .env("WALSTREAM_HTTP_TOKEN", &self.token);
        cmd
    }
}

/// The application's side: a WAL-mode database with `rows` rows in table t.
fn app_writes(db: &Path, from: i64, rows: i64) {
    let conn = rusqlite::Connection::open(db).expect("open app db");
    conn.pragma_update(None, "journal_mode", "wal")
        .expect("wal mode");
    conn.execute_batch("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        .expect("create table");
    for id in from..from + rows {
        conn.execute(
            "INSERT INTO t (id, v) VALUES (?1, ?2)",
            (id, format!("row {id}")),
        )
        .expect("insert");
    }
}

/// The running sidecar (the shared process wrapper) and its HTTP base URL.
struct Sidecar {
    proc: Proc,
    base_url: String,
}

impl Sidecar {
    fn start(pod: &Pod) -> Sidecar {
        let log = pod.data.with_file_name("sidecar.log");
        let mut proc = Proc::spawn("sidecar", pod.walstream("walstream"), &log);
        let base_url = proc.base_url();
        Sidecar { proc, base_url }
    }

    fn get(&self, path: &str) -> Option<u16> {
        let client = reqwest::blocking::Client::new();
        let resp = client.get(format!("{}{path}", self.base_url)).send().ok()?;
        Some(resp.status().as_u16())
    }

    /// SIGTERM (as the kubelet sends), then the exit status.
    fn terminate(self) -> std::process::ExitStatus {
        self.proc.terminate().0
    }
}

fn probe_path(container: &Value, probe: &str) -> String {
    container[probe]["httpGet"]["path"]
        .as_str()
        .unwrap_or_else(|| panic!("{probe} has no httpGet.path"))
        .to_string()
}

/// Runs the sidecar's preStop exec command against `sidecar` with `token`: the image's
/// `walstream` is the binary under test and the pod's address is the sidecar's.
fn run_prestop(sidecar: &Sidecar, token: &str) -> std::process::Output {
    let command = strings(&pod_container("walstream")["lifecycle"]["preStop"]["exec"]["command"]);
    let (program, args) = command.split_first().expect("preStop command is not empty");
    assert_eq!(
        program, "walstream",
        "preStop runs the image's walstream: {command:?}"
    );
    assert!(
        args.iter().any(|a| a == POD_API),
        "preStop command does not call {POD_API}: {command:?}"
    );
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace(POD_API, &sidecar.base_url))
        .collect();
    let mut cmd = Command::new(walstream_bin());
    // Only what the container has: PATH and the token from the Secret.
    cmd.args(&args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("WALSTREAM_HTTP_TOKEN", token);
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run preStop {command:?}: {e}"))
}

#[test]
fn restore_init_container_leaves_a_fresh_install_alone() {
    let replicas = tempfile::tempdir().expect("tempdir");
    let pod = Pod::new(&replicas.path().join("empty"));
    run(&mut pod.walstream("restore"));
    assert!(
        !pod.db().exists(),
        "restore created {} without a backup",
        pod.db().display()
    );
}

#[test]
fn sidecar_replicates_prestop_syncs_and_init_container_restores() {
    let replicas = tempfile::tempdir().expect("tempdir");
    let replica = replicas.path().join("app");
    let first = Pod::new(&replica);
    app_writes(&first.db(), 0, 100);
    let sidecar = Sidecar::start(&first);
    let container = pod_container("walstream");
    let (live, ready) = (
        probe_path(&container, "livenessProbe"),
        probe_path(&container, "readinessProbe"),
    );
    assert_eq!(sidecar.get(&live), Some(200), "liveness {live}");
    poll_until(DEADLINE, "readiness probe 200", || {
        sidecar.get(&ready) == Some(200)
    });

    // Rows written just before shutdown are in the replica once the preStop hook returns.
    app_writes(&first.db(), 100, 50);
    let wrong = run_prestop(&sidecar, "not-the-token");
    assert!(
        !wrong.status.success(),
        "preStop succeeded with a wrong token"
    );
    let hook = run_prestop(&sidecar, &first.token);
    assert!(
        hook.status.success(),
        "preStop failed: {}\n{}",
        String::from_utf8_lossy(&hook.stdout),
        String::from_utf8_lossy(&hook.stderr)
    );
    let second = Pod::new(&replica);
    run(&mut second.walstream("restore"));
    assert_eq!(
        restored_count(&second.db()),
        150,
        "rows restored into a new pod's empty volume"
    );

    let status = sidecar.terminate();
    assert!(
        status.success(),
        "sidecar exit status after SIGTERM: {status}"
    );

    // The init container of a restarted pod leaves the existing database alone: the local
    // database has a row the replica lacks, and keeps it.
    app_writes(&second.db(), 150, 1);
    let mut again = second.walstream("restore");
    let out = run(&mut again);
    assert_eq!(
        restored_count(&second.db()),
        151,
        "{}",
        describe(&again, &out)
    );
}
