//! Hostile and broken clients against the `worker` binary, over raw HTTP/2
//! (the `h2` client, so we control every header and byte) and raw TCP. Each
//! gets the right status, and the worker goes on serving everyone else.

mod grpc_support;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use grpc_support::Worker;
use http::{HeaderMap, StatusCode};
use prost::Message;
use proto::grpc::{frame, Channel};
use proto::{paths, Empty, SalesRequest, SalesResponse, SystemStats};

/// What came back for one raw call.
#[derive(Debug)]
struct Reply {
    http: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    trailers: Option<HeaderMap>,
}

impl Reply {
    /// grpc-status from the trailers, or from the headers (trailers-only).
    fn grpc_status(&self) -> Option<u32> {
        let h = self
            .trailers
            .as_ref()
            .filter(|t| t.contains_key("grpc-status"))
            .unwrap_or(&self.headers);
        h.get("grpc-status")?.to_str().ok()?.parse().ok()
    }

    fn grpc_message(&self) -> String {
        let h = self
            .trailers
            .as_ref()
            .filter(|t| t.contains_key("grpc-status"))
            .unwrap_or(&self.headers);
        h.get("grpc-message")
            .map(|v| proto::grpc::status::percent_decode(v.as_bytes()))
            .unwrap_or_default()
    }
}

struct Raw {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<Bytes>,
    /// Whether the last chunk ends the stream.
    end: bool,
}

impl Raw {
    fn grpc(path: &'static str, body: Vec<Bytes>) -> Raw {
        Raw {
            method: "POST",
            path,
            headers: vec![("content-type", "application/grpc"), ("te", "trailers")],
            body,
            end: true,
        }
    }
}

async fn raw_call(addr: SocketAddr, raw: Raw) -> Reply {
    let io = proto::grpc::io::connect(addr).await.unwrap();
    let (send, conn) = h2::client::handshake(io).await.unwrap();
    let driver = smol::spawn(async move {
        let _ = conn.await;
    });
    let mut send = send.ready().await.unwrap();
    let mut request = http::Request::builder()
        .method(raw.method)
        .uri(format!("http://{addr}{}", raw.path));
    for (k, v) in &raw.headers {
        request = request.header(*k, *v);
    }
    let no_body = raw.body.is_empty() && raw.end;
    let (response, mut stream) = send
        .send_request(request.body(()).unwrap(), no_body)
        .unwrap();
    let n = raw.body.len();
    for (i, chunk) in raw.body.into_iter().enumerate() {
        // The server may answer from the headers alone (wrong content type,
        // a deadline already past) and close the stream before the body is
        // all sent; its answer is what is checked below.
        if stream.send_data(chunk, raw.end && i + 1 == n).is_err() {
            break;
        }
    }
    let (parts, mut body) = response.await.unwrap().into_parts();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else { break };
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.ok().flatten();
    drop(stream);
    drop(driver);
    Reply {
        http: parts.status,
        headers: parts.headers,
        body: data,
        trailers,
    }
}

fn sales_frame(req: &SalesRequest) -> Bytes {
    frame::encode(&req.encode_to_vec())
}

/// The worker still answers a good call, and nothing is left in flight.
async fn still_serving(addr: SocketAddr) {
    let ch = Channel::connect(addr).await.unwrap();
    let rep: SalesResponse = ch
        .call(
            paths::GET_SALES_METRICS,
            &SalesRequest::default(),
            Some(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    assert_eq!(rep.total_sales_count, 10_000);
    let t0 = std::time::Instant::now();
    loop {
        let stats: SystemStats = ch
            .call(paths::GET_SYSTEM_STATS, &Empty {}, None)
            .await
            .unwrap();
        if stats.active_goroutines == 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "calls left in flight: {stats:?}"
        );
        smol::Timer::after(Duration::from_millis(20)).await;
    }
}

#[test]
fn each_bad_call_gets_the_right_status() {
    let worker = Worker::start(&["--threads", "2"]);
    let addr = worker.addr;
    let good = SalesRequest {
        region: "Europe".into(),
        ..Default::default()
    };
    smol::block_on(async {
        // A well-formed call first: headers, one message, trailers with 0.
        let r = raw_call(
            addr,
            Raw::grpc(paths::GET_SALES_METRICS, vec![sales_frame(&good)]),
        )
        .await;
        assert_eq!(
            (r.http, r.grpc_status()),
            (StatusCode::OK, Some(0)),
            "{r:?}"
        );
        assert_eq!(r.headers["content-type"], "application/grpc");
        assert!(SalesResponse::decode(&r.body[frame::HEADER_LEN..]).is_ok());

        // application/grpc+proto is the same protocol.
        let mut raw = Raw::grpc(paths::GET_SALES_METRICS, vec![sales_frame(&good)]);
        raw.headers[0].1 = "application/grpc+proto";
        assert_eq!(raw_call(addr, raw).await.grpc_status(), Some(0));

        // (name, request, expected grpc-status, words in grpc-message)
        let cases: Vec<(&str, Raw, u32, &str)> = vec![
            (
                "unknown method",
                Raw::grpc("/protocol.SimulationService/Nope", vec![frame::encode(b"")]),
                12,
                "Nope",
            ),
            (
                "truncated prefix",
                Raw::grpc(
                    paths::GET_SALES_METRICS,
                    vec![Bytes::from_static(b"\0\0\0")],
                ),
                13,
                "truncated",
            ),
            (
                "truncated message",
                Raw::grpc(
                    paths::GET_SALES_METRICS,
                    vec![Bytes::from_static(b"\0\0\0\0\x10abc")],
                ),
                13,
                "truncated",
            ),
            (
                "no message",
                Raw::grpc(paths::GET_SALES_METRICS, vec![]),
                13,
                "missing",
            ),
            (
                "two messages",
                Raw::grpc(
                    paths::GET_SALES_METRICS,
                    vec![sales_frame(&good), sales_frame(&good)],
                ),
                13,
                "more than one",
            ),
            (
                "bad flag",
                Raw::grpc(
                    paths::GET_SALES_METRICS,
                    vec![Bytes::from_static(b"\x05\0\0\0\0")],
                ),
                13,
                "flag",
            ),
            (
                "compressed flag",
                Raw::grpc(
                    paths::GET_SALES_METRICS,
                    vec![Bytes::from_static(b"\x01\0\0\0\x03abc")],
                ),
                12,
                "compress",
            ),
            (
                "not protobuf",
                Raw::grpc(
                    paths::GET_SALES_METRICS,
                    vec![frame::encode(b"\xff\xff\xff\xff")],
                ),
                13,
                "decode",
            ),
            (
                "invalid argument",
                Raw::grpc(
                    paths::GET_SALES_METRICS,
                    vec![sales_frame(&SalesRequest {
                        start_hour: Some(30),
                        ..Default::default()
                    })],
                ),
                3,
                "start_hour",
            ),
            (
                "oversized message, refused from its prefix",
                Raw {
                    end: false,
                    ..Raw::grpc(
                        paths::GET_SALES_METRICS,
                        vec![Bytes::from_static(b"\0\x00\x50\0\0")],
                    )
                },
                8,
                "limit",
            ),
            (
                "oversized message, sent whole",
                Raw::grpc(
                    paths::GET_SALES_METRICS,
                    vec![frame::encode(&vec![b'x'; (4 << 20) + 1])],
                ),
                8,
                "limit",
            ),
        ];
        for (name, raw, code, words) in cases {
            let r = raw_call(addr, raw).await;
            assert_eq!(r.http, StatusCode::OK, "{name}: {r:?}");
            assert_eq!(r.grpc_status(), Some(code), "{name}: {r:?}");
            assert!(
                r.grpc_message().contains(words),
                "{name}: {:?} lacks {words:?}",
                r.grpc_message()
            );
            // Early errors are trailers-only: no message, no separate trailers.
            if code != 0 {
                assert!(r.body.is_empty(), "{name}: {r:?}");
                assert!(
                    r.headers.contains_key("grpc-status"),
                    "{name}: not trailers-only"
                );
            }
        }

        // Header-level errors.
        let mut raw = Raw::grpc(paths::GET_SALES_METRICS, vec![sales_frame(&good)]);
        raw.headers.push(("grpc-encoding", "gzip"));
        let r = raw_call(addr, raw).await;
        assert_eq!(r.grpc_status(), Some(12), "{r:?}");
        assert!(r.grpc_message().contains("gzip"), "{r:?}");

        let mut raw = Raw::grpc(paths::GET_SALES_METRICS, vec![sales_frame(&good)]);
        raw.headers.push(("grpc-timeout", "soon"));
        let r = raw_call(addr, raw).await;
        assert_eq!(r.grpc_status(), Some(13), "{r:?}");
        assert!(r.grpc_message().contains("grpc-timeout"), "{r:?}");

        // A deadline that has passed by the time the server looks: the
        // server itself answers DEADLINE_EXCEEDED (we set no local timer).
        let mut raw = Raw::grpc(paths::GET_SALES_METRICS, vec![sales_frame(&good)]);
        raw.headers.push(("grpc-timeout", "1n"));
        assert_eq!(raw_call(addr, raw).await.grpc_status(), Some(4));
        let mut raw = Raw::grpc(paths::GET_SALES_METRICS, vec![sales_frame(&good)]);
        raw.headers.push(("grpc-timeout", "10S"));
        assert_eq!(raw_call(addr, raw).await.grpc_status(), Some(0));

        for ct in ["application/json", "application/grpc+json", "text/plain"] {
            let mut raw = Raw::grpc(paths::GET_SALES_METRICS, vec![sales_frame(&good)]);
            raw.headers[0].1 = ct;
            let r = raw_call(addr, raw).await;
            assert_eq!(r.http, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}: {r:?}");
        }
        let mut raw = Raw::grpc(paths::GET_SALES_METRICS, vec![sales_frame(&good)]);
        raw.headers.remove(0);
        assert_eq!(
            raw_call(addr, raw).await.http,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let raw = Raw {
            method: "GET",
            end: true,
            body: vec![],
            ..Raw::grpc(paths::HEALTH_CHECK, vec![])
        };
        assert_eq!(
            raw_call(addr, raw).await.http,
            StatusCode::METHOD_NOT_ALLOWED
        );

        still_serving(addr).await;
    });
}

#[test]
fn clients_that_vanish_do_not_hurt_others() {
    let worker = Worker::start(&["--threads", "1"]);
    let addr = worker.addr;
    smol::block_on(async {
        // Half a message, then the connection is dropped.
        let io = proto::grpc::io::connect(addr).await.unwrap();
        let (send, conn) = h2::client::handshake(io).await.unwrap();
        let driver = smol::spawn(async move {
            let _ = conn.await;
        });
        let mut send = send.ready().await.unwrap();
        let req = http::Request::post(format!("http://{addr}{}", paths::GET_SALES_METRICS))
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        let (_response, mut stream) = send.send_request(req, false).unwrap();
        stream
            .send_data(Bytes::from_static(b"\0\0\0\0\x20half"), false)
            .unwrap();
        smol::Timer::after(Duration::from_millis(50)).await;
        drop((stream, _response, send, driver));

        // Many full calls in flight, then the connection is cut.
        let ch = Channel::connect(addr).await.unwrap();
        let calls: Vec<_> = (0..50)
            .map(|_| {
                let ch = ch.clone();
                let req = SalesRequest {
                    buyer_keyword: "an".into(),
                    ..Default::default()
                };
                smol::spawn(async move {
                    let _ = ch
                        .call::<_, SalesResponse>(paths::GET_SALES_METRICS, &req, None)
                        .await;
                })
            })
            .collect();
        smol::Timer::after(Duration::from_millis(5)).await;
        drop(calls); // cancels the calls: each stream is reset
        drop(ch);

        // Not HTTP/2 at all, and a preface cut short.
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        drop(tcp);
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.write_all(b"PRI * HTTP/2.0\r\n").unwrap();
        drop(tcp);
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        let noise: Vec<u8> = (0..4096).map(|i| (i * 7 % 251) as u8).collect();
        let _ = tcp.write_all(&noise);
        drop(tcp);

        still_serving(addr).await;
    });
    assert!(
        !worker.log_text().contains("panicked"),
        "{}",
        worker.log_text()
    );
}
