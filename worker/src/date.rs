//! Parsing the request's date strings into Unix seconds (UTC).
//!
//! Accepted: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM`, `YYYY-MM-DD HH:MM:SS` and RFC
//! 3339 `YYYY-MM-DDTHH:MM:SSZ` (also with a `±HH:MM` offset, converted to
//! UTC). Hand-written because the four shapes are fixed and a calendar
//! crate would be the largest dependency of the hot path.

/// Which end of the range a date bounds: a date without a time means the
/// first second of the day for a start and the last second for an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Start,
    End,
}

pub const FORMATS: &str =
    "YYYY-MM-DD, YYYY-MM-DD HH:MM, YYYY-MM-DD HH:MM:SS or YYYY-MM-DDTHH:MM:SSZ (UTC)";

/// Parses `text` as one of the accepted formats; the error says what is
/// wrong with it (without the field name, which the caller adds).
pub fn parse(text: &str, bound: Bound) -> Result<i64, String> {
    let b = text.as_bytes();
    let (day, rest) = match b.len() {
        10 | 16 | 19 | 20 | 25 => (civil_day(&b[..10], text)?, &b[10..]),
        _ => return Err(format!("{text:?} is not a date; expected {FORMATS}")),
    };
    let seconds = match rest {
        [] => match bound {
            Bound::Start => 0,
            Bound::End => 86_399,
        },
        [b' ', hh, hh2, b':', mm, mm2] => time_of_day([*hh, *hh2], [*mm, *mm2], *b"00", text)?,
        [b' ', hh, hh2, b':', mm, mm2, b':', ss, ss2] => {
            time_of_day([*hh, *hh2], [*mm, *mm2], [*ss, *ss2], text)?
        }
        [b'T' | b't', hh, hh2, b':', mm, mm2, b':', ss, ss2, zone @ ..] => {
            let local = time_of_day([*hh, *hh2], [*mm, *mm2], [*ss, *ss2], text)?;
            local - utc_offset(zone, text)?
        }
        _ => return Err(format!("{text:?} is not a date; expected {FORMATS}")),
    };
    Ok(day * 86_400 + seconds)
}

/// Days since 1970-01-01 of `YYYY-MM-DD`.
fn civil_day(b: &[u8], text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a date; expected {FORMATS}");
    if b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let year = digits(&b[..4]).ok_or_else(bad)?;
    let month = digits(&b[5..7]).ok_or_else(bad)?;
    let day = digits(&b[8..10]).ok_or_else(bad)?;
    if !(1..=12).contains(&month) {
        return Err(format!("{text:?}: month {month} is not in 1..=12"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(format!(
            "{text:?}: day {day} does not exist in {year:04}-{month:02}"
        ));
    }
    Ok(days_from_civil(year, month, day))
}

fn time_of_day(hh: [u8; 2], mm: [u8; 2], ss: [u8; 2], text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a date; expected {FORMATS}");
    let (h, m, s) = (
        digits(&hh).ok_or_else(bad)?,
        digits(&mm).ok_or_else(bad)?,
        digits(&ss).ok_or_else(bad)?,
    );
    if h > 23 || m > 59 || s > 59 {
        return Err(format!(
            "{text:?}: time {h:02}:{m:02}:{s:02} does not exist"
        ));
    }
    Ok(h * 3600 + m * 60 + s)
}

/// Seconds east of UTC of an RFC 3339 zone: `Z` or `±HH:MM`.
fn utc_offset(zone: &[u8], text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} has no valid time zone; expected Z or ±HH:MM");
    match zone {
        [b'Z' | b'z'] => Ok(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (
                digits(&[*h1, *h2]).ok_or_else(bad)?,
                digits(&[*m1, *m2]).ok_or_else(bad)?,
            );
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let offset = h * 3600 + m * 60;
            Ok(if *sign == b'-' { -offset } else { offset })
        }
        _ => Err(bad()),
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, restated for years ≥ 0).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const Y2024: i64 = 1_704_067_200; // 2024-01-01 00:00:00 UTC

    #[test]
    fn date_alone_spans_the_whole_day() {
        assert_eq!(parse("2024-01-01", Bound::Start), Ok(Y2024));
        assert_eq!(parse("2024-01-01", Bound::End), Ok(Y2024 + 86_399));
    }

    #[test]
    fn every_format() {
        let t = Y2024 + 13 * 3600 + 45 * 60;
        assert_eq!(parse("2024-01-01 13:45", Bound::Start), Ok(t));
        assert_eq!(parse("2024-01-01 13:45", Bound::End), Ok(t));
        assert_eq!(parse("2024-01-01 13:45:07", Bound::Start), Ok(t + 7));
        assert_eq!(parse("2024-01-01T13:45:07Z", Bound::End), Ok(t + 7));
        assert_eq!(parse("2024-01-01t13:45:07z", Bound::End), Ok(t + 7));
        assert_eq!(parse("2024-01-01T15:45:07+02:00", Bound::Start), Ok(t + 7));
        assert_eq!(parse("2024-01-01T11:15:07-02:30", Bound::Start), Ok(t + 7));
    }

    #[test]
    fn calendar() {
        assert_eq!(parse("1970-01-01", Bound::Start), Ok(0));
        assert_eq!(parse("2020-01-01", Bound::Start), Ok(1_577_836_800));
        assert_eq!(
            parse("2025-12-31 23:59:59", Bound::Start),
            Ok(1_767_225_599)
        );
        assert_eq!(parse("2024-02-29", Bound::Start), Ok(Y2024 + 59 * 86_400));
        assert_eq!(parse("2000-02-29", Bound::Start), Ok(951_782_400));
        assert!(parse("2023-02-29", Bound::Start).is_err());
        assert!(parse("1900-02-29", Bound::Start).is_err());
        assert!(parse("2024-04-31", Bound::Start).is_err());
        assert!(parse("2024-00-10", Bound::Start).is_err());
        assert!(parse("2024-13-10", Bound::Start).is_err());
        assert!(parse("2024-01-00", Bound::Start).is_err());
    }

    #[test]
    fn rejects_malformed_text() {
        for text in [
            "",
            "2024",
            "2024-1-01",
            "2024/01/01",
            "24-01-01xx",
            "2024-01-01 ",
            "2024-01-01 1:00",
            "2024-01-01 24:00",
            "2024-01-01 12:60",
            "2024-01-01 12:00:60",
            "2024-01-01T12:00:00",
            "2024-01-01T12:00:00+2:00",
            "2024-01-01T12:00:00+24:00",
            "2024-01-01T12:00:00.5Z",
            "2024-01-01X12:00:00Z",
            "2024-01-01 12:00:00Z",
            "+024-01-01",
            "２０２４-01-01",
        ] {
            let error = parse(text, Bound::Start).expect_err(text);
            assert!(error.contains(&format!("{text:?}")), "{error}");
        }
    }
}
