//! Per-call deadlines that share one reactor timer.
//!
//! An `async_io::Timer` is cheap to poll but not to create: registering one
//! notifies the reactor (a write to its eventfd) so that a sleeping reactor
//! takes the new time into account, and the reactor then goes round once
//! more for nothing. With a timer per call that is two syscalls and a spare
//! reactor turn for every call a server or client handles, to guard against
//! a deadline that almost never passes.
//!
//! Here every deadline sits in one ordered set, and a single driver task
//! sleeps on one timer until the earliest of them. A new deadline that is
//! not earlier than the one the driver sleeps until (the usual case: calls
//! share a timeout, so later calls have later deadlines) is only an insert
//! into the set; a call that finishes removes its entry. When the driver
//! wakes for an entry that has since gone, it re-arms for the earliest one
//! left, so it turns about once per timeout period, not once per call.
//!
//! ```
//! use std::time::{Duration, Instant};
//! let start = Instant::now();
//! smol::block_on(proto::grpc::deadline::sleep_until(start + Duration::from_millis(20)));
//! assert!(start.elapsed() >= Duration::from_millis(20));
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use smol::Timer;

/// A future that resolves at its deadline (see [`sleep_until`]).
#[derive(Debug)]
pub struct Sleep {
    deadline: Instant,
    /// The entry in the set, once polled.
    key: Option<Key>,
}

/// Resolves at `deadline`, using the shared driver's timer.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        key: None,
    }
}

type Key = (Instant, u64);

#[derive(Default)]
struct Queue {
    /// Live deadlines and the wakers of the futures waiting for them.
    entries: BTreeMap<Key, Waker>,
    /// What the driver's timer is set to, if anything.
    armed: Option<Instant>,
    /// The driver task, to wake when a deadline earlier than `armed` comes.
    driver: Option<Waker>,
    next_id: u64,
    started: bool,
}

fn queue() -> MutexGuard<'static, Queue> {
    static QUEUE: OnceLock<Mutex<Queue>> = OnceLock::new();
    let queue = QUEUE.get_or_init(Mutex::default);
    // Nothing panics while holding the lock but a waker, and the set stays
    // consistent either way.
    queue.lock().unwrap_or_else(|e| e.into_inner())
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            if let Some(key) = self.key.take() {
                queue().entries.remove(&key);
            }
            return Poll::Ready(());
        }
        let mut q = queue();
        match self.key {
            Some(key) => match q.entries.get_mut(&key) {
                Some(waker) => {
                    if !waker.will_wake(cx.waker()) {
                        waker.clone_from(cx.waker());
                    }
                }
                // The driver fired it: the deadline has passed by its clock.
                None => {
                    self.key = None;
                    return Poll::Ready(());
                }
            },
            None => {
                let key = (self.deadline, q.next_id);
                q.next_id += 1;
                q.entries.insert(key, cx.waker().clone());
                self.key = Some(key);
                if !q.started {
                    q.started = true;
                    smol::spawn(drive()).detach();
                } else if q.armed.is_none_or(|armed| self.deadline < armed) {
                    let driver = q.driver.take();
                    drop(q);
                    // The driver re-arms for this earlier deadline.
                    if let Some(driver) = driver {
                        driver.wake();
                    }
                }
            }
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            queue().entries.remove(&key);
        }
    }
}

/// The driver: wakes the futures whose deadline has passed, and sleeps until
/// the earliest one left, re-arming its timer only when that is earlier than
/// what it is set to or when the timer has fired.
async fn drive() {
    // `Queue::armed` is what `timer` is set to; None while it is not set.
    let mut timer = Timer::never();
    let mut due = Vec::new();
    std::future::poll_fn(|cx| loop {
        let mut q = queue();
        let now = Instant::now();
        while let Some(entry) = q.entries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        let earliest = q.entries.first_key_value().map(|(k, _)| k.0);
        match (earliest, q.armed) {
            (Some(t), Some(armed)) if t >= armed => {}
            (Some(t), _) => {
                timer.set_at(t);
                q.armed = Some(t);
            }
            // Nothing waits: keep the timer as it is (at worst it fires once
            // for nothing) and sleep until a deadline comes.
            (None, _) => {}
        }
        let armed = q.armed.is_some();
        q.driver = Some(cx.waker().clone());
        drop(q);
        // Woken outside the lock: a waker may run code that takes it.
        due.drain(..).for_each(Waker::wake);
        if !armed {
            return Poll::<()>::Pending;
        }
        match Pin::new(&mut timer).poll(cx) {
            Poll::Ready(_) => queue().armed = None,
            Poll::Pending => return Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_earlier_deadline_re_arms_the_driver() {
        let start = Instant::now();
        smol::block_on(async {
            // The driver sleeps until a far deadline first...
            let mut far = sleep_until(start + Duration::from_secs(30));
            assert!(futures_lite::future::poll_once(&mut far).await.is_none());
            // ...then nearer ones arrive, latest first: each must wake it
            // up to re-arm, or they would all wait for the far one.
            let near =
                [120, 40, 10].map(|ms| smol::spawn(sleep_until(start + Duration::from_millis(ms))));
            for (task, ms) in near.into_iter().zip([120, 40, 10]) {
                task.await;
                assert!(start.elapsed() >= Duration::from_millis(ms));
            }
        });
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    }

    #[test]
    fn a_dropped_sleep_leaves_no_entry_and_does_not_delay_the_others() {
        let start = Instant::now();
        smol::block_on(async {
            let mut early = sleep_until(start + Duration::from_millis(30));
            // Poll once so it is registered, then drop it.
            assert!(futures_lite::future::poll_once(&mut early).await.is_none());
            assert!(queue().entries.keys().any(|k| k.0 == early.deadline));
            let deadline = early.deadline;
            drop(early);
            assert!(!queue().entries.keys().any(|k| k.0 == deadline));
            sleep_until(start + Duration::from_millis(60)).await;
        });
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(60), "{elapsed:?}");
    }

    #[test]
    fn a_past_deadline_is_ready_at_once() {
        let past = Instant::now() - Duration::from_millis(1);
        assert!(smol::block_on(futures_lite::future::poll_once(sleep_until(past))).is_some());
    }

    #[test]
    fn many_concurrent_sleeps_all_fire() {
        let start = Instant::now();
        smol::block_on(async {
            let tasks: Vec<_> = (0..500u64)
                .map(|i| {
                    smol::spawn(sleep_until(
                        start + Duration::from_millis(5 + (i * 7919) % 50),
                    ))
                })
                .collect();
            for t in tasks {
                t.await;
            }
        });
        assert!(start.elapsed() >= Duration::from_millis(54));
    }
}
