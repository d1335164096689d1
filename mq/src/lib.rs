//! Request/reply over RabbitMQ for the sales study: the codec, a client, and
//! the consumer loop of the `mq-worker` binary.
//!
//! A request is one AMQP message on a work queue (`worker_queue`) carrying
//! `reply_to` (RabbitMQ's direct reply-to), a `correlation_id` and a content
//! type that names its encoding (protobuf or the seed's JSON). Competing
//! `mq-worker` consumers take requests off the queue with a prefetch window,
//! run the query, publish the reply to `reply_to` and only then ack, so a
//! worker that dies mid-request loses nothing: the broker redelivers.
//!
//! * [`codec`]: bodies and error headers in both encodings.
//! * [`client`]: [`Client`], async calls over blocking amiquip lanes.
//! * [`serve`]: one consumer thread of `mq-worker`, reconnecting on its own.
//! * [`connect`]: opening connections (with `TCP_NODELAY`) and backoff.
//! * [`topology`]: the durable work queue and its dead-letter queue.
//!
//! ```no_run
//! # fn main() -> Result<(), mq::CallError> {
//! let client = mq::Client::connect(
//!     "amqp://guest:guest@127.0.0.1:5672/%2f",
//!     "worker_queue",
//!     2,
//!     mq::Encoding::Proto,
//! )?;
//! let req = proto::SalesRequest { region: "Europe".into(), ..Default::default() };
//! let rep = smol::block_on(client.call(&req, std::time::Duration::from_secs(5)))?;
//! println!("{} sales", rep.total_sales_count);
//! # Ok(()) }
//! ```

pub mod client;
pub mod codec;
pub mod connect;
pub mod serve;
pub mod topology;

pub use client::{CallError, Client};
pub use codec::Encoding;
