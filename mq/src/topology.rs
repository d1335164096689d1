//! The broker-side objects the study needs: the work queue and its
//! dead-letter queue.
//!
//! `worker_queue` is durable and dead-letters (through the default exchange)
//! to `worker_queue.dead`, where messages a worker could not use wait for a
//! human. The seed declared `worker_queue` without those arguments; RabbitMQ
//! refuses to redeclare a queue with different arguments (PRECONDITION_FAILED,
//! and it closes the channel), so then we warn once, and use the queue as it is.

use amiquip::{AmqpValue, Channel, Connection, FieldTable, QueueDeclareOptions};
use std::sync::atomic::{AtomicBool, Ordering};

/// AMQP reply code for "exists with other arguments".
const PRECONDITION_FAILED: u16 = 406;

/// The dead-letter queue of `queue`.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dead")
}

/// Declares `queue` (durable, with its dead-letter queue) on a new channel of
/// `connection`, and returns a channel in good standing to use it on.
pub fn declare(connection: &mut Connection, queue: &str) -> Result<Channel, amiquip::Error> {
    let dead = dead_letter_queue(queue);
    let channel = connection.open_channel(None)?;
    channel.queue_declare(
        dead.as_str(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
    )?;
    let mut arguments = FieldTable::new();
    arguments.insert(
        "x-dead-letter-exchange".to_string(),
        AmqpValue::LongString(String::new()),
    );
    arguments.insert(
        "x-dead-letter-routing-key".to_string(),
        AmqpValue::LongString(dead),
    );
    let declared = channel.queue_declare(
        queue,
        QueueDeclareOptions {
            durable: true,
            arguments,
            ..QueueDeclareOptions::default()
        },
    );
    match declared {
        Ok(_) => Ok(channel),
        Err(amiquip::Error::ServerClosedChannel { code, message, .. })
            if code == PRECONDITION_FAILED =>
        {
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "queue {queue:?} exists with other arguments ({message}); using it as it is, \
                     so rejected messages are dropped instead of dead-lettered. To get the \
                     dead-letter queue, delete it once: rabbitmqctl delete_queue {queue}"
                );
            }
            let channel = connection.open_channel(None)?;
            channel.queue_declare_passive(queue)?;
            Ok(channel)
        }
        Err(e) => Err(e),
    }
}
