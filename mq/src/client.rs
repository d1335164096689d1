//! The request/reply client: async calls over blocking AMQP lanes.
//!
//! amiquip is blocking, so the client runs `channels` *lanes*: threads that
//! each own a connection and one channel on it. A lane consumes (no-ack) the
//! direct reply-to pseudo-queue `amq.rabbitmq.reply-to` on its channel before
//! it publishes anything, then loops over two inputs: requests to publish
//! (from a queue shared by all lanes, so an idle lane takes the next one) and
//! replies to hand back.
//!
//! ```text
//! call() ─ pending[id] = oneshot ─ jobs ─▶ lane: publish(reply_to, id, expiration) ─▶ broker
//!   ▲                                      lane: reply(id) ─ pending.remove(id) ─ oneshot ─┘
//!   └─ awaits the oneshot, or its deadline
//! ```
//!
//! The caller's deadline is enforced here (a timer) *and* sent as the
//! message's `expiration`, so the broker drops a request nobody waits for any
//! more. A reply whose id is no longer pending (it came too late, or it is a
//! duplicate after a worker died and the broker redelivered) is counted and
//! dropped: the first reply wins. A lane that loses its connection fails its
//! outstanding calls at once and reconnects with backoff.

use crate::codec::{self, Encoding, Failure};
use crate::connect::{Backoff, Target};
use crate::topology;
use amiquip::{AmqpProperties, Channel, ConsumerMessage, ConsumerOptions, Delivery, Publish};
use crossbeam_channel::{Receiver, Sender};
use proto::{SalesRequest, SalesResponse};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The pseudo-queue of RabbitMQ's direct reply-to.
pub const REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Why a call failed.
#[derive(Debug, Clone)]
pub enum CallError {
    /// The worker answered with an error (a gRPC status code and message).
    Status { code: u32, message: String },
    /// No reply before the deadline.
    Timeout,
    /// The request could not be sent, or its connection was lost.
    Transport(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Status { code, message } => write!(f, "status {code}: {message}"),
            CallError::Timeout => f.write_str("timed out waiting for the reply"),
            CallError::Transport(message) => write!(f, "transport: {message}"),
        }
    }
}

impl std::error::Error for CallError {}

impl From<Failure> for CallError {
    fn from(f: Failure) -> CallError {
        CallError::Status {
            code: f.code,
            message: f.message,
        }
    }
}

type Outcome = Result<SalesResponse, CallError>;

/// A call waiting for its reply, and the lane that published it.
struct Pending {
    reply: async_channel::Sender<Outcome>,
    lane: usize,
}

/// A request on its way to a lane.
struct Job {
    id: u64,
    body: Vec<u8>,
    deadline: Instant,
}

/// State shared by the handles and the lanes.
struct Shared {
    queue: String,
    encoding: Encoding,
    pending: Mutex<HashMap<u64, Pending>>,
    next_id: AtomicU64,
    /// Replies for ids no longer pending: late or duplicate.
    unmatched: AtomicU64,
    /// Lanes currently connected.
    connected: AtomicUsize,
    /// Set when the last handle is gone: lanes stop reconnecting.
    closed: AtomicBool,
}

impl Shared {
    fn fail_lane(&self, lane: usize, why: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, p| {
            if p.lane == lane {
                let _ = p.reply.try_send(Err(CallError::Transport(why.to_string())));
                false
            } else {
                true
            }
        });
    }
}

/// Lets the lanes go when the last [`Client`] clone is dropped.
struct Closer {
    shared: Arc<Shared>,
    jobs: Sender<Job>,
}

impl Drop for Closer {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
    }
}

/// An AMQP request/reply client; cheap to clone, calls run concurrently.
#[derive(Clone)]
pub struct Client {
    closer: Arc<Closer>,
}

impl Client {
    /// Connects `channels` lanes to the broker at `url`; requests go to
    /// `queue` encoded as `encoding`. Fails if any lane cannot connect now
    /// (later losses are retried in the background).
    pub fn connect(
        url: &str,
        queue: &str,
        channels: usize,
        encoding: Encoding,
    ) -> Result<Client, CallError> {
        let target = Target::parse(url).map_err(|e| CallError::Transport(e.to_string()))?;
        let shared = Arc::new(Shared {
            queue: queue.to_string(),
            encoding,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            unmatched: AtomicU64::new(0),
            connected: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        });
        let (jobs, jobs_rx) = crossbeam_channel::unbounded();
        let client = Client {
            closer: Arc::new(Closer {
                shared: shared.clone(),
                jobs,
            }),
        };
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(channels.max(1));
        for lane in 0..channels.max(1) {
            let lane = Lane {
                index: lane,
                target: target.clone(),
                shared: shared.clone(),
                jobs: jobs_rx.clone(),
            };
            let ready = ready_tx.clone();
            std::thread::Builder::new()
                .name(format!("mq-lane-{}", lane.index))
                .spawn(move || lane.run(ready))
                .map_err(|e| CallError::Transport(format!("cannot spawn a lane thread: {e}")))?;
        }
        drop(ready_tx);
        for _ in 0..channels.max(1) {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(CallError::Transport(e)),
                Err(_) => return Err(CallError::Transport("a lane thread died".into())),
            }
        }
        Ok(client)
    }

    /// Sends one request and resolves to its reply. The request is sent at
    /// once (not when the future is first polled); dropping the future
    /// forgets the call.
    pub fn call(
        &self,
        req: &SalesRequest,
        timeout: Duration,
    ) -> impl Future<Output = Result<SalesResponse, CallError>> + Send + 'static {
        let deadline = Instant::now() + timeout;
        let shared = self.closer.shared.clone();
        let started = self.start(req, deadline);
        async move {
            let (id, reply) = started?;
            let _forget = Forget { shared, id };
            let reply = async {
                reply
                    .recv()
                    .await
                    .unwrap_or_else(|_| Err(CallError::Transport("client closed".into())))
            };
            let timer = async {
                smol::Timer::at(deadline).await;
                Err(CallError::Timeout)
            };
            futures_lite::future::or(reply, timer).await
        }
    }

    /// Replies that matched no pending call (late, or duplicates) so far.
    pub fn unmatched_replies(&self) -> u64 {
        self.closer.shared.unmatched.load(Ordering::Relaxed)
    }

    /// Lanes connected right now.
    pub fn connected_lanes(&self) -> usize {
        self.closer.shared.connected.load(Ordering::Relaxed)
    }

    fn start(
        &self,
        req: &SalesRequest,
        deadline: Instant,
    ) -> Result<(u64, async_channel::Receiver<Outcome>), CallError> {
        let shared = &self.closer.shared;
        if shared.connected.load(Ordering::Relaxed) == 0 {
            return Err(CallError::Transport("not connected to the broker".into()));
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let body = codec::encode_request(req, shared.encoding);
        let (tx, rx) = async_channel::bounded(1);
        // The lane is not known yet; it is set when a lane publishes.
        shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                id,
                Pending {
                    reply: tx,
                    lane: usize::MAX,
                },
            );
        let job = Job { id, body, deadline };
        if self.closer.jobs.send(job).is_err() {
            return Err(CallError::Transport("client closed".into()));
        }
        Ok((id, rx))
    }
}

/// Removes a call from the pending map when its future ends or is dropped.
struct Forget {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Forget {
    fn drop(&mut self) {
        let mut pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        pending.remove(&self.id);
    }
}

/// One thread, one connection, one channel.
struct Lane {
    index: usize,
    target: Target,
    shared: Arc<Shared>,
    jobs: Receiver<Job>,
}

/// Why a lane's session ended.
enum End {
    /// All handles are gone.
    Closed,
    /// The connection failed; reconnect.
    Lost(String),
}

impl Lane {
    fn run(self, ready: Sender<Result<(), String>>) {
        let mut ready = Some(ready);
        let mut backoff = Backoff::new();
        let mut down_since: Option<Instant> = None;
        loop {
            if self.shared.closed.load(Ordering::SeqCst) {
                return;
            }
            let mut connection = match self.target.open() {
                Ok(c) => c,
                Err(e) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Err(e.to_string()));
                        return;
                    }
                    log::debug!("lane {}: {e}", self.index);
                    std::thread::sleep(backoff.next_delay());
                    continue;
                }
            };
            // Declaring the queue too means a request sent before any worker
            // started waits in the queue instead of being dropped unrouted.
            let end = match topology::declare(&mut connection, &self.shared.queue) {
                Ok(channel) => self.session(&channel, &mut ready, &mut backoff, &mut down_since),
                Err(e) => End::Lost(format!("cannot declare {:?}: {e}", self.shared.queue)),
            };
            let _ = connection.close();
            match end {
                End::Closed => return,
                End::Lost(why) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(Err(why));
                        return;
                    }
                    if down_since.is_none() {
                        log::warn!(
                            "mq client lane {}: connection lost ({why}); reconnecting",
                            self.index
                        );
                        down_since = Some(Instant::now());
                    }
                    std::thread::sleep(backoff.next_delay());
                }
            }
        }
    }

    /// Serves one connection until it fails or the client is closed.
    fn session(
        &self,
        channel: &Channel,
        ready: &mut Option<Sender<Result<(), String>>>,
        backoff: &mut Backoff,
        down_since: &mut Option<Instant>,
    ) -> End {
        // Direct reply-to requires consuming the pseudo-queue, no-ack, on the
        // publishing channel before the first publish.
        let consumer = match channel.basic_consume(
            REPLY_TO,
            ConsumerOptions {
                no_ack: true,
                ..ConsumerOptions::default()
            },
        ) {
            Ok(c) => c,
            Err(e) => return End::Lost(format!("cannot consume {REPLY_TO}: {e}")),
        };
        self.shared.connected.fetch_add(1, Ordering::SeqCst);
        backoff.reset();
        if let Some(since) = down_since.take() {
            log::info!(
                "mq client lane {}: reconnected after {:.1} s",
                self.index,
                since.elapsed().as_secs_f64()
            );
        }
        if let Some(ready) = ready.take() {
            let _ = ready.send(Ok(()));
        }
        let end = loop {
            crossbeam_channel::select! {
                recv(self.jobs) -> job => match job {
                    Ok(job) => {
                        if let Err(e) = self.publish(channel, job) {
                            break End::Lost(e);
                        }
                    }
                    Err(_) => break End::Closed,
                },
                recv(consumer.receiver()) -> message => match message {
                    Ok(ConsumerMessage::Delivery(delivery)) => self.complete(delivery),
                    Ok(ConsumerMessage::ServerClosedChannel(e))
                    | Ok(ConsumerMessage::ServerClosedConnection(e)) => break End::Lost(e.to_string()),
                    Ok(other) => break End::Lost(format!("reply consumer ended: {other:?}")),
                    Err(_) => break End::Lost("reply consumer ended".into()),
                },
            }
        };
        self.shared.connected.fetch_sub(1, Ordering::SeqCst);
        let why = match &end {
            End::Closed => "client closed",
            End::Lost(why) => why.as_str(),
        };
        self.shared
            .fail_lane(self.index, &format!("connection lost: {why}"));
        end
    }

    /// Publishes one request, unless its caller has given up already.
    fn publish(&self, channel: &Channel, job: Job) -> Result<(), String> {
        let now = Instant::now();
        let Some(left) = job
            .deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
        else {
            return Ok(()); // the caller's timer has fired or is about to
        };
        {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match pending.get_mut(&job.id) {
                Some(p) => p.lane = self.index,
                None => return Ok(()), // the caller dropped its future
            }
        }
        let publish = Publish::with_properties(
            &job.body,
            self.shared.queue.as_str(),
            request_properties(self.shared.encoding.content_type(), job.id, left),
        );
        channel
            .basic_publish("", publish)
            .map_err(|e| format!("publish failed: {e}"))
    }

    /// Hands a reply to its pending call, or counts it as unmatched.
    fn complete(&self, delivery: Delivery) {
        let id = delivery
            .properties
            .correlation_id()
            .as_deref()
            .and_then(|s| s.parse::<u64>().ok());
        let pending = id.and_then(|id| {
            let mut map = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            map.remove(&id)
        });
        let Some(pending) = pending else {
            self.shared.unmatched.fetch_add(1, Ordering::Relaxed);
            log::debug!("dropping a reply for unknown correlation id {id:?}");
            return;
        };
        let props = &delivery.properties;
        let outcome = codec::decode_reply(
            props.content_type().as_deref(),
            props.headers().as_ref(),
            &delivery.body,
        )
        .map_err(CallError::from);
        let _ = pending.reply.try_send(outcome);
    }
}

/// The properties of a request: where to reply, its id, and how long the
/// broker may keep it (the caller's time left, at least 1 ms: an expiration
/// of 0 would mean "deliver now or drop").
fn request_properties(content_type: &str, id: u64, left: Duration) -> AmqpProperties {
    AmqpProperties::default()
        .with_content_type(content_type.to_string())
        .with_reply_to(REPLY_TO.to_string())
        .with_correlation_id(id.to_string())
        .with_expiration(left.as_millis().max(1).to_string())
}
