//! The worker's query engine: request validation, one SQL statement per
//! request, and a pool of SQLite threads for async callers.
//!
//! Data flows one way: a [`SalesRequest`] is validated into a
//! [`Query`](request::Query) (or refused with a [`QueryError`] naming the
//! field), planned into one statement per query shape ([`sql`]), and run on
//! a read-only connection ([`QueryConn`]) owned by one of the [`Pool`]'s
//! threads, which yields [`Metrics`].
//!
//! ```no_run
//! let pool = worker::Pool::open("database.db".as_ref(), 0)?;
//! let req = worker::SalesRequest { region: "Europe".into(), ..Default::default() };
//! let metrics = smol::block_on(pool.query(req))?;
//! println!("{} sales, revenue {}", metrics.count, metrics.revenue);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The binary (`main.rs`) serves this over gRPC; `mq-worker` over AMQP.

mod conn;
mod date;
mod error;
mod pool;
pub mod request;
pub mod sql;

pub use conn::{open_info, DbInfo, QueryConn, SCHEMA_VERSION};
pub use date::FORMATS as DATE_FORMATS;
pub use error::{OpenError, QueryError};
pub use pool::Pool;
pub use proto::SalesRequest;
pub use request::{validate, Query};

/// What a query computes over the sales it selects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    pub count: i64,
    /// Sum of `amount`.
    pub revenue: i64,
    /// `revenue / count`, 0.0 when nothing matched.
    pub average: f64,
}

impl Metrics {
    pub fn new(count: i64, revenue: i64) -> Metrics {
        let average = if count == 0 {
            0.0
        } else {
            revenue as f64 / count as f64
        };
        Metrics {
            count,
            revenue,
            average,
        }
    }
}
