//! Shared by the gRPC integration tests: a seeded database, a `worker`
//! process on a free port that is killed when the test ends, and a few
//! request generators.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use proto::SalesRequest;

/// A 10k-sales database, written once per test binary (same seed, same
/// bytes, and the seeder renames into place, so concurrent writers agree).
pub fn test_db() -> &'static Path {
    static DB: OnceLock<PathBuf> = OnceLock::new();
    DB.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("grpc-tests-10k-seed7.db");
        if !path.exists() {
            seeder::write_database(
                &path,
                &seeder::Config {
                    sales: 10_000,
                    seed: 7,
                },
            )
            .expect("cannot write the test database");
        }
        path
    })
}

/// A binary of this workspace, next to the test executable.
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

/// A running `worker`; killed on drop.
pub struct Worker {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    /// Starts `worker --listen 127.0.0.1:0 --db <test db>` plus `extra`
    /// arguments and waits until it logs its address.
    pub fn start(extra: &[&str]) -> Worker {
        Worker::start_with_db(test_db(), extra)
    }

    pub fn start_with_db(db: &Path, extra: &[&str]) -> Worker {
        let mut child = Command::new(bin("worker"))
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start worker");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            // Keep draining so the worker never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(addr) = line.split("listening on ").nth(1) {
                        let addr = addr.split(',').next().unwrap_or_default().trim().to_owned();
                        let _ = tx.send(addr);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let mut worker = Worker {
            child,
            addr: ([127, 0, 0, 1], 0).into(),
            log,
        };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => worker.addr = addr.parse().expect("listening address"),
            Err(_) => panic!("worker did not start; its log:\n{}", worker.log_text()),
        }
        worker
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                t0.elapsed() < limit,
                "worker did not exit within {limit:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A random request over the seeder's dimensions: valid, usually selective.
pub fn random_request(rng: &mut fastrand::Rng) -> SalesRequest {
    let pick = |rng: &mut fastrand::Rng, list: &[&str]| -> String {
        if rng.bool() {
            list[rng.usize(..list.len())].to_owned()
        } else {
            String::new()
        }
    };
    let year = rng.i32(2020..=2025);
    let (start_hour, end_hour) = if rng.bool() {
        let a = rng.i32(0..=23);
        (Some(a), Some(rng.i32(a..=24)))
    } else {
        (None, None)
    };
    SalesRequest {
        region: pick(rng, &seeder::REGIONS),
        category: pick(rng, &seeder::CATEGORIES),
        start_date: if rng.bool() {
            format!("{year}-01-01")
        } else {
            String::new()
        },
        end_date: if rng.bool() {
            format!("{year}-12-31")
        } else {
            String::new()
        },
        min_amount: if rng.bool() { rng.i64(0..50) } else { 0 },
        max_amount: if rng.bool() { rng.i64(50..99) } else { 0 },
        product_keyword: pick(rng, &["pro", "Smart", "eco", ""]),
        buyer_keyword: pick(rng, &["an", "Li", "smith", ""]),
        start_hour,
        end_hour,
    }
}

/// The Python interpreter of the interop tests: $PYTHON, else `python3`;
/// fails loudly when grpcio or grpcio-tools is missing.
pub fn python() -> String {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let ok = Command::new(&python)
        .args(["-c", "import grpc, grpc_tools, google.protobuf"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{python} lacks grpcio/grpcio-tools/protobuf: run scripts/test.sh, or \
         `python3 -m venv VENV && VENV/bin/pip install grpcio grpcio-tools protobuf` \
         and set PYTHON=VENV/bin/python"
    );
    python
}

/// A directory under the target's tmp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Generates the Python stubs of sales.proto and health.proto into a new
/// directory, with grpc_tools.protoc (no system protoc).
pub fn python_stubs(python: &str) -> TempDir {
    let dir = TempDir::new("py-stubs");
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let out = Command::new(python)
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("-I{}", proto.display()))
        .arg(format!("-I{}", proto.join("grpc/health/v1").display()))
        .arg(format!("--python_out={}", dir.0.display()))
        .arg(format!("--grpc_python_out={}", dir.0.display()))
        .args(["sales.proto", "health.proto"])
        .output()
        .expect("run grpc_tools.protoc");
    assert!(
        out.status.success(),
        "grpc_tools.protoc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// A command running one of worker/tests/py/*.py with the stubs importable.
pub fn python_script(python: &str, stubs: &Path, script: &str) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/py")
            .join(script),
    )
    .env("PYTHONPATH", stubs)
    .env("PYTHONUNBUFFERED", "1");
    cmd
}

/// `grpcio_worker.py` on a free port; killed on drop.
pub struct PyWorker {
    pub child: Child,
    pub addr: SocketAddr,
}

impl PyWorker {
    pub fn start(python: &str, stubs: &Path, id: &str) -> PyWorker {
        let mut child = python_script(python, stubs, "grpcio_worker.py")
            .args(["--port", "0", "--id", id])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start grpcio_worker.py");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr.parse().expect("grpcio worker address"),
            Err(_) => {
                let _ = child.kill();
                panic!("grpcio_worker.py did not start");
            }
        };
        PyWorker { child, addr }
    }
}

impl Drop for PyWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
