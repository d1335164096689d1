//! Worker addresses: parsing the `host:port,...` list and resolving host names.
//!
//! Every address a name resolves to is a separate worker, so one compose
//! service scaled to N replicas is N workers. Names are re-resolved
//! periodically because replicas come and go. Resolution (getaddrinfo) blocks,
//! so it runs on smol's blocking thread pool, never on the executor.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::{Ipv6Addr, SocketAddr, ToSocketAddrs};

/// The port a target without one gets: the workers' default port.
pub const DEFAULT_PORT: u16 = 50052;

/// One entry of the worker list: a host name or IP literal, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    /// Parses `host:port`, `[v6]:port`, a bare host or IP (port 50052), with an
    /// optional scheme prefix (`http://`, `dns:///`) that is ignored: the
    /// seed's WORKER_URLS carries one and we speak plaintext HTTP/2 anyway.
    pub fn parse(entry: &str) -> Result<Target, String> {
        let original = entry;
        let mut s = entry.trim();
        if let Some(i) = s.find("://") {
            s = &s[i + 3..];
        }
        let s = s.trim_matches('/');
        if s.is_empty() {
            return Err(format!("{original:?}: empty address"));
        }
        if s.contains('/') {
            return Err(format!("{original:?}: expected host:port, found a path"));
        }
        let bad_port = |p: &str| format!("{original:?}: invalid port {p:?}");
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            // [v6] or [v6]:port
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{original:?}: missing ']' after IPv6 address"))?;
            let port = match after {
                "" => DEFAULT_PORT,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| bad_port(p))?,
            };
            (host, port)
        } else if s.parse::<Ipv6Addr>().is_ok() {
            // A bare IPv6 literal: its colons are not a port separator.
            (s, DEFAULT_PORT)
        } else {
            match s.rsplit_once(':') {
                Some((host, p)) => (host, p.parse().map_err(|_| bad_port(p))?),
                None => (s, DEFAULT_PORT),
            }
        };
        if host.is_empty() {
            return Err(format!("{original:?}: empty host"));
        }
        if port == 0 {
            return Err(bad_port("0"));
        }
        Ok(Target {
            host: host.to_string(),
            port,
        })
    }

    /// Parses a comma-separated list; empty entries (a trailing comma) are skipped.
    pub fn parse_list(list: &str) -> Result<Vec<Target>, String> {
        let targets = list
            .split(',')
            .filter(|e| !e.trim().is_empty())
            .map(Target::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if targets.is_empty() {
            return Err("the worker list is empty".to_string());
        }
        Ok(targets)
    }

    /// Every address the host resolves to (blocking).
    pub fn lookup(&self) -> io::Result<Vec<SocketAddr>> {
        Ok((self.host.as_str(), self.port).to_socket_addrs()?.collect())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How a target is turned into addresses; a plain function so tests can
/// stand in for DNS.
pub type Lookup = fn(&Target) -> io::Result<Vec<SocketAddr>>;

/// Resolves the targets, remembering the last good answer of each.
pub struct Resolver {
    targets: Vec<Target>,
    last: Vec<Vec<SocketAddr>>,
    /// Whether each target's latest lookup failed: a failure is warned about
    /// once, not at every interval, and the recovery is logged.
    failing: Vec<bool>,
    lookup: Lookup,
}

impl Resolver {
    pub fn new(targets: Vec<Target>) -> Resolver {
        Resolver::with_lookup(targets, Target::lookup)
    }

    pub fn with_lookup(targets: Vec<Target>, lookup: Lookup) -> Resolver {
        let last = vec![Vec::new(); targets.len()];
        let failing = vec![false; targets.len()];
        Resolver {
            targets,
            last,
            failing,
            lookup,
        }
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Resolves every target on the blocking pool and returns the union of
    /// their addresses, sorted and without duplicates.
    ///
    /// A target whose lookup fails keeps its previous addresses: a DNS hiccup
    /// must not empty the pool (dead workers are the health checker's job).
    pub async fn resolve(&mut self) -> Vec<SocketAddr> {
        let targets = self.targets.clone();
        let lookup = self.lookup;
        let answers = smol::unblock(move || {
            targets
                .iter()
                .map(|t| (t.to_string(), lookup(t)))
                .collect::<Vec<_>>()
        })
        .await;
        let mut all = BTreeSet::new();
        let state = self.last.iter_mut().zip(&mut self.failing);
        for ((name, answer), (last, failing)) in answers.into_iter().zip(state) {
            let failure = match answer {
                Ok(addrs) if !addrs.is_empty() => {
                    if std::mem::take(failing) {
                        log::info!("{name}: resolves again, to {addrs:?}");
                    }
                    *last = addrs;
                    None
                }
                Ok(_) => Some("resolves to no address".to_string()),
                Err(e) => Some(format!("cannot resolve ({e})")),
            };
            if let Some(why) = failure {
                if std::mem::replace(failing, true) {
                    log::debug!("{name}: still {why}; keeping {last:?}");
                } else {
                    log::warn!("{name}: {why}; keeping {last:?} until it resolves again");
                }
            }
            all.extend(last.iter().copied());
        }
        all.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(host: &str, port: u16) -> Target {
        Target {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn parses_host_port_forms() {
        assert_eq!(Target::parse("worker:50052"), Ok(t("worker", 50052)));
        assert_eq!(Target::parse(" worker:7 "), Ok(t("worker", 7)));
        assert_eq!(Target::parse("worker"), Ok(t("worker", DEFAULT_PORT)));
        assert_eq!(Target::parse("127.0.0.1:9"), Ok(t("127.0.0.1", 9)));
        assert_eq!(Target::parse("[::1]:9"), Ok(t("::1", 9)));
        assert_eq!(Target::parse("[::1]"), Ok(t("::1", DEFAULT_PORT)));
        assert_eq!(Target::parse("::1"), Ok(t("::1", DEFAULT_PORT)));
    }

    #[test]
    fn ignores_scheme_prefix_and_trailing_slash() {
        assert_eq!(Target::parse("http://worker:1"), Ok(t("worker", 1)));
        assert_eq!(Target::parse("grpc://worker:1/"), Ok(t("worker", 1)));
        assert_eq!(Target::parse("dns:///worker:1"), Ok(t("worker", 1)));
    }

    #[test]
    fn rejects_bad_entries_with_a_message_naming_them() {
        for bad in [
            "", "http://", ":80", "w:x", "w:70000", "w:0", "[::1", "[::1]x", "w:1/p",
        ] {
            let err = Target::parse(bad).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")) || bad.is_empty(), "{err}");
        }
    }

    #[test]
    fn parses_lists() {
        assert_eq!(
            Target::parse_list("http://a:1, b:2,"),
            Ok(vec![t("a", 1), t("b", 2)])
        );
        assert!(Target::parse_list(" , ").is_err());
        assert!(Target::parse_list("a:1,b:x").is_err());
    }

    #[test]
    fn displays_as_parsed() {
        assert_eq!(t("::1", 5).to_string(), "[::1]:5");
        assert_eq!(t("a", 5).to_string(), "a:5");
    }

    #[test]
    fn resolves_literals_and_localhost() {
        let mut r = Resolver::new(vec![t("127.0.0.1", 5), t("127.0.0.1", 5), t("::1", 6)]);
        let addrs = smol::block_on(r.resolve());
        assert_eq!(
            addrs,
            vec!["127.0.0.1:5".parse().unwrap(), "[::1]:6".parse().unwrap()]
        );
        let mut r = Resolver::new(vec![t("localhost", 7)]);
        let addrs = smol::block_on(r.resolve());
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 7));
        assert!(!addrs.is_empty());
    }

    #[test]
    fn every_address_of_a_name_is_a_worker_and_failures_keep_the_last_answer() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static ROUND: AtomicUsize = AtomicUsize::new(0);
        fn fake(t: &Target) -> io::Result<Vec<SocketAddr>> {
            let ip = |n: u8| SocketAddr::from(([10, 0, 0, n], t.port));
            match (t.host.as_str(), ROUND.load(Ordering::SeqCst)) {
                ("svc", 0) => Ok(vec![ip(2), ip(1)]),
                ("svc", 1) => Err(io::Error::other("SERVFAIL")),
                ("svc", _) => Ok(vec![ip(3)]),
                _ => Err(io::Error::other("NXDOMAIN")),
            }
        }
        let mut r = Resolver::with_lookup(vec![t("svc", 1), t("gone", 1)], fake);
        let a = |n: u8| SocketAddr::from(([10, 0, 0, n], 1));
        assert_eq!(smol::block_on(r.resolve()), vec![a(1), a(2)]);
        ROUND.store(1, Ordering::SeqCst);
        assert_eq!(smol::block_on(r.resolve()), vec![a(1), a(2)]);
        ROUND.store(2, Ordering::SeqCst);
        assert_eq!(smol::block_on(r.resolve()), vec![a(3)]);
    }
}
