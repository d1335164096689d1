//! The periodic per-worker summary: the only thing the LB logs at info while
//! nothing changes (nothing is logged per call).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::balancer::Balancer;

/// Logs, every `interval`, each worker's calls (total and since the previous
/// summary), calls in flight, failed calls and health.
pub async fn run(balancer: Arc<Balancer>, interval: Duration) {
    let mut previous: HashMap<SocketAddr, u64> = HashMap::new();
    loop {
        smol::Timer::after(interval).await;
        let backends = balancer.backends();
        if backends.is_empty() {
            log::info!("no workers (the worker names resolve to no address yet)");
        }
        let mut seen = HashMap::with_capacity(backends.len());
        for b in backends.iter() {
            let s = b.stats();
            let before = previous.get(&b.addr()).copied().unwrap_or(0);
            log::info!(
                "worker {}: {} calls (+{}), {} in flight, {} errors, {}",
                b.addr(),
                s.calls,
                s.calls - before,
                s.outstanding,
                s.errors,
                if s.healthy { "healthy" } else { "down" }
            );
            seen.insert(b.addr(), s.calls);
        }
        previous = seen;
    }
}
