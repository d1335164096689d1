//! The one interface the load loop talks to: send a request, get an [`Outcome`].
//!
//! Both architectures sit behind it, so the pacing, the measuring and the report are
//! the same code for gRPC and for AMQP.

use std::time::Duration;

use proto::SalesRequest;

use crate::amqp::AmqpTransport;
use crate::grpc::GrpcTransport;
use crate::recorder::Outcome;

pub enum Transport {
    Grpc(GrpcTransport),
    Amqp(AmqpTransport),
}

impl Transport {
    /// Sends `req`; the reply, the failure, or a timeout after `timeout`. Both
    /// transports keep the timeout themselves (one timer per call, no second one
    /// here: timers are a good part of hammer's cost per call); a call that somehow
    /// outlives it is counted as a timeout when the run stops waiting.
    pub async fn call(&self, req: &SalesRequest, timeout: Duration) -> Outcome {
        match self {
            Transport::Grpc(t) => t.call(req, timeout).await,
            Transport::Amqp(t) => t.call(req, timeout).await,
        }
    }
}

/// A gRPC status code's canonical name, the key of the report's `errors` object.
pub fn status_name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// A failure with a gRPC status code, as an outcome: DEADLINE_EXCEEDED is a timeout.
pub fn status_outcome(code: u32, message: String) -> Outcome {
    if code == 4 {
        Outcome::Timeout
    } else {
        Outcome::Error {
            status: status_name(code),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_follow_grpc() {
        assert_eq!(status_name(14), "UNAVAILABLE");
        assert_eq!(status_name(3), "INVALID_ARGUMENT");
        assert_eq!(status_name(99), "UNKNOWN");
        assert_eq!(status_outcome(4, "late".into()), Outcome::Timeout);
        assert!(matches!(
            status_outcome(13, "x".into()),
            Outcome::Error {
                status: "INTERNAL",
                ..
            }
        ));
    }
}
