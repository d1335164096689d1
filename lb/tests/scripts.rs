//! The scripts a newcomer runs: `scripts/rpc-cluster.sh` starts real workers
//! and the LB from this build's binaries, serves through them and stops them
//! cleanly; every script answers `--help` without building or running
//! anything.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Runs `cmd` to its end, killing it (and failing) after `within`.
fn run(cmd: &mut Command, within: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(within) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{cmd:?} still running after {within:?}");
        }
    }
}

/// A port `p` with `p` and `p + 1` both free right now.
fn two_free_ports() -> u16 {
    for _ in 0..100 {
        let p = free_port();
        if p < u16::MAX && TcpListener::bind(local(p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two consecutive free ports");
}

fn pid_of(file: &Path) -> u32 {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .parse()
        .expect("pid")
}

fn running(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
}

#[test]
fn rpc_cluster_script_starts_serves_and_stops() {
    let dir = TempDir::new("script");
    let run_dir = dir.path().join("run");
    let db = dir.path().join("database.db");
    let lb_port = free_port();
    let worker_port = two_free_ports();
    let bin_dir = bin("lb").parent().expect("bin dir").to_path_buf();
    for name in ["worker", "seeder"] {
        bin(name);
    }
    let script = repo_root().join("scripts/rpc-cluster.sh");
    let cluster = |args: &[&str]| {
        let mut cmd = Command::new(&script);
        cmd.args(args)
            .env("BIN_DIR", &bin_dir)
            .env("RUN_DIR", &run_dir)
            .env("LB_PORT", lb_port.to_string())
            .env("WORKER_PORT", worker_port.to_string())
            .env("WORKER_THREADS", "2")
            .env("RUST_LOG", "info");
        run(&mut cmd, Duration::from_secs(60))
    };
    let text = |out: &Output| {
        format!(
            "status {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };

    // Stops whatever the script started, even when an assertion fails.
    struct Stop<F: Fn()>(F);
    impl<F: Fn()> Drop for Stop<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let _stop = Stop(|| {
        let _ = cluster(&["stop"]);
    });

    let out = cluster(&[
        "start",
        "--workers",
        "2",
        "--db",
        db.to_str().unwrap(),
        "--sales",
        "2000",
    ]);
    assert!(out.status.success(), "start failed: {}", text(&out));
    assert!(db.exists(), "start did not seed {}", db.display());
    let pids: Vec<u32> = ["lb", "worker-1", "worker-2"]
        .iter()
        .map(|n| pid_of(&run_dir.join(format!("{n}.pid"))))
        .collect();
    assert!(
        pids.iter().all(|&p| running(p)),
        "not all started: {pids:?}"
    );

    let out = cluster(&["status"]);
    let status = text(&out);
    assert!(out.status.success(), "status failed: {status}");
    for name in ["lb", "worker-1", "worker-2"] {
        assert!(
            status
                .lines()
                .any(|l| l.starts_with(name) && l.contains("running")),
            "status does not show {name} running: {status}"
        );
    }

    let out = cluster(&["start", "--workers", "2", "--db", db.to_str().unwrap()]);
    assert!(
        !out.status.success() && text(&out).contains("already running"),
        "a second start should refuse: {}",
        text(&out)
    );
    assert!(
        pids.iter().all(|&p| running(p)),
        "a refused start stopped something"
    );

    // Calls through the LB equal each worker's own answers (but for the
    // worker's id in region_processed), and both workers answer some.
    smol::block_on(async {
        let lb = connect(lb_port).await;
        let w1 = connect(worker_port).await;
        let w2 = connect(worker_port + 1).await;
        let mut served = std::collections::BTreeSet::new();
        for _ in 0..5 {
            for req in sample_requests() {
                let mut via_lb = metrics(&lb, &req).await.expect("call through the LB");
                served.insert(std::mem::take(&mut via_lb.region_processed));
                for (id, w) in [("worker-1", &w1), ("worker-2", &w2)] {
                    let mut direct = metrics(w, &req).await.expect(id);
                    assert_eq!(direct.region_processed, id);
                    direct.region_processed.clear();
                    assert_eq!(via_lb, direct, "{req:?}");
                }
            }
        }
        assert_eq!(
            served.into_iter().collect::<Vec<_>>(),
            ["worker-1", "worker-2"],
            "workers that answered through the LB"
        );
    });

    let out = cluster(&["stop"]);
    assert!(out.status.success(), "stop failed: {}", text(&out));
    let start = Instant::now();
    while pids.iter().any(|&p| running(p)) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still running after stop: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for port in [lb_port, worker_port, worker_port + 1] {
        assert!(
            std::net::TcpStream::connect(local(port)).is_err(),
            "something still listens on {port} after stop"
        );
    }
    for name in ["lb", "worker-1", "worker-2"] {
        assert!(
            !run_dir.join(format!("{name}.pid")).exists(),
            "stop left {name}.pid behind"
        );
        // Stopped by SIGTERM, cleanly: each logs its last line itself.
        let log = std::fs::read_to_string(run_dir.join(format!("{name}.log"))).expect("log");
        assert!(
            log.lines().last().is_some_and(|l| l.ends_with("stopped")),
            "{name} did not stop cleanly; its log:\n{log}"
        );
    }
    let out = cluster(&["status"]);
    assert!(!out.status.success(), "status after stop: {}", text(&out));
}

#[test]
fn every_script_answers_help_without_building() {
    // A `cargo` that fails first on PATH: a script that ignores --help and
    // goes on to build (or to run the test suite) fails here instead.
    let dir = TempDir::new("help");
    let shim = dir.path().join("cargo");
    std::fs::write(&shim, "#!/bin/sh\necho 'cargo called' >&2\nexit 97\n").expect("write shim");
    Command::new("chmod")
        .arg("+x")
        .arg(&shim)
        .status()
        .expect("chmod");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut scripts: Vec<PathBuf> = std::fs::read_dir(repo_root().join("scripts"))
        .expect("scripts/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sh"))
        .filter(|p| p.file_name().is_some_and(|n| n != "lib.sh"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 10, "scripts/ holds {scripts:?}");
    for script in scripts {
        let name = script.file_name().unwrap().to_string_lossy().into_owned();
        let out = run(
            Command::new(&script)
                .arg("--help")
                .env("PATH", &path)
                .env("RUN_DIR", dir.path()),
            Duration::from_secs(20),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{name} --help: {:?}\n{stdout}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("scripts/{name}")),
            "{name} --help does not show how to run it:\n{stdout}"
        );
    }
}
