//! The request/reply client: async calls over blocking AMQP lanes.
//!
//! amiquip is blocking, so the client runs `channels` *lanes*: threads that
//! each own one channel, spread over at most four connections (each one an
//! amiquip I/O thread). A lane consumes (no-ack) the
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
//! dropped: the first reply wins. When a connection is lost its lanes fail
//! their outstanding calls at once, and it reconnects with backoff; while no
//! lane is connected, calls fail at once instead of queueing.

use crate::codec::{self, Encoding, Failure};
use crate::connect::{Backoff, Target};
use crate::topology;
use amiquip::{
    AmqpProperties, Channel, Connection, ConsumerMessage, ConsumerOptions, Delivery, Publish,
};
use crossbeam_channel::{Receiver, Sender};
use proto::{SalesRequest, SalesResponse};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lanes share connections beyond this many (each connection is one amiquip
/// I/O thread; a few are plenty, dozens only cost threads).
const MAX_CONNECTIONS: usize = 4;

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
        // Lanes spread round-robin over at most MAX_CONNECTIONS connections.
        let channels = channels.max(1);
        let connections = channels.min(MAX_CONNECTIONS);
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(connections);
        for index in 0..connections {
            let group = Group {
                index,
                target: target.clone(),
                shared: shared.clone(),
                jobs: jobs_rx.clone(),
                lanes: (index..channels).step_by(connections).collect(),
            };
            let ready = ready_tx.clone();
            std::thread::Builder::new()
                .name(format!("mq-conn-{index}"))
                .spawn(move || group.run(ready))
                .map_err(|e| CallError::Transport(format!("cannot spawn a thread: {e}")))?;
        }
        drop(ready_tx);
        for _ in 0..connections {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(CallError::Transport(e)),
                Err(_) => return Err(CallError::Transport("a connection thread died".into())),
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

/// One connection and the lanes on it: opens the connection and a channel
/// per lane, runs each lane on its own thread, and when any of them fails
/// (a lost connection ends them all) closes the connection, gathers them,
/// and starts over with backoff.
struct Group {
    index: usize,
    target: Target,
    shared: Arc<Shared>,
    jobs: Receiver<Job>,
    lanes: Vec<usize>,
}

/// Why a lane's session ended.
enum End {
    /// All handles are gone.
    Closed,
    /// The connection failed; reconnect.
    Lost(String),
}

impl Group {
    /// Reports on `ready` once: when every lane is attached the first time,
    /// or why not (then it gives up: `connect` fails).
    fn run(self, ready: Sender<Result<(), String>>) {
        let mut ready = Some(ready);
        let mut backoff = Backoff::new();
        let mut down_since: Option<Instant> = None;
        loop {
            if self.shared.closed.load(Ordering::SeqCst) {
                return;
            }
            let why = match self.target.open() {
                Ok(connection) => {
                    match self.connected(connection, &mut ready, &mut backoff, &mut down_since) {
                        End::Closed => return,
                        End::Lost(why) => why,
                    }
                }
                Err(e) => e.to_string(),
            };
            if let Some(ready) = ready.take() {
                let _ = ready.send(Err(why));
                return;
            }
            if down_since.is_none() {
                log::warn!(
                    "mq client connection {}: lost ({why}); reconnecting",
                    self.index
                );
                down_since = Some(Instant::now());
            } else {
                log::debug!("mq client connection {}: {why}", self.index);
            }
            std::thread::sleep(backoff.next_delay());
        }
    }

    /// Runs the lanes on one open connection until one of them ends.
    fn connected(
        &self,
        mut connection: Connection,
        ready: &mut Option<Sender<Result<(), String>>>,
        backoff: &mut Backoff,
        down_since: &mut Option<Instant>,
    ) -> End {
        // Declaring the queue too means a request sent before any worker
        // started waits in the queue instead of being dropped unrouted.
        let mut channels = Vec::with_capacity(self.lanes.len());
        for _ in &self.lanes {
            match topology::declare(&mut connection, &self.shared.queue) {
                Ok(channel) => channels.push(channel),
                Err(e) => {
                    let _ = connection.close();
                    return End::Lost(format!("cannot declare {:?}: {e}", self.shared.queue));
                }
            }
        }
        let (attached_tx, attached_rx) = crossbeam_channel::unbounded::<()>();
        // Each lane says how it ended; the first to end has the real reason.
        let (done_tx, done_rx) = crossbeam_channel::unbounded::<Option<String>>();
        let mut sessions = Vec::with_capacity(channels.len());
        for (channel, &index) in channels.into_iter().zip(&self.lanes) {
            let lane = Lane {
                index,
                shared: self.shared.clone(),
                jobs: self.jobs.clone(),
            };
            let (attached, done) = (attached_tx.clone(), done_tx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("mq-lane-{index}"))
                .spawn(move || {
                    let end = lane.session(&channel, &attached);
                    let _ = done.send(match end {
                        End::Closed => None,
                        End::Lost(why) => Some(why),
                    });
                });
            match spawned {
                Ok(handle) => sessions.push(handle),
                Err(e) => {
                    let _ = connection.close();
                    return End::Lost(format!("cannot spawn a lane thread: {e}"));
                }
            }
        }
        // Up when every lane consumes its reply-to; down when one ends.
        let mut attached = 0;
        let mut first = None;
        while attached < sessions.len() {
            crossbeam_channel::select! {
                recv(attached_rx) -> _ => attached += 1,
                recv(done_rx) -> why => {
                    first = Some(why.unwrap_or(None));
                    break;
                }
            }
        }
        if attached == sessions.len() {
            backoff.reset();
            if let Some(since) = down_since.take() {
                log::info!(
                    "mq client connection {}: reconnected after {:.1} s",
                    self.index,
                    since.elapsed().as_secs_f64()
                );
            }
            if let Some(ready) = ready.take() {
                let _ = ready.send(Ok(()));
            }
            first = Some(done_rx.recv().unwrap_or(None));
        }
        // One lane ended: end the others too, and gather them.
        let _ = connection.close();
        let mut closed = false;
        for session in sessions {
            let _ = session.join();
        }
        while let Ok(why) = done_rx.try_recv() {
            closed |= why.is_none();
        }
        match first {
            Some(None) => End::Closed,
            _ if closed => End::Closed,
            Some(Some(why)) => End::Lost(why),
            None => End::Lost("connection closed".into()),
        }
    }
}

/// One thread and one channel: publishes requests, hands back replies.
struct Lane {
    index: usize,
    shared: Arc<Shared>,
    jobs: Receiver<Job>,
}

impl Lane {
    /// Serves one channel until it fails or the client is closed.
    fn session(&self, channel: &Channel, attached: &Sender<()>) -> End {
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
        let _ = attached.send(());
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
