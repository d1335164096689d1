//! Sweeps: a list of rates gives one row per rate; --find-max finds the knee of a
//! server with a known capacity.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use proto::grpc::{Handler, Request};

/// Serves one call at a time, each taking `service`: capacity 1/service calls/s.
struct OneAtATime {
    service: Duration,
    free_at: Mutex<Instant>,
}

impl Handler for OneAtATime {
    fn call(&self, _req: Request) -> Reply {
        let done = {
            let mut free_at = self.free_at.lock().unwrap();
            let start = (*free_at).max(Instant::now());
            *free_at = start + self.service;
            *free_at
        };
        Box::pin(async move {
            smol::Timer::at(done).await;
            Ok(fake_reply())
        })
    }
}

/// `hammer --find-max` with `args` against a fresh server of 200 calls/s at most
/// (5 ms per call, one at a time): p99 objective 100 ms, 2 s timeout.
fn find_max_at_200_per_s(args: &[&str]) -> Run {
    let server = FakeServer::start(Arc::new(OneAtATime {
        service: Duration::from_millis(5),
        free_at: Mutex::new(Instant::now()),
    }));
    let target = server.addr.to_string();
    let mut argv = vec![
        "grpc",
        "--target",
        &target,
        "--method",
        "health",
        "--find-max",
        "--slo-p99",
        "100ms",
        "--timeout",
        "2s",
    ];
    argv.extend_from_slice(args);
    hammer(&argv)
}

#[test]
fn a_list_of_rates_is_one_table() {
    let server = FakeServer::start(Arc::new(Instant_));
    let target = server.addr.to_string();
    let run = hammer(&[
        "grpc",
        "--target",
        &target,
        "--method",
        "health",
        "--rates",
        "100,200",
        "--duration",
        "1s",
    ]);
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    let j = &run.json;
    assert_eq!(j["mode"], "rates");
    let runs = j["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(f(&runs[0], "target_rate"), 100.0);
    assert_eq!(f(&runs[1], "target_rate"), 200.0);
    assert!(u(&runs[1], "sent").abs_diff(200) <= 2);
    assert!(run.stdout.contains("sent/s"), "{}", run.stdout);
}

#[test]
fn find_max_lands_near_the_capacity() {
    let run = find_max_at_200_per_s(&["--rate", "50", "--duration", "600ms"]);
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    let j = &run.json;
    assert_eq!(j["mode"], "find_max");
    assert_eq!(f(j, "slo_p99_ms"), 100.0);
    // Near the capacity: a 600 ms step at rate r > 200/s builds a queue of
    // (r - 200) × 0.6 × 5 ms, which passes 100 ms above r ≈ 233/s. A loaded machine
    // lowers the knee (its own delays count), so only the upper bound is tight.
    let max = f(j, "max_rate");
    assert!(
        (10.0..=260.0).contains(&max),
        "max_rate {max}: {}",
        run.stdout
    );
    let steps = j["steps"].as_array().unwrap();
    assert!(steps.len() >= 3 && steps.len() <= 16, "{}", run.stdout);
    assert!(steps.iter().any(|s| s["held"] == true));
    assert!(steps.iter().any(|s| s["held"] == false));
    // The answer is the best step that held, and the search closed in on it: the
    // lowest failing rate above it is within 5 %.
    let held_max = steps
        .iter()
        .filter(|s| s["held"] == true)
        .map(|s| f(s, "target_rate"))
        .fold(0.0, f64::max);
    assert_eq!(held_max, max);
    let failed_above = steps
        .iter()
        .filter(|s| s["held"] == false)
        .map(|s| f(s, "target_rate"))
        .filter(|&r| r > max)
        .fold(f64::INFINITY, f64::min);
    assert!(
        failed_above - max <= (0.05 * max).max(1.0),
        "{}",
        run.stdout
    );
    assert!(j["limited_by_hammer"].is_boolean());
    assert!(
        run.stdout.contains("highest rate holding p99"),
        "{}",
        run.stdout
    );
}

#[test]
fn find_max_repeats_each_step_and_goes_with_the_majority() {
    let run =
        find_max_at_200_per_s(&["--find-repeat", "3", "--rate", "100", "--duration", "300ms"]);
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    let j = &run.json;
    let steps = j["steps"].as_array().unwrap();
    assert!(steps.iter().any(|s| s["held"] == true), "{}", run.stdout);
    assert!(steps.iter().any(|s| s["held"] == false), "{}", run.stdout);
    for s in steps {
        let p99s: Vec<f64> = s["runs_p99_ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        assert_eq!(p99s.len(), 3, "{s}");
        assert!(p99s.windows(2).all(|w| w[0] <= w[1]), "{p99s:?}");
        // The step's figures are its median run's.
        assert_eq!(s["latency_ms"]["p99"].as_f64().unwrap(), p99s[1], "{s}");
        // Holding needs two runs within the objective; a run within it can still
        // fail on errors or a short rate, never the other way round.
        let within = p99s.iter().filter(|&&p| p <= 100.0).count();
        if s["held"] == true {
            assert!(within >= 2, "{s}");
        } else {
            assert!(
                s["why"].as_str().unwrap().contains("of 3 runs failed"),
                "{s}"
            );
        }
    }
    assert!(run.stdout.contains("p99 ms of each run"), "{}", run.stdout);
    assert!(run.stderr.contains("run 3 of 3"), "{}", run.stderr);
}

#[test]
fn find_max_can_climb_in_fixed_steps() {
    let run = find_max_at_200_per_s(&["--rate", "100", "--find-step", "40", "--duration", "600ms"]);
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    let j = &run.json;
    let rates: Vec<f64> = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| f(s, "target_rate"))
        .collect();
    let held: Vec<bool> = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["held"] == true)
        .collect();
    let max = f(j, "max_rate");
    // Up by 40/s while the steps hold, never past the first failure; a loaded
    // machine may stop the climb early, or halve below 100/s, never overshoot.
    assert!(max <= 260.0, "max_rate {max}: {}", run.stdout);
    assert_eq!(held.last(), Some(&false), "{}", run.stdout);
    let climb: Vec<f64> = rates.iter().copied().filter(|&r| r >= 100.0).collect();
    for w in climb.windows(2) {
        assert_eq!(w[1] - w[0], 40.0, "{rates:?}");
    }
    if held[0] {
        assert!(held[..held.len() - 1].iter().all(|&h| h), "{}", run.stdout);
        assert_eq!(max, rates[rates.len() - 2]);
        assert_eq!(rates[rates.len() - 1], max + 40.0);
    }
}
