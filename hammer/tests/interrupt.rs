//! Ctrl-C stops sending, drains, and still reports what was measured.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn ctrl_c_reports_the_part_that_ran() {
    let server = FakeServer::start(Arc::new(Instant_));
    let json = scratch("interrupted.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hammer"))
        .args([
            "grpc",
            "--method",
            "health",
            "--rate",
            "200",
            "--duration",
            "60s",
            "-q",
        ])
        .args(["--target", &server.addr.to_string(), "--json"])
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hammer");
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = Instant::now();
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("hammer did not stop within 10 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let duration = f(&j, "duration_s");
    assert!((0.8..=3.0).contains(&duration), "{j:#}");
    let sent = u(&j, "sent");
    assert_eq!(u(&j, "scheduled"), sent, "{j:#}");
    assert!((sent as f64 - 200.0 * duration).abs() <= 3.0, "{j:#}");
    assert_eq!(u(&j, "ok"), sent);
    assert!((f(&j, "achieved_rps") - 200.0).abs() < 10.0, "{j:#}");
}
