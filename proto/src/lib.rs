//! The wire contract of the study, and unary gRPC assembled by hand on `h2`.
//!
//! * [`messages`]: the prost types of `sales.proto` and the standard
//!   `grpc.health.v1` health check, derived by hand (no `protoc`).
//! * [`grpc`]: unary gRPC on `h2` over smol sockets: [`grpc::serve`] and
//!   [`grpc::Channel`].
//!
//! Data flows: bytes off the socket → HTTP/2 (h2) → 5-byte gRPC frame →
//! protobuf message, and back the same way.

pub mod grpc;
pub mod messages;

pub use messages::*;
