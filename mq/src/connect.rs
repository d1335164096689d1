//! Opening an AMQP connection, and waiting politely between attempts.
//!
//! amiquip can open a connection from a URL itself, but it leaves Nagle's
//! algorithm on, and request/reply traffic is exactly the small-write,
//! wait-for-answer pattern Nagle delays. So we parse the URL, connect the
//! socket ourselves (with a timeout, so an unreachable host does not hang a
//! reconnect loop), set `TCP_NODELAY` and hand the stream to amiquip.

use amiquip::{Auth, Connection, ConnectionOptions, ConnectionTuning};
use std::fmt;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long one TCP connect attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a connection could not be opened.
#[derive(Debug)]
pub struct ConnectError(pub String);

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

/// Where and how to connect, parsed once from an `amqp://` URL.
#[derive(Debug, Clone)]
pub struct Target {
    host: String,
    port: u16,
    options: ConnectionOptions<Auth>,
    /// The URL without its password, for messages.
    display: String,
}

impl Target {
    /// Parses `amqp://user:pass@host:port/vhost?heartbeat=N`. Defaults as
    /// RabbitMQ's URI spec: guest/guest, port 5672, vhost `/`.
    pub fn parse(url: &str) -> Result<Target, ConnectError> {
        let bad = |why: &str| ConnectError(format!("invalid AMQP URL {url:?}: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if parsed.scheme() != "amqp" {
            return Err(bad("only amqp:// is supported (no TLS)"));
        }
        let host = match parsed.host_str() {
            Some("") | None => "localhost".to_string(),
            Some(h) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
        };
        let port = parsed.port().unwrap_or(5672);
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let mut options = ConnectionOptions::<Auth>::default();
        let username = match parsed.username() {
            "" => "guest".to_string(),
            u => decode(u),
        };
        let password = parsed
            .password()
            .map(decode)
            .unwrap_or_else(|| "guest".into());
        options = options.auth(Auth::Plain { username, password });
        let path = parsed.path().trim_start_matches('/');
        if !path.is_empty() {
            if path.contains('/') {
                return Err(bad("the vhost must be one path segment (write / as %2f)"));
            }
            options = options.virtual_host(decode(path));
        }
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "heartbeat" => {
                    let secs = value
                        .parse()
                        .map_err(|_| bad("heartbeat is not a number"))?;
                    options = options.heartbeat(secs);
                }
                other => return Err(bad(&format!("unsupported parameter {other:?}"))),
            }
        }
        let mut shown = parsed.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        Ok(Target {
            host,
            port,
            options,
            display: shown.to_string(),
        })
    }

    /// Opens a connection: TCP with `TCP_NODELAY`, then the AMQP handshake.
    pub fn open(&self) -> Result<Connection, ConnectError> {
        let fail = |what: &str, e: &dyn fmt::Display| {
            ConnectError(format!("{}: {what}: {e}", self.display))
        };
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| fail("cannot resolve host", &e))?;
        let mut last = ConnectError(format!("{}: host has no address", self.display));
        for addr in addrs {
            let stream = match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(stream) => stream,
                Err(e) => {
                    last = fail("cannot connect", &e);
                    continue;
                }
            };
            stream
                .set_nodelay(true)
                .map_err(|e| fail("cannot set TCP_NODELAY", &e))?;
            let stream =
                mio::net::TcpStream::from_stream(stream).map_err(|e| fail("socket setup", &e))?;
            let options = self
                .options
                .clone()
                .connection_timeout(Some(CONNECT_TIMEOUT));
            return Connection::insecure_open_stream(stream, options, ConnectionTuning::default())
                .map_err(|e| fail("AMQP handshake failed", &e));
        }
        Err(last)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// Exponential backoff between reconnect attempts: 100 ms doubling to 5 s,
/// with jitter so that many consumers do not knock on the broker in step.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    pub fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// The pause before the next attempt (and doubles the one after).
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        // ±20 % jitter.
        base.mul_f64(0.8 + 0.4 * fastrand::f64())
    }

    /// After a success the next failure starts from the shortest pause again.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_url() {
        let t = Target::parse("amqp://guest:secret@127.0.0.1:5673/%2f").unwrap();
        assert_eq!(t.host, "127.0.0.1");
        assert_eq!(t.port, 5673);
        assert!(!t.to_string().contains("secret"));
        assert!(Target::parse("amqps://x").is_err());
        assert!(Target::parse("amqp://h/a/b").is_err());
        assert!(Target::parse("amqp://h/?heartbeat=5").is_ok());
    }

    #[test]
    fn backoff_grows_to_a_cap() {
        let mut b = Backoff::new();
        let delays: Vec<_> = (0..10).map(|_| b.next_delay()).collect();
        assert!(delays[0] <= Duration::from_millis(120));
        assert!(delays[9] <= Duration::from_secs(6));
        assert!(delays[9] >= Duration::from_secs(4));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(120));
    }

    #[test]
    fn refused_connection_is_an_error_not_a_hang() {
        // Port 1 on loopback: nothing listens there.
        let t = Target::parse("amqp://127.0.0.1:1/").unwrap();
        let err = t.open().unwrap_err();
        assert!(err.to_string().contains("cannot connect"), "{err}");
    }
}
