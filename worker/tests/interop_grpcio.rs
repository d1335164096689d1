//! Interoperability with grpcio, the reference implementation: its client
//! against our worker, and our Channel against its server.

mod grpc_support;

use std::time::Duration;

use grpc_support::{
    python, python_script, python_stubs, random_request, test_db, PyWorker, TempDir, Worker,
};
use prost::Message;
use proto::grpc::{Channel, Code};
use proto::{
    paths, Empty, HealthCheckRequest, HealthCheckResponse, SalesRequest, SalesResponse,
    ServingStatus, SystemStats,
};

#[test]
fn grpcio_client_against_our_worker() {
    let python = python();
    let stubs = python_stubs(&python);
    let worker = Worker::start(&["--id", "rust-worker", "--threads", "2"]);

    let mut rng = fastrand::Rng::with_seed(99);
    let mut requests: Vec<SalesRequest> = (0..60).map(|_| random_request(&mut rng)).collect();
    requests.push(SalesRequest::default());
    requests.push(SalesRequest {
        start_hour: Some(0),
        end_hour: Some(0),
        ..Default::default()
    });
    let dir = TempDir::new("grpcio-client");
    let file = dir.0.join("requests.hex");
    let lines: String = requests
        .iter()
        .map(|r| format!("{}\n", hex(&r.encode_to_vec())))
        .collect();
    std::fs::write(&file, lines).unwrap();

    let out = python_script(&python, &stubs.0, "grpcio_client.py")
        .arg("--target")
        .arg(worker.addr.to_string())
        .arg("--requests")
        .arg(&file)
        .output()
        .expect("run grpcio_client.py");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "grpcio client failed:\n{stderr}\nworker log:\n{}",
        worker.log_text()
    );

    let mut conn = worker::QueryConn::open(test_db()).unwrap();
    let replies: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(replies.len(), requests.len());
    for (req, line) in requests.iter().zip(replies) {
        let got = SalesResponse::decode(&*unhex(line)).unwrap();
        let want = conn.run(req).unwrap();
        assert_eq!(
            (got.total_sales_count, got.total_revenue, got.average_amount),
            (want.count, want.revenue, want.average),
            "{req:?}"
        );
        assert_eq!(got.region_processed, "rust-worker");
    }
}

#[test]
fn our_channel_against_a_grpcio_server() {
    let python = python();
    let stubs = python_stubs(&python);
    let server = PyWorker::start(&python, &stubs.0, "py-worker");
    smol::block_on(async {
        let ch = Channel::connect(server.addr).await.unwrap();

        let mut rng = fastrand::Rng::with_seed(5);
        for _ in 0..50 {
            let req = random_request(&mut rng);
            let got: SalesResponse = ch
                .call(
                    paths::GET_SALES_METRICS,
                    &req,
                    Some(Duration::from_secs(10)),
                )
                .await
                .unwrap();
            assert_eq!(got, derived(&req, "py-worker"));
        }

        // Concurrent calls multiplexed on the one connection.
        let calls: Vec<_> = (0..64)
            .map(|i| {
                let ch = ch.clone();
                smol::spawn(async move {
                    let req = SalesRequest {
                        region: "r".repeat(i),
                        ..Default::default()
                    };
                    let got: SalesResponse =
                        ch.call(paths::GET_SALES_METRICS, &req, None).await.unwrap();
                    assert_eq!(got.total_sales_count, i as i64);
                })
            })
            .collect();
        for c in calls {
            c.await;
        }

        // Its error status and percent-encoded message reach us intact.
        let fail = SalesRequest {
            region: "fail".into(),
            ..Default::default()
        };
        let err = ch
            .call::<_, SalesResponse>(paths::GET_SALES_METRICS, &fail, None)
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
        assert_eq!(
            err.message,
            "region: «fail» was asked to fail, 100% on purpose"
        );

        // Our timeout travels as grpc-timeout, and fires locally.
        let dl = SalesRequest {
            region: "deadline".into(),
            ..Default::default()
        };
        let got: SalesResponse = ch
            .call(paths::GET_SALES_METRICS, &dl, Some(Duration::from_secs(5)))
            .await
            .unwrap();
        assert!(
            (3_000..=5_000).contains(&got.total_revenue),
            "server saw {} ms",
            got.total_revenue
        );
        let got: SalesResponse = ch.call(paths::GET_SALES_METRICS, &dl, None).await.unwrap();
        assert_eq!(got.total_revenue, -1);
        let slow = SalesRequest {
            region: "slow".into(),
            ..Default::default()
        };
        let err = ch
            .call::<_, SalesResponse>(
                paths::GET_SALES_METRICS,
                &slow,
                Some(Duration::from_millis(200)),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::DeadlineExceeded);

        let health: HealthCheckResponse = ch
            .call(paths::HEALTH_CHECK, &HealthCheckRequest::default(), None)
            .await
            .unwrap();
        assert_eq!(health.status, ServingStatus::Serving as i32);
        let unknown = HealthCheckRequest {
            service: "no.Such".into(),
        };
        let err = ch
            .call::<_, HealthCheckResponse>(paths::HEALTH_CHECK, &unknown, None)
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::NotFound);
        let stats: SystemStats = ch
            .call(paths::GET_SYSTEM_STATS, &Empty {}, None)
            .await
            .unwrap();
        assert_eq!((stats.cpu_usage, stats.memory_usage), (1.5, 12345));

        let err = ch
            .unary(
                "/protocol.SimulationService/Nope",
                bytes::Bytes::new(),
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::Unimplemented);
        let big = SalesRequest {
            product_keyword: "x".repeat(5 << 20),
            ..Default::default()
        };
        let err = ch
            .call::<_, SalesResponse>(paths::GET_SALES_METRICS, &big, None)
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::ResourceExhausted, "{err}");

        let got: SalesResponse = ch
            .call(paths::GET_SALES_METRICS, &SalesRequest::default(), None)
            .await
            .unwrap();
        assert_eq!(got.region_processed, "py-worker");
        assert!(!ch.is_closed());
    });
}

/// What grpcio_worker.py answers (see its doc string).
fn derived(req: &SalesRequest, id: &str) -> SalesResponse {
    let count = req.region.len() as i64 + 1000 * req.category.len() as i64;
    let revenue = req.min_amount
        + req.max_amount
        + req.start_hour.map_or(0, |h| 1_000_000 * (h as i64 + 1))
        + req.end_hour.map_or(0, |h| 1_000_000_000 * (h as i64 + 1));
    SalesResponse {
        total_sales_count: count,
        total_revenue: revenue,
        average_amount: if count == 0 {
            0.0
        } else {
            revenue as f64 / count as f64
        },
        region_processed: id.into(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}
