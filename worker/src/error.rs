//! The engine's errors: a request it refuses, a database it cannot open.

use std::fmt;

/// Why a query was not answered; mapped once to a gRPC status or an AMQP
/// error reply at the edge ([`QueryError::grpc_code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// The request is invalid; `message` names `field` and says why.
    InvalidArgument {
        field: &'static str,
        message: String,
    },
    /// SQLite failed on a valid request.
    Internal(String),
    /// The engine is shutting down or its threads are gone.
    Unavailable(String),
}

impl QueryError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> QueryError {
        QueryError::InvalidArgument {
            field,
            message: message.into(),
        }
    }

    /// The gRPC status code: INVALID_ARGUMENT (3), INTERNAL (13) or
    /// UNAVAILABLE (14).
    pub fn grpc_code(&self) -> u32 {
        match self {
            QueryError::InvalidArgument { .. } => 3,
            QueryError::Internal(_) => 13,
            QueryError::Unavailable(_) => 14,
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::InvalidArgument { message, .. } => f.write_str(message),
            QueryError::Internal(message) => write!(f, "query failed: {message}"),
            QueryError::Unavailable(message) => write!(f, "query engine unavailable: {message}"),
        }
    }
}

impl std::error::Error for QueryError {}

/// The database cannot be served; the message tells the user what to do.
#[derive(Debug)]
pub struct OpenError(pub(crate) String);

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OpenError {}
