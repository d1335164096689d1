//! Worker names, end to end: the LB is given one name, every address the name
//! resolves to is a worker, and the name is resolved again while the LB runs,
//! as when a compose service scaled to N replicas gains and loses some.
//!
//! The name resolves through a hosts file of the test's own. The LB runs in a
//! mount namespace of its own (`unshare`), where that file is bind-mounted
//! over /etc/hosts: nothing outside the LB's namespace sees it. The workers
//! listen on one port of three loopback addresses, as replicas would on three
//! container addresses. Last, the name stops resolving, as during a DNS
//! outage, and the LB must keep its last addresses rather than empty its pool,
//! until the name resolves again.

mod common;

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use proto::SalesRequest;

const NAME: &str = "workers.lb-test";
const CALLS: u32 = 200;

#[test]
fn every_address_of_the_name_is_a_worker_resolved_again_and_kept_when_lookups_fail() {
    let unshare = unshare_args();
    let dir = TempDir::new("resolution");
    let db = seed_db(&dir);
    let port = free_port();
    let at = |n: u8| SocketAddr::from(([127, 0, 0, n], port));
    let (a, b, c) = (at(2), at(3), at(4));
    let mut worker_a = start_worker_on(&db, a, "w-a");
    let _worker_b = start_worker_on(&db, b, "w-b");
    let _worker_c = start_worker_on(&db, c, "w-c");

    let hosts = dir.path().join("hosts");
    write_hosts(&hosts, &[a, b]);
    let log = dir.path().join("lb.log");
    let (_lb, lb_port) = start_lb_on_name(&unshare, &hosts, &format!("{NAME}:{port}"), &log);

    // Both addresses of the name are workers, and share the calls.
    wait_for_line(&log, &format!("worker {a} up"), Duration::from_secs(5));
    wait_for_line(&log, &format!("worker {b} up"), Duration::from_secs(5));
    let lb = smol::block_on(connect(lb_port));
    assert_no_call_failed(&load(&lb), " while the name was a and b");
    let [on_a, on_b] = calls_logged(&log, [a, b], u64::from(CALLS));
    for (addr, n) in [(a, on_a), (b, on_b)] {
        assert!(
            n >= u64::from(CALLS / 10),
            "{n} of {CALLS} calls went to {addr}; the log:\n{}",
            read(&log)
        );
    }
    let text = read(&log);
    assert!(
        latest_summary_of(&text, c).is_none(),
        "{c} is not in the name yet but has a summary; the log:\n{text}"
    );

    // The name moves from a to c: c joins, a leaves, and a's worker goes away.
    write_hosts(&hosts, &[b, c]);
    wait_for_line(&log, &format!("worker {c} up"), Duration::from_secs(5));
    let removed = format!("worker {a} removed");
    wait_for_line(&log, &removed, Duration::from_secs(5));
    // Let a health check that may have been under way when a was removed end.
    std::thread::sleep(Duration::from_millis(300));
    worker_a.kill();
    assert_no_call_failed(&load(&lb), " after the name moved from a to c");
    let total = on_b + u64::from(CALLS);
    let counted = calls_logged(&log, [b, c], total);
    let on_c = counted[1];
    assert!(
        on_c >= u64::from(CALLS / 10),
        "{on_c} of {CALLS} calls went to {c}; the log:\n{}",
        read(&log)
    );
    let text = read(&log);
    let after_removal = &text[text.find(&removed).expect("seen above")..];
    assert!(
        !after_removal.contains(&format!("worker {a} down"))
            && latest_summary_of(after_removal, a).is_none(),
        "{a} was still called, checked or summed up after its removal; the log:\n{text}"
    );

    // The name stops resolving: the LB keeps b and c, its last answer, and
    // goes on serving through them.
    write_hosts(&hosts, &[]);
    let failed = format!("{NAME}:{port}: cannot resolve");
    wait_for_line(&log, &failed, Duration::from_secs(5));
    assert_no_call_failed(&load(&lb), " after the name stopped resolving");
    let after = calls_logged(&log, [b, c], total + u64::from(CALLS));
    for ((addr, was), now) in [b, c].into_iter().zip(counted).zip(after) {
        assert!(
            now - was >= u64::from(CALLS / 10),
            "{} of {CALLS} calls went to {addr} once the name stopped resolving; the log:\n{}",
            now - was,
            read(&log)
        );
    }
    // The name resolves again: the LB logs that, having warned of the failure
    // once rather than at every lookup.
    write_hosts(&hosts, &[b, c]);
    wait_for_line(
        &log,
        &format!("{NAME}:{port}: resolves again"),
        Duration::from_secs(5),
    );
    let text = read(&log);
    let unresolved = &text[text.find(&failed).expect("seen above")..];
    for addr in [b, c] {
        assert!(
            !unresolved.contains(&format!("worker {addr} removed")),
            "{addr} was removed when the name stopped resolving; the log:\n{text}"
        );
    }
    assert_eq!(
        text.matches(&failed).count(),
        1,
        "lookups failed every 200 ms for over a second; the failure must be warned about once; the log:\n{text}"
    );
}

/// The `unshare` arguments that give a process a mount namespace of its own
/// here: as root `--mount` is enough, otherwise a user namespace maps us to
/// root in it. Fails with what to do when neither works.
fn unshare_args() -> Vec<&'static str> {
    let candidates = [
        vec!["--mount"],
        vec!["--user", "--map-root-user", "--mount"],
    ];
    for args in candidates {
        let works = Command::new("unshare")
            .args(&args)
            .args(["--", "true"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if works {
            return args;
        }
    }
    panic!(
        "this test runs the LB in a mount namespace of its own to give it a hosts \
         file, and `unshare --mount true` fails here as root and as a user namespace \
         (util-linux's unshare, and unprivileged user namespaces or root, are needed)"
    );
}

/// Makes `hosts` say that [`NAME`] is `addrs`. The file is rewritten in
/// place, so the bind mount over /etc/hosts shows each new version. It is
/// padded to a fixed length and written with one `pwrite` at offset 0, never
/// truncated: a lookup racing the rewrite must not find the file empty (as
/// between `std::fs::write`'s truncation and its write), which would be a
/// lookup failure the test did not mean.
fn write_hosts(hosts: &Path, addrs: &[SocketAddr]) {
    const LEN: usize = 256;
    let mut text = String::from("127.0.0.1 localhost\n");
    for addr in addrs {
        text += &format!("{} {NAME}\n", addr.ip());
    }
    assert!(text.len() < LEN - 2, "the hosts file outgrew its padding");
    text += "#";
    text += &" ".repeat(LEN - 1 - text.len());
    text += "\n";
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(hosts)
        .expect("open the hosts file");
    file.write_all_at(text.as_bytes(), 0)
        .expect("write the hosts file");
}

/// Run as `sh -c MOUNT_AND_EXEC HOSTS NSSWITCH PROGRAM ARGS...` in the LB's
/// mount namespace: HOSTS over /etc/hosts, NSSWITCH (if the C library has an
/// /etc/nsswitch.conf) over it, then PROGRAM.
const MOUNT_AND_EXEC: &str = r#"mount --bind "$0" /etc/hosts \
    && { [ ! -e /etc/nsswitch.conf ] || mount --bind "$1" /etc/nsswitch.conf; } \
    && shift && exec "$@""#;

/// Starts the LB on `target` with `hosts` as its /etc/hosts, and names looked
/// up in that file only (a name it lacks fails at once, with no DNS server
/// asked), resolving, checking and summing up every 200 ms, logging at info
/// into `log`.
fn start_lb_on_name(unshare: &[&str], hosts: &Path, target: &str, log: &Path) -> (Proc, u16) {
    let port = free_port();
    let nsswitch = hosts.with_file_name("nsswitch.conf");
    std::fs::write(&nsswitch, "hosts: files\n").expect("write nsswitch.conf");
    let file = std::fs::File::create(log).expect("create the LB's log file");
    let mut lb = Proc::spawn(
        "lb",
        Command::new("unshare")
            .args(unshare)
            .args(["--", "sh", "-c", MOUNT_AND_EXEC])
            .arg(hosts)
            .arg(&nsswitch)
            .arg(bin("lb"))
            .arg("--listen")
            .arg(local(port).to_string())
            .args(["--workers", target])
            .args(["--resolve-interval", "200ms", "--health-interval", "200ms"])
            .args(["--stats-interval", "200ms"])
            .env("RUST_LOG", "info")
            .stderr(file),
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(local(port)).is_err() {
        if let Ok(Some(status)) = lb.child.try_wait() {
            panic!(
                "the LB exited ({status}) before listening; its log:\n{}",
                read(log)
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the LB does not listen"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    (lb, port)
}

/// [`CALLS`] calls through the LB in one second.
fn load(lb: &proto::grpc::Channel) -> Vec<Outcome> {
    let req = SalesRequest {
        region: "Asia".into(),
        ..Default::default()
    };
    smol::block_on(paced_load(lb, CALLS, Duration::from_secs(1), &req))
}

/// Waits until the LB's latest summaries of `addrs` add up to `total` calls
/// and returns each one's count.
fn calls_logged<const N: usize>(log: &Path, addrs: [SocketAddr; N], total: u64) -> [u64; N] {
    let start = Instant::now();
    loop {
        let text = read(log);
        let counts = addrs.map(|addr| latest_summary_of(&text, addr).map_or(0, |s| s.calls));
        if counts.iter().sum::<u64>() == total {
            return counts;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the summaries of {addrs:?} count {counts:?} calls, not {total} in all; the log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}
