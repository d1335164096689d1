//! `hammer`: an open-loop load generator for the study's two architectures.
//!
//! Requests leave on a fixed schedule (`--rate`), each as its own task, whatever the
//! replies do; latency counts from each request's intended send time, so stalls are
//! measured rather than hidden (coordinated omission corrected). The same seeded query
//! mix drives gRPC (`hammer grpc`, through `lb` or a worker) and AMQP (`hammer amqp`,
//! through RabbitMQ to `mq-worker`s). A summary goes to stdout, progress to stderr,
//! and `--json` / `--hgrm` write the machine-readable report and the latency
//! distribution.
//!
//! Flow: args → mix (from the database's meta) → transport → run (schedule → request
//! tasks → recorder) → verify → report; sweeps repeat the run at several rates.

mod amqp;
mod args;
mod grpc;
mod mix;
mod recorder;
mod report;
mod run;
mod schedule;
mod sweep;
mod transport;
mod verify;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

use args::{Args, Method, MixKind, TransportKind};
use mix::{Dictionary, Mix};
use report::RunConfig;
use run::Plan;
use sweep::Session;
use transport::Transport;

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Err(e) = args.check() {
        eprintln!("hammer: {e}");
        return ExitCode::from(2);
    }
    // Request tasks run on smol's global executor, one thread unless
    // SMOL_THREADS says otherwise: on a machine shared with the system under
    // test, one thread spends about a fifth less CPU per call than two (no
    // cross-thread wake-ups) and sustains ~10,000 calls/s; when it cannot keep
    // up, the report says so.
    // First Ctrl-C (or SIGTERM): stop sending and report what was measured; a
    // second Ctrl-C exits at once.
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        let registered = flag::register_conditional_shutdown(signal, 130, interrupted.clone())
            .and_then(|_| flag::register(signal, interrupted.clone()));
        if let Err(e) = registered {
            eprintln!("hammer: cannot handle signal {signal}: {e}");
            return ExitCode::FAILURE;
        }
    }
    // The scheduler runs on the executor too, so spawning a request is not a
    // cross-thread wake-up.
    match smol::block_on(smol::spawn(hammer(args, interrupted))) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hammer: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn hammer(args: Args, interrupted: Arc<AtomicBool>) -> Result<ExitCode, String> {
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let mix = build_mix(&args, seed)?;
    let (transport, target) = match args.transport {
        TransportKind::Grpc => {
            let t =
                grpc::GrpcTransport::connect(&args.target, args.concurrency, args.method).await?;
            let target = t.target();
            (Transport::Grpc(t), target)
        }
        TransportKind::Amqp => {
            let (url, queue, channels, encoding) = (
                args.amqp_url(),
                args.queue.clone(),
                args.concurrency,
                args.encoding,
            );
            let target = format!("{} queue {queue}", amqp::redact(&url));
            let t = smol::unblock(move || {
                amqp::AmqpTransport::connect(&url, &queue, channels, encoding)
            })
            .await?;
            (Transport::Amqp(t), target)
        }
    };
    let mut session = Session {
        plan: Plan {
            rate: args.rate,
            warmup: args.warmup,
            duration: args.duration,
            timeout: args.timeout,
            max_inflight: args.max_inflight,
            verify: args.verify,
            progress: !args.quiet,
            interrupted,
        },
        config: RunConfig {
            transport: args.transport.name(),
            target,
            method: args.method.name(),
            mix: args.mix.name(),
            target_rate: args.rate,
            duration_s: args.duration.as_secs_f64(),
            warmup_s: args.warmup.as_secs_f64(),
            timeout_s: args.timeout.as_secs_f64(),
            concurrency: args.concurrency,
            seed,
        },
        transport: Arc::new(transport),
        mix,
        db: args.db.clone(),
        hgrm: args.hgrm.clone(),
    };
    let mismatches = if let Some(rates) = &args.rates {
        let r = session.rates(rates).await?;
        write_json(&args, &r)?;
        r.runs.iter().map(|r| r.verify.mismatches).sum()
    } else if args.find_max {
        let r = session
            .find_max(args.slo_p99, args.find_repeat, args.find_step)
            .await?;
        write_json(&args, &r)?;
        r.steps.iter().map(|s| s.report.verify.mismatches).sum()
    } else {
        let r = session.single().await?;
        write_json(&args, &r)?;
        r.verify.mismatches
    };
    if mismatches > 0 {
        eprintln!("hammer: {mismatches} replies disagree with the database");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn build_mix(args: &Args, seed: u64) -> Result<Mix, String> {
    if args.method == Method::Health && args.verify == 0 {
        // Health checks carry no query: no database needed.
        return Ok(Mix::new(MixKind::Seed, seed, 0, 0, Dictionary::default()));
    }
    let info = worker::open_info(&args.db).map_err(|e| e.to_string())?;
    let dict = match args.mix {
        MixKind::Random => Dictionary::load(&args.db)?,
        MixKind::Seed => Dictionary::default(),
    };
    Ok(Mix::new(args.mix, seed, info.date_min, info.date_max, dict))
}

fn write_json(args: &Args, value: &impl serde::Serialize) -> Result<(), String> {
    match &args.json {
        Some(path) => report::write_json(path, value),
        None => Ok(()),
    }
}
