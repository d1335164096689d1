//! A broker restart is an outage, not a failure: `mq-worker` and the client
//! reconnect on their own, and a client sending through it sees errors only
//! while the broker is away. Runs its own private broker
//! (scripts/private-broker.sh), never the shared one.

mod common;

use common::*;
use mq::{Client, Encoding};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A private broker, removed (stopped, data deleted) when dropped.
struct Broker {
    dir: TempDir,
    url: String,
}

impl Broker {
    fn script(&self, action: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/private-broker.sh");
        let output = Command::new(script)
            .args([action, "--dir"])
            .arg(&self.dir.0)
            .output()
            .expect("run scripts/private-broker.sh");
        assert!(
            output.status.success(),
            "private-broker.sh {action} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn start() -> Broker {
        let mut broker = Broker {
            dir: TempDir::new("broker"),
            url: String::new(),
        };
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/private-broker.sh");
        let output = Command::new(script)
            .args(["start", "--dir"])
            .arg(&broker.dir.0)
            .output()
            .expect("run scripts/private-broker.sh");
        assert!(
            output.status.success(),
            "cannot start a private broker: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let url = stdout
            .lines()
            .find_map(|l| l.strip_prefix("URL="))
            .expect("URL= line");
        broker.url = url.trim_matches('\'').replace("\\%", "%");
        assert!(
            !broker.url.contains(":5672/"),
            "must not be the shared broker"
        );
        broker
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/private-broker.sh");
        let _ = Command::new(script)
            .args(["clean", "--dir"])
            .arg(&self.dir.0)
            .output();
    }
}

const RATE: u32 = 50;
const TIMEOUT: Duration = Duration::from_secs(2);

#[test]
fn worker_and_client_ride_out_a_broker_restart() {
    let broker = Broker::start();
    let queue = "restart_queue";
    let _worker = start_worker(&broker.url, queue, "w-restart", 2, &[]);
    let client = Client::connect(&broker.url, queue, 2, Encoding::Proto).expect("connect");

    // Steady traffic from another thread, each call stamped with its send time.
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let traffic = {
        let (client, stop) = (client.clone(), stop.clone());
        std::thread::spawn(move || {
            let req = proto::SalesRequest::default();
            let mut calls = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let due = t0 + Duration::from_secs(1) / RATE * i;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                calls.push((due - t0, smol::spawn(client.call(&req, TIMEOUT))));
                i += 1;
            }
            calls
                .into_iter()
                .map(|(at, task)| (at, smol::block_on(task)))
                .collect::<Vec<_>>()
        })
    };

    std::thread::sleep(Duration::from_secs(2));
    let stop_began = t0.elapsed();
    broker.script("stop");
    std::thread::sleep(Duration::from_secs(1));
    broker.script("start");
    let back = t0.elapsed();
    // Reconnect backoff is capped at 5 s; then some healthy traffic.
    std::thread::sleep(Duration::from_secs(8));
    stop.store(true, Ordering::Relaxed);
    let results = traffic.join().expect("traffic thread");

    let ok_before = results
        .iter()
        .filter(|(at, _)| *at + TIMEOUT < stop_began)
        .all(|(_, r)| r.is_ok());
    assert!(ok_before, "errors before the outage");
    let recovered = results
        .iter()
        .filter(|(at, _)| *at > back)
        .find(|(_, r)| r.is_ok())
        .map(|(at, _)| *at)
        .expect("never served again after the restart");
    assert!(
        recovered < back + Duration::from_secs(6),
        "took {:?} after the broker was back",
        recovered - back
    );
    let late_errors: Vec<_> = results
        .iter()
        .filter(|(at, r)| *at > recovered && r.is_err())
        .collect();
    assert!(
        late_errors.is_empty(),
        "errors after recovery: {late_errors:?}"
    );
    let errors = results.iter().filter(|(_, r)| r.is_err()).count();
    eprintln!(
        "{} calls; {errors} errors, all in the outage ({:.1} s .. {:.1} s); served again {:.1} s after the broker was back",
        results.len(),
        stop_began.as_secs_f64(),
        back.as_secs_f64(),
        (recovered - back).as_secs_f64()
    );
}
