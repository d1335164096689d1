//! A fixed set of blocking threads, each owning a [`QueryConn`], reached
//! from async code through a bounded `async-channel`.
//!
//! SQLite calls block, so they never run on the async executor: a request
//! is validated on the caller's task (invalid input never costs a thread
//! hop), sent with a one-shot reply channel, and answered by whichever
//! thread is free. The threads share nothing but the job queue; each has
//! its own connection, statement cache and page cache.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use async_channel::{Receiver, Sender};

use crate::conn::QueryConn;
use crate::error::{OpenError, QueryError};
use crate::request::{validate, Query};
use crate::{Metrics, SalesRequest};

/// Jobs waiting per thread before `query` waits to enqueue.
const QUEUE_PER_THREAD: usize = 64;

struct Job {
    query: Query,
    reply: Sender<Result<Metrics, QueryError>>,
}

/// The engine's thread pool; cheap to clone. The threads exit when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Pool {
    jobs: Sender<Job>,
    threads: usize,
}

impl Pool {
    /// Opens `threads` connections to `path` (0 means one per core) and
    /// starts a thread for each. Fails, before starting any thread, if the
    /// database cannot be served.
    pub fn open(path: &Path, threads: usize) -> Result<Pool, OpenError> {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let conns = (0..threads)
            .map(|_| QueryConn::open(path))
            .collect::<Result<Vec<_>, _>>()?;
        let (jobs, queue) = async_channel::bounded(threads * QUEUE_PER_THREAD);
        for (i, conn) in conns.into_iter().enumerate() {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("sqlite-{i}"))
                .spawn(move || serve(conn, queue))
                .map_err(|e| OpenError(format!("cannot start query thread: {e}")))?;
        }
        Ok(Pool { jobs, threads })
    }

    /// Validates `req` and answers it on one of the threads.
    pub async fn query(&self, req: SalesRequest) -> Result<Metrics, QueryError> {
        let query = validate(&req)?;
        let (reply, answer) = async_channel::bounded(1);
        self.jobs
            .send(Job { query, reply })
            .await
            .map_err(|_| QueryError::Unavailable("query threads have stopped".into()))?;
        answer
            .recv()
            .await
            .map_err(|_| QueryError::Internal("query thread died before answering".into()))?
    }

    /// Number of query threads.
    pub fn threads(&self) -> usize {
        self.threads
    }
}

fn serve(mut conn: QueryConn, queue: Receiver<Job>) {
    while let Ok(job) = queue.recv_blocking() {
        // A panic in SQLite glue must cost one request, not the thread.
        let result = catch_unwind(AssertUnwindSafe(|| conn.run_query(&job.query)))
            .unwrap_or_else(|_| Err(QueryError::Internal("query panicked".into())));
        // The caller may have given up (timeout, cancelled task): fine.
        let _ = job.reply.try_send(result);
    }
}
