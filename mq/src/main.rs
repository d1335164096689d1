//! `mq-worker`: serves sales queries from a RabbitMQ queue.
//!
//! Wiring only: parse flags, open one read-only database connection per
//! consumer (failing at once if the database is missing), start the consumer
//! threads (`mq::serve`), log a summary now and then, and on SIGTERM/SIGINT
//! let every consumer finish what it holds before exiting 0.

use argh::FromArgs;
use mq::connect::Target;
use mq::serve::{self, Config, Stats};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Serve sales queries from a RabbitMQ queue (request/reply, direct reply-to).
#[derive(FromArgs)]
struct Args {
    /// broker URL (default: env AMQP_URL, else amqp://guest:guest@127.0.0.1:5672/%2f)
    #[argh(option)]
    amqp: Option<String>,
    /// the SQLite database written by `seeder` (default database.db)
    #[argh(option, default = "PathBuf::from(\"database.db\")")]
    db: PathBuf,
    /// queue to consume (default worker_queue)
    #[argh(option, default = "String::from(\"worker_queue\")")]
    queue: String,
    /// consumer threads, each with its own channel and database connection
    /// (default: the number of cores)
    #[argh(option)]
    threads: Option<usize>,
    /// unacknowledged messages the broker may push to each consumer (default 16)
    #[argh(option, default = "16")]
    prefetch: u16,
    /// name reported as region_processed (default mq-worker-<pid>)
    #[argh(option)]
    id: Option<String>,
    /// seconds between summary lines (default 10; 0 for none)
    #[argh(option, default = "10")]
    stats_interval: u64,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Args = argh::from_env();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let url = args
        .amqp
        .or_else(|| std::env::var("AMQP_URL").ok())
        .unwrap_or_else(|| "amqp://guest:guest@127.0.0.1:5672/%2f".to_string());
    let target = Target::parse(&url).map_err(|e| e.to_string())?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    if args.prefetch == 0 {
        return Err("--prefetch must be at least 1 (0 would mean unlimited)".into());
    }
    let info = worker::open_info(&args.db).map_err(|e| e.to_string())?;
    let conns = (0..threads)
        .map(|_| worker::QueryConn::open(&args.db))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let id = args
        .id
        .unwrap_or_else(|| format!("mq-worker-{}", std::process::id()));
    log::info!(
        "{id}: {} ({} sales), {threads} consumers on queue {:?} at {target}",
        args.db.display(),
        info.sales,
        args.queue
    );

    let config = Arc::new(Config {
        target,
        queue: args.queue,
        prefetch: args.prefetch,
        id,
        consumers: threads,
    });
    let stats = Arc::new(Stats::default());
    // Consumers stop when this sender is dropped.
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let mut handles = Vec::new();
    for (i, mut conn) in conns.into_iter().enumerate() {
        let (config, stats, stop) = (config.clone(), stats.clone(), stop_rx.clone());
        let handle = std::thread::Builder::new()
            .name(format!("consumer-{i}"))
            .spawn(move || serve::run(&config, &mut conn, &stats, &stop))
            .map_err(|e| format!("cannot start a consumer thread: {e}"))?;
        handles.push(handle);
    }

    wait_for_signal(&config, &stats, Duration::from_secs(args.stats_interval))?;
    log::info!("stopping: finishing the requests in hand");
    drop(stop_tx);
    for handle in handles {
        let _ = handle.join();
    }
    log_summary(&stats, None);
    log::info!("stopped");
    Ok(())
}

/// Blocks until SIGTERM or SIGINT, logging a summary every `interval`. A
/// second signal exits at once.
fn wait_for_signal(config: &Config, stats: &Stats, interval: Duration) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let (tick_tx, tick_rx) = crossbeam_channel::bounded::<()>(1);
    std::thread::spawn(move || {
        let mut seen = 0;
        for signal in signals.forever() {
            seen += 1;
            if seen == 1 {
                let _ = tick_tx.send(());
            } else {
                log::warn!("second signal ({signal}): exiting now");
                std::process::exit(130);
            }
        }
    });
    let mut last = Instant::now();
    let mut last_total = 0;
    loop {
        let wait = if interval.is_zero() {
            Duration::from_secs(3600)
        } else {
            interval
        };
        match tick_rx.recv_timeout(wait) {
            Ok(()) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) if !interval.is_zero() => {
                let total = total(stats);
                let attached = stats.attached.load(Ordering::Relaxed);
                // Quiet when idle and healthy.
                if total != last_total || attached != config.consumers {
                    let rate = (total - last_total) as f64 / last.elapsed().as_secs_f64();
                    log_summary(stats, Some(rate));
                    if attached != config.consumers {
                        log::warn!("{attached}/{} consumers attached", config.consumers);
                    }
                }
                last = Instant::now();
                last_total = total;
            }
            Err(_) => {}
        }
    }
    Ok(())
}

fn total(stats: &Stats) -> u64 {
    stats.served.load(Ordering::Relaxed)
        + stats.failed.load(Ordering::Relaxed)
        + stats.dead_lettered.load(Ordering::Relaxed)
}

fn log_summary(stats: &Stats, rate: Option<f64>) {
    let rate = rate.map(|r| format!(" ({r:.0}/s)")).unwrap_or_default();
    log::info!(
        "served {}{rate}, error replies {}, dead-lettered {}",
        stats.served.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed),
        stats.dead_lettered.load(Ordering::Relaxed)
    );
}
