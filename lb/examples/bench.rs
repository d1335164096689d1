//! A small open-loop benchmark client for the LB (and for workers directly).
//!
//! Steps through increasing rates; at each it sends GetSalesMetrics on a fixed
//! schedule for a few seconds, measures latency from each call's *intended*
//! send time (so a stall counts against every call it delays), and reads the
//! CPU time the given processes spent, from /proc/<pid>/stat. It stops at the
//! first rate whose p99 is over the limit or that had errors, and prints the
//! highest rate that held, as a line `max_rate=<calls/s>` for scripts.
//!
//! ```text
//! cargo run --release -p lb --example bench -- --target 127.0.0.1:50051 --pid lb=1234
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use argh::FromArgs;
use proto::grpc::Channel;
use proto::{paths, SalesRequest, SalesResponse};

/// Open-loop GetSalesMetrics benchmark: max calls/s with p99 under a limit.
#[derive(FromArgs)]
struct Args {
    /// the LB or worker to call (default 127.0.0.1:50051); repeat it to
    /// spread calls round-robin over several workers called directly
    #[argh(option)]
    target: Vec<SocketAddr>,
    /// rates to try, calls/s, ascending (default 250,500,1000,...,8000)
    #[argh(
        option,
        default = "Rates(vec![250, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000])",
        from_str_fn(rates)
    )]
    rates: Rates,
    /// seconds at each rate (default 3)
    #[argh(option, default = "3.0")]
    seconds: f64,
    /// p99 limit in milliseconds (default 10)
    #[argh(option, default = "10.0")]
    p99_ms: f64,
    /// HTTP/2 connections per target to spread calls over (default 4)
    #[argh(option, default = "4")]
    conns: usize,
    /// a process whose CPU time per call to report, as name=pid (repeatable)
    #[argh(option, from_str_fn(named_pid))]
    pid: Vec<(String, u32)>,
    /// clock ticks per second of /proc/<pid>/stat (default 100)
    #[argh(option, default = "100")]
    clk_tck: u64,
}

/// A comma-separated list of rates (argh reads a `Vec` as a repeated option).
struct Rates(Vec<u32>);

fn rates(s: &str) -> Result<Rates, String> {
    s.split(',')
        .map(|r| match r.trim().parse() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("bad rate {r:?}")),
        })
        .collect::<Result<_, _>>()
        .map(Rates)
}

fn named_pid(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s.split_once('=').ok_or("expected name=pid")?;
    Ok((
        name.to_string(),
        pid.parse().map_err(|_| format!("bad pid {pid:?}"))?,
    ))
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); utime is field 14, stime 15.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The query mix: every region × a few categories, with a date range and an
/// hour window, as the study's heavy queries have.
fn mix() -> Vec<SalesRequest> {
    let regions = [
        "North America",
        "South America",
        "Europe",
        "Oceania",
        "Asia",
    ];
    let categories = ["Books", "Computers", "Furniture", "Beauty"];
    let mut reqs = Vec::new();
    for (i, region) in regions.iter().enumerate() {
        for (j, category) in categories.iter().enumerate() {
            reqs.push(SalesRequest {
                region: region.to_string(),
                category: category.to_string(),
                start_date: format!("{}-01-01", 2020 + (i + j) % 4),
                end_date: format!("{}-06-30", 2022 + (i + j) % 4),
                start_hour: Some((8 + i as i32) % 12),
                end_hour: Some(18 + j as i32),
                ..Default::default()
            });
        }
    }
    reqs
}

struct Step {
    sent: usize,
    errors: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
    elapsed: Duration,
}

async fn run_step(
    channels: &[Channel],
    reqs: &[SalesRequest],
    rate: u32,
    length: Duration,
) -> Step {
    let n = (length.as_secs_f64() * f64::from(rate)) as usize;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let start = Instant::now() + Duration::from_millis(10);
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let ch = channels[i % channels.len()].clone();
            let req = reqs[i % reqs.len()].clone();
            let due = start + period.mul_f64(i as f64);
            smol::spawn(async move {
                smol::Timer::at(due).await;
                let r: Result<SalesResponse, _> = ch
                    .call(paths::GET_SALES_METRICS, &req, Some(Duration::from_secs(5)))
                    .await;
                (due.elapsed(), r.is_ok())
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(n);
    let mut errors = 0;
    for t in tasks {
        let (latency, ok) = t.await;
        latencies.push(latency);
        errors += usize::from(!ok);
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Step {
        sent: n,
        errors,
        p50: at(0.50),
        p99: at(0.99),
        max: latencies.last().copied().unwrap_or_default(),
        elapsed,
    }
}

/// Prints a line; a closed stdout (`| head`) is not worth a panic.
fn say(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn main() -> std::process::ExitCode {
    let args: Args = argh::from_env();
    // One executor thread: a client spread over threads spends its CPU on
    // cross-thread wake-ups, and the client shares the machine it measures.
    if std::env::var_os("SMOL_THREADS").is_none() {
        std::env::set_var("SMOL_THREADS", "1");
    }
    let reqs = mix();
    let result = smol::block_on(async {
        let mut targets = args.target.clone();
        if targets.is_empty() {
            targets.push(SocketAddr::from(([127, 0, 0, 1], 50051)));
        }
        let mut channels = Vec::new();
        for _ in 0..args.conns.max(1) {
            for &target in &targets {
                channels.push(
                    Channel::connect(target)
                        .await
                        .map_err(|e| format!("connect to {target}: {e}"))?,
                );
            }
        }
        // Warm up connections, caches and prepared statements.
        run_step(&channels, &reqs, 200, Duration::from_secs(1)).await;
        let limit = Duration::from_secs_f64(args.p99_ms / 1000.0);
        let mut best = 0;
        // A step that misses the limit is tried once more before the search
        // stops: on a shared machine one burst of someone else's work can
        // spoil a few seconds of p99.
        let mut retried = false;
        let mut i = 0;
        while let Some(&rate) = args.rates.0.get(i) {
            let before: Vec<_> = args.pid.iter().map(|(_, p)| cpu_ticks(*p)).collect();
            let length = Duration::from_secs_f64(args.seconds);
            let step = run_step(&channels, &reqs, rate, length).await;
            let after: Vec<_> = args.pid.iter().map(|(_, p)| cpu_ticks(*p)).collect();
            let mut cpu = String::new();
            for (((name, _), b), a) in args.pid.iter().zip(before).zip(after) {
                if let (Some(b), Some(a)) = (b, a) {
                    let us = (a - b) as f64 * 1e6 / args.clk_tck as f64 / step.sent as f64;
                    cpu.push_str(&format!(" cpu_us_per_call[{name}]={us:.1}"));
                }
            }
            say(format_args!(
                "rate={rate} sent={} achieved={:.0} errors={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}{cpu}",
                step.sent,
                step.sent as f64 / step.elapsed.as_secs_f64(),
                step.errors,
                step.p50.as_secs_f64() * 1e3,
                step.p99.as_secs_f64() * 1e3,
                step.max.as_secs_f64() * 1e3,
            ));
            if step.errors == 0 && step.p99 <= limit {
                best = rate;
                retried = false;
                i += 1;
            } else if retried {
                break;
            } else {
                retried = true;
            }
        }
        Ok::<_, String>(best)
    });
    match result {
        Ok(best) => {
            say(format_args!("max_rate={best}"));
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
