//! `worker`: serves the sales query over gRPC.
//!
//! Wiring only: open the database pool, bind, serve `service::Service`
//! until SIGTERM or SIGINT, then stop accepting, let the calls in flight
//! finish and exit 0. A second signal exits at once.

mod service;
mod stats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use argh::FromArgs;
use proto::grpc::{serve, ServerConfig};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Serve protocol.SimulationService (GetSalesMetrics, GetSystemStats) and
/// grpc.health.v1.Health over gRPC, answering queries from a SQLite database.
#[derive(FromArgs)]
struct Args {
    /// address to listen on (default 0.0.0.0:50052; port 0 picks a free one)
    #[argh(option, default = "SocketAddr::from(([0, 0, 0, 0], 50052))")]
    listen: SocketAddr,
    /// the database written by `seeder` (default database.db)
    #[argh(option, default = "PathBuf::from(\"database.db\")")]
    db: PathBuf,
    /// query threads, each with its own SQLite connection (default: one per core)
    #[argh(option, default = "0")]
    threads: usize,
    /// name reported in region_processed (default: hostname:port)
    #[argh(option)]
    id: Option<String>,
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
    let pool = worker::Pool::open(&args.db, args.threads).map_err(|e| e.to_string())?;
    let listener = smol::block_on(smol::net::TcpListener::bind(args.listen))
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let id = args.id.unwrap_or_else(|| default_id(addr.port()));

    let serving = Arc::new(AtomicBool::new(true));
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    {
        let serving = serving.clone();
        std::thread::spawn(move || {
            let mut signals = signals.forever();
            if let Some(sig) = signals.next() {
                log::info!("signal {sig}: finishing calls in flight, then exiting");
                serving.store(false, Ordering::Release);
                stop.close();
            }
            if let Some(sig) = signals.next() {
                log::warn!("signal {sig} again: exiting now");
                std::process::exit(1);
            }
        });
    }

    log::info!(
        "worker {id} listening on {addr}, {} query threads, db {}",
        pool.threads(),
        args.db.display()
    );
    let service = Arc::new(service::Service::new(pool, &id, serving));
    smol::block_on(serve(
        listener,
        service,
        ServerConfig::default(),
        async move {
            let _ = stopped.recv().await;
        },
    ))
    .map_err(|e| format!("server failed: {e}"))?;
    log::info!("stopped");
    Ok(())
}

/// `hostname:port`, or `worker-<port>` when the host has no usable name.
fn default_id(port: u16) -> String {
    match std::fs::read_to_string("/proc/sys/kernel/hostname") {
        Ok(h) if !h.trim().is_empty() => format!("{}:{port}", h.trim()),
        _ => format!("worker-{port}"),
    }
}
