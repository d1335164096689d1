//! Several gRPC targets: hammer deals its connections out to them in turn, so each
//! gets an equal share of the calls (the baseline of workers called without the LB).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use proto::grpc::{Handler, Request};

/// Answers at once and counts the calls it answered.
#[derive(Default)]
struct Counting(AtomicUsize);

impl Handler for Counting {
    fn call(&self, _req: Request) -> Reply {
        self.0.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Ok(fake_reply()) })
    }
}

#[test]
fn calls_are_shared_equally_between_targets() {
    let (first, second) = (Arc::new(Counting::default()), Arc::new(Counting::default()));
    let servers = [
        FakeServer::start(first.clone()),
        FakeServer::start(second.clone()),
    ];
    let targets = format!("{},{}", servers[0].addr, servers[1].addr);
    let db = test_db();
    let run = hammer(&[
        "grpc",
        "--target",
        &targets,
        "--db",
        db.to_str().unwrap(),
        "--rate",
        "300",
        "--duration",
        "1s",
        "--concurrency",
        "4",
    ]);
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    let j = &run.json;
    assert_eq!(j["target"], targets.as_str(), "{j:#}");
    assert_eq!(u(j, "ok"), u(j, "sent"), "{j:#}");
    let (a, b) = (
        first.0.load(Ordering::Relaxed),
        second.0.load(Ordering::Relaxed),
    );
    // Round-robin over four connections dealt out a, b, a, b: equal shares,
    // give or take the one call that ends an odd count.
    assert_eq!(a + b, u(j, "sent") as usize, "{j:#}");
    assert!(a.abs_diff(b) <= 1, "{a} and {b} calls");
}

#[test]
fn fewer_connections_than_targets_is_refused() {
    let server = FakeServer::start(Arc::new(Instant_));
    let targets = format!("{},{}", server.addr, server.addr);
    let db = test_db();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hammer"))
        .args([
            "grpc",
            "--target",
            &targets,
            "--concurrency",
            "1",
            "--duration",
            "1s",
        ])
        .arg("--db")
        .arg(db)
        .output()
        .expect("cannot run hammer");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--concurrency 1"), "{err}");
}
