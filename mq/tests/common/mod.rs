//! Helpers for the integration tests: a seeded database, `mq-worker`
//! processes that die with the test, queues with unique names that are
//! deleted afterwards, and the query engine as the oracle.
#![allow(dead_code)]

use amiquip::{Connection, QueueDeleteOptions};
use proto::SalesRequest;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A name no other test (or test run) uses.
pub fn unique(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "test-{name}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    )
}

/// A binary of the workspace, next to the test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// A temporary directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique(name));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The test database (2000 sales, seed 7), written once per test process.
pub fn database() -> &'static Path {
    static DB: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    &DB.get_or_init(|| {
        let dir = TempDir::new("db");
        let path = dir.0.join("sales.db");
        let status = Command::new(binary("seeder"))
            .args(["--sales", "2000", "--seed", "7", "--db"])
            .arg(&path)
            .env("RUST_LOG", "warn")
            .status()
            .expect("run seeder");
        assert!(status.success(), "seeder failed");
        (dir, path)
    })
    .1
}

/// A child process killed (SIGKILL) when dropped unless it already exited.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (by number) to the process.
    pub fn signal(&self, signal: i32) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.name);
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "{} did not exit within {limit:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `mq-worker` on `queue` with `threads` consumers, and waits until
/// they are all attached.
pub fn start_worker(url: &str, queue: &str, id: &str, threads: usize, extra: &[&str]) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_mq-worker"))
        .arg("--amqp")
        .arg(url)
        .arg("--db")
        .arg(database())
        .args(["--queue", queue, "--id", id, "--threads"])
        .arg(threads.to_string())
        .args(extra)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn mq-worker");
    let mut proc = Proc {
        child,
        name: id.to_string(),
    };
    wait_consumers(url, queue, threads as u32, &mut proc);
    proc
}

/// Waits until `queue` has at least `n` consumers.
pub fn wait_consumers(url: &str, queue: &str, n: u32, proc: &mut Proc) {
    let start = Instant::now();
    loop {
        if let Some(status) = proc.child.try_wait().expect("try_wait") {
            panic!("{} exited early: {status}", proc.name);
        }
        if let Ok((_, consumers)) = try_counts(url, queue) {
            if consumers >= n {
                return;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{}: consumers never attached to {queue}",
            proc.name
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// (messages ready, consumers) of an existing queue.
pub fn counts(url: &str, queue: &str) -> (u32, u32) {
    try_counts(url, queue).unwrap_or_else(|e| panic!("passive declare of {queue}: {e}"))
}

fn try_counts(url: &str, queue: &str) -> Result<(u32, u32), String> {
    let mut connection = Connection::insecure_open(url).map_err(|e| e.to_string())?;
    let channel = connection.open_channel(None).map_err(|e| e.to_string())?;
    let q = channel
        .queue_declare_passive(queue)
        .map_err(|e| e.to_string())?;
    let result = (
        q.declared_message_count().unwrap_or(0),
        q.declared_consumer_count().unwrap_or(0),
    );
    let _ = connection.close();
    Ok(result)
}

/// Deletes a queue and its dead-letter queue when dropped.
pub struct Queues {
    pub url: String,
    pub name: String,
}

impl Queues {
    pub fn new(url: &str, name: &str) -> Queues {
        Queues {
            url: url.to_string(),
            name: name.to_string(),
        }
    }

    pub fn dead(&self) -> String {
        mq::topology::dead_letter_queue(&self.name)
    }
}

impl Drop for Queues {
    fn drop(&mut self) {
        if let Ok(mut connection) = Connection::insecure_open(&self.url) {
            for q in [self.name.clone(), self.dead()] {
                if let Ok(channel) = connection.open_channel(None) {
                    let _ = channel.queue_delete(q, QueueDeleteOptions::default());
                }
            }
            let _ = connection.close();
        }
    }
}

/// A deterministic mix of valid requests over every filter.
pub fn requests(n: usize, seed: u64) -> Vec<SalesRequest> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|i| {
            let year = 2020 + rng.u32(0..6);
            let month = rng.u32(1..=12);
            let start_hour = if i % 3 == 0 {
                None
            } else {
                Some(rng.i32(0..12))
            };
            SalesRequest {
                region: if i % 4 == 3 {
                    String::new()
                } else {
                    seeder::REGIONS[rng.usize(..seeder::REGIONS.len())].to_string()
                },
                category: if i % 5 == 4 {
                    String::new()
                } else {
                    seeder::CATEGORIES[rng.usize(..seeder::CATEGORIES.len())].to_string()
                },
                start_date: format!("{year}-{month:02}-01"),
                end_date: format!("{}-{month:02}-28", year + rng.u32(0..2)),
                min_amount: if i % 6 == 0 { 10 } else { 0 },
                max_amount: if i % 7 == 0 { 80 } else { 0 },
                product_keyword: if i % 8 == 0 {
                    "a".into()
                } else {
                    String::new()
                },
                buyer_keyword: if i % 9 == 0 {
                    "an".into()
                } else {
                    String::new()
                },
                start_hour,
                end_hour: start_hour.map(|h| h + rng.i32(0..=(24 - h))),
            }
        })
        .collect()
}

/// What the engine answers, as the client should see it.
pub fn expected(conn: &mut worker::QueryConn, req: &SalesRequest) -> Result<(i64, i64, f64), u32> {
    conn.run(req)
        .map(|m| (m.count, m.revenue, m.average))
        .map_err(|e| e.grpc_code())
}
