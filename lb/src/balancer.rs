//! The set of workers and the pick: least outstanding requests among the
//! healthy ones, ties broken at random.
//!
//! The pick scans every worker. Pools here are a handful of workers, and a
//! scan of a few atomics is exact where power-of-two-choices is only nearly
//! so (with two workers P2C would often compare a worker with itself).
//! Random tie-breaking matters: many calls picked at the same instant see the
//! same counts, and a fixed order would pile them all onto the first worker.
//!
//! The set changes only when the resolver's answer changes; the pick reads a
//! snapshot (`Arc<[..]>`), so the hot path never waits for an update.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::backend::Backend;

/// Index of the item with the least load among those with `Some` load, ties
/// broken uniformly at random; `None` if no item is eligible.
pub fn least_loaded<T>(
    items: &[T],
    load: impl Fn(&T) -> Option<usize>,
    rng: &mut fastrand::Rng,
) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None; // (index, load)
    let mut ties = 0;
    for (i, item) in items.iter().enumerate() {
        let Some(l) = load(item) else { continue };
        match best {
            Some((_, b)) if l > b => {}
            Some((_, b)) if l == b => {
                // Reservoir sampling: the k-th tie replaces the choice with
                // probability 1/k, so each tie ends up equally likely.
                ties += 1;
                if rng.usize(..ties) == 0 {
                    best = Some((i, l));
                }
            }
            _ => {
                best = Some((i, l));
                ties = 1;
            }
        }
    }
    best.map(|(i, _)| i)
}

/// The workers behind the balancer.
pub struct Balancer {
    backends: RwLock<Arc<[Arc<Backend>]>>,
    conns_per_worker: usize,
    connect_timeout: Duration,
}

impl Balancer {
    pub fn new(conns_per_worker: usize, connect_timeout: Duration) -> Balancer {
        Balancer {
            backends: RwLock::new(Arc::new([])),
            conns_per_worker,
            connect_timeout,
        }
    }

    /// The current workers.
    pub fn backends(&self) -> Arc<[Arc<Backend>]> {
        match self.backends.read() {
            Ok(b) => b.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes the set of workers exactly `addrs`: keeps the ones still there
    /// (with their connections and counters), retires the ones gone, and
    /// returns the new ones so their health checkers can be started.
    pub fn update(&self, addrs: &[SocketAddr]) -> Vec<Arc<Backend>> {
        let current = self.backends();
        let mut next = Vec::with_capacity(addrs.len());
        let mut added = Vec::new();
        for &addr in addrs {
            match current.iter().find(|b| b.addr() == addr) {
                Some(b) => next.push(b.clone()),
                None => {
                    let b = Arc::new(Backend::new(
                        addr,
                        self.conns_per_worker,
                        self.connect_timeout,
                    ));
                    log::info!("worker {addr} added");
                    next.push(b.clone());
                    added.push(b);
                }
            }
        }
        for b in current.iter().filter(|b| !addrs.contains(&b.addr())) {
            log::info!(
                "worker {} removed: its name no longer resolves to it",
                b.addr()
            );
            b.retire();
        }
        if !added.is_empty() || next.len() != current.len() {
            let next: Arc<[Arc<Backend>]> = next.into();
            match self.backends.write() {
                Ok(mut b) => *b = next,
                Err(poisoned) => *poisoned.into_inner() = next,
            }
        }
        added
    }

    /// The healthy worker with the fewest outstanding calls, other than
    /// `exclude` (the worker a retried call already failed on).
    pub fn pick(&self, exclude: Option<&Arc<Backend>>) -> Option<Arc<Backend>> {
        let backends = self.backends();
        let mut rng = fastrand::Rng::new();
        let i = least_loaded(
            &backends,
            |b| {
                let excluded = exclude.is_some_and(|e| Arc::ptr_eq(e, b));
                (b.is_healthy() && !excluded).then(|| b.outstanding())
            },
            &mut rng,
        )?;
        Some(backends[i].clone())
    }

    /// Whether at least one worker is healthy (the LB's own health).
    pub fn any_healthy(&self) -> bool {
        self.backends().iter().any(|b| b.is_healthy())
    }

    /// How many workers there are, healthy or not (for error messages).
    pub fn len(&self) -> usize {
        self.backends().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick_counts(loads: &[Option<usize>], rounds: usize) -> Vec<usize> {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut counts = vec![0; loads.len()];
        for _ in 0..rounds {
            if let Some(i) = least_loaded(loads, |l| *l, &mut rng) {
                counts[i] += 1;
            }
        }
        counts
    }

    #[test]
    fn picks_the_least_outstanding() {
        assert_eq!(pick_counts(&[Some(3), Some(1), Some(2)], 100), [0, 100, 0]);
        assert_eq!(pick_counts(&[Some(1), Some(0)], 100), [0, 100]);
    }

    #[test]
    fn skips_ineligible_workers_even_when_idle() {
        assert_eq!(pick_counts(&[None, Some(9), None], 100), [0, 100, 0]);
        assert_eq!(pick_counts(&[None, None], 100), [0, 0]);
        assert_eq!(pick_counts(&[], 100), Vec::<usize>::new());
    }

    #[test]
    fn breaks_ties_uniformly_at_random() {
        let counts = pick_counts(&[Some(1), Some(0), Some(0), Some(5), Some(0)], 30_000);
        assert_eq!((counts[0], counts[3]), (0, 0));
        for &c in &[counts[1], counts[2], counts[4]] {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn pick_skips_unhealthy_and_excluded_backends() {
        let lb = Balancer::new(1, Duration::from_millis(100));
        assert_eq!(lb.update(&[addr(1), addr(2), addr(3)]).len(), 3);
        assert!(
            lb.pick(None).is_none(),
            "new workers wait for a health check"
        );
        assert!(!lb.any_healthy());
        let b = lb.backends();
        b[0].set_healthy(true, "test");
        b[1].set_healthy(true, "test");
        let _busy = b[0].begin();
        for _ in 0..20 {
            assert_eq!(lb.pick(None).unwrap().addr(), addr(2));
        }
        assert_eq!(lb.pick(Some(&b[1])).unwrap().addr(), addr(1));
        b[0].set_healthy(false, "test");
        assert!(lb.pick(Some(&b[1])).is_none());
        assert!(lb.any_healthy());
    }

    #[test]
    fn update_keeps_existing_backends_and_retires_removed_ones() {
        let lb = Balancer::new(1, Duration::from_millis(100));
        lb.update(&[addr(1), addr(2)]);
        let before = lb.backends();
        before[0].set_healthy(true, "test");
        let added = lb.update(&[addr(1), addr(3)]);
        assert_eq!(added.len(), 1);
        assert_eq!(added[0].addr(), addr(3));
        let after = lb.backends();
        assert!(Arc::ptr_eq(&before[0], &after[0]), "kept with its state");
        assert!(after[0].is_healthy());
        assert!(before[1].is_retired());
        assert_eq!(lb.len(), 2);
        assert!(lb.update(&[addr(1), addr(3)]).is_empty());
    }
}
