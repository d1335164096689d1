//! The `seeder` binary: flags, exit codes, messages, and no partial file on
//! any failure, including a signal mid-run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "seeder-cli-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn seeder(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seeder"))
        .args(args)
        .output()
        .expect("run seeder")
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn writes_the_database_and_a_summary() {
    let dir = TempDir::new("ok");
    let db = dir.0.join("database.db");
    let out = seeder(&[
        "--db",
        db.to_str().unwrap(),
        "--sales",
        "500",
        "--seed",
        "3",
    ]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("500 sales") && stderr.contains("rows/s"),
        "{stderr}"
    );
    assert!(db.is_file());
    assert_eq!(entries(&dir.0), 1);
}

#[test]
fn bad_flags_exit_non_zero_without_panic() {
    for args in [
        &["--sales", "-5"][..],
        &["--sales", "many"],
        &["--seed"],
        &["--frobnicate"],
    ] {
        let out = seeder(args);
        assert!(!out.status.success(), "{args:?}");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains("panicked"), "{args:?}: {text}");
        assert!(!text.is_empty(), "{args:?}: no message");
    }
    let help = seeder(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--sales"));
}

#[test]
fn unwritable_path_is_a_clear_error() {
    let dir = TempDir::new("unwritable");
    let db = dir.0.join("missing-dir/database.db");
    let out = seeder(&["--db", db.to_str().unwrap(), "--sales", "10"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("missing-dir") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert_eq!(entries(&dir.0), 0);
}

#[test]
fn a_signal_mid_run_leaves_no_file() {
    let dir = TempDir::new("signal");
    let db = dir.0.join("database.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_seeder"))
        .args(["--db", db.to_str().unwrap(), "--sales", "5000000"])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn seeder");
    // Wait until the temporary file exists, i.e. the run is under way.
    let started = Instant::now();
    while entries(&dir.0) == 0 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1), "{status:?}");
    assert_eq!(entries(&dir.0), 0, "temporary file left behind");
}
