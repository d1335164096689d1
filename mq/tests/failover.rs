//! Nothing is lost when a worker dies: two `mq-worker`s under steady load,
//! one killed with SIGKILL mid-run; the broker redelivers what it held, every
//! request is answered once, correctly, and duplicates are absorbed.

mod common;

use common::*;
use mq::{Client, Encoding};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const RATE: u32 = 250; // requests per second
const SECONDS: u32 = 6;

#[test]
fn a_worker_killed_mid_run_loses_nothing() {
    let url = amqp_url();
    let queue = unique("failover");
    let _queues = Queues::new(&url, &queue);
    let doomed = start_worker(&url, &queue, "w-doomed", 2, &["--prefetch", "32"]);
    let _survivor = start_worker(&url, &queue, "w-survivor", 2, &["--prefetch", "32"]);
    let client = Client::connect(&url, &queue, 2, Encoding::Proto).expect("connect");

    let mix = requests(50, 4);
    let mut engine = worker::QueryConn::open(database()).expect("open database");
    let expected: Vec<_> = mix.iter().map(|r| expected(&mut engine, r)).collect();

    let total = RATE * SECONDS;
    let interval = Duration::from_secs(1) / RATE;
    let start = Instant::now();
    let mut killed_at = None;
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + interval * i;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if i == total / 2 {
            doomed.signal(9);
            killed_at = Some(i);
        }
        let k = i as usize % mix.len();
        tasks.push((
            k,
            smol::spawn(client.call(&mix[k], Duration::from_secs(20))),
        ));
    }
    let sent_in = start.elapsed();
    assert!(killed_at.is_some());

    let mut by_worker: HashMap<String, u32> = HashMap::new();
    let mut errors = Vec::new();
    for (k, task) in tasks {
        match smol::block_on(task) {
            Ok(rep) => {
                let want = expected[k].expect("the mix is valid");
                assert_eq!(
                    (rep.total_sales_count, rep.total_revenue, rep.average_amount),
                    want
                );
                *by_worker.entry(rep.region_processed).or_default() += 1;
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    eprintln!(
        "{total} requests in {:.1} s; answered by {by_worker:?}; duplicates absorbed: {}",
        sent_in.as_secs_f64(),
        client.unmatched_replies()
    );
    assert!(
        sent_in < Duration::from_secs(SECONDS as u64 + 2),
        "load too slow"
    );
    assert!(
        errors.is_empty(),
        "{} errors: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(by_worker.values().sum::<u32>(), total);
    assert!(
        by_worker.get("w-doomed").is_some_and(|&n| n > 0),
        "the doomed worker served"
    );
    assert!(by_worker.get("w-survivor").is_some_and(|&n| n > 0));
    // The survivor carried the second half alone.
    assert!(by_worker["w-survivor"] >= total / 2);
    assert_eq!(counts(&url, &queue).0, 0, "nothing left in the queue");
}

/// A worker that replied but died before its ack: the broker redelivers, a
/// second reply comes, and the client keeps the first and drops the second.
#[test]
fn a_duplicate_reply_after_redelivery_is_absorbed() {
    use amiquip::{AmqpProperties, Connection, ConsumerMessage, ConsumerOptions, Publish};

    let url = amqp_url();
    let queue = unique("dup");
    let _queues = Queues::new(&url, &queue);
    let client = Client::connect(&url, &queue, 1, Encoding::Json).expect("connect");
    let call = smol::spawn(client.call(&proto::SalesRequest::default(), Duration::from_secs(20)));

    // A worker that answers, then dies without acking.
    {
        let mut connection = Connection::insecure_open(&url).expect("connect");
        let channel = connection.open_channel(None).expect("channel");
        channel.qos(0, 1, false).expect("qos");
        let consumer = channel
            .basic_consume(queue.as_str(), ConsumerOptions::default())
            .expect("consume");
        let delivery = match consumer.receiver().recv_timeout(Duration::from_secs(10)) {
            Ok(ConsumerMessage::Delivery(d)) => d,
            other => panic!("no request: {other:?}"),
        };
        let reply = proto::SalesResponse {
            region_processed: "first".into(),
            ..Default::default()
        };
        let (body, _) = mq::codec::encode_reply(&Ok(reply), Encoding::Json);
        let props = AmqpProperties::default()
            .with_content_type(mq::codec::JSON.to_string())
            .with_correlation_id(delivery.properties.correlation_id().clone().expect("id"));
        let reply_to = delivery.properties.reply_to().clone().expect("reply_to");
        channel
            .basic_publish("", Publish::with_properties(&body, reply_to, props))
            .expect("reply");
        // Dropping the connection unacked: the broker requeues the request.
        drop(consumer);
        let _ = connection.close();
    }
    let rep = smol::block_on(call).expect("the first reply");
    assert_eq!(rep.region_processed, "first");

    // The real worker gets the redelivered request and answers it again.
    let _worker = start_worker(&url, &queue, "w-second", 1, &[]);
    let start = Instant::now();
    while client.unmatched_replies() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the redelivered request was never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(client.unmatched_replies(), 1);
}
