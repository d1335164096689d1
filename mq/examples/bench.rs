//! Round trips per second over RabbitMQ, two ways, for scripts/bench-mq.sh.
//!
//! * `ceiling`: the transport alone. One client thread and one worker thread
//!   with amiquip, a window of outstanding requests, tiny bodies; the worker
//!   publishes the reply and acks, nothing else. No real service is faster
//!   through this broker and client library.
//! * `client`: the real path. `mq::Client` with a window of outstanding calls
//!   against running `mq-worker`s that run real queries.
//!
//! Both print one JSON line: `{"mode":…,"round_trips":…,"seconds":…,"rate":…,"errors":…}`.

use amiquip::{
    AmqpProperties, Connection, ConsumerMessage, ConsumerOptions, Publish, QueueDeclareOptions,
    QueueDeleteOptions,
};
use argh::FromArgs;
use std::time::{Duration, Instant};

/// Measure AMQP request/reply round trips per second.
#[derive(FromArgs)]
struct Args {
    #[argh(subcommand)]
    mode: Mode,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Mode {
    Ceiling(Ceiling),
    Client(ClientBench),
    DeleteQueue(DeleteQueue),
}

/// transport ceiling: raw publish → consume → reply → ack loop
#[derive(FromArgs)]
#[argh(subcommand, name = "ceiling")]
struct Ceiling {
    /// broker URL
    #[argh(option, default = "default_url()")]
    amqp: String,
    /// seconds to measure (after 1 s of warm-up)
    #[argh(option, default = "5")]
    seconds: u64,
    /// outstanding requests (default 64)
    #[argh(option, default = "64")]
    window: u16,
}

/// the MQ path: mq::Client against running mq-workers
#[derive(FromArgs)]
#[argh(subcommand, name = "client")]
struct ClientBench {
    /// broker URL
    #[argh(option, default = "default_url()")]
    amqp: String,
    /// queue the workers consume
    #[argh(option, default = "String::from(\"worker_queue\")")]
    queue: String,
    /// seconds to measure (after 1 s of warm-up)
    #[argh(option, default = "5")]
    seconds: u64,
    /// outstanding calls (default 64)
    #[argh(option, default = "64")]
    window: usize,
    /// client lanes (threads with a channel each; default 1)
    #[argh(option, default = "1")]
    channels: usize,
    /// proto or json (default proto)
    #[argh(option, default = "String::from(\"proto\")")]
    encoding: String,
}

/// delete a queue and its dead-letter queue
#[derive(FromArgs)]
#[argh(subcommand, name = "delete-queue")]
struct DeleteQueue {
    /// broker URL
    #[argh(option, default = "default_url()")]
    amqp: String,
    /// the queue
    #[argh(positional)]
    queue: String,
}

fn default_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Args = argh::from_env();
    let result = match args.mode {
        Mode::Ceiling(c) => ceiling(c),
        Mode::Client(c) => client(c),
        Mode::DeleteQueue(d) => delete_queue(d),
    };
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn open(url: &str) -> Result<Connection> {
    Ok(mq::connect::Target::parse(url)?.open()?)
}

fn report(mode: &str, round_trips: u64, elapsed: Duration, errors: u64) {
    let seconds = elapsed.as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "mode": mode,
            "round_trips": round_trips,
            "seconds": seconds,
            "rate": round_trips as f64 / seconds,
            "errors": errors,
        })
    );
}

fn ceiling(args: Ceiling) -> Result<()> {
    let queue = format!("bench-ceiling-{}", std::process::id());
    let window = args.window.max(1);

    // The worker: consume with a prefetch window, reply, ack.
    let mut wconn = open(&args.amqp)?;
    let wchannel = wconn.open_channel(None)?;
    wchannel.queue_declare(
        queue.as_str(),
        QueueDeclareOptions {
            auto_delete: true,
            ..QueueDeclareOptions::default()
        },
    )?;
    wchannel.qos(0, window, false)?;
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
    let wq = queue.clone();
    let worker = std::thread::spawn(move || -> amiquip::Result<()> {
        let consumer = wchannel.basic_consume(wq.as_str(), ConsumerOptions::default())?;
        loop {
            let message = crossbeam_channel::select! {
                recv(consumer.receiver()) -> m => m,
                recv(stop_rx) -> _ => break,
            };
            let Ok(ConsumerMessage::Delivery(d)) = message else {
                break;
            };
            let props = AmqpProperties::default()
                .with_correlation_id(d.properties.correlation_id().clone().unwrap_or_default());
            let reply_to = d.properties.reply_to().clone().unwrap_or_default();
            wchannel.basic_publish("", Publish::with_properties(b"ok", reply_to, props))?;
            d.ack(&wchannel)?;
        }
        drop(consumer);
        wchannel.close()
    });

    // The client: keep `window` requests outstanding.
    let mut cconn = open(&args.amqp)?;
    let cchannel = cconn.open_channel(None)?;
    let replies = cchannel.basic_consume(
        mq::client::REPLY_TO,
        ConsumerOptions {
            no_ack: true,
            ..ConsumerOptions::default()
        },
    )?;
    let mut next_id = 0u64;
    let publish = |id: u64| {
        let props = AmqpProperties::default()
            .with_reply_to(mq::client::REPLY_TO.to_string())
            .with_correlation_id(id.to_string())
            .with_content_type(mq::codec::PROTOBUF.to_string());
        cchannel.basic_publish("", Publish::with_properties(b"ping", queue.as_str(), props))
    };
    for _ in 0..window {
        publish(next_id)?;
        next_id += 1;
    }
    let warm_until = Instant::now() + Duration::from_secs(1);
    let mut measuring: Option<Instant> = None;
    let mut count = 0u64;
    let measure = Duration::from_secs(args.seconds);
    loop {
        match replies.receiver().recv_timeout(Duration::from_secs(5)) {
            Ok(ConsumerMessage::Delivery(_)) => {}
            other => return Err(format!("reply stream ended: {other:?}").into()),
        }
        match measuring {
            None if Instant::now() >= warm_until => measuring = Some(Instant::now()),
            Some(start) => {
                count += 1;
                if start.elapsed() >= measure {
                    report("ceiling", count, start.elapsed(), 0);
                    break;
                }
            }
            None => {}
        }
        publish(next_id)?;
        next_id += 1;
    }
    drop(replies);
    drop(stop_tx);
    let _ = worker.join();
    let _ = cconn.close();
    let _ = wconn.close();
    Ok(())
}

fn client(args: ClientBench) -> Result<()> {
    let encoding = match args.encoding.as_str() {
        "proto" => mq::Encoding::Proto,
        "json" => mq::Encoding::Json,
        other => return Err(format!("unknown encoding {other:?}").into()),
    };
    let client = mq::Client::connect(&args.amqp, &args.queue, args.channels, encoding)?;
    let mix = mix(256);
    let executor = smol::LocalExecutor::new();
    let warm_until = Instant::now() + Duration::from_secs(1);
    let end = warm_until + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.window.max(1))
        .map(|w| {
            let (client, mix) = (client.clone(), &mix);
            executor.spawn(async move {
                let (mut ok, mut errors) = (0u64, 0u64);
                let mut i = w;
                loop {
                    let result = client
                        .call(&mix[i % mix.len()], Duration::from_secs(10))
                        .await;
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    if now >= warm_until {
                        match result {
                            Ok(_) => ok += 1,
                            Err(_) => errors += 1,
                        }
                    }
                    i += 7;
                }
                (ok, errors)
            })
        })
        .collect();
    let (ok, errors) = smol::block_on(executor.run(async {
        let mut sum = (0, 0);
        for task in tasks {
            let (ok, errors) = task.await;
            sum.0 += ok;
            sum.1 += errors;
        }
        sum
    }));
    report("client", ok, end - warm_until, errors);
    Ok(())
}

/// A deterministic spread of real queries: regions, categories, date ranges,
/// hour windows.
fn mix(n: usize) -> Vec<proto::SalesRequest> {
    let mut rng = fastrand::Rng::with_seed(42);
    (0..n)
        .map(|_| {
            let year = 2020 + rng.u32(0..6);
            let start_hour = rng.i32(0..20);
            proto::SalesRequest {
                region: seeder::REGIONS[rng.usize(..seeder::REGIONS.len())].into(),
                category: seeder::CATEGORIES[rng.usize(..seeder::CATEGORIES.len())].into(),
                start_date: format!("{year}-01-01"),
                end_date: format!("{year}-12-31"),
                start_hour: Some(start_hour),
                end_hour: Some(start_hour + 4),
                ..Default::default()
            }
        })
        .collect()
}

fn delete_queue(args: DeleteQueue) -> Result<()> {
    let mut connection = open(&args.amqp)?;
    for queue in [
        args.queue.clone(),
        mq::topology::dead_letter_queue(&args.queue),
    ] {
        let channel = connection.open_channel(None)?;
        let _ = channel.queue_delete(queue, QueueDeleteOptions::default());
    }
    let _ = connection.close();
    Ok(())
}
