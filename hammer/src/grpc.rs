//! gRPC transport: `--concurrency` HTTP/2 connections, calls spread round-robin.
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
    addr: SocketAddr,
    method: Method,
    slots: Vec<Arc<Slot>>,
    next: AtomicUsize,
}

/// One connection and what is known about redialling it.
struct Slot {
    channel: Mutex<Option<Channel>>,
    dialling: AtomicBool,
    last_dial: Mutex<Option<Instant>>,
    last_error: Mutex<String>,
}

impl GrpcTransport {
    /// Resolves `target` and opens `connections` connections. Connections that fail
    /// now are retried while the run goes on; a target that cannot be resolved is an error.
    pub async fn connect(
        target: &str,
        connections: usize,
        method: Method,
    ) -> Result<GrpcTransport, String> {
        let addr = target
            .to_socket_addrs()
            .map_err(|e| format!("--target {target}: {e}"))?
            .next()
            .ok_or_else(|| format!("--target {target}: no address"))?;
        let slots: Vec<Arc<Slot>> = (0..connections)
            .map(|_| {
                Arc::new(Slot {
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
                smol::spawn(async move { slot.dial(addr).await })
            })
            .collect();
        let mut up = 0;
        for dial in dials {
            up += usize::from(dial.await);
        }
        if up < connections {
            let why = lock(&slots[0].last_error).clone();
            log::warn!("{up} of {connections} connections to {addr} are up ({why}); calls on the others fail as UNAVAILABLE while they are redialled");
        } else {
            log::info!("{connections} HTTP/2 connections to {addr}");
        }
        Ok(GrpcTransport {
            addr,
            method,
            slots,
            next: AtomicUsize::new(0),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn call(&self, req: &SalesRequest, timeout: Duration) -> Outcome {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[i];
        let Some(channel) = slot.live() else {
            slot.redial(self.addr);
            return Outcome::Error {
                status: "UNAVAILABLE",
                message: format!("not connected to {}: {}", self.addr, lock(&slot.last_error)),
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
    fn redial(self: &Arc<Self>, addr: SocketAddr) {
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
            slot.dial(addr).await;
        })
        .detach();
    }

    /// One connection attempt; true when connected.
    async fn dial(&self, addr: SocketAddr) -> bool {
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
