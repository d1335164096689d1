//! Interoperability with a peer we did not write: Python's pika sends
//! protobuf (classes generated from `sales.proto` by grpcio-tools) and the
//! seed's JSON to `mq-worker`; the replies equal the query engine's.

mod common;

use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

#[test]
fn pika_peer_gets_the_engines_answers_in_both_encodings() {
    let py = python();
    let check = Command::new(&py)
        .args(["-c", "import pika, grpc_tools, google.protobuf"])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {py}: {e}; set PYTHON to a Python 3"));
    assert!(
        check.success(),
        "{py} lacks pika, grpcio-tools or protobuf: run scripts/test.sh, or \
         `pip install pika grpcio-tools protobuf` and set PYTHON"
    );

    let url = amqp_url();
    let queue = unique("pika");
    let _queues = Queues::new(&url, &queue);
    let _worker = start_worker(&url, &queue, "w-pika", 2, &[]);

    let mut reqs = requests(30, 3);
    reqs.push(proto::SalesRequest {
        start_date: "2022-01-10".into(),
        end_date: "2021-01-10".into(),
        ..Default::default()
    });
    let json: Vec<serde_json::Value> = reqs
        .iter()
        .map(|r| {
            serde_json::json!({
                "region": r.region, "category": r.category,
                "start_date": r.start_date, "end_date": r.end_date,
                "start_hour": r.start_hour, "end_hour": r.end_hour,
                "buyer_keyword": r.buyer_keyword, "product_keyword": r.product_keyword,
                "min_amount": r.min_amount, "max_amount": r.max_amount,
            })
        })
        .collect();

    let out_dir = TempDir::new("pika");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/pika_peer.py");
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto");
    let mut child = Command::new(&py)
        .arg(script)
        .args([url.as_str(), queue.as_str(), proto_dir])
        .arg(&out_dir.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the pika peer");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(serde_json::to_string(&json).expect("json").as_bytes())
        .expect("write requests");
    let output = child.wait_with_output().expect("pika peer output");
    assert!(output.status.success(), "pika peer failed");

    let mut engine = worker::QueryConn::open(database()).expect("open database");
    let mut seen = 0;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let reply: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert!(reply.get("missing").is_none(), "no reply: {reply}");
        let index = reply["index"].as_u64().expect("index") as usize;
        match expected(&mut engine, &reqs[index]) {
            Ok((count, revenue, average)) => {
                assert!(reply["status"].is_null(), "{reply}");
                assert_eq!(reply["total_sales_count"].as_i64(), Some(count), "{reply}");
                assert_eq!(reply["total_revenue"].as_i64(), Some(revenue), "{reply}");
                assert_eq!(reply["average_amount"].as_f64(), Some(average), "{reply}");
                assert_eq!(reply["region_processed"], "w-pika");
            }
            Err(code) => {
                assert_eq!(reply["status"].as_u64(), Some(u64::from(code)), "{reply}");
                assert!(reply["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("start_date")));
                if reply["encoding"] == "json" {
                    assert!(reply["json_error"].as_str().is_some(), "{reply}");
                }
            }
        }
        seen += 1;
    }
    assert_eq!(seen, reqs.len() * 2, "one reply per request and encoding");
}
