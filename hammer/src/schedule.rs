//! Open-loop pacing: when each request is *meant* to leave.
//!
//! Request `i` is due at `start + i / rate`, whatever the replies do. Latency is
//! measured from that intended time, so a stalled server shows up as the wait every
//! scheduled request suffered, not as a pause in sending (coordinated omission, as wrk2
//! corrects it). When the pacer (in `run.rs`) wakes late it sends every overdue request at
//! once, each still stamped with its own intended time; how late it was is the send lag.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    rate: f64,
    /// Requests due in warm-up: sent, not measured.
    warmup_count: u64,
    /// All requests: warm-up and measured.
    total_count: u64,
}

impl Schedule {
    /// Requests at `rate` per second for `warmup` then `duration`, starting at `start`.
    pub fn new(start: Instant, rate: f64, warmup: Duration, duration: Duration) -> Schedule {
        let warmup_count = (rate * warmup.as_secs_f64()).round() as u64;
        let measured = (rate * duration.as_secs_f64()).round() as u64;
        Schedule {
            start,
            rate,
            warmup_count,
            total_count: warmup_count + measured,
        }
    }

    /// When request `i` is due.
    pub fn intended(&self, i: u64) -> Instant {
        // Computed from the start, never accumulated, so rounding never drifts.
        self.start + Duration::from_secs_f64(i as f64 / self.rate)
    }

    pub fn total(&self) -> u64 {
        self.total_count
    }

    /// Whether request `i` falls in the measured part of the run.
    pub fn is_measured(&self, i: u64) -> bool {
        i >= self.warmup_count && i < self.total_count
    }

    /// Requests in the measured part.
    pub fn measured(&self) -> u64 {
        self.total_count - self.warmup_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intended_times_are_evenly_spaced_from_the_start() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, 200.0, Duration::ZERO, Duration::from_secs(6));
        assert_eq!(s.total(), 1200);
        assert_eq!(s.intended(0), t0);
        assert_eq!(s.intended(1) - t0, Duration::from_millis(5));
        assert_eq!(s.intended(1000) - t0, Duration::from_secs(5));
    }

    #[test]
    fn no_drift_at_awkward_rates() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, 3.0, Duration::ZERO, Duration::from_secs(3600));
        let last = s.intended(s.total() - 1) - t0;
        let expected = Duration::from_secs_f64((s.total() - 1) as f64 / 3.0);
        assert!(last.abs_diff(expected) < Duration::from_micros(1));
    }

    #[test]
    fn warmup_is_sent_but_not_measured() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, 100.0, Duration::from_secs(2), Duration::from_secs(5));
        assert_eq!(s.total(), 700);
        assert_eq!(s.measured(), 500);
        assert!(!s.is_measured(199));
        assert!(s.is_measured(200));
        assert!(s.is_measured(699));
        assert!(!s.is_measured(700));
        assert_eq!(s.intended(200) - t0, Duration::from_secs(2));
    }

    #[test]
    fn sub_second_durations_and_fractional_rates() {
        let t0 = Instant::now();
        assert_eq!(
            Schedule::new(t0, 500.0, Duration::ZERO, Duration::from_millis(500)).total(),
            250
        );
        assert_eq!(
            Schedule::new(t0, 0.5, Duration::ZERO, Duration::from_secs(10)).total(),
            5
        );
    }
}
