//! Coordinated omission: a server that stalls for one second must show in the tail,
//! and hammer must keep sending on schedule through the stall.

mod common;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::*;
use proto::grpc::{Handler, Request};

/// Answers at once, except that replies due in [first call + 2 s, + 3 s) are held
/// until the window ends.
struct Stalling {
    first: OnceLock<Instant>,
}

impl Handler for Stalling {
    fn call(&self, _req: Request) -> Reply {
        let t0 = *self.first.get_or_init(Instant::now);
        let (from, until) = (t0 + Duration::from_secs(2), t0 + Duration::from_secs(3));
        let now = Instant::now();
        Box::pin(async move {
            if now >= from && now < until {
                smol::Timer::at(until).await;
            }
            Ok(fake_reply())
        })
    }
}

#[test]
fn a_one_second_stall_shows_in_the_tail_and_sending_goes_on() {
    let server = FakeServer::start(Arc::new(Stalling {
        first: OnceLock::new(),
    }));
    let target = server.addr.to_string();
    let run = hammer(&[
        "grpc",
        "--target",
        &target,
        "--method",
        "health",
        "--rate",
        "200",
        "--duration",
        "6s",
        "--concurrency",
        "4",
        "--seed",
        "1",
    ]);
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    let j = &run.json;
    let sent = u(j, "sent");
    assert!(
        sent.abs_diff(1200) <= 12,
        "sent {sent}, expected 1200 ± 1 %"
    );
    assert_eq!(u(j, "ok"), sent, "{j:#}");
    let p99 = f(&j["latency_ms"], "p99");
    assert!(p99 >= 800.0, "p99 {p99} ms hides the 1 s stall: {j:#}");
    let p50 = f(&j["latency_ms"], "p50");
    assert!(p50 < 100.0, "p50 {p50} ms: the stall is one second of six");
    // The schedule was kept through the stall: send lag stays far below the stall
    // (loose bound: a loaded test machine delays tasks by tens of ms).
    assert!(f(&j["hammer_lag_ms"], "p99") < 250.0, "{j:#}");
}
