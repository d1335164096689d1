//! Least outstanding requests: a slow worker gets clearly fewer calls.
//!
//! With least outstanding, each worker's share ends up inversely
//! proportional to its latency; the slow worker takes 250 ms a call so that
//! the ratio stays clear even when a loaded machine slows the fast one to
//! tens of milliseconds.

mod common;

use std::time::Duration;

use common::*;
use proto::SalesRequest;

#[test]
fn a_slow_worker_gets_clearly_fewer_calls() {
    let python = python();
    let dir = TempDir::new("balancing");
    python_stubs(&python, dir.path());
    let (fast, slow) = (free_port(), free_port());
    let _fast = start_py_worker(&python, dir.path(), fast, "fast", 0.0);
    let _slow = start_py_worker(&python, dir.path(), slow, "slow", 0.25);
    let (_lb, port) = start_lb(&[fast, slow], &[]);
    let outcomes = smol::block_on(async {
        let lb = connect(port).await;
        wait_serving(&lb, Duration::from_secs(5)).await;
        // Wait for both workers to be in rotation.
        smol::Timer::after(Duration::from_millis(500)).await;
        paced_load(&lb, 100, Duration::from_secs(3), &SalesRequest::default()).await
    });
    let count = |id: &str| {
        outcomes
            .iter()
            .filter(|o| o.result.as_deref() == Ok(id))
            .count()
    };
    let (f, s) = (count("fast"), count("slow"));
    eprintln!("calls served: fast {f}, slow {s}");
    assert_eq!(f + s, outcomes.len(), "every call served");
    assert!(s > 0, "the slow worker is in rotation");
    assert!(s * 4 < f, "slow served {s}, fast {f}");
}

#[test]
fn a_worker_whose_health_checks_time_out_never_enters_rotation() {
    let python = python();
    let dir = TempDir::new("health");
    python_stubs(&python, dir.path());
    let (good, mute) = (free_port(), free_port());
    let _good = start_py_worker(&python, dir.path(), good, "good", 0.0);
    let _mute = start_py_worker_with(&python, dir.path(), mute, "mute", &["--health-delay", "1"]);
    let (_lb, port) = start_lb(&[good, mute], &["--health-timeout", "100ms"]);
    smol::block_on(async {
        let lb = connect(port).await;
        wait_serving(&lb, Duration::from_secs(5)).await;
        smol::Timer::after(Duration::from_millis(700)).await;
        for _ in 0..50 {
            let r = metrics(&lb, &SalesRequest::default()).await.expect("call");
            assert_eq!(r.region_processed, "good");
        }
    });
}
