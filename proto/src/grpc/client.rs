//! The client: a [`Channel`] is one HTTP/2 connection carrying many
//! concurrent unary calls.
//!
//! Cloning a channel is cheap (it clones h2's request handle); a background
//! task drives the connection and marks the channel closed when it ends.
//! Every failure comes back as a [`Status`]: the server's own, the one
//! implied by a non-200 HTTP status, UNAVAILABLE for a transport failure
//! (refused, reset, GOAWAY, connection closed), DEADLINE_EXCEEDED when the
//! local timeout fires (the stream is then reset, so the server stops too).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::future;
use h2::client::SendRequest;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Method, StatusCode, Uri};

use super::frame::{self, UnaryBody};
use super::{deadline, io, is_grpc_content_type, timeout, Code, Status, CONTENT_TYPE};

/// Limits and HTTP/2 tuning of a channel.
#[derive(Clone, Debug)]
pub struct ChannelConfig {
    /// Largest reply message accepted; larger is RESOURCE_EXHAUSTED.
    pub max_message_size: usize,
    /// Flow-control window of each stream.
    pub initial_stream_window: u32,
    /// Flow-control window of the whole connection.
    pub initial_connection_window: u32,
}

impl Default for ChannelConfig {
    fn default() -> ChannelConfig {
        ChannelConfig {
            max_message_size: frame::DEFAULT_MAX_MESSAGE_SIZE,
            initial_stream_window: 1024 * 1024,
            initial_connection_window: 8 * 1024 * 1024,
        }
    }
}

/// One HTTP/2 connection, cheap to clone, many concurrent calls multiplexed.
#[derive(Clone)]
pub struct Channel {
    send: SendRequest<Bytes>,
    authority: Authority,
    closed: Arc<AtomicBool>,
    max_message_size: usize,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("authority", &self.authority)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Channel {
    /// Connects with the default [`ChannelConfig`].
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Channel> {
        Channel::connect_with(addr, ChannelConfig::default()).await
    }

    /// Connects and completes the HTTP/2 handshake.
    pub async fn connect_with(addr: SocketAddr, config: ChannelConfig) -> std::io::Result<Channel> {
        let io = io::connect(addr).await?;
        let (send, conn) = h2::client::Builder::new()
            .initial_window_size(config.initial_stream_window)
            .initial_connection_window_size(config.initial_connection_window)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| std::io::Error::other(format!("HTTP/2 handshake with {addr}: {e}")))?;
        let closed = Arc::new(AtomicBool::new(false));
        let flag = closed.clone();
        smol::spawn(async move {
            if let Err(e) = conn.await {
                log::debug!("connection to {addr} ended: {e}");
            }
            flag.store(true, Ordering::Release);
        })
        .detach();
        let authority = Authority::try_from(addr.to_string())
            .map_err(|e| std::io::Error::other(format!("authority {addr}: {e}")))?;
        Ok(Channel {
            send,
            authority,
            closed,
            max_message_size: config.max_message_size,
        })
    }

    /// Whether the connection has ended; a closed channel fails every call
    /// with UNAVAILABLE, so its owner should connect again.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The raw (already protobuf-encoded) message in, the raw reply out.
    /// Transport failures (refused, reset, GOAWAY, connection closed) are
    /// Status{Unavailable}; the local timeout is DeadlineExceeded and is also
    /// sent as grpc-timeout.
    pub async fn unary(
        &self,
        path: &str,
        message: Bytes,
        timeout: Option<Duration>,
    ) -> Result<Bytes, Status> {
        let call = self.round_trip(path, message, timeout);
        match timeout {
            None => call.await,
            Some(t) => {
                let at = Instant::now() + t;
                future::or(call, async {
                    deadline::sleep_until(at).await;
                    Err(Status::new(
                        Code::DeadlineExceeded,
                        format!("no reply within {t:?}"),
                    ))
                })
                .await
            }
        }
    }

    /// [`Channel::unary`] without the local timer: `timeout` still travels as
    /// grpc-timeout, but the caller bounds the call itself, e.g. with a timer
    /// that also covers waiting for a connection.
    pub async fn unary_untimed(
        &self,
        path: &str,
        message: Bytes,
        timeout: Option<Duration>,
    ) -> Result<Bytes, Status> {
        self.round_trip(path, message, timeout).await
    }

    /// [`Channel::unary`] with protobuf encoding and decoding.
    pub async fn call<Req: prost::Message, Rep: prost::Message + Default>(
        &self,
        path: &str,
        req: &Req,
        timeout: Option<Duration>,
    ) -> Result<Rep, Status> {
        let reply = self
            .unary(path, Bytes::from(req.encode_to_vec()), timeout)
            .await?;
        Rep::decode(reply)
            .map_err(|e| Status::new(Code::Internal, format!("cannot decode the reply: {e}")))
    }

    async fn round_trip(
        &self,
        path: &str,
        message: Bytes,
        timeout: Option<Duration>,
    ) -> Result<Bytes, Status> {
        let request = self.request(path, timeout)?;
        // ready() waits while the server's stream limit is reached.
        let mut send = self
            .send
            .clone()
            .ready()
            .await
            .map_err(|e| self.transport(e))?;
        let (response, mut body) = send
            .send_request(request, false)
            .map_err(|e| self.transport(e))?;
        body.send_data(frame::encode(&message), true)
            .map_err(|e| self.transport(e))?;

        let response = response.await.map_err(|e| self.transport(e))?;
        let (parts, mut body) = response.into_parts();
        if parts.status != StatusCode::OK {
            return Err(Status::new(
                Code::from_http(parts.status),
                format!("HTTP status {} from {}", parts.status, self.authority),
            ));
        }
        // Trailers-only: the status came with the headers, no body follows.
        if let Some(status) = Status::from_headers(&parts.headers) {
            return Err(if status.code == Code::Ok {
                Status::new(Code::Internal, "OK status without a reply message")
            } else {
                status
            });
        }
        let content_type = parts.headers.get(http::header::CONTENT_TYPE);
        if !content_type.is_some_and(|v| is_grpc_content_type(v.as_bytes())) {
            return Err(Status::new(
                Code::Internal,
                format!("reply content-type {content_type:?} is not application/grpc"),
            ));
        }

        let mut reply = UnaryBody::new(self.max_message_size);
        let mut frame_error = None;
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| self.transport(e))?;
            let _ = body.flow_control().release_capacity(chunk.len());
            if frame_error.is_none() {
                if let Err(e) = reply.push(&chunk) {
                    // An oversized reply: stop reading, the drop resets it.
                    if matches!(e, frame::FrameError::TooLarge { .. }) {
                        return Err(e.to_status());
                    }
                    frame_error = Some(e);
                }
            }
        }
        let trailers = body.trailers().await.map_err(|e| self.transport(e))?;
        let status = trailers
            .as_ref()
            .and_then(Status::from_headers)
            .unwrap_or_else(|| Status::new(Code::Internal, "reply ended without grpc-status"));
        if status.code != Code::Ok {
            return Err(status);
        }
        if let Some(e) = frame_error {
            return Err(e.to_status());
        }
        reply.finish().map_err(|e| e.to_status())
    }

    fn request(&self, path: &str, timeout: Option<Duration>) -> Result<http::Request<()>, Status> {
        let path = PathAndQuery::try_from(path).map_err(|e| {
            Status::new(Code::Internal, format!("invalid method path {path:?}: {e}"))
        })?;
        let uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| Status::new(Code::Internal, format!("invalid URI: {e}")))?;
        let mut request = http::Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE),
        );
        headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
        if let Some(t) = timeout {
            if let Ok(v) = HeaderValue::from_str(&timeout::format(t)) {
                headers.insert("grpc-timeout", v);
            }
        }
        Ok(request)
    }

    /// Maps an h2 failure to a status, and notes a dead connection.
    fn transport(&self, e: h2::Error) -> Status {
        if e.is_reset() && e.reason() == Some(h2::Reason::CANCEL) {
            return Status::new(
                Code::Cancelled,
                format!("stream cancelled by {}", self.authority),
            );
        }
        if !e.is_reset() {
            // Anything but a single stream's reset ends the connection.
            self.closed.store(true, Ordering::Release);
        }
        Status::new(Code::Unavailable, format!("{}: {e}", self.authority))
    }
}
