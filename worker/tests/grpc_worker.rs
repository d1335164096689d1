//! The `worker` binary over real sockets, spoken to with our own Channel:
//! every method, its errors, start-up failures and graceful shutdown.

mod grpc_support;

use std::time::{Duration, Instant};

use grpc_support::{random_request, test_db, Worker};
use proto::grpc::{Channel, Code};
use proto::{
    paths, Empty, HealthCheckRequest, HealthCheckResponse, SalesRequest, SalesResponse,
    ServingStatus, SystemStats,
};

fn channel(worker: &Worker) -> Channel {
    smol::block_on(Channel::connect(worker.addr)).expect("connect to worker")
}

#[test]
fn sales_metrics_equal_the_query_engine() {
    let worker = Worker::start(&["--id", "w-test", "--threads", "2"]);
    let ch = channel(&worker);
    let mut conn = worker::QueryConn::open(test_db()).unwrap();
    let mut rng = fastrand::Rng::with_seed(42);
    smol::block_on(async {
        let mut nonzero = 0;
        for _ in 0..300 {
            let req = random_request(&mut rng);
            let want = conn.run(&req).unwrap();
            let got: SalesResponse = ch.call(paths::GET_SALES_METRICS, &req, None).await.unwrap();
            assert_eq!(got.total_sales_count, want.count, "{req:?}");
            assert_eq!(got.total_revenue, want.revenue, "{req:?}");
            assert_eq!(got.average_amount, want.average, "{req:?}");
            assert_eq!(got.region_processed, "w-test");
            nonzero += (want.count > 0) as usize;
        }
        assert!(nonzero > 30, "too few requests matched anything: {nonzero}");
        // The unfiltered query sees every sale.
        let all: SalesResponse = ch
            .call(paths::GET_SALES_METRICS, &SalesRequest::default(), None)
            .await
            .unwrap();
        assert_eq!(all.total_sales_count, 10_000);
    });
}

#[test]
fn invalid_arguments_name_the_field() {
    let worker = Worker::start(&[]);
    let ch = channel(&worker);
    let cases = [
        (
            SalesRequest {
                start_date: "2024-13-45".into(),
                ..Default::default()
            },
            "start_date",
        ),
        (
            SalesRequest {
                end_date: "yesterday".into(),
                ..Default::default()
            },
            "end_date",
        ),
        (
            SalesRequest {
                start_hour: Some(25),
                ..Default::default()
            },
            "start_hour",
        ),
        (
            SalesRequest {
                min_amount: -1,
                ..Default::default()
            },
            "min_amount",
        ),
        (
            SalesRequest {
                product_keyword: "x".repeat(300),
                ..Default::default()
            },
            "product_keyword",
        ),
    ];
    smol::block_on(async {
        for (req, field) in cases {
            let err = ch
                .call::<_, SalesResponse>(paths::GET_SALES_METRICS, &req, None)
                .await
                .unwrap_err();
            assert_eq!(err.code, Code::InvalidArgument, "{req:?}: {err}");
            assert!(err.message.contains(field), "{field} not named in {err}");
        }
    });
}

#[test]
fn health_stats_and_unknown_methods() {
    let worker = Worker::start(&[]);
    let ch = channel(&worker);
    smol::block_on(async {
        for service in ["", "protocol.SimulationService"] {
            let req = HealthCheckRequest {
                service: service.into(),
            };
            let rep: HealthCheckResponse = ch.call(paths::HEALTH_CHECK, &req, None).await.unwrap();
            assert_eq!(rep.status, ServingStatus::Serving as i32);
        }
        let req = HealthCheckRequest {
            service: "nope.Service".into(),
        };
        let err = ch
            .call::<_, HealthCheckResponse>(paths::HEALTH_CHECK, &req, None)
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::NotFound);

        let stats: SystemStats = ch
            .call(paths::GET_SYSTEM_STATS, &Empty {}, None)
            .await
            .unwrap();
        assert!(stats.memory_usage > 1024 * 1024, "{stats:?}");
        assert!(stats.cpu_usage >= 0.0, "{stats:?}");
        assert_eq!(stats.active_goroutines, 0, "{stats:?}");

        for path in [
            "/protocol.SimulationService/Nope",
            "/grpc.health.v1.Health/Watch",
            "/x",
        ] {
            let err = ch.unary(path, bytes::Bytes::new(), None).await.unwrap_err();
            assert_eq!(err.code, Code::Unimplemented, "{path}: {err}");
        }
        // Still serving.
        let rep: HealthCheckResponse = ch
            .call(paths::HEALTH_CHECK, &HealthCheckRequest::default(), None)
            .await
            .unwrap();
        assert_eq!(rep.status, ServingStatus::Serving as i32);
    });
}

#[test]
fn missing_database_fails_with_an_actionable_message() {
    let missing = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such.db");
    let out = std::process::Command::new(grpc_support::bin("worker"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(&missing)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("seeder"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = std::process::Command::new(grpc_support::bin("worker"))
        .args(["--listen", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn sigterm_lets_calls_in_flight_finish_and_exits_zero() {
    let mut worker = Worker::start(&["--threads", "1"]);
    let ch = channel(&worker);
    // 32 callers keep the single query thread busy with a queue of calls.
    let (results, signalled) = smol::block_on(async {
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let ch = ch.clone();
                smol::spawn(async move {
                    let mut rng = fastrand::Rng::with_seed(i);
                    let mut outcomes = Vec::new();
                    loop {
                        let req = random_request(&mut rng);
                        let started = Instant::now();
                        let res = ch
                            .call::<_, SalesResponse>(
                                paths::GET_SALES_METRICS,
                                &req,
                                Some(Duration::from_secs(10)),
                            )
                            .await
                            .map(|_| ())
                            .map_err(|e| e.code);
                        let failed = res.is_err();
                        outcomes.push((started, Instant::now(), res));
                        if failed {
                            return outcomes;
                        }
                    }
                })
            })
            .collect();
        smol::Timer::after(Duration::from_millis(300)).await;
        let signalled = Instant::now();
        worker.signal(libc::SIGTERM);
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await);
        }
        (all, signalled)
    });
    let status = worker.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", worker.log_text());

    // Calls that straddle the signal completed: the worker finished them.
    let in_flight = results
        .iter()
        .filter(|(start, end, res)| *start < signalled && *end > signalled && res.is_ok())
        .count();
    assert!(in_flight > 0, "no call in flight at SIGTERM completed");
    // Calls refused once shutdown began are UNAVAILABLE, nothing else; and
    // every call well before the signal succeeded.
    for (start, _, res) in &results {
        if let Err(code) = res {
            assert_eq!(*code, Code::Unavailable);
            assert!(
                *start + Duration::from_millis(100) > signalled,
                "a call long before SIGTERM failed"
            );
        }
    }
    assert!(
        worker.log_text().contains("shutting down"),
        "{}",
        worker.log_text()
    );
}
