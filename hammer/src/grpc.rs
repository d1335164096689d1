//! gRPC transport: `--concurrency` HTTP/2 connections, calls spread round-robin.
//! With several targets (`--target a:1,b:2`), the connections are dealt out to them in
//! turn, so calls reach them in equal shares: the balancer-free baseline that a run
//! through the LB is compared with.
//!
//! A connection that is down is redialled in the background (at most one attempt per
//! connection at a time, spaced by a back-off), and calls meant for it fail at once as
//! UNAVAILABLE: hammer never waits for a connection, so the schedule holds and a dead
//! target shows up as errors, on time.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::future;
use proto::grpc::{Channel, Status};
use proto::{
    paths, HealthCheckRequest, HealthCheckResponse, SalesRequest, SalesResponse, ServingStatus,
};

use crate::args::Method;
use crate::recorder::Outcome;
use crate::transport::status_outcome;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const REDIAL_BACKOFF: Duration = Duration::from_millis(200);

pub struct GrpcTransport {
    addrs: Vec<SocketAddr>,
    method: Method,
    slots: Vec<Arc<Slot>>,
    next: AtomicUsize,
}

/// One connection and what is known about redialling it.
struct Slot {
    addr: SocketAddr,
    channel: Mutex<Option<Channel>>,
    dialling: AtomicBool,
    last_dial: Mutex<Option<Instant>>,
    last_error: Mutex<String>,
}

impl GrpcTransport {
    /// Resolves `targets` (comma-separated host:port) and opens `connections`
    /// connections, dealt out to the targets in turn. Connections that fail now are
    /// retried while the run goes on; a target that cannot be resolved is an error.
    pub async fn connect(
        targets: &str,
        connections: usize,
        method: Method,
    ) -> Result<GrpcTransport, String> {
        let addrs = resolve(targets)?;
        if connections < addrs.len() {
            return Err(format!(
                "--concurrency {connections} is less than the {} targets: each needs a connection",
                addrs.len()
            ));
        }
        let slots: Vec<Arc<Slot>> = (0..connections)
            .map(|i| {
                Arc::new(Slot {
                    addr: addrs[i % addrs.len()],
                    channel: Mutex::new(None),
                    dialling: AtomicBool::new(false),
                    last_dial: Mutex::new(None),
                    last_error: Mutex::new("not connected yet".into()),
                })
            })
            .collect();
        let dials: Vec<_> = slots
            .iter()
            .map(|slot| {
                let slot = slot.clone();
                smol::spawn(async move { slot.dial().await })
            })
            .collect();
        let mut up = 0;
        for dial in dials {
            up += usize::from(dial.await);
        }
        if up < connections {
            let why = lock(&slots[0].last_error).clone();
            log::warn!("{up} of {connections} connections to {} are up ({why}); calls on the others fail as UNAVAILABLE while they are redialled", list(&addrs));
        } else {
            log::info!("{connections} HTTP/2 connections to {}", list(&addrs));
        }
        Ok(GrpcTransport {
            addrs,
            method,
            slots,
            next: AtomicUsize::new(0),
        })
    }

    /// The targets, comma-separated, as resolved.
    pub fn target(&self) -> String {
        list(&self.addrs)
    }

    pub async fn call(&self, req: &SalesRequest, timeout: Duration) -> Outcome {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[i];
        let Some(channel) = slot.live() else {
            slot.redial();
            return Outcome::Error {
                status: "UNAVAILABLE",
                message: format!("not connected to {}: {}", slot.addr, lock(&slot.last_error)),
            };
        };
        match self.method {
            Method::Sales => {
                match channel
                    .call::<SalesRequest, SalesResponse>(
                        paths::GET_SALES_METRICS,
                        req,
                        Some(timeout),
                    )
                    .await
                {
                    Ok(reply) => Outcome::Ok(Some(reply)),
                    Err(status) => failed(status),
                }
            }
            Method::Health => {
                let check = HealthCheckRequest {
                    service: String::new(),
                };
                match channel
                    .call::<HealthCheckRequest, HealthCheckResponse>(
                        paths::HEALTH_CHECK,
                        &check,
                        Some(timeout),
                    )
                    .await
                {
                    Ok(reply) if reply.status == ServingStatus::Serving as i32 => Outcome::Ok(None),
                    Ok(reply) => Outcome::Error {
                        status: "NOT_SERVING",
                        message: format!("health status {}", reply.status),
                    },
                    Err(status) => failed(status),
                }
            }
        }
    }
}

/// The first address of each comma-separated `host:port`.
fn resolve(targets: &str) -> Result<Vec<SocketAddr>, String> {
    let addrs = targets
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.to_socket_addrs()
                .map_err(|e| format!("--target {t}: {e}"))?
                .next()
                .ok_or_else(|| format!("--target {t}: no address"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if addrs.is_empty() {
        return Err(format!("--target {targets:?}: no host:port"));
    }
    Ok(addrs)
}

fn list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn failed(status: Status) -> Outcome {
    status_outcome(status.code as u32, status.message)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Slot {
    /// The channel, if it is connected.
    fn live(&self) -> Option<Channel> {
        let guard = lock(&self.channel);
        guard.as_ref().filter(|c| !c.is_closed()).cloned()
    }

    /// Starts a background redial unless one is running or the last was too recent.
    fn redial(self: &Arc<Self>) {
        {
            let last = lock(&self.last_dial);
            if last.is_some_and(|t| t.elapsed() < REDIAL_BACKOFF) {
                return;
            }
        }
        if self.dialling.swap(true, Ordering::AcqRel) {
            return;
        }
        let slot = self.clone();
        smol::spawn(async move {
            slot.dial().await;
        })
        .detach();
    }

    /// One connection attempt; true when connected.
    async fn dial(&self) -> bool {
        let addr = self.addr;
        self.dialling.store(true, Ordering::Release);
        *lock(&self.last_dial) = Some(Instant::now());
        let attempt = future::or(
            async { Channel::connect(addr).await.map_err(|e| e.to_string()) },
            async {
                smol::Timer::after(CONNECT_TIMEOUT).await;
                Err(format!("connect timed out after {CONNECT_TIMEOUT:?}"))
            },
        )
        .await;
        let ok = match attempt {
            Ok(channel) => {
                *lock(&self.channel) = Some(channel);
                true
            }
            Err(e) => {
                log::debug!("connect to {addr}: {e}");
                *lock(&self.last_error) = e;
                false
            }
        };
        self.dialling.store(false, Ordering::Release);
        ok
    }
}
