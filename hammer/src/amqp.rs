//! AMQP transport: request/reply through RabbitMQ with `mq::Client`.
//!
//! The client runs `--concurrency` publisher channels on their own threads (amiquip is
//! blocking) and hands back a future per call, so the load loop stays the same as for
//! gRPC. The per-request timeout travels as the message's expiration.

use std::time::Duration;

use proto::SalesRequest;

use crate::args::Encoding;
use crate::recorder::Outcome;
use crate::transport::status_outcome;

pub struct AmqpTransport {
    client: mq::Client,
}

impl AmqpTransport {
    /// Connects every channel now (blocking); a broker that is not there is an error.
    pub fn connect(
        url: &str,
        queue: &str,
        channels: usize,
        encoding: Encoding,
    ) -> Result<AmqpTransport, String> {
        let encoding = match encoding {
            Encoding::Proto => mq::Encoding::Proto,
            Encoding::Json => mq::Encoding::Json,
        };
        let client = mq::Client::connect(url, queue, channels, encoding).map_err(|e| {
            format!(
                "cannot connect to RabbitMQ at {}: {}",
                redact(url),
                describe(&e)
            )
        })?;
        log::info!(
            "{channels} AMQP channels to {} (queue {queue})",
            redact(url)
        );
        Ok(AmqpTransport { client })
    }

    pub async fn call(&self, req: &SalesRequest, timeout: Duration) -> Outcome {
        match self.client.call(req, timeout).await {
            Ok(reply) => Outcome::Ok(Some(reply)),
            Err(mq::CallError::Timeout) => Outcome::Timeout,
            Err(mq::CallError::Status { code, message }) => status_outcome(code, message),
            Err(mq::CallError::Transport(message)) => Outcome::Error {
                status: "TRANSPORT",
                message,
            },
        }
    }
}

fn describe(e: &mq::CallError) -> String {
    match e {
        mq::CallError::Transport(m) => m.clone(),
        other => format!("{other:?}"),
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            super::redact("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(super::redact("amqp://host/%2f"), "amqp://host/%2f");
    }
}
