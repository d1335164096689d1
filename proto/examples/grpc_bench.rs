//! Closed-loop throughput of our gRPC stack.
//!
//! Against a worker (`--addr`): `--connections` channels, each with
//! `--concurrency` callers that send GetSalesMetrics back to back for
//! `--seconds` (after a `--warmup`), over a fixed mix of region × category
//! × year requests. Prints calls/s, latency percentiles and, given the
//! worker's `--pid`, the worker's CPU time per call from /proc/<pid>/stat.
//! `--method health` calls Health/Check instead: no database work, so the
//! cost of the gRPC stack alone.
//!
//! Without `--addr`: an in-process echo server and client exchanging
//! `--payload`-byte messages with `--window`-byte HTTP/2 stream windows,
//! to measure what flow-control windows do to large messages.
//!
//! ```text
//! cargo run --release -p proto --example grpc_bench -- --addr 127.0.0.1:50052 --connections 4
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use bytes::Bytes;
use proto::grpc::{serve, Channel, ChannelConfig, Handler, Request, ServerConfig};
use proto::{paths, HealthCheckRequest, HealthCheckResponse, SalesRequest, SalesResponse};

/// Measure calls/s and worker CPU per call (or, without --addr, an in-process echo).
#[derive(FromArgs)]
struct Args {
    /// worker address; without it, benchmark an in-process echo server
    #[argh(option)]
    addr: Option<SocketAddr>,
    /// connections (HTTP/2 channels)
    #[argh(option, default = "1")]
    connections: usize,
    /// concurrent calls per connection
    #[argh(option, default = "16")]
    concurrency: usize,
    /// measured seconds
    #[argh(option, default = "5.0")]
    seconds: f64,
    /// seconds of load before measuring
    #[argh(option, default = "1.0")]
    warmup: f64,
    /// method to call: sales (GetSalesMetrics) or health (Health/Check, no
    /// database work: the cost of the gRPC stack alone)
    #[argh(option, default = "String::from(\"sales\")")]
    method: String,
    /// worker pid, to report its CPU time per call
    #[argh(option)]
    pid: Option<u32>,
    /// clock ticks per second of /proc/<pid>/stat (getconf CLK_TCK)
    #[argh(option, default = "100")]
    clk_tck: u64,
    /// echo mode: message size in bytes
    #[argh(option, default = "1048576")]
    payload: usize,
    /// echo mode: initial stream window of server and client, in bytes
    #[argh(option, default = "1048576")]
    window: u32,
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Args = argh::from_env();
    if let Err(e) = smol::block_on(run(args)) {
        eprintln!("grpc_bench: {e}");
        std::process::exit(1);
    }
}

/// What one caller sends next.
type Call =
    Box<dyn Fn(&Channel, u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool>>>>;

async fn run(args: Args) -> Result<(), String> {
    let (addr, call, _server): (SocketAddr, Call, _) = match args.addr {
        Some(addr) => match args.method.as_str() {
            "sales" => (addr, Box::new(sales_call), None),
            "health" => (addr, Box::new(health_call), None),
            other => return Err(format!("unknown --method {other}: sales or health")),
        },
        None => {
            let (addr, server) = echo_server(args.window).await?;
            let payload = Bytes::from(vec![0x5a; args.payload]);
            let call: Call = Box::new(move |ch, _| {
                let ch = ch.clone();
                let payload = payload.clone();
                Box::pin(async move { ch.unary("/bench/Echo", payload, None).await.is_ok() })
            });
            (addr, call, Some(server))
        }
    };
    let config = ChannelConfig {
        initial_stream_window: args.window.max(65_535),
        ..ChannelConfig::default()
    };
    let mut channels = Vec::new();
    for _ in 0..args.connections {
        let ch = Channel::connect_with(addr, config.clone())
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        channels.push(ch);
    }

    let call = std::rc::Rc::new(call);
    let start = Instant::now();
    let warmup_end = start + Duration::from_secs_f64(args.warmup);
    let end = warmup_end + Duration::from_secs_f64(args.seconds);
    let (cpu_tx, cpu_rx) = async_channel::bounded(1);
    let pid = args.pid;
    let clk = args.clk_tck;
    let cpu_probe = smol::spawn(async move {
        smol::Timer::at(warmup_end).await;
        let before = pid.map(|p| cpu_seconds(p, clk));
        smol::Timer::at(end).await;
        let after = pid.map(|p| cpu_seconds(p, clk));
        let _ = cpu_tx.send((before, after)).await;
    });

    // Callers run on this thread's executor: one client thread, so the
    // client's cost is bounded and the worker's is what we measure.
    let ex = smol::LocalExecutor::new();
    let mut tasks = Vec::new();
    for (c, ch) in channels.iter().enumerate() {
        for k in 0..args.concurrency {
            let ch = ch.clone();
            let call = call.clone();
            let mut n = (c * args.concurrency + k) as u64 * 1_000_003;
            tasks.push(ex.spawn(async move {
                let mut latencies = Vec::new();
                let (mut ok, mut failed) = (0u64, 0u64);
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    let good = call(&ch, n).await;
                    n += 1;
                    if t0 >= warmup_end {
                        latencies.push(t0.elapsed());
                        if good {
                            ok += 1;
                        } else {
                            failed += 1;
                        }
                    }
                }
                (latencies, ok, failed)
            }));
        }
    }
    let results = ex
        .run(async {
            let mut all = Vec::new();
            for t in tasks {
                all.push(t.await);
            }
            all
        })
        .await;
    cpu_probe.await;
    let (before, after) = cpu_rx.recv().await.map_err(|e| e.to_string())?;

    let mut latencies: Vec<Duration> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
    let ok: u64 = results.iter().map(|r| r.1).sum();
    let failed: u64 = results.iter().map(|r| r.2).sum();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let rate = ok as f64 / args.seconds;
    match args.addr {
        Some(_) => print!(
            "{} connections={} concurrency={} calls={ok} errors={failed} calls/s={rate:.0}",
            args.method, args.connections, args.concurrency
        ),
        None => print!(
            "echo payload={}B window={}B calls={ok} errors={failed} calls/s={rate:.1} MB/s={:.1}",
            args.payload,
            args.window,
            rate * 2.0 * args.payload as f64 / 1e6
        ),
    }
    print!(" p50={:.3}ms p99={:.3}ms", pct(0.50), pct(0.99));
    if let (Some(Some(b)), Some(Some(a))) = (before, after) {
        if ok > 0 {
            print!(" worker_cpu_us/call={:.1}", (a - b) * 1e6 / ok as f64);
        }
    }
    println!();
    Ok(())
}

fn sales_call(ch: &Channel, n: u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool>>> {
    let req = SalesRequest {
        region: seeder::REGIONS[(n % 5) as usize].into(),
        category: seeder::CATEGORIES[(n / 5 % 8) as usize].into(),
        start_date: format!("{}-01-01", 2020 + n / 40 % 6),
        end_date: format!("{}-12-31", 2020 + n / 40 % 6),
        ..Default::default()
    };
    let ch = ch.clone();
    Box::pin(async move {
        ch.call::<_, SalesResponse>(
            paths::GET_SALES_METRICS,
            &req,
            Some(Duration::from_secs(10)),
        )
        .await
        .is_ok()
    })
}

fn health_call(ch: &Channel, _: u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool>>> {
    let ch = ch.clone();
    Box::pin(async move {
        ch.call::<_, HealthCheckResponse>(paths::HEALTH_CHECK, &HealthCheckRequest::default(), None)
            .await
            .is_ok()
    })
}

/// CPU seconds (user + system) of a process so far.
fn cpu_seconds(pid: u32, clk_tck: u64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = after.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / clk_tck as f64)
}

struct Echo;

impl Handler for Echo {
    fn call(&self, req: Request) -> proto::grpc::server::Reply {
        Box::pin(std::future::ready(Ok(req.message)))
    }
}

async fn echo_server(window: u32) -> Result<(SocketAddr, smol::Task<std::io::Result<()>>), String> {
    let listener = smol::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let config = ServerConfig {
        initial_stream_window: window.max(65_535),
        max_message_size: 64 << 20,
        ..ServerConfig::default()
    };
    let server = smol::spawn(serve(
        listener,
        Arc::new(Echo),
        config,
        std::future::pending(),
    ));
    Ok((addr, server))
}
