//! One run at one rate: the pacer, a task per request, progress, and the drain.
//!
//! The pacer sleeps until the next request is due, then sends every request whose
//! intended time has passed — each as its own task, so no reply can hold back the
//! next send. Past `--max-inflight` outstanding, a due request is counted as dropped
//! rather than queued. When the schedule is done, hammer waits for the stragglers up
//! to the timeout (plus a little) and counts whatever is left as timeouts.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::Timer;

use crate::mix::Mix;
use crate::recorder::{CpuMeter, Observed, Outcome, Recorder};
use crate::report::HammerCost;
use crate::schedule::Schedule;
use crate::transport::Transport;
use crate::verify::Sampler;

#[derive(Debug, Clone)]
pub struct Plan {
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    pub max_inflight: usize,
    pub verify: usize,
    pub progress: bool,
    /// Set on Ctrl-C / SIGTERM: stop sending, drain, report what was measured.
    pub interrupted: Arc<AtomicBool>,
}

pub struct RunResult {
    pub scheduled: u64,
    /// The measured span actually run: `--duration`, or less when interrupted.
    pub measured: Duration,
    pub observed: Observed,
    pub cost: HammerCost,
    pub samples: Vec<(proto::SalesRequest, proto::SalesResponse)>,
}

/// Longest sleep of the pacer, so that an interruption is noticed promptly.
const PACER_NAP: Duration = Duration::from_millis(50);

/// Extra wait for replies after the last request's timeout has passed.
const DRAIN_GRACE: Duration = Duration::from_secs(3);

pub async fn run(plan: &Plan, transport: &Arc<Transport>, mix: &mut Mix) -> RunResult {
    let recorder = Arc::new(Recorder::new());
    let inflight = Arc::new(AtomicUsize::new(0));
    let inflight_measured = Arc::new(AtomicUsize::new(0));
    let cpu = CpuMeter::start();
    // A few milliseconds of head start so the first requests are not already late.
    let schedule = Schedule::new(
        Instant::now() + Duration::from_millis(5),
        plan.rate,
        plan.warmup,
        plan.duration,
    );
    let sampler = Arc::new(Sampler::new(plan.verify, schedule.measured()));
    let warmup_count = schedule.total() - schedule.measured();
    let _progress = plan
        .progress
        .then(|| smol::spawn(progress(recorder.clone(), schedule, plan.warmup)));

    let mut next = 0u64;
    while next < schedule.total() {
        if plan.interrupted.load(Ordering::Relaxed) {
            log::warn!("interrupted: no more requests; reporting what was measured");
            break;
        }
        let due = schedule.intended(next);
        let now = Instant::now();
        if now < due {
            Timer::at(due.min(now + PACER_NAP)).await;
            continue;
        }
        while next < schedule.total() && schedule.intended(next) <= now {
            let intended = schedule.intended(next);
            let measured = schedule.is_measured(next);
            let req = mix.next_request();
            if inflight.load(Ordering::Relaxed) >= plan.max_inflight {
                recorder.dropped(measured);
            } else {
                let sample = measured && sampler.wants(next - warmup_count);
                inflight.fetch_add(1, Ordering::Relaxed);
                if measured {
                    inflight_measured.fetch_add(1, Ordering::Relaxed);
                }
                let task = Request {
                    req,
                    intended,
                    measured,
                    sample,
                    timeout: plan.timeout,
                    transport: transport.clone(),
                    recorder: recorder.clone(),
                    sampler: sampler.clone(),
                    inflight: inflight.clone(),
                    inflight_measured: inflight_measured.clone(),
                };
                smol::spawn(task.send()).detach();
            }
            next += 1;
        }
    }

    let give_up = Instant::now() + plan.timeout + DRAIN_GRACE;
    while inflight.load(Ordering::Acquire) > 0 && Instant::now() < give_up {
        Timer::after(Duration::from_millis(2)).await;
    }
    let mut observed = recorder.finish();
    let abandoned = inflight_measured.load(Ordering::Acquire) as u64;
    if abandoned > 0 {
        log::warn!("{abandoned} requests still had no outcome {DRAIN_GRACE:?} past their timeout; counted as timeouts");
        observed.counts.timeouts += abandoned;
    }
    // Interrupted: the measured part is what was due before the stop.
    let scheduled = next.saturating_sub(warmup_count).min(schedule.measured());
    let measured = if next >= schedule.total() {
        plan.duration
    } else {
        Duration::from_secs_f64(scheduled as f64 / plan.rate)
    };
    RunResult {
        scheduled,
        measured,
        observed,
        cost: HammerCost {
            cpu_percent: cpu.percent(),
            cpu_us_per_call: cpu.used().as_secs_f64() * 1e6 / recorder.all_sent().max(1) as f64,
        },
        samples: sampler.take(),
    }
}

/// Everything one request task needs.
struct Request {
    req: proto::SalesRequest,
    intended: Instant,
    measured: bool,
    sample: bool,
    timeout: Duration,
    transport: Arc<Transport>,
    recorder: Arc<Recorder>,
    sampler: Arc<Sampler>,
    inflight: Arc<AtomicUsize>,
    inflight_measured: Arc<AtomicUsize>,
}

impl Request {
    async fn send(self) {
        let sent = Instant::now();
        self.recorder
            .sent(self.measured, sent.saturating_duration_since(self.intended));
        let outcome = self.transport.call(&self.req, self.timeout).await;
        let end = Instant::now();
        self.recorder.done(
            self.measured,
            &outcome,
            end.saturating_duration_since(self.intended),
            end - sent,
        );
        if self.sample {
            if let Outcome::Ok(Some(reply)) = outcome {
                self.sampler.keep(self.req, reply);
            }
        }
        if self.measured {
            self.inflight_measured.fetch_sub(1, Ordering::Release);
        }
        self.inflight.fetch_sub(1, Ordering::Release);
    }
}

/// One line a second on stderr: elapsed, totals, and the last second's rate and tail.
async fn progress(recorder: Arc<Recorder>, schedule: Schedule, warmup: Duration) {
    let start = schedule.intended(0);
    let mut tick = 1u64;
    loop {
        Timer::at(start + Duration::from_secs(tick)).await;
        let p = recorder.tick();
        let elapsed = start.elapsed();
        let phase = if elapsed <= warmup { " warm-up" } else { "" };
        eprintln!(
            "[{:6.1}s{phase}] sent {:>8}  ok {:>8}  failed {:>6}  dropped {:>5} | {:>7}/s  p50 {:>9.3} ms  p99 {:>9.3} ms",
            elapsed.as_secs_f64(),
            p.sent,
            p.ok,
            p.failed,
            p.dropped,
            p.window_sent,
            p.window_p50_us as f64 / 1000.0,
            p.window_p99_us as f64 / 1000.0,
        );
        tick += 1;
    }
}
