//! The request/reply codec: what a message body and its properties mean.
//!
//! Two encodings travel on the queue, chosen by the message's content type:
//!
//! * `application/x-protobuf`: the body is a `SalesRequest` / `SalesResponse`
//!   exactly as on the gRPC wire.
//! * `application/json`: the seed's JSON. Request keys `region`, `category`,
//!   `start_date`, `end_date`, `start_hour`, `end_hour` (number or null),
//!   `buyer_keyword`, `product_keyword`, and ours `min_amount`, `max_amount`;
//!   reply keys `total_sales_count`, `total_revenue`, `average_amount`,
//!   `region_processed` and `error` (omitted when empty).
//!
//! A failure travels in the reply's headers whatever the encoding: `x-status`
//! (the gRPC status code number) and `x-error` (the message); a JSON reply also
//! carries the message in its `error` field, which is all the seed looks at.

use amiquip::{AmqpValue, FieldTable};
use proto::{SalesRequest, SalesResponse};
use serde::{Deserialize, Serialize};

/// Content type of protobuf bodies.
pub const PROTOBUF: &str = "application/x-protobuf";
/// Content type of JSON bodies.
pub const JSON: &str = "application/json";
/// Header carrying the gRPC status code of a failed request.
pub const STATUS_HEADER: &str = "x-status";
/// Header carrying the error message of a failed request.
pub const ERROR_HEADER: &str = "x-error";

/// gRPC status codes this crate produces itself.
pub mod code {
    pub const UNKNOWN: u32 = 2;
    pub const INVALID_ARGUMENT: u32 = 3;
    pub const INTERNAL: u32 = 13;
}

/// How a request or reply body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`
    Proto,
    /// `application/json`
    Json,
}

impl Encoding {
    /// The content type announcing this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Proto => PROTOBUF,
            Encoding::Json => JSON,
        }
    }

    /// The encoding a content type announces: parameters (`; charset=utf-8`)
    /// and case are ignored; `None` for a type we do not speak.
    pub fn from_content_type(content_type: &str) -> Option<Encoding> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case(PROTOBUF) {
            Some(Encoding::Proto)
        } else if essence.eq_ignore_ascii_case(JSON) {
            Some(Encoding::Json)
        } else {
            None
        }
    }

    /// The encoding of a request: its content type when it has one. A message
    /// without one is taken for JSON when its body looks like an object (no
    /// valid `SalesRequest` starts with `{`), else for protobuf.
    pub fn of_request(content_type: Option<&str>, body: &[u8]) -> Option<Encoding> {
        match content_type {
            Some(ct) if !ct.trim().is_empty() => Encoding::from_content_type(ct),
            _ if body.trim_ascii_start().first() == Some(&b'{') => Some(Encoding::Json),
            _ => Some(Encoding::Proto),
        }
    }
}

/// A failure to be sent back, or received, as a status code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: u32,
    pub message: String,
}

impl Failure {
    pub fn new(code: u32, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// The seed's JSON request as we write it (hours unset are null).
#[derive(Debug, Serialize)]
struct JsonRequest {
    region: String,
    category: String,
    start_date: String,
    end_date: String,
    start_hour: Option<i32>,
    end_hour: Option<i32>,
    buyer_keyword: String,
    product_keyword: String,
    min_amount: i64,
    max_amount: i64,
}

/// The seed's JSON reply.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct JsonReply {
    total_sales_count: i64,
    total_revenue: i64,
    average_amount: f64,
    region_processed: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    error: String,
}

/// Encodes a request body.
pub fn encode_request(req: &SalesRequest, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Proto => prost::Message::encode_to_vec(req),
        Encoding::Json => {
            let json = JsonRequest {
                region: req.region.clone(),
                category: req.category.clone(),
                start_date: req.start_date.clone(),
                end_date: req.end_date.clone(),
                start_hour: req.start_hour,
                end_hour: req.end_hour,
                buyer_keyword: req.buyer_keyword.clone(),
                product_keyword: req.product_keyword.clone(),
                min_amount: req.min_amount,
                max_amount: req.max_amount,
            };
            // A struct of strings and numbers always serializes.
            serde_json::to_vec(&json).unwrap_or_default()
        }
    }
}

/// Decodes a request body; a body that does not parse is an invalid argument.
pub fn decode_request(body: &[u8], encoding: Encoding) -> Result<SalesRequest, Failure> {
    match encoding {
        Encoding::Proto => <SalesRequest as prost::Message>::decode(body).map_err(|e| {
            Failure::new(
                code::INVALID_ARGUMENT,
                format!("body is not a protobuf SalesRequest: {e}"),
            )
        }),
        Encoding::Json => decode_json_request(body),
    }
}

/// Decodes the seed's JSON request key by key, so that a wrong type is
/// reported with the key's name. Unknown keys are ignored; null is "unset".
fn decode_json_request(body: &[u8]) -> Result<SalesRequest, Failure> {
    use serde_json::Value;
    let invalid = |message: String| Failure::new(code::INVALID_ARGUMENT, message);
    let value: Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("body is not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(invalid("body is not a JSON object".into()));
    };
    let string = |key: &str| match map.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(invalid(format!("{key}: expected a string, got {other}"))),
    };
    let integer = |key: &str| match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(n) => Ok(Some(n)),
            None => Err(invalid(format!("{key}: expected a whole number, got {n}"))),
        },
        Some(other) => Err(invalid(format!("{key}: expected a number, got {other}"))),
    };
    let hour = |key: &str| {
        integer(key)?
            .map(|h| i32::try_from(h).map_err(|_| invalid(format!("{key}: {h} is out of range"))))
            .transpose()
    };
    Ok(SalesRequest {
        region: string("region")?,
        category: string("category")?,
        start_date: string("start_date")?,
        end_date: string("end_date")?,
        min_amount: integer("min_amount")?.unwrap_or(0),
        max_amount: integer("max_amount")?.unwrap_or(0),
        product_keyword: string("product_keyword")?,
        buyer_keyword: string("buyer_keyword")?,
        start_hour: hour("start_hour")?,
        end_hour: hour("end_hour")?,
    })
}

/// Encodes a reply: its body, and the headers announcing a failure (`None`
/// on success). A failure's body is empty for protobuf (the headers say it
/// all) and a JSON object with `error` set for JSON.
pub fn encode_reply(
    result: &Result<SalesResponse, Failure>,
    encoding: Encoding,
) -> (Vec<u8>, Option<FieldTable>) {
    let headers = result.as_ref().err().map(failure_headers);
    let body = match (encoding, result) {
        (Encoding::Proto, Ok(rep)) => prost::Message::encode_to_vec(rep),
        (Encoding::Proto, Err(_)) => Vec::new(),
        (Encoding::Json, result) => {
            let json = match result {
                Ok(rep) => JsonReply {
                    total_sales_count: rep.total_sales_count,
                    total_revenue: rep.total_revenue,
                    average_amount: rep.average_amount,
                    region_processed: rep.region_processed.clone(),
                    error: String::new(),
                },
                Err(failure) => JsonReply {
                    error: failure.message.clone(),
                    ..JsonReply::default()
                },
            };
            // Numbers and strings only (average_amount is finite: a ratio of
            // integers, 0.0 when there are no sales).
            serde_json::to_vec(&json).unwrap_or_default()
        }
    };
    (body, headers)
}

/// The headers of an error reply; usable without a body (a request whose
/// encoding we do not know).
pub fn failure_headers(failure: &Failure) -> FieldTable {
    let mut headers = FieldTable::new();
    headers.insert(
        STATUS_HEADER.to_string(),
        AmqpValue::LongInt(failure.code as i32),
    );
    headers.insert(
        ERROR_HEADER.to_string(),
        AmqpValue::LongString(failure.message.clone()),
    );
    headers
}

/// Decodes a reply from its properties and body. The failure headers win over
/// the body; a JSON `error` without headers (the seed's worker) is `UNKNOWN`.
pub fn decode_reply(
    content_type: Option<&str>,
    headers: Option<&FieldTable>,
    body: &[u8],
) -> Result<SalesResponse, Failure> {
    if let Some(failure) = headers.and_then(failure_from_headers) {
        return Err(failure);
    }
    match Encoding::of_request(content_type, body) {
        Some(Encoding::Proto) => <SalesResponse as prost::Message>::decode(body).map_err(|e| {
            Failure::new(
                code::INTERNAL,
                format!("reply is not a protobuf SalesResponse: {e}"),
            )
        }),
        Some(Encoding::Json) => {
            let json: JsonReply = serde_json::from_slice(body).map_err(|e| {
                Failure::new(code::INTERNAL, format!("reply is not a JSON reply: {e}"))
            })?;
            if !json.error.is_empty() {
                return Err(Failure::new(code::UNKNOWN, json.error));
            }
            Ok(SalesResponse {
                total_sales_count: json.total_sales_count,
                total_revenue: json.total_revenue,
                average_amount: json.average_amount,
                region_processed: json.region_processed,
            })
        }
        None => Err(Failure::new(
            code::INTERNAL,
            format!(
                "reply has unknown content type {:?}",
                content_type.unwrap_or("")
            ),
        )),
    }
}

/// A failure announced by `x-status` (any integer type, or a decimal string,
/// other than 0) and `x-error`.
fn failure_from_headers(headers: &FieldTable) -> Option<Failure> {
    let code = match headers.get(STATUS_HEADER)? {
        AmqpValue::ShortShortInt(n) => i64::from(*n),
        AmqpValue::ShortShortUInt(n) => i64::from(*n),
        AmqpValue::ShortInt(n) => i64::from(*n),
        AmqpValue::ShortUInt(n) => i64::from(*n),
        AmqpValue::LongInt(n) => i64::from(*n),
        AmqpValue::LongUInt(n) => i64::from(*n),
        AmqpValue::LongLongInt(n) => *n,
        AmqpValue::LongString(s) => s.trim().parse().unwrap_or(i64::from(code::UNKNOWN)),
        _ => i64::from(code::UNKNOWN),
    };
    if code == 0 {
        return None;
    }
    let message = match headers.get(ERROR_HEADER) {
        Some(AmqpValue::LongString(s)) => s.clone(),
        Some(AmqpValue::ByteArray(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let code = u32::try_from(code).unwrap_or(code::UNKNOWN);
    Some(Failure::new(code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SalesRequest {
        SalesRequest {
            region: "Europe".into(),
            category: "Books".into(),
            start_date: "2021-01-01".into(),
            end_date: "2021-12-31 23:00".into(),
            min_amount: 5,
            max_amount: 90,
            product_keyword: "sleek".into(),
            buyer_keyword: "SMITH".into(),
            start_hour: Some(9),
            end_hour: None,
        }
    }

    #[test]
    fn requests_round_trip_in_both_encodings() {
        for encoding in [Encoding::Proto, Encoding::Json] {
            let body = encode_request(&sample(), encoding);
            assert_eq!(decode_request(&body, encoding).unwrap(), sample());
        }
    }

    #[test]
    fn seed_json_with_nulls_and_missing_keys() {
        let body = br#"{"region":"Asia","category":"","start_date":"2020-01-01",
            "end_date":"2020-02-01","start_hour":null,"end_hour":24,
            "buyer_keyword":"","product_keyword":"","unknown":1}"#;
        let req = decode_request(body, Encoding::Json).unwrap();
        assert_eq!(req.region, "Asia");
        assert_eq!(req.start_hour, None);
        assert_eq!(req.end_hour, Some(24));
        assert_eq!(req.min_amount, 0);
        let empty = decode_request(b"{}", Encoding::Json).unwrap();
        assert_eq!(empty, SalesRequest::default());
    }

    #[test]
    fn json_request_keys_are_the_seeds() {
        let body = encode_request(&sample(), Encoding::Json);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        for key in [
            "region",
            "category",
            "start_date",
            "end_date",
            "start_hour",
            "end_hour",
            "buyer_keyword",
            "product_keyword",
            "min_amount",
            "max_amount",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert!(v["end_hour"].is_null());
    }

    #[test]
    fn garbage_is_an_invalid_argument() {
        for encoding in [Encoding::Proto, Encoding::Json] {
            let err = decode_request(b"\xff\xff\xff garbage", encoding).unwrap_err();
            assert_eq!(err.code, code::INVALID_ARGUMENT);
        }
        let err = decode_request(br#"{"start_hour":"nine"}"#, Encoding::Json).unwrap_err();
        assert!(err.message.contains("start_hour"), "{}", err.message);
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Encoding::from_content_type("Application/JSON; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(Encoding::from_content_type(PROTOBUF), Some(Encoding::Proto));
        assert_eq!(Encoding::from_content_type("text/plain"), None);
        assert_eq!(Encoding::of_request(None, b" {}"), Some(Encoding::Json));
        assert_eq!(
            Encoding::of_request(Some(""), b"\x0a"),
            Some(Encoding::Proto)
        );
    }

    #[test]
    fn replies_round_trip_and_failures_use_headers() {
        let rep = SalesResponse {
            total_sales_count: 3,
            total_revenue: 120,
            average_amount: 40.0,
            region_processed: "w1".into(),
        };
        for encoding in [Encoding::Proto, Encoding::Json] {
            let (body, headers) = encode_reply(&Ok(rep.clone()), encoding);
            assert!(headers.is_none());
            let ct = Some(encoding.content_type());
            assert_eq!(decode_reply(ct, None, &body).unwrap(), rep);

            let failure = Failure::new(code::INVALID_ARGUMENT, "start_date: bad");
            let (body, headers) = encode_reply(&Err(failure.clone()), encoding);
            let headers = headers.unwrap();
            assert_eq!(decode_reply(ct, Some(&headers), &body), Err(failure));
        }
        let (body, _) = encode_reply(&Err(Failure::new(3, "bad")), Encoding::Json);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "bad");
        let (body, _) = encode_reply(&Ok(rep), Encoding::Json);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v.get("error").is_none());
    }

    #[test]
    fn seed_json_error_without_headers() {
        let body = br#"{"total_sales_count":0,"error":"db down"}"#;
        let err = decode_reply(Some(JSON), None, body).unwrap_err();
        assert_eq!(err, Failure::new(code::UNKNOWN, "db down"));
    }
}
