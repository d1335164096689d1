//! Our Channel against our server, over real sockets on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proto::grpc::{serve, Channel, Code, Handler, Request, ServerConfig, Status};
use smol::Timer;

/// `/t/Echo` echoes, `/t/Sleep` sleeps as many ms as the message says and
/// counts how many of its futures were dropped before finishing,
/// `/t/Fail` fails with the message as text.
struct TestService {
    abandoned: Arc<AtomicUsize>,
}

struct DropCounter(Arc<AtomicUsize>, bool);
impl Drop for DropCounter {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Handler for TestService {
    fn call(&self, req: Request) -> proto::grpc::server::Reply {
        let abandoned = self.abandoned.clone();
        Box::pin(async move {
            match req.path.as_str() {
                "/t/Echo" => Ok(req.message),
                "/t/Sleep" => {
                    let ms: u64 = std::str::from_utf8(&req.message).unwrap().parse().unwrap();
                    let mut guard = DropCounter(abandoned, false);
                    Timer::after(Duration::from_millis(ms)).await;
                    guard.1 = true;
                    Ok(req.message)
                }
                "/t/Fail" => Err(Status::new(
                    Code::InvalidArgument,
                    String::from_utf8_lossy(&req.message).into_owned(),
                )),
                other => Err(Status::unimplemented_method(other)),
            }
        })
    }
}

struct Server {
    addr: SocketAddr,
    abandoned: Arc<AtomicUsize>,
    stop: Option<async_channel::Sender<()>>,
    done: smol::Task<std::io::Result<()>>,
}

fn start(config: ServerConfig) -> Server {
    let listener = smol::block_on(smol::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let abandoned = Arc::new(AtomicUsize::new(0));
    let handler = Arc::new(TestService {
        abandoned: abandoned.clone(),
    });
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let done = smol::spawn(serve(listener, handler, config, async move {
        let _ = stopped.recv().await;
    }));
    Server {
        addr,
        abandoned,
        stop: Some(stop),
        done,
    }
}

#[test]
fn echo_many_concurrent_calls_on_one_channel() {
    let server = start(ServerConfig::default());
    smol::block_on(async {
        let ch = Channel::connect(server.addr).await.unwrap();
        let calls: Vec<_> = (0..200)
            .map(|i| {
                let ch = ch.clone();
                smol::spawn(async move {
                    let msg = Bytes::from(format!("message {i}"));
                    assert_eq!(ch.unary("/t/Echo", msg.clone(), None).await.unwrap(), msg);
                })
            })
            .collect();
        for c in calls {
            c.await;
        }
        // Large messages cross many DATA frames and flow-control windows.
        let big = Bytes::from(vec![7u8; 3 * 1024 * 1024]);
        assert_eq!(ch.unary("/t/Echo", big.clone(), None).await.unwrap(), big);
        assert_eq!(
            ch.unary("/t/Echo", Bytes::new(), None).await.unwrap(),
            Bytes::new()
        );
        assert!(!ch.is_closed());
    });
}

#[test]
fn errors_come_back_as_statuses() {
    let server = start(ServerConfig::default());
    smol::block_on(async {
        let ch = Channel::connect(server.addr).await.unwrap();
        let err = ch.unary("/t/Nope", Bytes::new(), None).await.unwrap_err();
        assert_eq!(err.code, Code::Unimplemented);
        assert!(err.message.contains("/t/Nope"), "{err}");

        let text = "start_date: «2024-13-01» is not a date, 100% sure\nsecond line";
        let err = ch
            .unary("/t/Fail", Bytes::from(text), None)
            .await
            .unwrap_err();
        assert_eq!(err, Status::new(Code::InvalidArgument, text));

        let big = Bytes::from(vec![0u8; 4 * 1024 * 1024 + 1]);
        let err = ch.unary("/t/Echo", big, None).await.unwrap_err();
        assert_eq!(err.code, Code::ResourceExhausted, "{err}");

        // The connection is still good after all that.
        assert_eq!(
            ch.unary("/t/Echo", Bytes::from("ok"), None).await.unwrap(),
            "ok"
        );
    });
}

#[test]
fn message_size_limit_is_configurable() {
    let server = start(ServerConfig {
        max_message_size: 10,
        ..ServerConfig::default()
    });
    smol::block_on(async {
        let ch = Channel::connect(server.addr).await.unwrap();
        assert!(ch
            .unary("/t/Echo", Bytes::from(vec![1; 10]), None)
            .await
            .is_ok());
        let err = ch
            .unary("/t/Echo", Bytes::from(vec![1; 11]), None)
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::ResourceExhausted);
    });
}

#[test]
fn local_timeout_is_deadline_exceeded_and_cancels_the_handler() {
    let server = start(ServerConfig::default());
    smol::block_on(async {
        let ch = Channel::connect(server.addr).await.unwrap();
        let t0 = Instant::now();
        let err = ch
            .unary(
                "/t/Sleep",
                Bytes::from("3000"),
                Some(Duration::from_millis(100)),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::DeadlineExceeded);
        assert!(t0.elapsed() < Duration::from_secs(1));
        // The server drops the handler future (deadline or reset, whichever first).
        let t0 = Instant::now();
        while server.abandoned.load(Ordering::SeqCst) == 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(2),
                "handler was not dropped"
            );
            Timer::after(Duration::from_millis(10)).await;
        }
        // A generous timeout does not fire.
        let ok = ch
            .unary("/t/Sleep", Bytes::from("10"), Some(Duration::from_secs(5)))
            .await;
        assert_eq!(ok.unwrap(), "10");
    });
}

#[test]
fn graceful_shutdown_finishes_calls_in_flight() {
    let mut server = start(ServerConfig::default());
    smol::block_on(async {
        let ch = Channel::connect(server.addr).await.unwrap();
        let slow = {
            let ch = ch.clone();
            smol::spawn(async move { ch.unary("/t/Sleep", Bytes::from("400"), None).await })
        };
        Timer::after(Duration::from_millis(100)).await;
        drop(server.stop.take());
        assert_eq!(slow.await.unwrap(), "400");
        (&mut server.done).await.unwrap();
        // The listener is gone and the connection closed.
        assert!(smol::net::TcpStream::connect(server.addr).await.is_err());
        let err = ch
            .unary("/t/Echo", Bytes::from("x"), None)
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::Unavailable, "{err}");
        let t0 = Instant::now();
        while !ch.is_closed() {
            assert!(t0.elapsed() < Duration::from_secs(2));
            Timer::after(Duration::from_millis(10)).await;
        }
    });
}

#[test]
fn connecting_to_nothing_fails() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    assert!(smol::block_on(Channel::connect(addr)).is_err());
}

#[test]
fn server_enforces_grpc_timeout_on_its_own() {
    // A raw HTTP/2 client that sends grpc-timeout but keeps no timer: the
    // answer and the handler's cancellation come from the server alone.
    let server = start(ServerConfig::default());
    smol::block_on(async {
        let io = proto::grpc::io::connect(server.addr).await.unwrap();
        let (send, conn) = h2::client::handshake(io).await.unwrap();
        let _driver = smol::spawn(async move {
            let _ = conn.await;
        });
        let mut send = send.ready().await.unwrap();
        let request = http::Request::post(format!("http://{}/t/Sleep", server.addr))
            .header("content-type", "application/grpc")
            .header("grpc-timeout", "150m")
            .body(())
            .unwrap();
        let t0 = Instant::now();
        let (response, mut body) = send.send_request(request, false).unwrap();
        body.send_data(proto::grpc::frame::encode(b"3000"), true)
            .unwrap();
        let response = response.await.unwrap();
        let elapsed = t0.elapsed();
        let status = Status::from_headers(response.headers()).expect("trailers-only status");
        assert_eq!(status.code, Code::DeadlineExceeded, "{status}");
        assert!(
            elapsed >= Duration::from_millis(140) && elapsed < Duration::from_secs(2),
            "{elapsed:?}"
        );
        assert_eq!(
            server.abandoned.load(Ordering::SeqCst),
            1,
            "handler future not dropped"
        );
    });
}
