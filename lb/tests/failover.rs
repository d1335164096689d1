//! Failover under steady load: a worker killed mid-run costs the client
//! nothing (its calls are retried on the other), comes back into rotation
//! within two health intervals of restarting, and with every worker down the
//! LB answers UNAVAILABLE at once, then serves again when one returns.

mod common;

use std::time::{Duration, Instant};

use common::*;
use proto::grpc::Code;
use proto::{SalesRequest, ServingStatus};

const HEALTH_INTERVAL: Duration = Duration::from_millis(200);

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
        let lb = connect(port).await;
        wait_serving(&lb, Duration::from_secs(5)).await;
        // Both in rotation before the load starts.
        let start = Instant::now();
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < 2 {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "only {seen:?} serve"
            );
            seen.insert(
                metrics(&lb, &req)
                    .await
                    .expect("warm-up call")
                    .region_processed,
            );
        }

        // 250 calls/s for 6 s; kill w-a at 1.5 s, restart it at 3 s.
        let t0 = Instant::now();
        let load = smol::spawn({
            let (lb, req) = (lb.clone(), req.clone());
            async move { paced_load(&lb, 250, Duration::from_secs(6), &req).await }
        });
        smol::Timer::at(t0 + Duration::from_millis(1500)).await;
        a.kill();
        let killed = t0.elapsed();
        smol::Timer::at(t0 + Duration::from_secs(3)).await;
        let db_a = db.clone();
        a = smol::unblock(move || start_worker(&db_a, pa, "w-a")).await;
        let ready = t0.elapsed();
        let outcomes = load.await;

        let failed: Vec<_> = outcomes.iter().filter(|o| o.result.is_err()).collect();
        assert!(
            failed.is_empty(),
            "{} of {} calls failed, first {:?}",
            failed.len(),
            outcomes.len(),
            failed.first()
        );
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
