//! The server: accept loop, one task per connection, one task per call, and
//! graceful shutdown.
//!
//! A connection task drives its h2 connection and spawns a task for every
//! stream it accepts. A call task checks the headers (method, content type,
//! encoding, deadline), gathers the one request message, runs the [`Handler`]
//! and writes the reply. The handler future is dropped, and its work
//! abandoned, when the deadline passes or the client resets the stream.
//!
//! Shutdown: when the `shutdown` future resolves, the listener stops
//! accepting, every connection sends GOAWAY (refusing new streams, keeping
//! the ones in flight), and [`serve`] returns once every call has replied
//! or the grace period has passed.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::future;
use h2::server::SendResponse;
use h2::RecvStream;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use smol::net::TcpListener;
use smol::Timer;

use super::frame::{self, UnaryBody};
use super::{deadline, io, is_grpc_content_type, timeout, Code, Status, CONTENT_TYPE};

/// One unary call, as the handler sees it.
#[derive(Debug)]
pub struct Request {
    /// `/package.Service/Method`.
    pub path: String,
    /// When the client stops waiting (from `grpc-timeout`), if it said.
    pub deadline: Option<Instant>,
    /// The request message, protobuf-encoded, without its prefix.
    pub message: Bytes,
}

/// What a handler's future yields: the protobuf-encoded reply, or a status.
pub type Reply = Pin<Box<dyn Future<Output = Result<Bytes, Status>> + Send + 'static>>;

/// The application behind the server. Dispatch on `req.path`, and answer a
/// path you do not know with [`Status::unimplemented_method`].
pub trait Handler: Send + Sync + 'static {
    fn call(&self, req: Request) -> Reply;
}

/// Limits and HTTP/2 tuning of a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest request message accepted; larger is RESOURCE_EXHAUSTED.
    pub max_message_size: usize,
    /// Calls in flight per connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS).
    pub max_concurrent_streams: u32,
    /// Flow-control window of each stream. The 64 KiB HTTP/2 default makes a
    /// large message wait a round trip per 64 KiB.
    pub initial_stream_window: u32,
    /// Flow-control window of a whole connection, shared by its streams.
    pub initial_connection_window: u32,
    /// Largest header block accepted from a client.
    pub max_header_list_size: u32,
    /// How long shutdown waits for calls in flight before giving up on them.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            max_message_size: frame::DEFAULT_MAX_MESSAGE_SIZE,
            max_concurrent_streams: 1024,
            initial_stream_window: 1024 * 1024,
            initial_connection_window: 8 * 1024 * 1024,
            max_header_list_size: 16 * 1024,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Accepts until `shutdown` resolves, then sends GOAWAY, lets in-flight calls
/// finish, returns.
pub async fn serve(
    listener: TcpListener,
    handler: Arc<dyn Handler>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let config = Arc::new(config);
    // Closing `stop` tells every connection to wind down; every connection
    // and call task holds a clone of `alive`, so when `alive` reports closed
    // the last of them has finished (mini-redis's shutdown_complete idiom).
    let (stop_tx, stop) = async_channel::bounded::<()>(1);
    let (alive, all_done) = async_channel::bounded::<()>(1);
    let mut shutdown = pin!(shutdown);

    loop {
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            shutdown.as_mut().await;
            None
        })
        .await;
        match accepted {
            None => break,
            Some(Ok((stream, peer))) => {
                log::debug!("connection from {peer}");
                let conn = Connection {
                    handler: handler.clone(),
                    config: config.clone(),
                    stop: stop.clone(),
                    alive: alive.clone(),
                };
                smol::spawn(async move {
                    if let Err(e) = conn.run(stream).await {
                        log::debug!("connection from {peer}: {e}");
                    }
                })
                .detach();
            }
            Some(Err(e)) => {
                // Usually out of file descriptors: wait for some to be freed
                // instead of spinning; the listener itself is still good.
                log::warn!("accept failed: {e}");
                Timer::after(Duration::from_millis(50)).await;
            }
        }
    }

    drop(listener);
    stop_tx.close();
    drop(alive);
    let in_flight = all_done.sender_count();
    log::info!("shutting down: waiting for {in_flight} connection(s) and call(s)");
    let finished = future::or(async { all_done.recv().await.is_err() }, async {
        Timer::after(config.shutdown_grace).await;
        false
    })
    .await;
    if !finished {
        log::warn!(
            "shutdown grace period of {:?} passed with calls in flight",
            config.shutdown_grace
        );
    }
    Ok(())
}

/// One HTTP/2 connection and the shared state its calls need.
struct Connection {
    handler: Arc<dyn Handler>,
    config: Arc<ServerConfig>,
    stop: async_channel::Receiver<()>,
    alive: async_channel::Sender<()>,
}

/// A stream the client opened, with the handle to answer it.
type Incoming = (http::Request<RecvStream>, SendResponse<Bytes>);

/// What wakes a connection task. Short-lived on the stack, so the size
/// difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Event {
    Stream(Option<Result<Incoming, h2::Error>>),
    Stop,
}

impl Connection {
    async fn run(
        self,
        stream: smol::net::TcpStream,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let io = io::adapt(stream)?;
        let c = &self.config;
        let handshake = h2::server::Builder::new()
            .max_concurrent_streams(c.max_concurrent_streams)
            .initial_window_size(c.initial_stream_window)
            .initial_connection_window_size(c.initial_connection_window)
            .max_header_list_size(c.max_header_list_size)
            .handshake::<_, Bytes>(io);
        // A client that never finishes its preface must not hold up shutdown.
        let mut conn = match future::or(async { Some(handshake.await) }, async {
            let _ = self.stop.recv().await;
            None
        })
        .await
        {
            Some(conn) => conn?,
            None => return Ok(()),
        };

        let mut stopping = false;
        loop {
            let event = if stopping {
                Event::Stream(conn.accept().await)
            } else {
                future::or(async { Event::Stream(conn.accept().await) }, async {
                    let _ = self.stop.recv().await;
                    Event::Stop
                })
                .await
            };
            match event {
                Event::Stop => {
                    // GOAWAY: no new streams; accept() keeps driving the
                    // connection until the streams in flight are done.
                    conn.graceful_shutdown();
                    stopping = true;
                }
                Event::Stream(None) => return Ok(()),
                Event::Stream(Some(Err(e))) => return Err(e.into()),
                Event::Stream(Some(Ok((request, respond)))) => {
                    let handler = self.handler.clone();
                    let config = self.config.clone();
                    let alive = self.alive.clone();
                    smol::spawn(async move {
                        handle_call(request, respond, &*handler, &config).await;
                        drop(alive);
                    })
                    .detach();
                }
            }
        }
    }
}

/// How a call ends.
enum Outcome {
    /// The reply message; trailers say OK.
    Reply(Bytes),
    /// A gRPC error, sent trailers-only.
    Status(Status),
    /// Not gRPC at all: a bare HTTP status.
    Http(StatusCode),
}

async fn handle_call(
    request: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    handler: &dyn Handler,
    config: &ServerConfig,
) {
    let path = request.uri().path().to_owned();
    // A reset from the client (it gave up or disconnected) abandons the call.
    let outcome = future::or(
        async { Some(process(request, handler, config).await) },
        async {
            let reason = future::poll_fn(|cx| respond.poll_reset(cx)).await;
            log::debug!("{path}: client reset the stream: {reason:?}");
            None
        },
    )
    .await;
    let Some(outcome) = outcome else { return };
    if let Err(e) = send_outcome(&mut respond, outcome) {
        log::debug!("{path}: cannot send the reply: {e}");
    }
}

async fn process(
    request: http::Request<RecvStream>,
    handler: &dyn Handler,
    config: &ServerConfig,
) -> Outcome {
    let (parts, body) = request.into_parts();
    if parts.method != Method::POST {
        return Outcome::Http(StatusCode::METHOD_NOT_ALLOWED);
    }
    let content_type = parts.headers.get(http::header::CONTENT_TYPE);
    if !content_type.is_some_and(|v| is_grpc_content_type(v.as_bytes())) {
        return Outcome::Http(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    if let Some(encoding) = parts.headers.get("grpc-encoding") {
        if encoding.as_bytes() != b"identity" {
            return Outcome::Status(Status::new(
                Code::Unimplemented,
                format!(
                    "grpc-encoding {:?} is not supported (identity only)",
                    String::from_utf8_lossy(encoding.as_bytes())
                ),
            ));
        }
    }
    let deadline = match parts.headers.get("grpc-timeout") {
        None => None,
        Some(v) => match timeout::parse(v.as_bytes()) {
            Some(d) => Some(Instant::now() + d),
            None => {
                return Outcome::Status(Status::new(
                    Code::Internal,
                    format!(
                        "malformed grpc-timeout {:?}",
                        String::from_utf8_lossy(v.as_bytes())
                    ),
                ))
            }
        },
    };

    let call = async {
        let message = read_message(body, config.max_message_size).await?;
        // A budget already spent (a tiny timeout, a slow upload) is not worth
        // starting the work for.
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(deadline_exceeded());
        }
        let req = Request {
            path: parts.uri.path().to_owned(),
            deadline,
            message,
        };
        handler.call(req).await
    };
    let result = match deadline {
        None => call.await,
        Some(deadline) => {
            future::or(call, async {
                deadline::sleep_until(deadline).await;
                Err(deadline_exceeded())
            })
            .await
        }
    };
    match result {
        Ok(reply) => Outcome::Reply(reply),
        Err(status) => Outcome::Status(status),
    }
}

fn deadline_exceeded() -> Status {
    Status::new(Code::DeadlineExceeded, "deadline exceeded (grpc-timeout)")
}

/// Gathers the request body into its one message, returning flow-control
/// credit as it goes so the client can keep sending.
async fn read_message(mut body: RecvStream, max: usize) -> Result<Bytes, Status> {
    let mut message = UnaryBody::new(max);
    while let Some(chunk) = body.data().await {
        let chunk =
            chunk.map_err(|e| Status::new(Code::Cancelled, format!("request body: {e}")))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        message.push(&chunk).map_err(|e| e.to_status())?;
    }
    message.finish().map_err(|e| e.to_status())
}

fn send_outcome(respond: &mut SendResponse<Bytes>, outcome: Outcome) -> Result<(), h2::Error> {
    match outcome {
        Outcome::Http(code) => {
            let mut response = Response::new(());
            *response.status_mut() = code;
            respond.send_response(response, true)?;
        }
        Outcome::Status(status) => {
            let mut response = grpc_response();
            status.write_headers(response.headers_mut());
            respond.send_response(response, true)?;
        }
        Outcome::Reply(message) => {
            let mut stream = respond.send_response(grpc_response(), false)?;
            stream.send_data(frame::encode(&message), false)?;
            let mut trailers = HeaderMap::with_capacity(1);
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            stream.send_trailers(trailers)?;
        }
    }
    Ok(())
}

fn grpc_response() -> Response<()> {
    let mut response = Response::new(());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE),
    );
    response
}
