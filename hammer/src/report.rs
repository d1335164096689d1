//! Turning what a run observed into a report: the numbers, a table for people,
//! JSON for machines (stable keys), and HdrHistogram's percentile distribution text.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::recorder::Observed;

/// Above this send-lag p99, hammer says it could not keep its own schedule.
pub const LAG_P99_LIMIT_MS: f64 = 5.0;
/// Above this share of the machine's cores, hammer says it may be the bottleneck.
pub const CPU_SHARE_LIMIT: f64 = 0.8;

/// How a run was set up, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    pub transport: &'static str,
    pub target: String,
    pub method: &'static str,
    pub mix: &'static str,
    pub target_rate: f64,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub timeout_s: f64,
    pub concurrency: usize,
    pub seed: u64,
}

/// What the run cost hammer itself.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HammerCost {
    /// Percent of one core over the run (200 = two cores flat out).
    pub cpu_percent: f64,
    /// CPU time per request sent, warm-up included.
    pub cpu_us_per_call: f64,
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Stats {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Stats {
    /// From a histogram of microseconds; all zero when it is empty.
    pub fn of(h: &Histogram<u64>) -> Stats {
        if h.is_empty() {
            return Stats::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Stats {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct VerifyCounts {
    pub checked: u64,
    pub mismatches: u64,
}

/// One run's report; its field names are the JSON keys.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    #[serde(flatten)]
    pub config: RunConfig,
    /// Requests the schedule called for in the measured part.
    pub scheduled: u64,
    pub sent: u64,
    pub ok: u64,
    /// Failures by status name (UNAVAILABLE, INTERNAL, …); client-side drops appear
    /// here too as CLIENT_DROPPED so that nothing goes missing from the error count.
    pub errors: BTreeMap<String, u64>,
    pub errors_total: u64,
    pub timeouts: u64,
    pub dropped: u64,
    /// Successful replies per second of measured duration.
    pub achieved_rps: f64,
    /// Requests sent per second of measured duration.
    pub sent_rps: f64,
    pub latency_ms: Stats,
    pub service_ms: Stats,
    pub hammer_lag_ms: Stats,
    /// Percent of one core (200 = two cores flat out).
    pub hammer_cpu_percent: f64,
    /// Hammer's CPU time per request, in µs.
    pub hammer_cpu_us_per_call: f64,
    pub hammer_cores: usize,
    /// Whether hammer could not keep its own schedule or ran out of CPU.
    pub hammer_behind: bool,
    /// Why, in words; empty when hammer kept up.
    pub hammer_warning: String,
    pub verify: VerifyCounts,
    /// The first message seen for each error status.
    pub error_messages: BTreeMap<String, String>,
}

impl RunReport {
    pub fn new(
        config: RunConfig,
        scheduled: u64,
        observed: &Observed,
        cost: HammerCost,
        verify: VerifyCounts,
    ) -> RunReport {
        let c = &observed.counts;
        let mut errors: BTreeMap<String, u64> =
            c.errors.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        if c.dropped > 0 {
            errors.insert("CLIENT_DROPPED".into(), c.dropped);
        }
        let duration = config.duration_s.max(f64::MIN_POSITIVE);
        let lag = Stats::of(&observed.lag);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut warnings = Vec::new();
        if lag.p99 > LAG_P99_LIMIT_MS {
            warnings.push(format!(
                "hammer could not keep its schedule: send lag p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (limit p99 {LAG_P99_LIMIT_MS} ms); latency from intended send time still counts it, but part of it is hammer's own",
                lag.p50, lag.p99, lag.max
            ));
        }
        if c.dropped > 0 {
            warnings.push(format!(
                "{} scheduled requests were not sent: more than --max-inflight were outstanding",
                c.dropped
            ));
        }
        let cpu_percent = cost.cpu_percent;
        if cpu_percent > CPU_SHARE_LIMIT * 100.0 * cores as f64 {
            warnings.push(format!(
                "hammer used {cpu_percent:.0}% CPU of {cores} cores: it may be the bottleneck"
            ));
        }
        RunReport {
            scheduled,
            sent: c.sent,
            ok: c.ok,
            errors_total: errors.values().sum(),
            errors,
            timeouts: c.timeouts,
            dropped: c.dropped,
            achieved_rps: c.ok as f64 / duration,
            sent_rps: c.sent as f64 / duration,
            latency_ms: Stats::of(&observed.latency),
            service_ms: Stats::of(&observed.service),
            hammer_lag_ms: lag,
            hammer_cpu_percent: cpu_percent,
            hammer_cpu_us_per_call: cost.cpu_us_per_call,
            hammer_cores: cores,
            hammer_behind: !warnings.is_empty(),
            hammer_warning: warnings.join("; "),
            verify,
            error_messages: observed
                .error_samples
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            config,
        }
    }

    /// The human summary.
    pub fn write_table(&self, out: &mut impl Write) -> io::Result<()> {
        let c = &self.config;
        writeln!(
            out,
            "hammer {} -> {}  method {}, {} mix, {} req/s for {}s (+{}s warm-up), concurrency {}, timeout {}s, seed {}",
            c.transport, c.target, c.method, c.mix, c.target_rate, c.duration_s, c.warmup_s,
            c.concurrency, c.timeout_s, c.seed
        )?;
        let errors = if self.errors.is_empty() {
            String::new()
        } else {
            let parts: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            format!(" ({})", parts.join(", "))
        };
        writeln!(
            out,
            "requests   scheduled {}  sent {}  ok {}  errors {}{}  timeouts {}  dropped {}",
            self.scheduled,
            self.sent,
            self.ok,
            self.errors_total,
            errors,
            self.timeouts,
            self.dropped
        )?;
        writeln!(
            out,
            "throughput sent {:.1}/s  ok {:.1}/s",
            self.sent_rps, self.achieved_rps
        )?;
        writeln!(
            out,
            "{:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}   (ms)",
            "", "p50", "p90", "p99", "p99.9", "max", "mean"
        )?;
        for (name, s) in [
            ("latency", &self.latency_ms),
            ("service", &self.service_ms),
            ("send lag", &self.hammer_lag_ms),
        ] {
            writeln!(
                out,
                "{name:<10} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                s.p50, s.p90, s.p99, s.p999, s.max, s.mean
            )?;
        }
        writeln!(
            out,
            "           latency: from intended send time (coordinated omission corrected), ok replies and timeouts; service: from actual send"
        )?;
        writeln!(
            out,
            "hammer     CPU {:.1}% of one core ({} cores), {:.1} us per call  {}",
            self.hammer_cpu_percent,
            self.hammer_cores,
            self.hammer_cpu_us_per_call,
            if self.hammer_behind {
                "BEHIND"
            } else {
                "kept its schedule"
            }
        )?;
        if self.hammer_behind {
            writeln!(out, "WARNING    {}", self.hammer_warning)?;
        }
        if self.verify.checked > 0 {
            writeln!(
                out,
                "verify     {} replies recomputed from the database, {} mismatches",
                self.verify.checked, self.verify.mismatches
            )?;
        }
        for (status, message) in &self.error_messages {
            writeln!(out, "first {status}: {message}")?;
        }
        Ok(())
    }
}

/// Writes `h` (µs) in HdrHistogram's percentile distribution format, values in ms:
/// the `Value Percentile TotalCount 1/(1-Percentile)` table, 5 ticks per half
/// distance, and the `#[Mean …]` footer; the format HdrHistogram's plotter reads.
pub fn write_hgrm(h: &Histogram<u64>, out: &mut impl Write) -> io::Result<()> {
    const RATIO: f64 = 1000.0;
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let q = v.quantile_iterated_to();
            let value = v.value_iterated_to() as f64 / RATIO;
            if q < 1.0 {
                writeln!(
                    out,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                )?;
            } else {
                writeln!(out, "{value:12.3} {q:2.12} {total:10}")?;
            }
        }
    }
    let sub_buckets = 2u64 * 10u64.pow(u32::from(h.sigfig()));
    let sub_buckets = sub_buckets.next_power_of_two();
    writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / RATIO,
        h.stdev() / RATIO
    )?;
    writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / RATIO,
        h.len()
    )?;
    writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_buckets
    )
}

/// Where service-time percentiles go when latency goes to `path`:
/// `run.hgrm` → `run.service.hgrm`, `run.txt` → `run.txt.service.hgrm`.
pub fn service_hgrm_path(path: &Path) -> PathBuf {
    let text = path.to_string_lossy();
    match text.strip_suffix(".hgrm") {
        Some(stem) => PathBuf::from(format!("{stem}.service.hgrm")),
        None => PathBuf::from(format!("{text}.service.hgrm")),
    }
}

/// For sweeps: one file per rate, `run.hgrm` → `run.r500.hgrm`.
pub fn per_rate_path(path: &Path, rate: f64) -> PathBuf {
    let text = path.to_string_lossy();
    match text.strip_suffix(".hgrm") {
        Some(stem) => PathBuf::from(format!("{stem}.r{rate}.hgrm")),
        None => PathBuf::from(format!("{text}.r{rate}")),
    }
}

/// Writes latency to `path` and service time beside it.
pub fn write_hgrm_files(path: &Path, observed: &Observed) -> Result<(), String> {
    let write = |p: &Path, h: &Histogram<u64>| -> Result<(), String> {
        let mut buf = Vec::new();
        write_hgrm(h, &mut buf).map_err(|e| e.to_string())?;
        std::fs::write(p, buf).map_err(|e| format!("{}: {e}", p.display()))
    };
    write(path, &observed.latency)?;
    write(&service_hgrm_path(path), &observed.service)
}

/// Writes any serializable report as pretty JSON.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::{Outcome, Recorder};
    use std::time::Duration;

    fn config() -> RunConfig {
        RunConfig {
            transport: "grpc",
            target: "127.0.0.1:1".into(),
            method: "sales",
            mix: "seed",
            target_rate: 100.0,
            duration_s: 2.0,
            warmup_s: 0.0,
            timeout_s: 10.0,
            concurrency: 1,
            seed: 1,
        }
    }

    fn cost(cpu_percent: f64) -> HammerCost {
        HammerCost {
            cpu_percent,
            cpu_us_per_call: 10.0,
        }
    }

    fn observed() -> Observed {
        let r = Recorder::new();
        for i in 1..=180u64 {
            r.sent(true, Duration::from_micros(100));
            r.done(
                true,
                &Outcome::Ok(None),
                Duration::from_millis(i),
                Duration::from_millis(1),
            );
        }
        for _ in 0..10 {
            r.sent(true, Duration::ZERO);
            r.done(
                true,
                &Outcome::Error {
                    status: "UNAVAILABLE",
                    message: "refused".into(),
                },
                Duration::from_millis(1),
                Duration::from_millis(1),
            );
        }
        r.dropped(true);
        r.finish()
    }

    #[test]
    fn report_math() {
        let rep = RunReport::new(
            config(),
            200,
            &observed(),
            cost(12.5),
            VerifyCounts::default(),
        );
        assert_eq!(
            (rep.sent, rep.ok, rep.dropped, rep.timeouts),
            (190, 180, 1, 0)
        );
        assert_eq!(rep.errors.get("UNAVAILABLE"), Some(&10));
        assert_eq!(rep.errors.get("CLIENT_DROPPED"), Some(&1));
        assert_eq!(rep.errors_total, 11);
        assert!((rep.achieved_rps - 90.0).abs() < 1e-9);
        assert!((rep.sent_rps - 95.0).abs() < 1e-9);
        assert_eq!(rep.latency_ms.count, 180);
        assert!(
            (rep.latency_ms.p50 - 90.0).abs() < 0.1,
            "{:?}",
            rep.latency_ms
        );
        assert!((rep.latency_ms.max - 180.0).abs() < 0.2);
        assert!((rep.latency_ms.mean - 90.5).abs() < 0.1);
        assert!((rep.service_ms.p99 - 1.0).abs() < 0.01);
        // A drop means hammer fell short, and it says so.
        assert!(rep.hammer_behind);
        assert!(rep.hammer_warning.contains("not sent"));
        let mut table = Vec::new();
        rep.write_table(&mut table).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(table.contains("UNAVAILABLE 10"), "{table}");
        assert!(table.contains("WARNING"), "{table}");
        let cores = rep.hammer_cores;
        assert!(
            table.contains(&format!(
                "CPU 12.5% of one core ({cores} cores), 10.0 us per call"
            )),
            "{table}"
        );
    }

    #[test]
    fn empty_histograms_report_zeros() {
        let rep = RunReport::new(
            config(),
            0,
            &Recorder::new().finish(),
            cost(0.0),
            VerifyCounts::default(),
        );
        assert_eq!(rep.latency_ms, Stats::default());
        assert!(!rep.hammer_behind);
        let mut out = Vec::new();
        write_hgrm(&Recorder::new().finish().latency, &mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("#[Mean"));
    }

    #[test]
    fn hgrm_table_is_monotonic_and_ends_at_the_max() {
        let o = observed();
        let mut out = Vec::new();
        write_hgrm(&o.latency, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
        );
        let rows: Vec<Vec<f64>> = text
            .lines()
            .skip(2)
            .take_while(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
            .collect();
        assert!(rows.len() > 20);
        for w in rows.windows(2) {
            assert!(w[1][0] >= w[0][0] && w[1][1] >= w[0][1] && w[1][2] >= w[0][2]);
        }
        let last = rows.last().unwrap();
        assert_eq!(last.len(), 3);
        assert_eq!(last[1], 1.0);
        assert_eq!(last[2], 180.0);
        assert!((last[0] - 180.0).abs() < 0.2);
        assert!(text.contains("Total count    =          180]"), "{text}");
    }

    #[test]
    fn file_names() {
        assert_eq!(
            service_hgrm_path(Path::new("a/run.hgrm")),
            PathBuf::from("a/run.service.hgrm")
        );
        assert_eq!(
            service_hgrm_path(Path::new("run.txt")),
            PathBuf::from("run.txt.service.hgrm")
        );
        assert_eq!(
            per_rate_path(Path::new("run.hgrm"), 500.0),
            PathBuf::from("run.r500.hgrm")
        );
    }
}
