//! One worker as the balancer sees it: its address, a small pool of HTTP/2
//! connections, the count of calls it has outstanding, its health, counters.
//!
//! Connections are made lazily, on the first call that needs one and again
//! after one breaks, so a dead worker costs nothing until a probe or a call
//! tries it. Each slot of the pool sits behind an async mutex so that calls
//! arriving while a slot reconnects wait for that one connection instead of
//! each dialling their own.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proto::grpc::{deadline, Channel, Code, Status};
use smol::lock::Mutex;

/// A connection slot: the channel and a generation number, so a caller whose
/// call broke the connection can drop exactly that one and not a fresh
/// replacement another caller already made.
#[derive(Default)]
struct Slot {
    conn: Mutex<SlotState>,
    /// Failed dials so far; read before queueing for the lock, so calls that
    /// waited behind a failed dial share its failure instead of each dialling
    /// the dead address in turn.
    dial_failures: AtomicU64,
}

#[derive(Default)]
struct SlotState {
    conn: Option<(u64, Channel)>,
    last_dial_error: Option<Status>,
}

pub struct Backend {
    addr: SocketAddr,
    slots: Box<[Slot]>,
    next_slot: AtomicUsize,
    generation: AtomicU64,
    connect_timeout: Duration,
    outstanding: AtomicUsize,
    healthy: AtomicBool,
    retired: AtomicBool,
    calls: AtomicU64,
    errors: AtomicU64,
}

/// A snapshot of a backend's counters, for the periodic summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub calls: u64,
    pub errors: u64,
    pub outstanding: usize,
    pub healthy: bool,
}

impl Backend {
    /// A backend starts unhealthy: it takes calls once a health check passes,
    /// which the checker runs as soon as it is spawned.
    pub fn new(addr: SocketAddr, conns: usize, connect_timeout: Duration) -> Backend {
        Backend {
            addr,
            slots: (0..conns.max(1)).map(|_| Slot::default()).collect(),
            next_slot: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            connect_timeout,
            outstanding: AtomicUsize::new(0),
            healthy: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Marks the worker up or down; logs only transitions, with the reason.
    /// Returns whether the state changed.
    pub fn set_healthy(&self, up: bool, reason: &str) -> bool {
        let changed = self.healthy.swap(up, Ordering::AcqRel) != up;
        if changed {
            if up {
                log::info!("worker {} up: {reason}", self.addr);
            } else {
                log::info!("worker {} down: {reason}", self.addr);
            }
        }
        changed
    }

    /// The balancer dropped this address (it no longer resolves): the health
    /// checker stops, calls in flight finish.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    pub fn stats(&self) -> Stats {
        Stats {
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            outstanding: self.outstanding(),
            healthy: self.is_healthy(),
        }
    }

    /// Counts a call as outstanding until the returned guard drops, which
    /// also covers a call abandoned midway (the client went away).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        self.calls.fetch_add(1, Ordering::Relaxed);
        InFlight {
            backend: self.clone(),
        }
    }

    /// Sends one raw gRPC message and returns the raw reply, all within
    /// `timeout` (waiting for a connection included). A transport failure
    /// drops the connection it happened on, so the next call on that slot
    /// reconnects.
    pub async fn unary(
        &self,
        path: &str,
        message: Bytes,
        timeout: Option<Duration>,
    ) -> Result<Bytes, Status> {
        let call = self.call(path, message, timeout);
        match timeout {
            None => call.await,
            Some(t) => {
                let at = Instant::now() + t;
                let expire = async {
                    deadline::sleep_until(at).await;
                    Err(Status::new(
                        Code::DeadlineExceeded,
                        format!("worker {}: no reply within {t:?}", self.addr),
                    ))
                };
                smol::future::or(call, expire).await
            }
        }
    }

    /// [`Backend::unary`] but for the timer: `timeout` reaches the worker as
    /// grpc-timeout and caps waiting for a connection.
    async fn call(
        &self,
        path: &str,
        message: Bytes,
        timeout: Option<Duration>,
    ) -> Result<Bytes, Status> {
        let i = self.next_slot.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[i];
        let (generation, channel) = self.connection(slot, timeout).await?;
        // Our timer in `unary` covers the call; a second one in the channel
        // would only cost.
        let result = channel.unary_untimed(path, message, timeout).await;
        if let Err(status) = &result {
            if status.code == Code::Unavailable || channel.is_closed() {
                let mut state = slot.conn.lock().await;
                if matches!(&state.conn, Some((g, _)) if *g == generation) {
                    state.conn = None;
                }
            }
        }
        result
    }

    /// The slot's live connection, dialling a new one if there is none.
    async fn connection(
        &self,
        slot: &Slot,
        timeout: Option<Duration>,
    ) -> Result<(u64, Channel), Status> {
        let failures_before = slot.dial_failures.load(Ordering::Acquire);
        let mut state = slot.conn.lock().await;
        if let Some((generation, channel)) = &state.conn {
            if !channel.is_closed() {
                return Ok((*generation, channel.clone()));
            }
        }
        state.conn = None;
        if slot.dial_failures.load(Ordering::Acquire) != failures_before {
            if let Some(status) = &state.last_dial_error {
                return Err(status.clone());
            }
        }
        // Never wait for a connection longer than the caller may wait at all.
        let limit = timeout.map_or(self.connect_timeout, |t| t.min(self.connect_timeout));
        let addr = self.addr;
        let dial = async {
            Channel::connect(addr)
                .await
                .map_err(|e| Status::new(Code::Unavailable, format!("worker {addr}: connect: {e}")))
        };
        let expire = async {
            smol::Timer::after(limit).await;
            Err(Status::new(
                Code::Unavailable,
                format!("worker {addr}: connect: no answer within {limit:?}"),
            ))
        };
        match smol::future::or(dial, expire).await {
            Ok(channel) => {
                let generation = self.generation.fetch_add(1, Ordering::Relaxed);
                state.conn = Some((generation, channel.clone()));
                state.last_dial_error = None;
                Ok((generation, channel))
            }
            Err(status) => {
                state.last_dial_error = Some(status.clone());
                slot.dial_failures.fetch_add(1, Ordering::Release);
                Err(status)
            }
        }
    }
}

/// An outstanding call on a backend (see [`Backend::begin`]).
pub struct InFlight {
    backend: Arc<Backend>,
}

impl InFlight {
    pub fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }

    /// Counts the call as failed (it still counts as outstanding until dropped).
    pub fn failed(&self) {
        self.backend.errors.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.backend.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend() -> Arc<Backend> {
        Arc::new(Backend::new(
            "127.0.0.1:1".parse().unwrap(),
            2,
            Duration::from_millis(100),
        ))
    }

    #[test]
    fn outstanding_follows_guards() {
        let b = backend();
        let g1 = b.begin();
        let g2 = b.begin();
        assert_eq!(b.outstanding(), 2);
        g1.failed();
        drop(g1);
        assert_eq!(b.outstanding(), 1);
        drop(g2);
        let s = b.stats();
        assert_eq!((s.calls, s.errors, s.outstanding), (2, 1, 0));
    }

    #[test]
    fn starts_down_and_reports_transitions_once() {
        let b = backend();
        assert!(!b.is_healthy());
        assert!(b.set_healthy(true, "probe passed"));
        assert!(!b.set_healthy(true, "probe passed"));
        assert!(b.set_healthy(false, "refused"));
        assert!(!b.is_healthy());
    }

    #[test]
    fn a_refused_connection_is_unavailable_and_counts_for_queued_calls() {
        // A port nothing listens on: bind one, note it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let b = Backend::new(
            SocketAddr::from(([127, 0, 0, 1], port)),
            1,
            Duration::from_millis(500),
        );
        let call = || b.unary("/x/y", Bytes::new(), Some(Duration::from_secs(2)));
        let (first, second) = smol::block_on(smol::future::zip(call(), call()));
        assert_eq!(
            b.slots[0].dial_failures.load(Ordering::Relaxed),
            1,
            "one dial"
        );
        let results = [first, second, smol::block_on(call())];
        for r in results {
            let err = r.expect_err("nothing listens");
            assert_eq!(err.code, Code::Unavailable, "{err}");
            assert!(err.message.contains("connect"), "{err}");
        }
    }
}
