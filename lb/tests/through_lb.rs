//! Calls through the LB get exactly what the workers (and the query engine)
//! answer: results, statuses, unknown methods; and the LB's own health.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use proto::grpc::Code;
use proto::{paths, Empty, SalesRequest, ServingStatus, SystemStats};

#[test]
fn results_through_the_lb_equal_the_workers_and_the_engines() {
    let dir = TempDir::new("equal");
    let db = seed_db(&dir);
    let (pa, pb) = (free_port(), free_port());
    let _a = start_worker(&db, pa, "w-a");
    let _b = start_worker(&db, pb, "w-b");
    let (_lb, port) = start_lb(&[pa, pb], &[]);
    let mut engine = worker::QueryConn::open(&db).expect("open db");
    smol::block_on(async {
        let lb = connect(port).await;
        let direct = connect(pa).await;
        wait_serving(&lb, Duration::from_secs(5)).await;
        let mut served_by = std::collections::BTreeSet::new();
        for _ in 0..4 {
            for req in sample_requests() {
                let via = metrics(&lb, &req).await.expect("through the LB");
                let straight = metrics(&direct, &req).await.expect("from a worker");
                let engine = engine.run(&req).expect("from the engine");
                let numbers = |r: &proto::SalesResponse| {
                    (r.total_sales_count, r.total_revenue, r.average_amount)
                };
                assert_eq!(numbers(&via), numbers(&straight), "{req:?}");
                assert_eq!(
                    numbers(&via),
                    (engine.count, engine.revenue, engine.average),
                    "{req:?}"
                );
                served_by.insert(via.region_processed);
            }
        }
        assert!(
            served_by.iter().all(|w| w == "w-a" || w == "w-b"),
            "{served_by:?}"
        );

        let stats: SystemStats = lb
            .call(
                paths::GET_SYSTEM_STATS,
                &Empty {},
                Some(Duration::from_secs(2)),
            )
            .await
            .expect("GetSystemStats through the LB");
        assert!(stats.memory_usage > 0, "{stats:?}");

        // Application statuses pass through unchanged and do not eject anyone.
        for _ in 0..10 {
            let bad = SalesRequest {
                start_date: "yesterday".into(),
                ..Default::default()
            };
            let err = metrics(&lb, &bad).await.expect_err("invalid date");
            assert_eq!(err.code, Code::InvalidArgument, "{err}");
            assert!(err.message.contains("start_date"), "{err}");
        }
        let err = lb
            .unary(
                "/protocol.SimulationService/Nope",
                Bytes::new(),
                Some(Duration::from_secs(2)),
            )
            .await
            .expect_err("unknown method");
        assert_eq!(err.code, Code::Unimplemented, "{err}");
        assert_eq!(health(&lb).await, Ok(ServingStatus::Serving as i32));
        assert!(metrics(&lb, &SalesRequest::default()).await.is_ok());
    });
}

#[test]
fn without_a_healthy_worker_the_lb_answers_unavailable_at_once() {
    let dead = free_port();
    let (_lb, port) = start_lb(&[dead], &[]);
    smol::block_on(async {
        let lb = connect(port).await;
        assert_eq!(health(&lb).await, Ok(ServingStatus::NotServing as i32));
        let start = Instant::now();
        let err = metrics(&lb, &SalesRequest::default())
            .await
            .expect_err("no worker");
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(err.code, Code::Unavailable, "{err}");
        assert!(err.message.contains("no healthy worker among 1"), "{err}");
    });
}
