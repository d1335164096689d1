//! Against a fast server: the achieved rate matches the target, the JSON report has
//! every key with the right type, and the .hgrm files parse.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::Value;

#[test]
fn achieved_rate_report_keys_and_hgrm() {
    let server = FakeServer::start(Arc::new(Instant_));
    let target = server.addr.to_string();
    let hgrm = scratch("run.hgrm");
    let run = hammer(&[
        "grpc",
        "--target",
        &target,
        "--rate",
        "300",
        "--duration",
        "3s",
        "--warmup",
        "1s",
        "--db",
        test_db().to_str().unwrap(),
        "--mix",
        "random",
        "--seed",
        "9",
        "--concurrency",
        "8",
        "--hgrm",
        hgrm.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    let j = &run.json;

    // Rate accuracy.
    let sent = u(j, "sent");
    assert!(sent.abs_diff(900) <= 9, "sent {sent}, expected 900 ± 1 %");
    let achieved = f(j, "achieved_rps");
    assert!(
        (achieved - 300.0).abs() <= 9.0,
        "achieved {achieved}/s of 300"
    );
    assert_eq!(u(j, "scheduled"), 900);

    // Keys and types.
    for key in ["transport", "target", "method", "mix"] {
        assert!(j[key].is_string(), "{key}: {j:#}");
    }
    assert_eq!(j["transport"], "grpc");
    assert_eq!(j["target"], Value::String(target.clone()));
    for key in [
        "target_rate",
        "duration_s",
        "warmup_s",
        "timeout_s",
        "achieved_rps",
        "sent_rps",
        "hammer_cpu_percent",
        "hammer_cpu_us_per_call",
    ] {
        f(j, key);
    }
    for key in [
        "seed",
        "scheduled",
        "sent",
        "ok",
        "errors_total",
        "timeouts",
        "dropped",
        "concurrency",
        "hammer_cores",
    ] {
        u(j, key);
    }
    assert_eq!(f(j, "target_rate"), 300.0);
    assert_eq!(f(j, "duration_s"), 3.0);
    assert!(j["errors"].is_object());
    assert!(j["error_messages"].is_object());
    assert!(j["hammer_behind"].is_boolean());
    assert!(j["hammer_warning"].is_string());
    for hist in ["latency_ms", "service_ms", "hammer_lag_ms"] {
        for key in ["p50", "p90", "p99", "p999", "max", "mean"] {
            f(&j[hist], key);
        }
        u(&j[hist], "count");
        assert!(f(&j[hist], "p50") <= f(&j[hist], "p99"));
        assert!(f(&j[hist], "p99") <= f(&j[hist], "max"));
    }
    u(&j["verify"], "checked");
    u(&j["verify"], "mismatches");
    // Warm-up requests are not in the numbers.
    assert_eq!(u(&j["latency_ms"], "count"), sent);

    // The distributions parse and agree with the report.
    for (path, key) in [
        (hgrm.clone(), "latency_ms"),
        (hgrm.with_file_name("run.service.hgrm"), "service_ms"),
    ] {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (rows, total) = parse_hgrm(&text);
        assert!(rows.len() > 10, "{text}");
        assert_eq!(total, sent);
        let last = rows.last().unwrap();
        assert_eq!(last.1, 1.0);
        assert!((last.0 - f(&j[key], "max")).abs() < 0.01, "{text}");
    }
}

/// Parses an .hgrm file: rows of (value, percentile, total count), and the footer's count.
fn parse_hgrm(text: &str) -> (Vec<(f64, f64, u64)>, u64) {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
    );
    assert_eq!(lines.next(), Some(""));
    let mut rows = Vec::new();
    let mut total = None;
    for line in lines {
        if let Some(rest) = line.strip_prefix("#[") {
            if let Some(n) = rest.split("Total count    =").nth(1) {
                total = Some(n.trim().trim_end_matches(']').trim().parse().unwrap());
            }
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert!(cols.len() == 4 || cols.len() == 3, "bad row `{line}`");
        let row = (
            cols[0].parse().unwrap(),
            cols[1].parse().unwrap(),
            cols[2].parse().unwrap(),
        );
        if let Some(prev) = rows.last() {
            let prev: &(f64, f64, u64) = prev;
            assert!(
                row.0 >= prev.0 && row.1 >= prev.1 && row.2 >= prev.2,
                "not monotonic at `{line}`"
            );
        }
        rows.push(row);
    }
    assert!(text.contains("#[Mean    ="));
    (rows, total.expect("footer with the total count"))
}
