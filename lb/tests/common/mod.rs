//! Helpers shared by the LB's integration tests: real processes (seeder,
//! worker, lb, Python grpcio peers) on real sockets on 127.0.0.1, each killed
//! when its guard drops.

#![allow(dead_code)] // each test file uses its own subset

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use proto::grpc::{Channel, Status};
use proto::{paths, HealthCheckRequest, HealthCheckResponse, SalesRequest, SalesResponse};

/// A binary of the workspace, next to the test executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test exe in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A child process, killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_string(),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal (by number) and waits up to `within` for the exit status.
    pub fn signal_and_wait(&mut self, signal: i32, within: Duration) -> Option<i32> {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot signal {}", self.name);
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "lb-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Seeds a small database (2000 sales) with the seeder binary.
pub fn seed_db(dir: &TempDir) -> PathBuf {
    let db = dir.path().join("database.db");
    let status = Command::new(bin("seeder"))
        .arg("--db")
        .arg(&db)
        .args(["--sales", "2000", "--seed", "7"])
        .env("RUST_LOG", "warn")
        .status()
        .expect("run seeder");
    assert!(status.success(), "seeder failed: {status}");
    db
}

/// Waits until something accepts connections on `port`.
pub fn wait_listening(port: u16, within: Duration) {
    wait_listening_on(local(port), within)
}

/// Waits until something accepts connections on `addr`.
pub fn wait_listening_on(addr: SocketAddr, within: Duration) {
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < within,
            "nothing listens on {addr} after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts our worker binary on `port` and waits until it listens.
pub fn start_worker(db: &Path, port: u16, id: &str) -> Proc {
    start_worker_on(db, local(port), id)
}

/// Starts our worker binary on `addr` and waits until it listens.
pub fn start_worker_on(db: &Path, addr: SocketAddr, id: &str) -> Proc {
    let w = Proc::spawn(
        &format!("worker {id}"),
        Command::new(bin("worker"))
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--db")
            .arg(db)
            .args(["--id", id, "--threads", "2"])
            .env("RUST_LOG", "warn"),
    );
    wait_listening_on(addr, Duration::from_secs(10));
    w
}

/// Starts the LB in front of `workers` (ports on 127.0.0.1), with health
/// checks every 200 ms, plus `extra` arguments; returns it and its port.
pub fn start_lb(workers: &[u16], extra: &[&str]) -> (Proc, u16) {
    let level = std::env::var("LB_LOG").unwrap_or_else(|_| "warn".into());
    spawn_lb(workers, extra, |cmd| {
        cmd.env("RUST_LOG", level);
    })
}

/// [`start_lb`] logging at info into the file `log`.
pub fn start_lb_logging(workers: &[u16], extra: &[&str], log: &Path) -> (Proc, u16) {
    let file = std::fs::File::create(log).expect("create the LB's log file");
    spawn_lb(workers, extra, |cmd| {
        cmd.env("RUST_LOG", "info").stderr(file);
    })
}

fn spawn_lb(workers: &[u16], extra: &[&str], setup: impl FnOnce(&mut Command)) -> (Proc, u16) {
    let port = free_port();
    let list: Vec<String> = workers.iter().map(|&p| local(p).to_string()).collect();
    let mut cmd = Command::new(bin("lb"));
    cmd.arg("--listen")
        .arg(local(port).to_string())
        .arg("--workers")
        .arg(list.join(","))
        .args(["--health-interval", "200ms"])
        .args(extra);
    setup(&mut cmd);
    let lb = Proc::spawn("lb", &mut cmd);
    wait_listening(port, Duration::from_secs(10));
    (lb, port)
}

pub async fn connect(port: u16) -> Channel {
    Channel::connect(local(port))
        .await
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"))
}

/// The LB's (or a worker's) answer to Health/Check.
pub async fn health(ch: &Channel) -> Result<i32, Status> {
    let reply: HealthCheckResponse = ch
        .call(
            paths::HEALTH_CHECK,
            &HealthCheckRequest::default(),
            Some(Duration::from_secs(2)),
        )
        .await?;
    Ok(reply.status)
}

/// Polls Health/Check until it answers SERVING.
pub async fn wait_serving(ch: &Channel, within: Duration) {
    let start = Instant::now();
    loop {
        if health(ch).await == Ok(proto::ServingStatus::Serving as i32) {
            return;
        }
        assert!(start.elapsed() < within, "not SERVING after {within:?}");
        smol::Timer::after(Duration::from_millis(20)).await;
    }
}

pub async fn metrics(ch: &Channel, req: &SalesRequest) -> Result<SalesResponse, Status> {
    ch.call(paths::GET_SALES_METRICS, req, Some(Duration::from_secs(5)))
        .await
}

/// A spread of requests touching every filter.
pub fn sample_requests() -> Vec<SalesRequest> {
    let mut reqs = vec![
        SalesRequest::default(),
        SalesRequest {
            region: "Europe".into(),
            ..Default::default()
        },
        SalesRequest {
            category: "Books".into(),
            start_date: "2021-01-01".into(),
            end_date: "2023-06-30".into(),
            ..Default::default()
        },
        SalesRequest {
            region: "Asia".into(),
            category: "Computers".into(),
            start_hour: Some(9),
            end_hour: Some(17),
            ..Default::default()
        },
        SalesRequest {
            min_amount: 10,
            max_amount: 50,
            product_keyword: "a".into(),
            buyer_keyword: "an".into(),
            ..Default::default()
        },
    ];
    reqs.push(SalesRequest {
        region: "Nowhere".into(),
        ..Default::default()
    });
    reqs
}

/// The Python interpreter (env PYTHON, else python3), checked for grpcio and
/// grpc_tools.
pub fn python() -> String {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python)
        .args(["-c", "import grpc, grpc_tools"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{python} cannot import grpc and grpc_tools: set PYTHON to an interpreter with \
         grpcio and grpcio-tools (scripts/test.sh makes one)"
    );
    python
}

/// The workspace's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Generates Python stubs for sales.proto and health.proto into `dir`.
///
/// health.proto is compiled from its own directory so its module is
/// `health_pb2`, not `grpc.health.v1.health_pb2`, which a `grpc/` folder
/// next to it would make clash with the grpcio package itself.
pub fn python_stubs(python: &str, dir: &Path) {
    let proto = repo_root().join("proto");
    for (include, file) in [
        (proto.clone(), "sales.proto"),
        (proto.join("grpc/health/v1"), "health.proto"),
    ] {
        let out = Command::new(python)
            .args(["-m", "grpc_tools.protoc"])
            .arg(format!("-I{}", include.display()))
            .arg(format!("--python_out={}", dir.display()))
            .arg(format!("--grpc_python_out={}", dir.display()))
            .arg(file)
            .output()
            .expect("run grpc_tools.protoc");
        assert!(
            out.status.success(),
            "grpc_tools.protoc {file} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A Python script of lb/tests/py run with the stubs on PYTHONPATH.
pub fn python_script(python: &str, stubs: &Path, script: &str) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/py")
            .join(script),
    )
    .env("PYTHONPATH", stubs);
    cmd
}

/// worker/tests/py/grpcio_worker.py: the grpcio stand-in worker the worker's
/// own tests use too (its doc string says what it answers).
pub fn py_worker_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../worker/tests/py/grpcio_worker.py")
}

/// Starts the grpcio stand-in worker and waits until it listens.
pub fn start_py_worker(python: &str, stubs: &Path, port: u16, id: &str, delay: f64) -> Proc {
    start_py_worker_with(python, stubs, port, id, &["--delay", &delay.to_string()])
}

/// Starts the grpcio stand-in worker with extra arguments.
pub fn start_py_worker_with(
    python: &str,
    stubs: &Path,
    port: u16,
    id: &str,
    args: &[&str],
) -> Proc {
    let w = Proc::spawn(
        &format!("grpcio worker {id}"),
        Command::new(python)
            .arg(py_worker_script())
            .env("PYTHONPATH", stubs)
            .args(["--port", &port.to_string(), "--id", id])
            .args(args)
            .stdout(Stdio::null()),
    );
    wait_listening(port, Duration::from_secs(20));
    w
}

/// One call of a paced load: when it was due (from the start of the load),
/// how long it took, and who served it or how it failed.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub due: Duration,
    pub latency: Duration,
    pub result: Result<String, Status>,
}

/// Calls GetSalesMetrics `rate` times a second for `length`, on a fixed
/// schedule whatever the replies do (open loop), and returns every outcome
/// in schedule order.
pub async fn paced_load(
    ch: &Channel,
    rate: u32,
    length: Duration,
    req: &SalesRequest,
) -> Vec<Outcome> {
    let period = Duration::from_secs(1) / rate;
    let n = (length.as_secs_f64() * f64::from(rate)) as u32;
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (ch, req) = (ch.clone(), req.clone());
            let due = period * i;
            smol::spawn(async move {
                smol::Timer::at(start + due).await;
                let t = Instant::now();
                let result = metrics(&ch, &req).await.map(|r| r.region_processed);
                Outcome {
                    due,
                    latency: t.elapsed(),
                    result,
                }
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for t in tasks {
        outcomes.push(t.await);
    }
    outcomes
}

/// Asserts that every call of a load succeeded, naming the first that did
/// not; `context` is appended to the message.
pub fn assert_no_call_failed(outcomes: &[Outcome], context: &str) {
    let failed: Vec<_> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {} calls failed{context}, first {:?}",
        failed.len(),
        outcomes.len(),
        failed.first()
    );
}

/// Waits until the file `log` has a line containing `needle`.
pub fn wait_for_line(log: &Path, needle: &str, within: Duration) {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().any(|l| l.contains(needle)) {
            return;
        }
        assert!(
            start.elapsed() < within,
            "no line with {needle:?} after {within:?}; the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One line of the LB's per-worker summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub calls: u64,
    pub errors: u64,
    pub healthy: bool,
}

/// The per-worker summary lines of an LB log, in order, with the address of
/// the worker each is about.
pub fn summaries_by_addr(log: &str) -> Vec<(SocketAddr, Summary)> {
    log.lines()
        .filter_map(|line| {
            // "worker 127.0.0.1:P: N calls (+K), M in flight, E errors, healthy"
            let (_, rest) = line.split_once("] worker ")?;
            let (addr, rest) = rest.split_once(": ")?;
            let w: Vec<&str> = rest.split_whitespace().collect();
            if w.len() != 9 || w[1] != "calls" || w[7] != "errors," {
                return None;
            }
            let summary = Summary {
                calls: w[0].parse().ok()?,
                errors: w[6].parse().ok()?,
                healthy: w[8] == "healthy",
            };
            Some((addr.parse().ok()?, summary))
        })
        .collect()
}

/// [`summaries_by_addr`] for workers on 127.0.0.1, by port.
pub fn summaries(log: &str) -> Vec<(u16, Summary)> {
    summaries_by_addr(log)
        .into_iter()
        .filter(|(addr, _)| addr.ip() == local(0).ip())
        .map(|(addr, s)| (addr.port(), s))
        .collect()
}

/// The last summary logged about the worker at `addr`, if any.
pub fn latest_summary_of(log: &str, addr: SocketAddr) -> Option<Summary> {
    summaries_by_addr(log)
        .into_iter()
        .rev()
        .find(|(a, _)| *a == addr)
        .map(|(_, s)| s)
}

/// The last summary logged about the worker on `port`.
pub fn last_summary(log: &str, port: u16) -> Summary {
    latest_summary_of(log, local(port))
        .unwrap_or_else(|| panic!("no summary of worker :{port} in the log:\n{log}"))
}
