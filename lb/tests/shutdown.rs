//! Deadlines and graceful shutdown, with a deterministically slow worker.

mod common;

use std::time::{Duration, Instant};

use common::*;
use proto::grpc::Code;
use proto::{SalesRequest, ServingStatus};

#[test]
fn an_expired_deadline_is_the_answer_not_a_reason_to_retry_or_eject() {
    let python = python();
    let dir = TempDir::new("deadline");
    python_stubs(&python, dir.path());
    let (p1, p2) = (free_port(), free_port());
    let _w1 = start_py_worker(&python, dir.path(), p1, "slow-1", 0.5);
    let _w2 = start_py_worker(&python, dir.path(), p2, "slow-2", 0.5);
    let (_lb, port) = start_lb(&[p1, p2], &[]);
    smol::block_on(async {
        let lb = connect(port).await;
        wait_serving(&lb, Duration::from_secs(5)).await;
        smol::Timer::after(Duration::from_millis(500)).await;
        let start = Instant::now();
        let err = lb
            .call::<_, proto::SalesResponse>(
                proto::paths::GET_SALES_METRICS,
                &SalesRequest::default(),
                Some(Duration::from_millis(150)),
            )
            .await
            .expect_err("the worker takes 500 ms");
        assert_eq!(err.code, Code::DeadlineExceeded, "{err}");
        assert!(
            start.elapsed() < Duration::from_millis(400),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(health(&lb).await, Ok(ServingStatus::Serving as i32));
        let r = metrics(&lb, &SalesRequest::default())
            .await
            .expect("still served");
        assert!(r.region_processed.starts_with("slow-"));
    });
}

#[test]
fn sigterm_finishes_calls_in_flight_then_exits_zero() {
    let python = python();
    let dir = TempDir::new("shutdown");
    python_stubs(&python, dir.path());
    let w = free_port();
    let _w = start_py_worker(&python, dir.path(), w, "slow", 0.5);
    let (mut lb_proc, port) = start_lb(&[w], &[]);
    smol::block_on(async {
        let lb = connect(port).await;
        wait_serving(&lb, Duration::from_secs(5)).await;
        let call = smol::spawn({
            let lb = lb.clone();
            async move { metrics(&lb, &SalesRequest::default()).await }
        });
        smol::Timer::after(Duration::from_millis(100)).await;
        let code = smol::unblock(move || {
            let code = lb_proc.signal_and_wait(15, Duration::from_secs(5));
            (code, lb_proc)
        })
        .await;
        let reply = call.await.expect("the call in flight completes");
        assert_eq!(reply.region_processed, "slow");
        assert_eq!(code.0, Some(0), "lb exit status after SIGTERM");
    });
}
