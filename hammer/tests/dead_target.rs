//! A target nobody listens on: every request is an error, counted, and hammer ends on time.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn a_closed_port_is_errors_on_time() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let target = format!("127.0.0.1:{port}");
    let run = hammer(&[
        "grpc",
        "--target",
        &target,
        "--rate",
        "100",
        "--duration",
        "2s",
        "--timeout",
        "1s",
        "--db",
        test_db().to_str().unwrap(),
        "--seed",
        "2",
    ]);
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    let j = &run.json;
    let sent = u(j, "sent");
    assert!(sent.abs_diff(200) <= 2, "sent {sent}");
    assert_eq!(u(j, "ok"), 0);
    assert_eq!(u(j, "errors_total") + u(j, "timeouts"), sent, "{j:#}");
    assert_eq!(u(&j["errors"], "UNAVAILABLE"), sent, "{j:#}");
    assert!(
        j["error_messages"]["UNAVAILABLE"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{j:#}"
    );
    assert!(
        run.elapsed < Duration::from_secs(4),
        "took {:?} for a 2 s run",
        run.elapsed
    );
    assert!(run.stdout.contains("UNAVAILABLE 200"), "{}", run.stdout);
}

#[test]
fn bad_flags_and_missing_files_fail_clearly() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hammer"))
        .args(["grpc", "--rate", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("rate"));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hammer"))
        .args(["grpc", "--db", "/nonexistent/x.db", "--duration", "1s"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/x.db"), "{err}");
}
