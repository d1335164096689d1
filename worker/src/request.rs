//! Validation: a [`SalesRequest`] becomes a [`Query`] whose every field is
//! known to be meaningful, or a [`QueryError::InvalidArgument`] naming the
//! offending field. Nothing here touches the database.

use proto::SalesRequest;

use crate::date::{self, Bound};
use crate::error::QueryError;

/// Longest keyword accepted, in bytes.
pub const MAX_KEYWORD_BYTES: usize = 256;

/// A validated request. Unset filters are `None`, except the date range,
/// which is always bounded (by `i64::MIN..=i64::MAX` when open) so that every
/// statement seeks on the date column the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub region: Option<String>,
    pub category: Option<String>,
    /// ASCII-lowercased; matched as a plain substring.
    pub product_keyword: Option<String>,
    /// ASCII-lowercased; matched against first and last name separately.
    pub buyer_keyword: Option<String>,
    /// Inclusive bounds in Unix seconds.
    pub dates: (i64, i64),
    /// Inclusive bounds in seconds since midnight UTC; `None` for the whole
    /// day.
    pub seconds_of_day: Option<(i64, i64)>,
    /// Inclusive bounds on `amount`; `None` when neither bound is set.
    pub amounts: Option<(i64, i64)>,
}

/// Checks every rule of the design's "The query" section.
pub fn validate(req: &SalesRequest) -> Result<Query, QueryError> {
    let start = optional_date(&req.start_date, "start_date", Bound::Start)?;
    let end = optional_date(&req.end_date, "end_date", Bound::End)?;
    if let (Some(start), Some(end)) = (start, end) {
        if start > end {
            return Err(QueryError::invalid(
                "start_date",
                format!(
                    "start_date {:?} is after end_date {:?}",
                    req.start_date, req.end_date
                ),
            ));
        }
    }

    let first_hour = match req.start_hour {
        None => 0,
        Some(h @ 0..=23) => h,
        Some(h) => {
            return Err(QueryError::invalid(
                "start_hour",
                format!("start_hour must be in 0..=23, got {h}"),
            ))
        }
    };
    let last_hour = match req.end_hour {
        None => 23,
        // 24 is what the seed's client sends for "until midnight".
        Some(h @ 0..=24) => h.min(23),
        Some(h) => {
            return Err(QueryError::invalid(
                "end_hour",
                format!("end_hour must be in 0..=24, got {h}"),
            ))
        }
    };
    if first_hour > last_hour {
        return Err(QueryError::invalid(
            "start_hour",
            format!("start_hour {first_hour} is after end_hour {last_hour}"),
        ));
    }
    let seconds_of_day = ((first_hour, last_hour) != (0, 23)).then(|| {
        (
            i64::from(first_hour) * 3600,
            i64::from(last_hour) * 3600 + 3599,
        )
    });

    for (field, value) in [
        ("min_amount", req.min_amount),
        ("max_amount", req.max_amount),
    ] {
        if value < 0 {
            return Err(QueryError::invalid(
                field,
                format!("{field} must not be negative, got {value}"),
            ));
        }
    }
    if req.min_amount != 0 && req.max_amount != 0 && req.min_amount > req.max_amount {
        return Err(QueryError::invalid(
            "min_amount",
            format!(
                "min_amount {} is greater than max_amount {}",
                req.min_amount, req.max_amount
            ),
        ));
    }
    let amounts = (req.min_amount != 0 || req.max_amount != 0).then(|| {
        let max = if req.max_amount == 0 {
            i64::MAX
        } else {
            req.max_amount
        };
        (req.min_amount, max)
    });

    Ok(Query {
        region: non_empty(&req.region),
        category: non_empty(&req.category),
        product_keyword: keyword(&req.product_keyword, "product_keyword")?,
        buyer_keyword: keyword(&req.buyer_keyword, "buyer_keyword")?,
        dates: (start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX)),
        seconds_of_day,
        amounts,
    })
}

fn optional_date(text: &str, field: &'static str, bound: Bound) -> Result<Option<i64>, QueryError> {
    if text.is_empty() {
        return Ok(None);
    }
    date::parse(text, bound)
        .map(Some)
        .map_err(|reason| QueryError::invalid(field, format!("{field}: {reason}")))
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

fn keyword(text: &str, field: &'static str) -> Result<Option<String>, QueryError> {
    if text.len() > MAX_KEYWORD_BYTES {
        return Err(QueryError::invalid(
            field,
            format!(
                "{field} is {} bytes long; the limit is {MAX_KEYWORD_BYTES}",
                text.len()
            ),
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(req: SalesRequest) -> &'static str {
        match validate(&req) {
            Err(QueryError::InvalidArgument { field, message }) => {
                assert!(message.contains(field), "{message:?} does not name {field}");
                field
            }
            other => panic!("expected an invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn empty_request_selects_everything() {
        let query = validate(&SalesRequest::default()).unwrap();
        assert_eq!(
            query,
            Query {
                region: None,
                category: None,
                product_keyword: None,
                buyer_keyword: None,
                dates: (i64::MIN, i64::MAX),
                seconds_of_day: None,
                amounts: None,
            }
        );
    }

    #[test]
    fn unparsable_dates_name_their_field() {
        for bad in [
            "2024-13-01",
            "2024-02-30 10:00",
            "2024-01-01 25:00:00",
            "2024-01-01T10:00:00",
            "2024-01-01T24:00:00Z",
            "yesterday",
        ] {
            let start = SalesRequest {
                start_date: bad.into(),
                ..Default::default()
            };
            assert_eq!(field_of(start), "start_date", "{bad}");
            let end = SalesRequest {
                end_date: bad.into(),
                ..Default::default()
            };
            assert_eq!(field_of(end), "end_date", "{bad}");
        }
    }

    #[test]
    fn each_date_format_is_accepted() {
        for (start, end) in [
            ("2024-01-01", "2024-01-02"),
            ("2024-01-01 10:00", "2024-01-01 10:00"),
            ("2024-01-01 10:00:00", "2024-01-01 11:00:00"),
            ("2024-01-01T10:00:00Z", "2024-01-01T10:00:01Z"),
        ] {
            let query = validate(&SalesRequest {
                start_date: start.into(),
                end_date: end.into(),
                ..Default::default()
            })
            .unwrap();
            assert!(query.dates.0 <= query.dates.1);
        }
    }

    #[test]
    fn start_after_end() {
        let req = SalesRequest {
            start_date: "2024-01-02".into(),
            end_date: "2024-01-01".into(),
            ..Default::default()
        };
        assert_eq!(field_of(req), "start_date");
        // The same day is a one-day range, not an error.
        let req = SalesRequest {
            start_date: "2024-01-01".into(),
            end_date: "2024-01-01".into(),
            ..Default::default()
        };
        let dates = validate(&req).unwrap().dates;
        assert_eq!(dates.1 - dates.0, 86_399);
    }

    #[test]
    fn hours() {
        let hours = |start, end| SalesRequest {
            start_hour: start,
            end_hour: end,
            ..Default::default()
        };
        assert_eq!(field_of(hours(Some(-1), None)), "start_hour");
        assert_eq!(field_of(hours(Some(24), None)), "start_hour");
        assert_eq!(field_of(hours(None, Some(-1))), "end_hour");
        assert_eq!(field_of(hours(None, Some(25))), "end_hour");
        assert_eq!(field_of(hours(Some(10), Some(9))), "start_hour");
        let window = |start, end| validate(&hours(start, end)).unwrap().seconds_of_day;
        assert_eq!(window(Some(0), Some(24)), None);
        assert_eq!(window(Some(0), Some(23)), None);
        assert_eq!(window(None, None), None);
        assert_eq!(window(Some(23), Some(24)), Some((23 * 3600, 86_399)));
        assert_eq!(window(Some(9), Some(9)), Some((9 * 3600, 9 * 3600 + 3599)));
        assert_eq!(window(Some(9), None), Some((9 * 3600, 86_399)));
        assert_eq!(window(None, Some(5)), Some((0, 5 * 3600 + 3599)));
    }

    #[test]
    fn amounts() {
        let amounts = |min, max| SalesRequest {
            min_amount: min,
            max_amount: max,
            ..Default::default()
        };
        assert_eq!(field_of(amounts(-1, 0)), "min_amount");
        assert_eq!(field_of(amounts(0, -5)), "max_amount");
        assert_eq!(field_of(amounts(50, 10)), "min_amount");
        let bounds = |min, max| validate(&amounts(min, max)).unwrap().amounts;
        assert_eq!(bounds(0, 0), None);
        assert_eq!(bounds(50, 0), Some((50, i64::MAX)));
        assert_eq!(bounds(0, 10), Some((0, 10)));
        assert_eq!(bounds(10, 10), Some((10, 10)));
    }

    #[test]
    fn keywords() {
        let long = "x".repeat(MAX_KEYWORD_BYTES + 1);
        let product = SalesRequest {
            product_keyword: long.clone(),
            ..Default::default()
        };
        assert_eq!(field_of(product), "product_keyword");
        let buyer = SalesRequest {
            buyer_keyword: long,
            ..Default::default()
        };
        assert_eq!(field_of(buyer), "buyer_keyword");
        let query = validate(&SalesRequest {
            product_keyword: "x".repeat(MAX_KEYWORD_BYTES),
            buyer_keyword: "GaR_%É".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(query.buyer_keyword.as_deref(), Some("gar_%É"));
    }
}
