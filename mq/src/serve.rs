//! One consumer of `mq-worker`: a thread with its own connection, channel and
//! database connection, that takes requests off the queue, answers them, and
//! acks.
//!
//! Per message: decode (content type → encoding) → run the query → publish
//! the reply to `reply_to` on the same channel → ack. The ack comes only
//! after the reply is handed to the connection, so a worker that dies loses
//! nothing; acks are batched (`multiple`) while more deliveries are waiting,
//! which halves the frames per request under load. A message that cannot be
//! used is answered with an error if it names a `reply_to`, then rejected
//! without requeue (to the dead-letter queue).
//!
//! When the connection fails the consumer reconnects with backoff; on stop
//! it cancels its subscription, finishes what was already delivered, acks and
//! closes.

use crate::codec::{self, code, Encoding, Failure};
use crate::connect::{Backoff, Target};
use crate::topology;
use amiquip::{AmqpProperties, Channel, ConsumerMessage, ConsumerOptions, Delivery, Publish};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use proto::SalesResponse;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use worker::{QueryConn, QueryError};

/// What every consumer of one worker shares.
pub struct Config {
    pub target: Target,
    pub queue: String,
    /// Unacked deliveries the broker may push to one consumer.
    pub prefetch: u16,
    /// Sent back as `region_processed`.
    pub id: String,
    /// How many consumers the worker runs (for state messages).
    pub consumers: usize,
}

/// Counters for the periodic summary, and the worker's connection state.
#[derive(Default)]
pub struct Stats {
    /// Requests answered with metrics.
    pub served: AtomicU64,
    /// Requests answered with an error.
    pub failed: AtomicU64,
    /// Messages rejected to the dead-letter queue.
    pub dead_lettered: AtomicU64,
    /// Consumers attached right now.
    pub attached: AtomicUsize,
    /// When the worker lost its first consumer, for the "back after" message.
    down_since: Mutex<Option<Instant>>,
    /// Whether "cannot reach the broker" was said at start-up.
    waiting_said: AtomicBool,
}

impl Stats {
    fn attach(&self, config: &Config) {
        let now = self.attached.fetch_add(1, Ordering::SeqCst) + 1;
        if now == config.consumers {
            let down = self
                .down_since
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            match down {
                Some(since) => log::info!(
                    "all {} consumers attached to {:?} again after {:.1} s",
                    config.consumers,
                    config.queue,
                    since.elapsed().as_secs_f64()
                ),
                None => log::info!(
                    "all {} consumers attached to {:?} on {} (prefetch {})",
                    config.consumers,
                    config.queue,
                    config.target,
                    config.prefetch
                ),
            }
        }
    }

    fn detach(&self, config: &Config, why: &str) {
        let before = self.attached.fetch_sub(1, Ordering::SeqCst);
        if before == config.consumers {
            let mut down = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
            down.get_or_insert_with(Instant::now);
            log::warn!("lost the broker ({why}); reconnecting with backoff");
        }
    }
}

/// How a session with the broker ended.
enum End {
    /// Asked to stop; everything delivered was answered and acked.
    Stopped,
    /// The connection or channel failed.
    Lost(String),
}

/// Runs one consumer until `stop` is closed (its sender dropped).
pub fn run(config: &Config, conn: &mut QueryConn, stats: &Stats, stop: &Receiver<()>) {
    let mut backoff = Backoff::new();
    loop {
        if is_closed(stop) {
            return;
        }
        let end = match config.target.open() {
            Ok(mut connection) => {
                let end = match topology::declare(&mut connection, &config.queue) {
                    Ok(channel) => {
                        let (end, attached) = Session::new(config, conn, stats, &channel).run(stop);
                        if attached {
                            backoff.reset();
                        }
                        if let End::Stopped = end {
                            let _ = channel.close();
                        }
                        end
                    }
                    Err(e) => End::Lost(format!("cannot declare {:?}: {e}", config.queue)),
                };
                let _ = connection.close();
                end
            }
            Err(e) => End::Lost(e.to_string()),
        };
        match end {
            End::Stopped => return,
            End::Lost(why) => {
                let never_attached = stats.down_since.lock().is_ok_and(|d| d.is_none())
                    && stats.attached.load(Ordering::SeqCst) < config.consumers;
                if never_attached && !stats.waiting_said.swap(true, Ordering::SeqCst) {
                    log::warn!("cannot reach the broker yet ({why}); retrying with backoff");
                } else {
                    log::debug!("consumer: {why}");
                }
                if let Err(RecvTimeoutError::Disconnected) = stop.recv_timeout(backoff.next_delay())
                {
                    return;
                }
            }
        }
    }
}

fn is_closed(stop: &Receiver<()>) -> bool {
    matches!(
        stop.try_recv(),
        Err(crossbeam_channel::TryRecvError::Disconnected)
    )
}

/// One connection's worth of consuming.
struct Session<'a> {
    config: &'a Config,
    conn: &'a mut QueryConn,
    stats: &'a Stats,
    channel: &'a Channel,
    /// The latest answered delivery not yet acked, and how many are behind it.
    unacked: Option<Delivery>,
    unacked_count: u32,
}

impl<'a> Session<'a> {
    fn new(
        config: &'a Config,
        conn: &'a mut QueryConn,
        stats: &'a Stats,
        channel: &'a Channel,
    ) -> Session<'a> {
        Session {
            config,
            conn,
            stats,
            channel,
            unacked: None,
            unacked_count: 0,
        }
    }

    /// Consumes until stopped or lost; also says whether it got as far as
    /// attaching (then the reconnect backoff starts over).
    fn run(mut self, stop: &Receiver<()>) -> (End, bool) {
        if let Err(e) = self.channel.qos(0, self.config.prefetch, false) {
            return (End::Lost(format!("cannot set prefetch: {e}")), false);
        }
        let consumer = match self
            .channel
            .basic_consume(self.config.queue.as_str(), ConsumerOptions::default())
        {
            Ok(c) => c,
            Err(e) => {
                let why = format!("cannot consume {:?}: {e}", self.config.queue);
                return (End::Lost(why), false);
            }
        };
        self.stats.attach(self.config);
        let deliveries = consumer.receiver();
        // Serve until asked to stop or the connection fails.
        let lost = loop {
            let message = crossbeam_channel::select! {
                recv(deliveries) -> message => message,
                recv(stop) -> _ => break None,
            };
            match self.on_message(message, deliveries) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Cancelled) => break Some("the consumer was cancelled".to_string()),
                Err(why) => break Some(why),
            }
        };
        let end = match lost {
            Some(why) => End::Lost(why),
            None => {
                // Stop: no new deliveries, but answer those already here.
                if let Err(e) = consumer.cancel() {
                    End::Lost(format!("cannot cancel the consumer: {e}"))
                } else {
                    loop {
                        match self.on_message(deliveries.recv(), deliveries) {
                            Ok(Flow::Continue) => continue,
                            Ok(Flow::Cancelled) => break End::Stopped,
                            Err(why) => break End::Lost(why),
                        }
                    }
                }
            }
        };
        if let End::Lost(why) = &end {
            self.stats.detach(self.config, why);
        } else {
            self.stats.attached.fetch_sub(1, Ordering::SeqCst);
        }
        (end, true)
    }

    /// Handles one consumer message; `Err` ends the session.
    fn on_message(
        &mut self,
        message: Result<ConsumerMessage, crossbeam_channel::RecvError>,
        deliveries: &Receiver<ConsumerMessage>,
    ) -> Result<Flow, String> {
        match message {
            Ok(ConsumerMessage::Delivery(delivery)) => {
                self.handle(delivery)?;
                // Ack now if nothing else is waiting (or enough piled up);
                // otherwise the next ack covers this one too.
                if deliveries.is_empty() || self.unacked_count >= self.ack_every() {
                    self.flush_acks()?;
                }
                Ok(Flow::Continue)
            }
            Ok(ConsumerMessage::ClientCancelled) => {
                self.flush_acks()?;
                Ok(Flow::Cancelled)
            }
            Ok(ConsumerMessage::ServerCancelled) => {
                Err("the broker cancelled the consumer (queue deleted?)".into())
            }
            Ok(ConsumerMessage::ServerClosedChannel(e))
            | Ok(ConsumerMessage::ServerClosedConnection(e)) => Err(e.to_string()),
            Ok(ConsumerMessage::ClientClosedChannel)
            | Ok(ConsumerMessage::ClientClosedConnection)
            | Err(_) => Err("the connection closed".into()),
        }
    }

    fn ack_every(&self) -> u32 {
        (u32::from(self.config.prefetch) / 2).max(1)
    }

    fn flush_acks(&mut self) -> Result<(), String> {
        self.unacked_count = 0;
        match self.unacked.take() {
            Some(last) => last
                .ack_multiple(self.channel)
                .map_err(|e| format!("ack failed: {e}")),
            None => Ok(()),
        }
    }

    /// Answers one delivery; `Err` only when the channel failed.
    fn handle(&mut self, mut delivery: Delivery) -> Result<(), String> {
        let body = std::mem::take(&mut delivery.body);
        let props = &delivery.properties;
        let reply_to = props.reply_to().as_deref().filter(|r| !r.is_empty());
        let content_type = props.content_type().as_deref();
        let (encoding, result) = match Encoding::of_request(content_type, &body) {
            None => (
                None,
                Err(Failure::new(
                    code::INVALID_ARGUMENT,
                    format!(
                        "unsupported content type {:?}: use {} or {}",
                        content_type.unwrap_or(""),
                        codec::PROTOBUF,
                        codec::JSON
                    ),
                )),
            ),
            Some(encoding) => (Some(encoding), self.answer(&body, encoding)),
        };
        let usable = match &result {
            Err(f) => f.code != code::INVALID_ARGUMENT,
            Ok(_) => true,
        } && reply_to.is_some();
        if let Some(reply_to) = reply_to {
            let (body, headers) = match encoding {
                Some(encoding) => codec::encode_reply(&result, encoding),
                None => (
                    Vec::new(),
                    result.as_ref().err().map(codec::failure_headers),
                ),
            };
            let mut reply = AmqpProperties::default();
            if let Some(encoding) = encoding {
                reply = reply.with_content_type(encoding.content_type().to_string());
            }
            if let Some(id) = props.correlation_id() {
                reply = reply.with_correlation_id(id.clone());
            }
            if let Some(ce) = props.content_encoding() {
                reply = reply.with_content_encoding(ce.clone());
            }
            if let Some(headers) = headers {
                reply = reply.with_headers(headers);
            }
            self.channel
                .basic_publish("", Publish::with_properties(&body, reply_to, reply))
                .map_err(|e| format!("cannot publish a reply: {e}"))?;
        }
        match (&result, usable) {
            (Ok(_), true) => self.stats.served.fetch_add(1, Ordering::Relaxed),
            (Err(_), true) => self.stats.failed.fetch_add(1, Ordering::Relaxed),
            (_, false) => self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed),
        };
        if usable {
            self.unacked = Some(delivery);
            self.unacked_count += 1;
            Ok(())
        } else {
            match &result {
                Err(f) => log::debug!("dead-lettering a message: {}", f.message),
                Ok(_) => log::debug!("dead-lettering a message without reply_to"),
            }
            delivery
                .reject(self.channel, false)
                .map_err(|e| format!("reject failed: {e}"))
        }
    }

    /// Decodes and runs one request.
    fn answer(&mut self, body: &[u8], encoding: Encoding) -> Result<SalesResponse, Failure> {
        let req = codec::decode_request(body, encoding)?;
        match self.conn.run(&req) {
            Ok(m) => Ok(SalesResponse {
                total_sales_count: m.count,
                total_revenue: m.revenue,
                average_amount: m.average,
                region_processed: self.config.id.clone(),
            }),
            Err(e) => Err(failure_of(&e)),
        }
    }
}

/// What to do after a consumer message.
enum Flow {
    Continue,
    /// Our cancel went through: nothing more will be delivered.
    Cancelled,
}

fn failure_of(e: &QueryError) -> Failure {
    Failure::new(e.grpc_code(), e.to_string())
}
