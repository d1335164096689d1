//! Failover under steady load: a worker killed mid-run costs the client
//! nothing (its calls are retried on the other), comes back into rotation
//! within two health intervals of restarting, and with every worker down the
//! LB answers UNAVAILABLE at once, then serves again when one returns. A
//! worker stopped gracefully (GOAWAY, then its listener closes) costs nothing
//! either, and one that passes its health checks but answers UNAVAILABLE is
//! ejected on each failed call and its calls retried on the other.

mod common;

use std::time::{Duration, Instant};

use common::*;
use proto::grpc::Code;
use proto::{SalesRequest, ServingStatus};

const HEALTH_INTERVAL: Duration = Duration::from_millis(200);

/// Starts a paced load (see `paced_load`) in the background, from now.
fn spawn_load(
    lb: &proto::grpc::Channel,
    req: &SalesRequest,
    rate: u32,
    length: Duration,
) -> smol::Task<Vec<Outcome>> {
    let (lb, req) = (lb.clone(), req.clone());
    smol::spawn(async move { paced_load(&lb, rate, length, &req).await })
}

/// Connects to the LB on `port`, waits until it is SERVING, then calls it
/// until two different workers have answered.
async fn connect_when_both_serve(port: u16, req: &SalesRequest) -> proto::grpc::Channel {
    let lb = connect(port).await;
    wait_serving(&lb, Duration::from_secs(5)).await;
    let start = Instant::now();
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "only {seen:?} serve"
        );
        seen.insert(
            metrics(&lb, req)
                .await
                .expect("warm-up call")
                .region_processed,
        );
    }
    lb
}

#[test]
fn a_killed_worker_costs_no_call_and_returns_when_restarted() {
    let dir = TempDir::new("failover");
    let db = seed_db(&dir);
    let (pa, pb) = (free_port(), free_port());
    let mut a = start_worker(&db, pa, "w-a");
    let mut b = start_worker(&db, pb, "w-b");
    let (_lb, port) = start_lb(&[pa, pb], &[]);
    let req = SalesRequest {
        region: "Europe".into(),
        category: "Books".into(),
        ..Default::default()
    };

    smol::block_on(async {
        let lb = connect_when_both_serve(port, &req).await;

        // 250 calls/s for 6 s; kill w-a at 1.5 s, restart it at 3 s.
        let t0 = Instant::now();
        let load = spawn_load(&lb, &req, 250, Duration::from_secs(6));
        smol::Timer::at(t0 + Duration::from_millis(1500)).await;
        a.kill();
        let killed = t0.elapsed();
        smol::Timer::at(t0 + Duration::from_secs(3)).await;
        let db_a = db.clone();
        a = smol::unblock(move || start_worker(&db_a, pa, "w-a")).await;
        let ready = t0.elapsed();
        let outcomes = load.await;

        assert_no_call_failed(&outcomes, "");
        let by_a = |o: &&Outcome| o.result.as_deref() == Ok("w-a");
        let dead_time = killed + Duration::from_millis(50)..ready;
        assert!(
            !outcomes
                .iter()
                .filter(|o| dead_time.contains(&o.due))
                .any(|o| by_a(&o)),
            "w-a served while dead"
        );
        let back = outcomes
            .iter()
            .filter(|o| o.due >= ready)
            .find(by_a)
            .map(|o| o.due)
            .expect("w-a never served again after its restart");
        assert!(
            back - ready <= 2 * HEALTH_INTERVAL,
            "w-a back in rotation {:?} after restarting",
            back - ready
        );

        // Every worker down: UNAVAILABLE at once, and the LB says NOT_SERVING.
        a.kill();
        b.kill();
        for _ in 0..3 {
            let t = Instant::now();
            let err = metrics(&lb, &req).await.expect_err("all workers down");
            assert!(
                t.elapsed() < Duration::from_millis(100),
                "{:?}",
                t.elapsed()
            );
            assert_eq!(err.code, Code::Unavailable, "{err}");
        }
        assert_eq!(health(&lb).await, Ok(ServingStatus::NotServing as i32));
        let err = metrics(&lb, &req).await.expect_err("all workers down");
        assert!(err.message.contains("no healthy worker among 2"), "{err}");

        // One returns: serving again.
        let db_b = db.clone();
        let _b = smol::unblock(move || start_worker(&db_b, pb, "w-b")).await;
        wait_serving(&lb, 4 * HEALTH_INTERVAL + Duration::from_secs(1)).await;
        let reply = metrics(&lb, &req).await.expect("served again");
        assert_eq!(reply.region_processed, "w-b");
    });
}

#[test]
fn a_worker_stopped_with_sigterm_under_load_costs_no_call() {
    let dir = TempDir::new("drain");
    let db = seed_db(&dir);
    let (pa, pb) = (free_port(), free_port());
    let mut a = start_worker(&db, pa, "w-a");
    let _b = start_worker(&db, pb, "w-b");
    let (_lb, port) = start_lb(&[pa, pb], &[]);
    let req = SalesRequest {
        category: "Books".into(),
        ..Default::default()
    };

    smol::block_on(async {
        let lb = connect_when_both_serve(port, &req).await;

        // 250 calls/s for 4 s; SIGTERM w-a at 1.5 s.
        let t0 = Instant::now();
        let load = spawn_load(&lb, &req, 250, Duration::from_secs(4));
        smol::Timer::at(t0 + Duration::from_millis(1500)).await;
        let signalled = t0.elapsed();
        let (code, _a) = smol::unblock(move || {
            let code = a.signal_and_wait(15, Duration::from_secs(5));
            (code, a)
        })
        .await;
        let exited = t0.elapsed();
        assert_eq!(code, Some(0), "w-a's exit status after SIGTERM");
        let outcomes = load.await;

        assert_no_call_failed(
            &outcomes,
            &format!(" (SIGTERM at {signalled:?}, exit at {exited:?})"),
        );
        let by = |id: &str, from: Duration, to: Duration| {
            outcomes
                .iter()
                .filter(|o| (from..to).contains(&o.due))
                .filter(|o| o.result.as_deref() == Ok(id))
                .count()
        };
        assert!(by("w-a", Duration::ZERO, signalled) > 0, "w-a never served");
        assert!(by("w-b", exited, Duration::from_secs(4)) > 0);
        assert_eq!(by("w-a", exited, Duration::from_secs(4)), 0);
    });
}

#[test]
fn a_worker_answering_unavailable_is_ejected_on_each_failure_and_its_calls_retried() {
    let python = python();
    let dir = TempDir::new("unavailable");
    python_stubs(&python, dir.path());
    let (pa, pb) = (free_port(), free_port());
    let _a = start_py_worker_with(&python, dir.path(), pa, "ok", &[]);
    let _b = start_py_worker_with(&python, dir.path(), pb, "refuses", &["--unavailable"]);
    let log = dir.path().join("lb.log");
    let (mut lb_proc, port) = start_lb_logging(&[pa, pb], &["--stats-interval", "200ms"], &log);
    wait_for_line(
        &log,
        &format!("worker 127.0.0.1:{pa} up"),
        Duration::from_secs(5),
    );
    wait_for_line(
        &log,
        &format!("worker 127.0.0.1:{pb} up"),
        Duration::from_secs(5),
    );

    // 100 calls/s for 3 s. Were "refuses" kept in rotation, about half the
    // calls would try it first; ejected on each failure, it gets one call
    // per health interval at most, when a check has let it back in.
    const LENGTH: Duration = Duration::from_secs(3);
    let outcomes = smol::block_on(async {
        let lb = connect(port).await;
        paced_load(&lb, 100, LENGTH, &SalesRequest::default()).await
    });
    let wrong: Vec<_> = outcomes
        .iter()
        .filter(|o| o.result.as_deref() != Ok("ok"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} calls not answered by \"ok\", first {:?}",
        wrong.len(),
        outcomes.len(),
        wrong.first()
    );

    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lb_proc.signal_and_wait(15, Duration::from_secs(5)), Some(0));
    let text = std::fs::read_to_string(&log).expect("read the LB's log");
    let (a, b) = (last_summary(&text, pa), last_summary(&text, pb));
    assert_eq!(a.calls, outcomes.len() as u64, "{a:?}");
    assert_eq!(a.errors, 0, "{a:?}");
    assert!(b.calls > 0, "\"refuses\" was never tried: {b:?}");
    assert_eq!(b.errors, b.calls, "{b:?}");
    let most = 2 * (LENGTH.as_millis() / HEALTH_INTERVAL.as_millis()) as u64 + 5;
    assert!(
        b.calls <= most,
        "\"refuses\" was tried {} times in {LENGTH:?} (at most {most} if ejected at once)",
        b.calls
    );
    assert!(
        text.lines()
            .any(|l| l.contains(&format!("worker 127.0.0.1:{pb} down: call failed"))),
        "no ejection logged:\n{text}"
    );
}
