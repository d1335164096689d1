//! `lb`: the gRPC load balancer. Wiring only: arguments, the resolver loop,
//! health checkers, the stats summary, the server and its graceful shutdown.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use argh::FromArgs;
use lb::backend::Backend;
use lb::balancer::Balancer;
use lb::proxy::Proxy;
use lb::resolver::{Resolver, Target};
use lb::{health, stats};

/// gRPC load balancer: forwards each call to the healthy worker with the
/// fewest outstanding calls, health-checks workers, ejects a failed worker at
/// once and retries the call on another.
#[derive(FromArgs)]
struct Args {
    /// address to listen on (default 0.0.0.0:50051)
    #[argh(option, default = "String::from(\"0.0.0.0:50051\")")]
    listen: String,
    /// workers, comma-separated host:port (a scheme prefix such as http:// is
    /// ignored; every address a name resolves to is a worker); default: env
    /// WORKER_URLS
    #[argh(option)]
    workers: Option<String>,
    /// how often worker names are resolved again (default 5s)
    #[argh(option, default = "Duration::from_secs(5)", from_str_fn(duration))]
    resolve_interval: Duration,
    /// how often each worker is health-checked (default 1s)
    #[argh(option, default = "Duration::from_secs(1)", from_str_fn(duration))]
    health_interval: Duration,
    /// how long a health check may take (default 500ms)
    #[argh(option, default = "Duration::from_millis(500)", from_str_fn(duration))]
    health_timeout: Duration,
    /// HTTP/2 connections per worker (default 2)
    #[argh(option, default = "2")]
    conns_per_worker: usize,
    /// how long connecting to a worker may take (default 1s)
    #[argh(option, default = "Duration::from_secs(1)", from_str_fn(duration))]
    connect_timeout: Duration,
    /// deadline for calls whose client sent none; 0 for none (default 30s)
    #[argh(option, default = "Duration::from_secs(30)", from_str_fn(duration))]
    call_timeout: Duration,
    /// how often the per-worker summary is logged (default 10s)
    #[argh(option, default = "Duration::from_secs(10)", from_str_fn(duration))]
    stats_interval: Duration,
    /// executor threads (default 1: forwarding is light, and one thread
    /// spends about half the CPU per call that two do on cross-thread
    /// wake-ups; raise it when one core is not enough)
    #[argh(option, default = "1")]
    threads: usize,
}

/// Parses `500ms`, `1s`, `1.5s`, `2m`; a bare number is seconds.
fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n >= 0.0 && n.is_finite() => Ok(Duration::from_secs_f64(n * scale)),
        _ => Err(format!("{s:?}: expected a duration such as 500ms or 5s")),
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Args = argh::from_env();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let list = match args.workers {
        Some(w) => w,
        None => std::env::var("WORKER_URLS")
            .map_err(|_| "no workers: pass --workers host:port,... or set WORKER_URLS")?,
    };
    let targets = Target::parse_list(&list).map_err(|e| format!("bad worker list: {e}"))?;
    let listen: SocketAddr = args
        .listen
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("--listen {:?}: expected host:port", args.listen))?;
    for (name, d) in [
        ("--resolve-interval", args.resolve_interval),
        ("--health-interval", args.health_interval),
        ("--health-timeout", args.health_timeout),
        ("--connect-timeout", args.connect_timeout),
        ("--stats-interval", args.stats_interval),
    ] {
        if d.is_zero() {
            return Err(format!("{name} must be more than 0"));
        }
    }
    if args.conns_per_worker == 0 {
        return Err("--conns-per-worker must be at least 1".into());
    }
    if args.threads == 0 {
        return Err("--threads must be at least 1".into());
    }
    // smol's global executor reads this once, on first use.
    std::env::set_var("SMOL_THREADS", args.threads.to_string());
    let shutdown = shutdown_signal()?;

    smol::block_on(async {
        let listener = smol::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let balancer = Arc::new(Balancer::new(args.conns_per_worker, args.connect_timeout));
        let check = {
            let (interval, timeout) = (args.health_interval, args.health_timeout);
            move |b: Arc<Backend>| smol::spawn(health::run(b, interval, timeout)).detach()
        };
        let mut resolver = Resolver::new(targets);
        let names: Vec<String> = resolver.targets().iter().map(|t| t.to_string()).collect();
        let addrs = resolver.resolve().await;
        balancer.update(&addrs).into_iter().for_each(&check);
        log::info!(
            "listening on {listen}; workers {} → {addrs:?}",
            names.join(",")
        );
        smol::spawn({
            let (balancer, interval) = (balancer.clone(), args.resolve_interval);
            async move {
                loop {
                    smol::Timer::after(interval).await;
                    let addrs = resolver.resolve().await;
                    balancer.update(&addrs).into_iter().for_each(&check);
                }
            }
        })
        .detach();
        smol::spawn(stats::run(balancer.clone(), args.stats_interval)).detach();

        let call_timeout = (!args.call_timeout.is_zero()).then_some(args.call_timeout);
        let proxy = Arc::new(Proxy::new(balancer, call_timeout));
        proto::grpc::serve(listener, proxy, Default::default(), async move {
            let _ = shutdown.recv().await;
            log::info!("shutting down: no new calls, finishing the ones in flight");
        })
        .await
        .map_err(|e| format!("server failed: {e}"))?;
        log::info!("stopped");
        Ok(())
    })
}

/// A channel that receives once on the first SIGTERM or SIGINT; a second one
/// exits at once.
fn shutdown_signal() -> Result<smol::channel::Receiver<()>, String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let (tx, rx) = smol::channel::bounded(1);
    std::thread::spawn(move || {
        let mut received = 0;
        for signal in signals.forever() {
            received += 1;
            if received > 1 {
                log::warn!("second signal {signal}: exiting now");
                std::process::exit(1);
            }
            let _ = tx.try_send(());
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::duration;
    use std::time::Duration;

    #[test]
    fn parses_durations() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(duration("5h").is_err());
        assert!(duration("-1s").is_err());
        assert!(duration("").is_err());
    }
}
