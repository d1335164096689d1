//! What a run observed: latency histograms, outcome counters, per-second progress.
//!
//! Three HdrHistograms in microseconds (3 significant digits, up to an hour):
//! * latency — from the request's *intended* send time to its reply (what a user waits);
//! * service — from the actual send to the reply (what the server took);
//! * lag — actual send minus intended send (how far hammer itself fell behind).
//!
//! Only the measured part of the run (after warm-up) is counted. Latency holds the
//! successful replies and the timeouts (at their full wait, so a stall cannot hide in
//! the error column); fast failures are counted by status name, not timed.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Highest value a histogram holds: one hour in µs. Larger values saturate.
const MAX_US: u64 = 3_600_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds are valid")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_US)
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A reply; `None` for calls that carry no sales metrics (health checks).
    Ok(Option<proto::SalesResponse>),
    /// No reply within the timeout (local timer, or the server's DEADLINE_EXCEEDED).
    Timeout,
    /// Any other failure, by gRPC status name (or TRANSPORT for AMQP connection trouble).
    Error {
        status: &'static str,
        message: String,
    },
}

/// Shared by the pacer, every request task and the progress ticker.
pub struct Recorder {
    state: Mutex<State>,
}

struct State {
    measured: Counts,
    latency: Histogram<u64>,
    service: Histogram<u64>,
    lag: Histogram<u64>,
    /// The first message seen for each error status, to tell the user why.
    error_samples: BTreeMap<&'static str, String>,
    /// Everything since the start, warm-up included: for progress lines only.
    progress: Counts,
    window: Window,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub sent: u64,
    pub ok: u64,
    pub timeouts: u64,
    pub dropped: u64,
    pub errors: BTreeMap<&'static str, u64>,
}

impl Counts {
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// One second of progress.
struct Window {
    sent: u64,
    latency: Histogram<u64>,
}

/// One progress line's worth of numbers.
#[derive(Debug, Clone)]
pub struct Progress {
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub dropped: u64,
    pub window_sent: u64,
    pub window_p50_us: u64,
    pub window_p99_us: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            state: Mutex::new(State {
                measured: Counts::default(),
                latency: new_histogram(),
                service: new_histogram(),
                lag: new_histogram(),
                error_samples: BTreeMap::new(),
                progress: Counts::default(),
                window: Window {
                    sent: 0,
                    latency: new_histogram(),
                },
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking request task must not take the whole report down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A request left `lag` after its intended time.
    pub fn sent(&self, measured: bool, lag: Duration) {
        let mut s = self.lock();
        s.progress.sent += 1;
        s.window.sent += 1;
        if measured {
            s.measured.sent += 1;
            s.lag.saturating_record(micros(lag));
        }
    }

    /// A request was due but `--max-inflight` were already out: not sent, counted.
    pub fn dropped(&self, measured: bool) {
        let mut s = self.lock();
        s.progress.dropped += 1;
        if measured {
            s.measured.dropped += 1;
        }
    }

    /// A request ended; `latency` from its intended time, `service` from its actual send.
    pub fn done(&self, measured: bool, outcome: &Outcome, latency: Duration, service: Duration) {
        let mut s = self.lock();
        let timed = !matches!(outcome, Outcome::Error { .. });
        if timed {
            s.window.latency.saturating_record(micros(latency));
        }
        match outcome {
            Outcome::Ok(_) => s.progress.ok += 1,
            Outcome::Timeout => s.progress.timeouts += 1,
            Outcome::Error { status, .. } => *s.progress.errors.entry(status).or_default() += 1,
        }
        if !measured {
            return;
        }
        match outcome {
            Outcome::Ok(_) => s.measured.ok += 1,
            Outcome::Timeout => s.measured.timeouts += 1,
            Outcome::Error { status, message } => {
                *s.measured.errors.entry(status).or_default() += 1;
                if !s.error_samples.contains_key(status) {
                    log::warn!("first {status}: {message}");
                    s.error_samples.insert(status, message.clone());
                }
            }
        }
        if timed {
            s.latency.saturating_record(micros(latency));
            s.service.saturating_record(micros(service));
        }
    }

    /// Totals so far and the last second's figures; starts a new second.
    pub fn tick(&self) -> Progress {
        let mut s = self.lock();
        let p = Progress {
            sent: s.progress.sent,
            ok: s.progress.ok,
            failed: s.progress.errors_total() + s.progress.timeouts,
            dropped: s.progress.dropped,
            window_sent: s.window.sent,
            window_p50_us: s.window.latency.value_at_quantile(0.5),
            window_p99_us: s.window.latency.value_at_quantile(0.99),
        };
        s.window.sent = 0;
        s.window.latency.reset();
        p
    }

    /// Requests sent so far, warm-up included.
    pub fn all_sent(&self) -> u64 {
        self.lock().progress.sent
    }

    /// Everything measured, for the report.
    pub fn finish(&self) -> Observed {
        let s = self.lock();
        Observed {
            counts: s.measured.clone(),
            latency: s.latency.clone(),
            service: s.service.clone(),
            lag: s.lag.clone(),
            error_samples: s.error_samples.clone(),
        }
    }
}

/// The measured part of a run.
#[derive(Clone)]
pub struct Observed {
    pub counts: Counts,
    pub latency: Histogram<u64>,
    pub service: Histogram<u64>,
    pub lag: Histogram<u64>,
    pub error_samples: BTreeMap<&'static str, String>,
}

/// CPU time (user + system) this process has used so far.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct we hand it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Measures hammer's own CPU use over a span of wall time.
pub struct CpuMeter {
    wall: Instant,
    cpu: Duration,
}

impl CpuMeter {
    pub fn start() -> CpuMeter {
        CpuMeter {
            wall: Instant::now(),
            cpu: cpu_time(),
        }
    }

    /// Percent of one core since `start` (200 = two cores flat out).
    pub fn percent(&self) -> f64 {
        let wall = self.wall.elapsed().as_secs_f64();
        if wall <= 0.0 {
            return 0.0;
        }
        self.used().as_secs_f64() / wall * 100.0
    }

    /// CPU time used since `start`.
    pub fn used(&self) -> Duration {
        cpu_time().saturating_sub(self.cpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn err(status: &'static str) -> Outcome {
        Outcome::Error {
            status,
            message: "boom".into(),
        }
    }

    #[test]
    fn counts_only_the_measured_part() {
        let r = Recorder::new();
        r.sent(false, ms(0));
        r.done(false, &Outcome::Ok(None), ms(5), ms(5));
        for _ in 0..10 {
            r.sent(true, ms(1));
            r.done(true, &Outcome::Ok(None), ms(20), ms(10));
        }
        let o = r.finish();
        assert_eq!(o.counts.sent, 10);
        assert_eq!(o.counts.ok, 10);
        assert_eq!(o.latency.len(), 10);
        assert!(o
            .latency
            .equivalent(o.latency.value_at_quantile(0.5), 20_000));
        assert!(o.service.equivalent(o.service.max(), 10_000));
        assert!(o.lag.equivalent(o.lag.max(), 1_000));
    }

    #[test]
    fn errors_by_status_timeouts_timed_drops_counted() {
        let r = Recorder::new();
        for _ in 0..3 {
            r.sent(true, ms(0));
            r.done(true, &err("UNAVAILABLE"), ms(1), ms(1));
        }
        r.sent(true, ms(0));
        r.done(true, &err("INTERNAL"), ms(1), ms(1));
        r.sent(true, ms(0));
        r.done(true, &Outcome::Timeout, ms(10_000), ms(10_000));
        r.dropped(true);
        r.dropped(false);
        let o = r.finish();
        assert_eq!(o.counts.errors.get("UNAVAILABLE"), Some(&3));
        assert_eq!(o.counts.errors.get("INTERNAL"), Some(&1));
        assert_eq!(o.counts.errors_total(), 4);
        assert_eq!(o.counts.timeouts, 1);
        assert_eq!(o.counts.dropped, 1);
        // The timeout is in the tail; the fast failures are not timed.
        assert_eq!(o.latency.len(), 1);
        assert!(o.latency.equivalent(o.latency.max(), 10_000_000));
        assert_eq!(
            o.error_samples.get("UNAVAILABLE").map(String::as_str),
            Some("boom")
        );
    }

    #[test]
    fn progress_windows_reset_each_tick() {
        let r = Recorder::new();
        for i in 1..=100 {
            r.sent(true, ms(0));
            r.done(true, &Outcome::Ok(None), ms(i), ms(i));
        }
        let p = r.tick();
        assert_eq!((p.sent, p.ok, p.window_sent), (100, 100, 100));
        assert!(
            p.window_p50_us.abs_diff(50_000) < 100,
            "{}",
            p.window_p50_us
        );
        assert!(
            p.window_p99_us.abs_diff(99_000) < 100,
            "{}",
            p.window_p99_us
        );
        let p = r.tick();
        assert_eq!((p.sent, p.window_sent, p.window_p99_us), (100, 0, 0));
    }

    #[test]
    fn huge_values_saturate_instead_of_failing() {
        let r = Recorder::new();
        r.done(
            true,
            &Outcome::Ok(None),
            Duration::from_secs(99_999),
            Duration::ZERO,
        );
        let o = r.finish();
        assert_eq!(o.latency.len(), 1);
        assert!(o.latency.max() >= 3_599_000_000);
    }

    #[test]
    fn cpu_meter_sees_busy_work() {
        // Spin until the meter has seen 30 ms of CPU: on a loaded machine this takes
        // longer in wall time, but it must end, and the share must be above zero.
        let m = CpuMeter::start();
        let t = Instant::now();
        let mut x = 0u64;
        while m.used() < ms(30) && t.elapsed() < Duration::from_secs(20) {
            for _ in 0..10_000 {
                x = x.wrapping_mul(31).wrapping_add(7);
            }
        }
        std::hint::black_box(x);
        assert!(m.used() >= ms(30), "{:?} after {:?}", m.used(), t.elapsed());
        assert!(m.percent() > 0.0);
    }
}
