//! Shared by hammer's integration tests: in-process gRPC servers with scripted
//! behaviour, real `worker`/`mq-worker` processes, queues on the broker that are
//! deleted afterwards, and running the `hammer` binary.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;
use proto::grpc::{serve, Handler, Request, ServerConfig, Status};
use serde_json::Value;

/// What a handler returns (the signature of `Handler::call`).
pub type Reply = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Bytes, Status>> + Send>>;

/// A gRPC server on a free port of 127.0.0.1, running `handler` on its own thread
/// until dropped.
pub struct FakeServer {
    pub addr: SocketAddr,
    stop: Option<smol::channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    pub fn start(handler: Arc<dyn Handler>) -> FakeServer {
        let listener = smol::block_on(smol::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let config = ServerConfig {
            shutdown_grace: Duration::from_millis(100),
            ..ServerConfig::default()
        };
        let thread = std::thread::spawn(move || {
            smol::block_on(serve(listener, handler, config, async move {
                let _ = stopped.recv().await;
            }))
            .expect("serve");
        });
        FakeServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The reply every fake server sends: one sale of 42.
pub fn fake_reply() -> Bytes {
    Bytes::from(
        proto::SalesResponse {
            total_sales_count: 1,
            total_revenue: 42,
            average_amount: 42.0,
            region_processed: "fake".into(),
        }
        .encode_to_vec(),
    )
}

/// Answers every call at once.
pub struct Instant_;

impl Handler for Instant_ {
    fn call(&self, _req: Request) -> Reply {
        Box::pin(async { Ok(fake_reply()) })
    }
}

/// A workspace binary next to the test executable (`cargo build --workspace` puts it there).
pub fn bin(name: &str) -> PathBuf {
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

/// A small seeded database, written once per test binary.
pub fn test_db() -> &'static Path {
    static DB: OnceLock<PathBuf> = OnceLock::new();
    DB.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hammer-tests-5k-seed3.db");
        if !path.exists() {
            seeder::write_database(
                &path,
                &seeder::Config {
                    sales: 5_000,
                    seed: 3,
                },
            )
            .expect("cannot write the test database");
        }
        path
    })
}

/// A child process killed when the test ends, its stderr kept for messages.
pub struct Proc {
    pub child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `cmd` and waits until a stderr line contains `ready` (returns that line).
    pub fn start(mut cmd: Command, ready: &str) -> (Proc, String) {
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start child process");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let ready = ready.to_string();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains(&ready) {
                        let _ = tx.send(line.clone());
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let proc = Proc { child, log };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => (proc, line),
            Err(_) => panic!("child did not get ready; its log:\n{}", proc.log_text()),
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `worker` on a free port serving `db`.
pub fn start_worker(db: &Path) -> (Proc, SocketAddr) {
    let mut cmd = Command::new(bin("worker"));
    cmd.args(["--listen", "127.0.0.1:0", "--threads", "2", "--db"])
        .arg(db);
    let (proc, line) = Proc::start(cmd, "listening on ");
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| c == ',' || c.is_whitespace()).next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in `{line}`"));
    (proc, addr)
}

/// The broker the AMQP tests use (env AMQP_URL, else the local one), as
/// `hammer` and `mq-worker` find it themselves.
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A queue with a name of its own (and its dead-letter queue, which
/// `mq-worker` declares with it), deleted from the broker when dropped, so
/// that test runs leave nothing behind. Create it before the `mq-worker`
/// that consumes it, so that the worker is gone when the queue goes.
pub struct TestQueue {
    pub name: String,
}

impl TestQueue {
    pub fn new(tag: &str) -> TestQueue {
        TestQueue {
            name: format!("hammer_{tag}_{}", std::process::id()),
        }
    }
}

impl Drop for TestQueue {
    fn drop(&mut self) {
        let Ok(mut connection) = amiquip::Connection::insecure_open(&amqp_url()) else {
            return;
        };
        let dead = mq::topology::dead_letter_queue(&self.name);
        for queue in [self.name.as_str(), dead.as_str()] {
            if let Ok(channel) = connection.open_channel(None) {
                let _ = channel.queue_delete(queue, amiquip::QueueDeleteOptions::default());
            }
        }
        let _ = connection.close();
    }
}

/// What a hammer run left behind.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub json: Value,
    pub json_path: PathBuf,
}

/// A fresh path in the test scratch directory.
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("hammer-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

/// Runs `hammer <args> --json <scratch> -q` and parses its JSON report.
pub fn hammer(args: &[&str]) -> Run {
    let json_path = scratch("report.json");
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_hammer"))
        .args(args)
        .arg("--json")
        .arg(&json_path)
        .arg("-q")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("cannot run hammer");
    let elapsed = t0.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let text = std::fs::read_to_string(&json_path).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); status {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        )
    });
    let json = serde_json::from_str(&text).expect("the report is JSON");
    Run {
        status: out.status,
        stdout,
        stderr,
        elapsed,
        json,
        json_path,
    }
}

pub fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("`{key}` is not a number in {v:#}"))
}

pub fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("`{key}` is not an unsigned integer in {v:#}"))
}
