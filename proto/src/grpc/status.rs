//! gRPC status codes and the `grpc-status` / `grpc-message` trailers.
//!
//! `grpc-message` travels percent-encoded (every byte outside printable ASCII,
//! and `%` itself, becomes `%XX`) so any UTF-8 text fits in an HTTP/2 header.
//! Decoding is lenient: a malformed escape is kept as written, because a peer's
//! sloppy message is still more useful than no message.

use std::fmt;

use http::{HeaderMap, HeaderValue, StatusCode};

/// The canonical gRPC status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Code {
    Ok = 0,
    Cancelled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// The code for a number off the wire; numbers this version does not know
    /// are `Unknown`, as the gRPC spec asks.
    pub fn from_u32(n: u32) -> Code {
        match n {
            0 => Code::Ok,
            1 => Code::Cancelled,
            2 => Code::Unknown,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            10 => Code::Aborted,
            11 => Code::OutOfRange,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            15 => Code::DataLoss,
            16 => Code::Unauthenticated,
            _ => Code::Unknown,
        }
    }

    /// The number sent in `grpc-status`.
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    /// The code a client reports when a response is not HTTP 200, per the
    /// gRPC spec's "HTTP to gRPC status code mapping".
    pub fn from_http(status: StatusCode) -> Code {
        match status.as_u16() {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }
}

/// A gRPC status: a code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub message: String,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
        }
    }

    /// The answer to a method this server does not have.
    pub fn unimplemented_method(path: &str) -> Status {
        Status::new(Code::Unimplemented, format!("unknown method {path}"))
    }

    /// Reads `grpc-status` (and `grpc-message`) from trailers, or from the
    /// headers of a trailers-only response. `None` when `grpc-status` is absent;
    /// an unparsable number is `Unknown`.
    pub fn from_headers(headers: &HeaderMap) -> Option<Status> {
        let raw = headers.get("grpc-status")?;
        let code = std::str::from_utf8(raw.as_bytes())
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .map(Code::from_u32);
        let message = headers
            .get("grpc-message")
            .map(|v| percent_decode(v.as_bytes()))
            .unwrap_or_default();
        Some(match code {
            Some(code) => Status { code, message },
            None => Status::new(
                Code::Unknown,
                format!(
                    "unparsable grpc-status {:?}",
                    String::from_utf8_lossy(raw.as_bytes())
                ),
            ),
        })
    }

    /// Writes `grpc-status` and, when there is one, `grpc-message`.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert("grpc-status", HeaderValue::from(self.code.as_u32()));
        if !self.message.is_empty() {
            // percent_encode only emits printable ASCII, always a valid value.
            if let Ok(value) = HeaderValue::from_str(&percent_encode(&self.message)) {
                headers.insert("grpc-message", value);
            }
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{:?}", self.code)
        } else {
            write!(f, "{:?}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for Status {}

/// Percent-encodes a `grpc-message`: bytes outside 0x20..=0x7E, and `%`.
pub fn percent_encode(message: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        }
    }
    out
}

/// Decodes a percent-encoded `grpc-message`; malformed escapes are kept
/// verbatim and invalid UTF-8 is replaced, never an error.
pub fn percent_decode(raw: &[u8]) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' && i + 2 < raw.len() {
            if let (Some(h), Some(l)) = (hex(raw[i + 1]), hex(raw[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_numbers_are_unknown() {
        for n in 0..=16 {
            assert_eq!(Code::from_u32(n).as_u32(), n);
        }
        assert_eq!(Code::from_u32(17), Code::Unknown);
        assert_eq!(Code::from_u32(u32::MAX), Code::Unknown);
    }

    #[test]
    fn messages_survive_percent_encoding() {
        for m in ["", "plain", "100% sure", "naïve ☃ \n\t line", "%%%", "%zz"] {
            let enc = percent_encode(m);
            assert!(enc.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{enc}");
            assert_eq!(percent_decode(enc.as_bytes()), m);
        }
        assert_eq!(percent_encode("a%b é"), "a%25b %C3%A9");
    }

    #[test]
    fn malformed_escapes_are_kept() {
        assert_eq!(percent_decode(b"50%"), "50%");
        assert_eq!(percent_decode(b"50%4"), "50%4");
        assert_eq!(percent_decode(b"%G1x"), "%G1x");
        assert_eq!(percent_decode(b"%41"), "A");
        assert_eq!(percent_decode(b"%FF"), "\u{fffd}");
    }

    #[test]
    fn status_round_trips_through_headers() {
        let s = Status::new(Code::InvalidArgument, "start_date: bad «date»");
        let mut h = HeaderMap::new();
        s.write_headers(&mut h);
        assert_eq!(h["grpc-status"], "3");
        assert_eq!(Status::from_headers(&h), Some(s));
        assert_eq!(Status::from_headers(&HeaderMap::new()), None);
        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_static("x"));
        assert_eq!(
            Status::from_headers(&h).map(|s| s.code),
            Some(Code::Unknown)
        );
    }
}
