//! Unary gRPC over HTTP/2, assembled by hand on `h2` and smol.
//!
//! * [`frame`]: the 5-byte length prefix, with a size limit.
//! * [`status`]: status codes, `grpc-status` / `grpc-message` trailers.
//! * [`timeout`]: the `grpc-timeout` header.
//! * [`deadline`]: per-call deadlines sharing one reactor timer.
//! * [`io`]: smol sockets adapted to the I/O traits h2 expects.
//! * [`server`]: accept loop, one task per call, deadlines, graceful shutdown.
//! * [`client`]: [`Channel`], one multiplexed connection for many calls.
//!
//! A call is `POST /package.Service/Method` with `content-type:
//! application/grpc`, a body of one prefixed message, and a reply of headers,
//! one prefixed message and trailers carrying `grpc-status`; an error that
//! happens before any reply is a single HEADERS frame ("trailers-only").
//!
//! ```
//! use std::sync::Arc;
//! use proto::grpc::{serve, Channel, Code, Handler, Request, ServerConfig, Status};
//! use proto::{paths, HealthCheckRequest, HealthCheckResponse, ServingStatus};
//!
//! struct Health;
//! impl Handler for Health {
//!     fn call(&self, req: Request) -> proto::grpc::server::Reply {
//!         Box::pin(async move {
//!             match req.path.as_str() {
//!                 paths::HEALTH_CHECK => {
//!                     let rep = HealthCheckResponse { status: ServingStatus::Serving as i32 };
//!                     Ok(prost::Message::encode_to_vec(&rep).into())
//!                 }
//!                 other => Err(Status::unimplemented_method(other)),
//!             }
//!         })
//!     }
//! }
//!
//! smol::block_on(async {
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     let (stop, stopped) = async_channel::bounded::<()>(1);
//!     let server = smol::spawn(serve(listener, Arc::new(Health), ServerConfig::default(), async move {
//!         let _ = stopped.recv().await;
//!     }));
//!
//!     let channel = Channel::connect(addr).await?;
//!     let rep: HealthCheckResponse =
//!         channel.call(paths::HEALTH_CHECK, &HealthCheckRequest::default(), None).await?;
//!     assert_eq!(rep.status, ServingStatus::Serving as i32);
//!     let err = channel.unary("/no.Such/Method", Default::default(), None).await.unwrap_err();
//!     assert_eq!(err.code, Code::Unimplemented);
//!
//!     drop(stop); // graceful shutdown
//!     server.await?;
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod client;
pub mod deadline;
pub mod frame;
pub mod io;
pub mod server;
pub mod status;
pub mod timeout;

pub use client::{Channel, ChannelConfig};
pub use server::{serve, Handler, Request, ServerConfig};
pub use status::{Code, Status};

/// The content type of every gRPC request and response we send.
pub const CONTENT_TYPE: &str = "application/grpc";

/// Whether a `content-type` is one we speak: `application/grpc` or
/// `application/grpc+proto`, parameters after `;` ignored.
pub fn is_grpc_content_type(value: &[u8]) -> bool {
    let essence = value.split(|&b| b == b';').next().unwrap_or_default();
    let essence = essence.trim_ascii();
    essence.eq_ignore_ascii_case(b"application/grpc")
        || essence.eq_ignore_ascii_case(b"application/grpc+proto")
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_types() {
        use super::is_grpc_content_type as ok;
        assert!(ok(b"application/grpc"));
        assert!(ok(b"application/grpc+proto"));
        assert!(ok(b"Application/GRPC; charset=utf-8"));
        assert!(!ok(b"application/grpc+json"));
        assert!(!ok(b"application/json"));
        assert!(!ok(b"text/plain"));
        assert!(!ok(b""));
    }
}
