//! What the LB logs at info: each worker's up and down transitions, once per
//! transition, and the periodic per-worker summary, whose counts add up to
//! the calls made; never a line per call.

mod common;

use std::time::{Duration, Instant};

use common::*;
use proto::SalesRequest;

const STATS_INTERVAL: Duration = Duration::from_millis(300);

#[test]
fn transitions_and_a_periodic_summary_are_logged_never_a_line_per_call() {
    let dir = TempDir::new("logs");
    let db = seed_db(&dir);
    let (pa, pb) = (free_port(), free_port());
    let _a = start_worker(&db, pa, "w-a");
    let mut b = start_worker(&db, pb, "w-b");
    let log = dir.path().join("lb.log");
    let started = Instant::now();
    let (mut lb_proc, port) = start_lb_logging(&[pa, pb], &["--stats-interval", "300ms"], &log);
    let (up_a, up_b) = (
        format!("worker 127.0.0.1:{pa} up"),
        format!("worker 127.0.0.1:{pb} up"),
    );
    let down_b = format!("worker 127.0.0.1:{pb} down");
    wait_for_line(&log, &up_a, Duration::from_secs(5));
    wait_for_line(&log, &up_b, Duration::from_secs(5));

    const RATE: u32 = 400;
    let outcomes = smol::block_on(async {
        let lb = connect(port).await;
        let req = SalesRequest {
            region: "Europe".into(),
            ..Default::default()
        };
        paced_load(&lb, RATE, Duration::from_secs(1), &req).await
    });
    assert_no_call_failed(&outcomes, "");

    // w-b dies while idle: one "down", however many checks fail after it.
    b.kill();
    wait_for_line(&log, &down_b, Duration::from_secs(2));
    std::thread::sleep(3 * STATS_INTERVAL);
    assert_eq!(
        lb_proc.signal_and_wait(15, Duration::from_secs(5)),
        Some(0),
        "lb exit status after SIGTERM"
    );
    let elapsed = started.elapsed();
    let text = std::fs::read_to_string(&log).expect("read the LB's log");

    for needle in [&up_a, &up_b, &down_b] {
        let n = text.lines().filter(|l| l.contains(needle.as_str())).count();
        assert_eq!(n, 1, "{n} lines with {needle:?}; the log:\n{text}");
    }

    // The summaries account for every call, with no error, and say who is down.
    let (a, b) = (last_summary(&text, pa), last_summary(&text, pb));
    assert_eq!(
        a.calls + b.calls,
        outcomes.len() as u64,
        "summaries {a:?} and {b:?} for {} calls",
        outcomes.len()
    );
    assert!(a.calls > 0 && b.calls > 0, "{a:?} {b:?}");
    assert_eq!((a.errors, b.errors), (0, 0));
    assert!(a.healthy && !b.healthy, "{a:?} {b:?}");

    // The number of lines follows the clock, not the calls.
    let summary_lines = summaries(&text).len() as u64;
    let intervals = (elapsed.as_secs_f64() / STATS_INTERVAL.as_secs_f64()).ceil() as u64;
    assert!(
        summary_lines <= 2 * intervals,
        "{summary_lines} summary lines in {elapsed:?}; the log:\n{text}"
    );
    // Besides them: listening, two added, two up, one down, and three as it
    // shuts down.
    let others: Vec<&str> = text.lines().filter(|l| summaries(l).is_empty()).collect();
    assert!(
        others.len() <= 12,
        "{} lines besides the summaries for {} calls:\n{}",
        others.len(),
        outcomes.len(),
        others.join("\n")
    );
    assert!(
        !text.contains("GetSalesMetrics"),
        "a call is logged at info:\n{text}"
    );
}
