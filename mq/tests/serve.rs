//! `mq-worker` answers through the broker exactly what the query engine
//! answers on the same database, in both encodings, and shuts down cleanly.

mod common;

use common::*;
use mq::{CallError, Client, Encoding};
use std::time::Duration;

fn same_as_engine(encoding: Encoding) {
    let url = amqp_url();
    let queue = unique("serve");
    let _queues = Queues::new(&url, &queue);
    let _worker = start_worker(&url, &queue, "w-serve", 2, &[]);
    let client = Client::connect(&url, &queue, 2, encoding)
        .unwrap_or_else(|e| panic!("cannot connect to the broker at {url}: {e}"));
    let mut engine = worker::QueryConn::open(database()).expect("open database");

    let mut reqs = requests(60, 1);
    // And some the engine refuses.
    reqs.push(proto::SalesRequest {
        start_date: "2021-13-45".into(),
        ..Default::default()
    });
    reqs.push(proto::SalesRequest {
        start_hour: Some(30),
        ..Default::default()
    });

    let calls: Vec<_> = reqs
        .iter()
        .map(|r| client.call(r, Duration::from_secs(10)))
        .collect();
    let mut nonzero = 0;
    for (req, call) in reqs.iter().zip(calls) {
        let got = smol::block_on(call);
        match (expected(&mut engine, req), got) {
            (Ok((count, revenue, average)), Ok(rep)) => {
                assert_eq!(
                    (rep.total_sales_count, rep.total_revenue, rep.average_amount),
                    (count, revenue, average),
                    "{req:?}"
                );
                assert_eq!(rep.region_processed, "w-serve");
                nonzero += usize::from(count > 0);
            }
            (Err(code), Err(CallError::Status { code: got, message })) => {
                assert_eq!(got, code, "{req:?}: {message}");
                assert!(!message.is_empty());
            }
            (want, got) => panic!("{req:?}: engine says {want:?}, broker path {got:?}"),
        }
    }
    assert!(nonzero > 10, "the mix should select sales ({nonzero})");
    assert_eq!(client.unmatched_replies(), 0);
}

#[test]
fn protobuf_results_equal_the_engine() {
    same_as_engine(Encoding::Proto);
}

#[test]
fn json_results_equal_the_engine() {
    same_as_engine(Encoding::Json);
}

#[test]
fn sigterm_finishes_in_flight_requests_and_exits_zero() {
    let url = amqp_url();
    let queue = unique("sigterm");
    let _queues = Queues::new(&url, &queue);
    let mut worker = start_worker(&url, &queue, "w-term", 2, &[]);
    let client = Client::connect(&url, &queue, 1, Encoding::Proto).expect("connect");
    let reqs = requests(200, 2);
    let calls: Vec<_> = reqs
        .iter()
        .map(|r| client.call(r, Duration::from_secs(10)))
        .collect();
    worker.signal(15);
    let status = worker.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "mq-worker exited with {status}");
    // Whatever it did not take is still queued; a second worker answers it.
    let _second = start_worker(&url, &queue, "w-term-2", 1, &[]);
    for call in calls {
        smol::block_on(call).expect("every request is answered");
    }
    assert_eq!(
        client.unmatched_replies(),
        0,
        "no request was answered twice"
    );
}

#[test]
fn a_call_times_out_when_nobody_serves_and_the_broker_drops_it() {
    let url = amqp_url();
    let queue = unique("expire");
    let _queues = Queues::new(&url, &queue);
    let client = Client::connect(&url, &queue, 1, Encoding::Proto).expect("connect");
    let req = proto::SalesRequest::default();
    let started = std::time::Instant::now();
    let got = smol::block_on(client.call(&req, Duration::from_millis(200)));
    assert!(matches!(got, Err(CallError::Timeout)), "{got:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The expiration travelled with the message: the broker drops it.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(counts(&url, &queue).0, 0, "expired request still queued");
}

#[test]
fn many_channels_share_a_few_connections() {
    let url = amqp_url();
    let queue = unique("lanes");
    let _queues = Queues::new(&url, &queue);
    let _worker = start_worker(&url, &queue, "w-lanes", 2, &[]);
    // 9 lanes over 4 connections.
    let client = Client::connect(&url, &queue, 9, Encoding::Proto).expect("connect");
    assert_eq!(client.connected_lanes(), 9);
    let reqs = requests(300, 5);
    let calls: Vec<_> = reqs
        .iter()
        .map(|r| smol::spawn(client.call(r, Duration::from_secs(10))))
        .collect();
    for call in calls {
        smol::block_on(call).expect("answered");
    }
}

#[test]
fn connect_fails_clearly_when_no_broker_listens() {
    let err = Client::connect(
        "amqp://guest:guest@127.0.0.1:1/%2f",
        "q",
        2,
        Encoding::Proto,
    )
    .err()
    .expect("no broker on port 1");
    match err {
        CallError::Transport(message) => assert!(message.contains("cannot connect"), "{message}"),
        other => panic!("{other:?}"),
    }
}
