//! Correctness check: recompute sampled replies in-process from the same database.
//!
//! During the run, every `stride`-th measured request is kept with its reply (up to
//! `--verify N`). After the load stops — so the check never competes with the system
//! under test — each kept request runs through the worker's own query engine
//! (`worker::QueryConn`) on `--db`, and the answers must agree: count and revenue
//! exactly, the average within 1e-9 relative.

use std::path::Path;
use std::sync::Mutex;

use proto::{SalesRequest, SalesResponse};

use crate::report::VerifyCounts;

/// Collects (request, reply) pairs during a run.
pub struct Sampler {
    wanted: usize,
    stride: u64,
    samples: Mutex<Vec<(SalesRequest, SalesResponse)>>,
}

impl Sampler {
    /// Keeps up to `wanted` samples spread evenly over `measured` requests.
    pub fn new(wanted: usize, measured: u64) -> Sampler {
        let stride = if wanted == 0 {
            u64::MAX
        } else {
            (measured / wanted as u64).max(1)
        };
        Sampler {
            wanted,
            stride,
            samples: Mutex::new(Vec::new()),
        }
    }

    /// Whether the `nth` measured request should be kept.
    pub fn wants(&self, nth: u64) -> bool {
        self.wanted > 0 && nth % self.stride == 0 && nth / self.stride < self.wanted as u64
    }

    pub fn keep(&self, req: SalesRequest, reply: SalesResponse) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() < self.wanted {
            samples.push((req, reply));
        }
    }

    pub fn take(&self) -> Vec<(SalesRequest, SalesResponse)> {
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Recomputes every sample from `db`; mismatches are logged and counted.
pub fn check(db: &Path, samples: &[(SalesRequest, SalesResponse)]) -> Result<VerifyCounts, String> {
    let mut counts = VerifyCounts::default();
    if samples.is_empty() {
        return Ok(counts);
    }
    let mut conn = worker::QueryConn::open(db).map_err(|e| format!("--verify: {e}"))?;
    for (req, reply) in samples {
        counts.checked += 1;
        let verdict = match conn.run(req) {
            Ok(m) => agrees(reply, m.count, m.revenue, m.average),
            Err(e) => Err(format!("the database refuses the request: {e}")),
        };
        if let Err(why) = verdict {
            counts.mismatches += 1;
            if counts.mismatches <= 5 {
                log::warn!("verify mismatch: {why}; request {req:?}, reply {reply:?}");
            }
        }
    }
    Ok(counts)
}

/// Whether a reply matches the recomputed metrics.
pub fn agrees(reply: &SalesResponse, count: i64, revenue: i64, average: f64) -> Result<(), String> {
    if reply.total_sales_count != count {
        return Err(format!("count {} ≠ {count}", reply.total_sales_count));
    }
    if reply.total_revenue != revenue {
        return Err(format!("revenue {} ≠ {revenue}", reply.total_revenue));
    }
    let scale = average.abs().max(f64::MIN_POSITIVE);
    if (reply.average_amount - average).abs() > 1e-9 * scale && reply.average_amount != average {
        return Err(format!("average {} ≠ {average}", reply.average_amount));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(count: i64, revenue: i64, average: f64) -> SalesResponse {
        SalesResponse {
            total_sales_count: count,
            total_revenue: revenue,
            average_amount: average,
            region_processed: "w1".into(),
        }
    }

    #[test]
    fn agreement_rules() {
        assert!(agrees(&reply(3, 10, 10.0 / 3.0), 3, 10, 10.0 / 3.0).is_ok());
        assert!(agrees(&reply(3, 10, 10.0 / 3.0 * (1.0 + 1e-12)), 3, 10, 10.0 / 3.0).is_ok());
        assert!(agrees(&reply(3, 10, 3.3334), 3, 10, 10.0 / 3.0).is_err());
        assert!(agrees(&reply(4, 10, 2.5), 3, 10, 2.5).is_err());
        assert!(agrees(&reply(3, 11, 2.5), 3, 10, 2.5).is_err());
        assert!(agrees(&reply(0, 0, 0.0), 0, 0, 0.0).is_ok());
    }

    #[test]
    fn samples_spread_over_the_run() {
        let s = Sampler::new(10, 1000);
        let kept: Vec<u64> = (0..1000).filter(|&i| s.wants(i)).collect();
        assert_eq!(kept, (0..10).map(|k| k * 100).collect::<Vec<_>>());
        let s = Sampler::new(50, 20);
        assert_eq!((0..20).filter(|&i| s.wants(i)).count(), 20);
        let s = Sampler::new(0, 20);
        assert!(!(0..20).any(|i| s.wants(i)));
    }
}
