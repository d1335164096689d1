//! smol's TCP sockets, seen through tokio's I/O traits.
//!
//! `h2` is written against `tokio::io::{AsyncRead, AsyncWrite}` but needs no
//! tokio runtime: it never spawns and never sleeps. [`Io`] implements those
//! traits on smol's reactor (`async-io`), so h2 runs on smol.
//!
//! Why not `tokio-util`'s `compat` over smol's stream: that one tries the
//! socket on every poll. h2 polls its connection whenever any of its streams
//! is touched, so a forwarded call met the empty socket several times, each a
//! `recvfrom` returning EAGAIN. [`Io`] remembers that the socket ran dry and
//! reads again only once the reactor has seen it become readable, and takes
//! a short read as the sign that the socket ran dry.

use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use smol::Async;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A TCP connection h2 can drive.
#[derive(Debug)]
pub struct Io {
    socket: Arc<Async<TcpStream>>,
    /// The last read found the socket empty; wait for readiness first.
    read_dry: bool,
    /// The last write found the socket full; wait for readiness first.
    write_full: bool,
}

/// Prepares an accepted or connected socket for HTTP/2.
///
/// Nagle's algorithm would hold a small reply back until the previous one is
/// acknowledged; every gRPC call is a few small frames, so it is turned off.
pub fn adapt(stream: smol::net::TcpStream) -> io::Result<Io> {
    stream.set_nodelay(true)?;
    Ok(Io {
        socket: stream.into(),
        read_dry: false,
        write_full: false,
    })
}

/// Connects to `addr` and prepares the socket for HTTP/2.
pub async fn connect(addr: SocketAddr) -> io::Result<Io> {
    adapt(smol::net::TcpStream::connect(addr).await?)
}

impl AsyncRead for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.read_dry {
                ready!(self.socket.poll_readable(cx))?;
                self.read_dry = false;
            }
            let room = buf.remaining();
            // h2 hands over a fresh, uninitialised buffer for every read;
            // zeroing it first (`initialize_unfilled`) cost a memset of its
            // whole spare capacity per read. The socket only writes into it.
            // SAFETY: `TcpStream::read` is a `recv` into the slice: it never
            // reads the bytes, and reports how many it wrote, which are the
            // only ones marked initialised.
            let unfilled =
                unsafe { &mut *(buf.unfilled_mut() as *mut [MaybeUninit<u8>] as *mut [u8]) };
            match self.socket.get_ref().read(unfilled) {
                Ok(n) => {
                    // SAFETY: `read` wrote the first `n` bytes.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    // A short read emptied the socket's queue: the next read
                    // would only say EAGAIN, so wait for readiness instead.
                    // Re-arming the reactor reports data that arrived since.
                    self.read_dry = n > 0 && n < room;
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.read_dry = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            if self.write_full {
                ready!(self.socket.poll_writable(cx))?;
                self.write_full = false;
            }
            match self.socket.get_ref().write(data) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.write_full = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the socket; there is nothing to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.socket.get_ref().shutdown(Shutdown::Write))
    }
}
