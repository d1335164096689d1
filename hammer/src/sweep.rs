//! A session of runs against one target: a single rate, a list of rates, or a search
//! for the highest rate that holds a p99 objective.
//!
//! The search grows the rate exponentially (×2) from `--rate` while the objective holds,
//! then bisects between the last rate that held and the first that did not, until the
//! two are within 5 %. With `--find-step S` it climbs instead, S requests/s at a time,
//! and stops at the first step that fails (halving first if `--rate` itself fails): a
//! system pushed far past its knee can collapse and take a while to recover, so a
//! search that never overshoots by more than one step measures the sustainable rate
//! more steadily than one that jumps to twice the last good rate.
//!
//! A step holds when its p99 (from intended send time) is within the objective, at
//! most 0.1 % of requests failed (client-side drops included), and at least 95 % of
//! the target rate came back ok. Hammer falling behind does not fail a step by itself
//! (its lag is already inside the latency), but when the step that bounds the answer
//! had hammer behind, the answer says it is hammer's limit.
//!
//! Near the knee one window's p99 is a coin toss: a stall of a few tens of
//! milliseconds anywhere in it is enough, and a single unlucky step sends the
//! bisection below the knee for good. `--find-repeat N` runs every step N times;
//! the step holds when most runs hold, and its median run (by p99) stands for it.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::mix::Mix;
use crate::recorder::Observed;
use crate::report::{self, RunConfig, RunReport};
use crate::run::{self, Plan};
use crate::transport::Transport;
use crate::verify;

pub struct Session {
    pub plan: Plan,
    pub config: RunConfig,
    pub transport: Arc<Transport>,
    pub mix: Mix,
    pub db: PathBuf,
    pub hgrm: Option<PathBuf>,
}

/// Longest pause between the runs of a sweep, so one step's backlog does not spill
/// into the next (shorter for short steps).
const SETTLE: Duration = Duration::from_secs(1);
/// Most steps a --find-max search takes when it doubles and bisects.
const MAX_STEPS: usize = 16;
/// Most steps a --find-max search takes when it climbs in fixed steps.
const MAX_CLIMB_STEPS: usize = 64;

impl Session {
    /// One run at `rate`: measured, verified, summarised on stdout, hgrm written.
    pub async fn run_at(
        &mut self,
        rate: f64,
        hgrm: Option<PathBuf>,
    ) -> Result<(RunReport, Observed), String> {
        let plan = Plan {
            rate,
            ..self.plan.clone()
        };
        let result = run::run(&plan, &self.transport, &mut self.mix).await;
        let db = self.db.clone();
        let samples = result.samples;
        let verify = smol::unblock(move || verify::check(&db, &samples)).await?;
        let config = RunConfig {
            target_rate: rate,
            duration_s: result.measured.as_secs_f64(),
            ..self.config.clone()
        };
        let report = RunReport::new(
            config,
            result.scheduled,
            &result.observed,
            result.cost,
            verify,
        );
        let mut out = std::io::stdout().lock();
        report.write_table(&mut out).map_err(|e| e.to_string())?;
        writeln!(out).map_err(|e| e.to_string())?;
        if let Some(path) = hgrm {
            report::write_hgrm_files(&path, &result.observed)?;
        }
        Ok((report, result.observed))
    }

    fn interrupted(&self) -> bool {
        self.plan
            .interrupted
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn single(&mut self) -> Result<RunReport, String> {
        let hgrm = self.hgrm.clone();
        Ok(self.run_at(self.plan.rate, hgrm).await?.0)
    }

    pub async fn rates(&mut self, rates: &[f64]) -> Result<RatesReport, String> {
        let mut runs = Vec::new();
        for (i, &rate) in rates.iter().enumerate() {
            if self.interrupted() {
                break;
            }
            if i > 0 {
                smol::Timer::after(SETTLE.min(self.plan.duration)).await;
            }
            let hgrm = self.hgrm.as_deref().map(|p| report::per_rate_path(p, rate));
            runs.push(self.run_at(rate, hgrm).await?.0);
        }
        let table = rates_table(&runs);
        print!("{table}");
        Ok(RatesReport {
            mode: "rates",
            runs,
        })
    }

    pub async fn find_max(
        &mut self,
        slo_p99: Duration,
        repeat: usize,
        climb: Option<f64>,
    ) -> Result<FindMaxReport, String> {
        let slo_ms = slo_p99.as_secs_f64() * 1000.0;
        let repeat = repeat.max(1);
        let mut steps: Vec<Step> = Vec::new();
        let mut good: Option<f64> = None;
        let mut bad: Option<f64> = None;
        let mut rate = self.plan.rate;
        let max_steps = if climb.is_some() {
            MAX_CLIMB_STEPS
        } else {
            MAX_STEPS
        };
        while steps.len() < max_steps {
            let mut runs = Vec::with_capacity(repeat);
            for i in 0..repeat {
                if !steps.is_empty() || i > 0 {
                    smol::Timer::after(SETTLE.min(self.plan.duration)).await;
                }
                let (report, observed) = self.run_at(rate, None).await?;
                let verdict = holds(&report, slo_ms);
                eprintln!(
                    "find-max: {rate:.1}/s{} {} (p99 {:.3} ms)",
                    if repeat > 1 {
                        format!(" run {} of {repeat}", i + 1)
                    } else {
                        String::new()
                    },
                    match &verdict {
                        Ok(()) => "holds".to_string(),
                        Err(why) => format!("fails: {why}"),
                    },
                    report.latency_ms.p99
                );
                runs.push((report, observed, verdict));
                if self.interrupted() {
                    break;
                }
            }
            let (step, observed) = Step::of_runs(runs);
            if let Some(path) = self.hgrm.as_deref() {
                report::write_hgrm_files(&report::per_rate_path(path, rate), &observed)?;
            }
            let held = step.held;
            steps.push(step);
            if self.interrupted() {
                break;
            }
            if held {
                good = Some(rate);
            } else {
                bad = Some(rate);
            }
            rate = match (good, bad, climb) {
                (None, Some(b), _) => b / 2.0,
                (Some(g), None, None) => g * 2.0,
                (Some(g), Some(b), None) if (b - g) > (0.05 * g).max(1.0) => (g + b) / 2.0,
                (Some(g), None, Some(step)) => g + step,
                (Some(g), Some(b), Some(step)) if b - g > step => g + step,
                _ => break,
            };
            if !(1.0..=10_000_000.0).contains(&rate) {
                break;
            }
        }
        let limited_by_hammer = steps
            .iter()
            .any(|s| !s.held && s.report.hammer_behind && Some(s.report.config.target_rate) == bad);
        let report = FindMaxReport {
            mode: "find_max",
            slo_p99_ms: slo_ms,
            max_rate: good.unwrap_or(0.0),
            limited_by_hammer,
            steps,
        };
        print!("{}", report.table());
        Ok(report)
    }
}

/// Why a step does not hold the objective, if it does not.
pub fn holds(r: &RunReport, slo_ms: f64) -> Result<(), String> {
    // errors_total already holds the client-side drops (CLIENT_DROPPED).
    let failed = r.errors_total + r.timeouts;
    if r.latency_ms.p99 > slo_ms {
        return Err(format!("p99 {:.3} ms > {slo_ms} ms", r.latency_ms.p99));
    }
    if failed as f64 > 0.001 * r.scheduled as f64 {
        return Err(format!("{failed} of {} requests failed", r.scheduled));
    }
    if r.achieved_rps < 0.95 * r.config.target_rate {
        return Err(format!("only {:.1}/s ok", r.achieved_rps));
    }
    Ok(())
}

#[derive(Debug, Serialize)]
pub struct RatesReport {
    pub mode: &'static str,
    pub runs: Vec<RunReport>,
}

#[derive(Debug, Serialize)]
pub struct Step {
    pub held: bool,
    pub why: String,
    /// p99 of each run at this rate, lowest first (one run unless --find-repeat).
    pub runs_p99_ms: Vec<f64>,
    /// The median run by p99: its figures stand for the step.
    #[serde(flatten)]
    pub report: RunReport,
}

impl Step {
    /// One step from its runs (at least one): it holds when most of them do. The
    /// median run's recording comes back with it.
    fn of_runs(mut runs: Vec<(RunReport, Observed, Result<(), String>)>) -> (Step, Observed) {
        let n = runs.len();
        let failures: Vec<String> = runs
            .iter()
            .filter_map(|(_, _, verdict)| verdict.clone().err())
            .collect();
        let held = failures.len() * 2 < n;
        runs.sort_by(|a, b| a.0.latency_ms.p99.total_cmp(&b.0.latency_ms.p99));
        let runs_p99_ms = runs.iter().map(|(r, _, _)| r.latency_ms.p99).collect();
        let (report, observed, _) = runs.swap_remove(n / 2);
        let why = match (held, n) {
            (true, _) => String::new(),
            (false, 1) => failures.into_iter().next().unwrap_or_default(),
            (false, _) => format!(
                "{} of {n} runs failed; first: {}",
                failures.len(),
                failures.first().map_or("", String::as_str)
            ),
        };
        let step = Step {
            held,
            why,
            runs_p99_ms,
            report,
        };
        (step, observed)
    }
}

#[derive(Debug, Serialize)]
pub struct FindMaxReport {
    pub mode: &'static str,
    pub slo_p99_ms: f64,
    /// Highest rate that held; 0 when none did.
    pub max_rate: f64,
    /// Whether the search stopped because hammer, not the target, ran out of breath.
    pub limited_by_hammer: bool,
    pub steps: Vec<Step>,
}

impl FindMaxReport {
    fn table(&self) -> String {
        let runs: Vec<RunReport> = self.steps.iter().map(|s| s.report.clone()).collect();
        let mut text = rates_table(&runs);
        for (i, s) in self.steps.iter().enumerate() {
            text += &format!(
                "step {:>2}: {:>10.1}/s  {}{}\n",
                i + 1,
                s.report.config.target_rate,
                if s.held {
                    "holds".to_string()
                } else {
                    format!("fails ({})", s.why)
                },
                if s.runs_p99_ms.len() > 1 {
                    let each: Vec<String> =
                        s.runs_p99_ms.iter().map(|p| format!("{p:.3}")).collect();
                    format!("  [p99 ms of each run: {}]", each.join(", "))
                } else {
                    String::new()
                }
            );
        }
        text += &format!(
            "highest rate holding p99 <= {} ms: {:.1} req/s{}\n",
            self.slo_p99_ms,
            self.max_rate,
            if self.limited_by_hammer {
                " (LIMITED BY HAMMER: the target may do more)"
            } else {
                ""
            }
        );
        text
    }
}

/// rate → achieved, tail and failures, one row per run.
pub fn rates_table(runs: &[RunReport]) -> String {
    let mut text = format!(
        "{:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8}  {}\n",
        "rate",
        "sent/s",
        "ok/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "timeouts",
        "dropped",
        "hammer"
    );
    for r in runs {
        text += &format!(
            "{:>10.1} {:>10.1} {:>10.1} {:>10.3} {:>10.3} {:>10.3} {:>8} {:>8} {:>8}  {}\n",
            r.config.target_rate,
            r.sent_rps,
            r.achieved_rps,
            r.latency_ms.p50,
            r.latency_ms.p99,
            r.latency_ms.p999,
            r.errors_total,
            r.timeouts,
            r.dropped,
            if r.hammer_behind { "BEHIND" } else { "ok" }
        );
    }
    text
}
