//! Messages `mq-worker` cannot use are answered with an error where
//! possible, dead-lettered, and the worker goes on serving.

mod common;

use amiquip::{
    AmqpProperties, AmqpValue, Connection, ConsumerMessage, ConsumerOptions, Publish,
    QueueDeclareOptions,
};
use common::*;
use mq::codec::{ERROR_HEADER, JSON, PROTOBUF, STATUS_HEADER};
use mq::{Client, Encoding};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A reply as a raw peer sees it.
#[derive(Debug)]
struct RawReply {
    status: Option<i64>,
    error: Option<String>,
    body: Vec<u8>,
}

/// Publishes `(correlation id, content type, reply?, body)` messages raw, and
/// collects replies until `expect` came or two seconds passed.
fn exchange(
    url: &str,
    queue: &str,
    messages: &[(&str, Option<&str>, bool, Vec<u8>)],
    expect: usize,
) -> HashMap<String, RawReply> {
    let mut connection = Connection::insecure_open(url).expect("connect to the broker");
    let channel = connection.open_channel(None).expect("channel");
    let consumer = channel
        .basic_consume(
            mq::client::REPLY_TO,
            ConsumerOptions {
                no_ack: true,
                ..ConsumerOptions::default()
            },
        )
        .expect("consume reply-to");
    for (id, content_type, reply, body) in messages {
        let mut props = AmqpProperties::default().with_correlation_id(id.to_string());
        if let Some(ct) = content_type {
            props = props.with_content_type(ct.to_string());
        }
        if *reply {
            props = props.with_reply_to(mq::client::REPLY_TO.to_string());
        }
        channel
            .basic_publish("", Publish::with_properties(body, queue, props))
            .expect("publish");
    }
    let mut replies = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while replies.len() < expect {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(ConsumerMessage::Delivery(d)) = consumer.receiver().recv_timeout(left) else {
            break;
        };
        let headers = d.properties.headers().clone().unwrap_or_default();
        let status = match headers.get(STATUS_HEADER) {
            Some(AmqpValue::LongInt(n)) => Some(i64::from(*n)),
            Some(other) => panic!("x-status of unexpected type {other:?}"),
            None => None,
        };
        let error = match headers.get(ERROR_HEADER) {
            Some(AmqpValue::LongString(s)) => Some(s.clone()),
            _ => None,
        };
        let id = d.properties.correlation_id().clone().unwrap_or_default();
        replies.insert(
            id,
            RawReply {
                status,
                error,
                body: d.body,
            },
        );
    }
    drop(consumer);
    let _ = connection.close();
    replies
}

fn wait_dead_letters(url: &str, dead: &str, n: u32) {
    let start = Instant::now();
    loop {
        let (messages, _) = counts(url, dead);
        if messages >= n {
            assert_eq!(messages, n, "more dead letters than bad messages");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{dead} has {messages} messages, expected {n}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_messages_get_errors_and_are_dead_lettered() {
    let url = amqp_url();
    let queue = unique("bad");
    let queues = Queues::new(&url, &queue);
    let mut worker = start_worker(&url, &queue, "w-bad", 1, &[]);

    let invalid_hours = proto::SalesRequest {
        start_hour: Some(30),
        ..Default::default()
    };
    let messages = vec![
        (
            "garbage-proto",
            Some(PROTOBUF),
            true,
            b"\xff\xff\xffnot protobuf".to_vec(),
        ),
        ("garbage-json", Some(JSON), true, b"{\"region\": ".to_vec()),
        (
            "unknown-type",
            Some("text/plain"),
            true,
            b"region=Europe".to_vec(),
        ),
        ("no-reply-to", Some(JSON), false, b"{}".to_vec()),
        (
            "invalid-proto",
            Some(PROTOBUF),
            true,
            mq::codec::encode_request(&invalid_hours, Encoding::Proto),
        ),
        (
            "invalid-json",
            Some(JSON),
            true,
            br#"{"start_date":"2021-02-30","end_hour":null}"#.to_vec(),
        ),
        (
            "wrong-type-json",
            Some(JSON),
            true,
            br#"{"start_hour":"nine"}"#.to_vec(),
        ),
    ];
    let replies = exchange(&url, &queue, &messages, 6);

    for id in [
        "garbage-proto",
        "garbage-json",
        "unknown-type",
        "invalid-proto",
        "invalid-json",
        "wrong-type-json",
    ] {
        let reply = replies
            .get(id)
            .unwrap_or_else(|| panic!("no reply to {id}: {replies:?}"));
        assert_eq!(reply.status, Some(3), "{id}: {reply:?}");
        let error = reply.error.as_deref().unwrap_or("");
        assert!(!error.is_empty(), "{id}: no x-error");
    }
    assert!(!replies.contains_key("no-reply-to"));
    assert!(replies["unknown-type"]
        .error
        .as_deref()
        .unwrap()
        .contains("text/plain"));
    assert!(replies["invalid-proto"]
        .error
        .as_deref()
        .unwrap()
        .contains("start_hour"));
    assert!(replies["wrong-type-json"]
        .error
        .as_deref()
        .unwrap()
        .contains("start_hour"));
    // JSON errors also travel in the body, as the seed expects.
    let body: serde_json::Value =
        serde_json::from_slice(&replies["invalid-json"].body).expect("JSON error reply");
    assert!(
        body["error"].as_str().unwrap().contains("start_date"),
        "{body}"
    );

    wait_dead_letters(&url, &queues.dead(), 7);
    assert!(worker.child.try_wait().unwrap().is_none(), "mq-worker died");

    // And it goes on serving.
    let client = Client::connect(&url, &queue, 1, Encoding::Json).expect("connect");
    let rep = smol::block_on(client.call(&proto::SalesRequest::default(), Duration::from_secs(5)))
        .expect("a good request after bad ones");
    assert_eq!(rep.total_sales_count, 2000);
}

#[test]
fn a_queue_declared_without_dead_lettering_is_used_as_it_is() {
    let url = amqp_url();
    let queue = unique("seedq");
    let _queues = Queues::new(&url, &queue);
    // As the seed declares it: durable, no arguments.
    {
        let mut connection = Connection::insecure_open(&url).expect("connect");
        let channel = connection.open_channel(None).expect("channel");
        channel
            .queue_declare(
                queue.as_str(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
            )
            .expect("declare");
        let _ = connection.close();
    }
    let _worker = start_worker(&url, &queue, "w-seedq", 1, &[]);
    let client = Client::connect(&url, &queue, 1, Encoding::Proto).expect("connect");
    let rep = smol::block_on(client.call(&proto::SalesRequest::default(), Duration::from_secs(5)))
        .expect("served from the seed's queue");
    assert_eq!(rep.total_sales_count, 2000);
}

#[test]
fn missing_database_fails_at_start_with_an_actionable_message() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mq-worker"))
        .args(["--db", "/nonexistent/sales.db", "--amqp", &amqp_url()])
        .output()
        .expect("run mq-worker");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("seeder"), "{stderr}");
}
