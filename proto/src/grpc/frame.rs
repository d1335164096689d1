//! The gRPC length-prefixed message: a 1-byte compressed flag, a 4-byte
//! big-endian length, then the message.
//!
//! HTTP/2 DATA frames split and join these arbitrarily, so [`UnaryBody`]
//! gathers a body chunk by chunk and checks the prefix as soon as it is
//! complete: an oversized or compressed message is refused before its bytes
//! are buffered. A unary body holds exactly one message; anything else is a
//! protocol error. Every input, however hostile, ends in a message or an
//! error, never a panic (see `tests/frame_props.rs`).

use bytes::{BufMut, Bytes, BytesMut};

use super::{Code, Status};

/// Bytes in the prefix of each message.
pub const HEADER_LEN: usize = 5;

/// The default limit on one message, as in grpc-go and grpcio.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// Prefixes `message` for the wire (uncompressed).
pub fn encode(message: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(HEADER_LEN + message.len());
    buf.put_u8(0);
    buf.put_u32(message.len() as u32);
    buf.put_slice(message);
    buf.freeze()
}

/// Why a body is not one well-formed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Flag 1: we never negotiate compression, so we cannot read it.
    Compressed,
    /// A flag other than 0 or 1.
    BadFlag(u8),
    /// The prefix announces more than the limit.
    TooLarge { len: usize, max: usize },
    /// The body ended inside the prefix or the message.
    Truncated { have: usize, want: usize },
    /// The body ended without any message.
    Missing,
    /// Bytes after the first message: a second message in a unary call.
    Trailing,
}

impl FrameError {
    /// The status a peer gets for this error.
    pub fn to_status(&self) -> Status {
        match self {
            FrameError::Compressed => Status::new(
                Code::Unimplemented,
                "compressed messages are not supported (grpc-encoding: identity only)",
            ),
            FrameError::BadFlag(f) => Status::new(
                Code::Internal,
                format!("invalid compressed flag {f} in message prefix"),
            ),
            FrameError::TooLarge { len, max } => Status::new(
                Code::ResourceExhausted,
                format!("message of {len} bytes exceeds the limit of {max} bytes"),
            ),
            FrameError::Truncated { have, want } => Status::new(
                Code::Internal,
                format!("truncated message: body ended after {have} of {want} bytes"),
            ),
            FrameError::Missing => Status::new(Code::Internal, "missing message in unary call"),
            FrameError::Trailing => {
                Status::new(Code::Internal, "more than one message in a unary call")
            }
        }
    }
}

/// Collects the one message of a unary request or response body.
#[derive(Debug)]
pub struct UnaryBody {
    buf: BytesMut,
    max: usize,
    /// Known once the prefix is complete: prefix + message length.
    want: Option<usize>,
}

impl UnaryBody {
    pub fn new(max_message_size: usize) -> UnaryBody {
        UnaryBody {
            buf: BytesMut::new(),
            max: max_message_size,
            want: None,
        }
    }

    /// Appends one chunk of the body.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), FrameError> {
        if let Some(want) = self.want {
            if self.buf.len() + chunk.len() > want {
                return Err(FrameError::Trailing);
            }
            self.buf.extend_from_slice(chunk);
            return Ok(());
        }
        // Still reading the prefix: take only what completes it, validate,
        // then reserve exactly what the message needs.
        let need = HEADER_LEN - self.buf.len();
        let (head, rest) = chunk.split_at(need.min(chunk.len()));
        self.buf.extend_from_slice(head);
        if self.buf.len() < HEADER_LEN {
            return Ok(());
        }
        let len = check_prefix(&self.buf, self.max)?;
        let want = HEADER_LEN + len;
        self.want = Some(want);
        self.buf.reserve(len);
        self.push(rest)
    }

    /// The message, once the body has ended.
    pub fn finish(self) -> Result<Bytes, FrameError> {
        match self.want {
            None if self.buf.is_empty() => Err(FrameError::Missing),
            None => Err(FrameError::Truncated {
                have: self.buf.len(),
                want: HEADER_LEN,
            }),
            Some(want) if self.buf.len() < want => Err(FrameError::Truncated {
                have: self.buf.len(),
                want,
            }),
            Some(_) => Ok(self.buf.freeze().split_off(HEADER_LEN)),
        }
    }
}

/// Validates a complete 5-byte prefix and returns the message length.
fn check_prefix(prefix: &[u8], max: usize) -> Result<usize, FrameError> {
    match prefix[0] {
        0 => {}
        1 => return Err(FrameError::Compressed),
        f => return Err(FrameError::BadFlag(f)),
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(chunks: &[&[u8]], max: usize) -> Result<Bytes, FrameError> {
        let mut b = UnaryBody::new(max);
        for c in chunks {
            b.push(c)?;
        }
        b.finish()
    }

    #[test]
    fn one_message_in_any_split() {
        let wire = encode(b"hello");
        assert_eq!(&wire[..], b"\0\0\0\0\x05hello");
        for cut in 0..=wire.len() {
            let (a, b) = wire.split_at(cut);
            assert_eq!(body(&[a, b], 16).unwrap(), &b"hello"[..]);
        }
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(body(&bytes, 16).unwrap(), &b"hello"[..]);
        assert_eq!(body(&[&encode(b"")], 0).unwrap(), &b""[..]);
    }

    #[test]
    fn refuses_what_is_not_one_message() {
        assert_eq!(body(&[], 16), Err(FrameError::Missing));
        assert_eq!(
            body(&[b"\0\0"], 16),
            Err(FrameError::Truncated { have: 2, want: 5 })
        );
        assert_eq!(
            body(&[b"\0\0\0\0\x05he"], 16),
            Err(FrameError::Truncated { have: 7, want: 10 })
        );
        assert_eq!(body(&[b"\x01\0\0\0\x01x"], 16), Err(FrameError::Compressed));
        assert_eq!(body(&[b"\x07\0\0\0\x01x"], 16), Err(FrameError::BadFlag(7)));
        assert_eq!(
            body(&[b"\0\0\0\0\x11"], 16),
            Err(FrameError::TooLarge { len: 17, max: 16 })
        );
        assert_eq!(
            body(&[&encode(b"a"), &encode(b"b")], 16),
            Err(FrameError::Trailing)
        );
        assert_eq!(body(&[b"\0\0\0\0\x01ab"], 16), Err(FrameError::Trailing));
    }

    #[test]
    fn errors_map_to_the_documented_codes() {
        assert_eq!(FrameError::Compressed.to_status().code, Code::Unimplemented);
        assert!(FrameError::Compressed
            .to_status()
            .message
            .contains("compress"));
        assert_eq!(
            FrameError::TooLarge { len: 5, max: 4 }.to_status().code,
            Code::ResourceExhausted
        );
        assert_eq!(FrameError::Missing.to_status().code, Code::Internal);
    }
}
