//! smol's TCP sockets, seen through tokio's I/O traits.
//!
//! `h2` is written against `tokio::io::{AsyncRead, AsyncWrite}` but needs no
//! tokio runtime: it never spawns and never sleeps. `tokio-util`'s `compat`
//! bridges smol's `futures-io` traits to tokio's, so h2 runs on smol's reactor.

use std::io;
use std::net::SocketAddr;

use smol::net::TcpStream;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

/// A TCP connection h2 can drive.
pub type Io = Compat<TcpStream>;

/// Prepares an accepted or connected socket for HTTP/2.
///
/// Nagle's algorithm would hold a small reply back until the previous one is
/// acknowledged; every gRPC call is a few small frames, so it is turned off.
pub fn adapt(stream: TcpStream) -> io::Result<Io> {
    stream.set_nodelay(true)?;
    Ok(stream.compat())
}

/// Connects to `addr` and prepares the socket for HTTP/2.
pub async fn connect(addr: SocketAddr) -> io::Result<Io> {
    adapt(TcpStream::connect(addr).await?)
}
