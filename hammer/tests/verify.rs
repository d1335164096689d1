//! --verify: replies recomputed from the database agree with a real worker (gRPC and
//! AMQP), and disagree with a server that makes numbers up.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;

#[test]
fn a_real_worker_over_grpc_agrees_with_the_database() {
    let db = test_db();
    let (_worker, addr) = start_worker(db);
    let target = addr.to_string();
    for mix in ["random", "seed"] {
        let run = hammer(&[
            "grpc",
            "--target",
            &target,
            "--db",
            db.to_str().unwrap(),
            "--mix",
            mix,
            "--rate",
            "100",
            "--duration",
            "2s",
            "--verify",
            "60",
            "--seed",
            "4",
            "--concurrency",
            "4",
        ]);
        assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
        let j = &run.json;
        assert_eq!(u(j, "ok"), u(j, "sent"), "{mix}: {j:#}");
        assert!(u(&j["verify"], "checked") >= 50, "{mix}: {j:#}");
        assert_eq!(u(&j["verify"], "mismatches"), 0, "{mix}: {}", run.stderr);
        assert!(run.stdout.contains("0 mismatches"), "{}", run.stdout);
    }
}

#[test]
fn made_up_answers_are_caught() {
    let server = FakeServer::start(Arc::new(Instant_));
    let target = server.addr.to_string();
    let db = test_db();
    let run = hammer(&[
        "grpc",
        "--target",
        &target,
        "--db",
        db.to_str().unwrap(),
        "--rate",
        "100",
        "--duration",
        "1s",
        "--verify",
        "20",
        "--seed",
        "5",
    ]);
    let j = &run.json;
    assert_eq!(u(&j["verify"], "checked"), 20, "{j:#}");
    // The fake always says one sale of 42; the seed mix's windows hold many more.
    assert!(u(&j["verify"], "mismatches") >= 15, "{j:#}");
    assert!(!run.status.success(), "mismatches must fail the run");
    assert!(run.stderr.contains("disagree"), "{}", run.stderr);
}

#[test]
fn a_real_mq_worker_over_amqp_agrees_with_the_database() {
    let db = test_db();
    let queue = TestQueue::new("test");
    let mut cmd = Command::new(bin("mq-worker"));
    cmd.args([
        "--queue",
        &queue.name,
        "--threads",
        "2",
        "--stats-interval",
        "0",
        "--db",
    ])
    .arg(db);
    let (_mq_worker, _) = Proc::start(cmd, "consumers attached to");
    for encoding in ["proto", "json"] {
        let run = hammer(&[
            "amqp",
            "--queue",
            &queue.name,
            "--encoding",
            encoding,
            "--db",
            db.to_str().unwrap(),
            "--mix",
            "random",
            "--rate",
            "100",
            "--duration",
            "1500ms",
            "--verify",
            "40",
            "--concurrency",
            "2",
            "--seed",
            "6",
        ]);
        assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
        let j = &run.json;
        assert_eq!(j["transport"], "amqp");
        assert_eq!(u(j, "ok"), u(j, "sent"), "{encoding}: {j:#}");
        assert!(u(j, "sent").abs_diff(150) <= 2);
        assert!(u(&j["verify"], "checked") >= 35, "{encoding}: {j:#}");
        assert_eq!(
            u(&j["verify"], "mismatches"),
            0,
            "{encoding}: {}",
            run.stderr
        );
    }
}
