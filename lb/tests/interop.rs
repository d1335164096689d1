//! Interoperability with grpcio: a Python client calling our LB, and Python
//! servers standing as workers behind it.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use proto::{paths, Empty, SalesRequest, ServingStatus, SystemStats};

#[test]
fn a_grpcio_client_gets_through_the_lb_what_a_worker_answers() {
    let python = python();
    let dir = TempDir::new("interop-client");
    python_stubs(&python, dir.path());
    let db = seed_db(&dir);
    let (pa, pb) = (free_port(), free_port());
    let _a = start_worker(&db, pa, "w-a");
    let _b = start_worker(&db, pb, "w-b");
    let (_lb, port) = start_lb(&[pa, pb], &[]);
    let req = SalesRequest {
        region: "Europe".into(),
        start_date: "2021-01-01".into(),
        end_date: "2024-12-31".into(),
        start_hour: Some(8),
        end_hour: Some(20),
        ..Default::default()
    };
    let expected = smol::block_on(async {
        let lb = connect(port).await;
        wait_serving(&lb, Duration::from_secs(5)).await;
        metrics(&connect(pa).await, &req)
            .await
            .expect("direct call")
    });

    let request_json = r#"{"region": "Europe", "start_date": "2021-01-01",
        "end_date": "2024-12-31", "start_hour": 8, "end_hour": 20}"#;
    let out = python_script(&python, dir.path(), "grpcio_client.py")
        .arg(format!("127.0.0.1:{port}"))
        .arg(request_json)
        .stderr(Stdio::inherit())
        .output()
        .expect("run grpcio_client.py");
    assert!(out.status.success(), "grpcio client failed");
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("client JSON");
    let m = &got["metrics"];
    assert!(expected.total_sales_count > 0);
    assert_eq!(m["total_sales_count"], expected.total_sales_count);
    assert_eq!(m["total_revenue"], expected.total_revenue);
    assert_eq!(m["average_amount"], expected.average_amount);
    let by = m["region_processed"].as_str().unwrap_or_default();
    assert!(by == "w-a" || by == "w-b", "{got}");
    assert!(got["stats"]["memory_usage"].as_u64() > Some(0), "{got}");
    assert_eq!(got["health"], "SERVING");
    assert_eq!(got["invalid"]["code"], "INVALID_ARGUMENT", "{got}");
    assert!(
        got["invalid"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("start_date")),
        "{got}"
    );
}

#[test]
fn grpcio_servers_work_as_workers_behind_the_lb() {
    let python = python();
    let dir = TempDir::new("interop-worker");
    python_stubs(&python, dir.path());
    let (p1, p2) = (free_port(), free_port());
    let _w1 = start_py_worker(&python, dir.path(), p1, "py-1", 0.0);
    let _w2 = start_py_worker(&python, dir.path(), p2, "py-2", 0.0);
    let (_lb, port) = start_lb(&[p1, p2], &[]);
    // The grpcio worker derives its answer from the request: count
    // len(region) + 1000 * len(category), revenue min_amount + max_amount.
    let req = SalesRequest {
        region: "Asia".into(),
        category: "Books".into(),
        min_amount: 5,
        max_amount: 7,
        ..Default::default()
    };
    smol::block_on(async {
        let lb = connect(port).await;
        wait_serving(&lb, Duration::from_secs(5)).await;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let r = metrics(&lb, &req).await.expect("call");
            assert_eq!((r.total_sales_count, r.total_revenue), (5004, 12));
            seen.insert(r.region_processed);
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            ["py-1", "py-2"],
            "both grpcio workers serve"
        );

        // The deadline reaches the worker: asked for region "deadline", it
        // reports the milliseconds it had left as total_revenue.
        let r: proto::SalesResponse = lb
            .call(
                paths::GET_SALES_METRICS,
                &SalesRequest {
                    region: "deadline".into(),
                    ..Default::default()
                },
                Some(Duration::from_secs(3)),
            )
            .await
            .expect("call with a deadline");
        assert!((2_500..=3_000).contains(&r.total_revenue), "{r:?}");

        let stats: SystemStats = lb
            .call(
                paths::GET_SYSTEM_STATS,
                &Empty {},
                Some(Duration::from_secs(2)),
            )
            .await
            .expect("GetSystemStats");
        assert_eq!(stats.memory_usage, 12345);
        assert_eq!(health(&lb).await, Ok(ServingStatus::Serving as i32));
    });
}
