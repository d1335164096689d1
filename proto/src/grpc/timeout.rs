//! The `grpc-timeout` header: at most 8 ASCII digits and a unit
//! (`H`ours, `M`inutes, `S`econds, `m`illis, `u` micros, `n`anos).
//!
//! A client formats its remaining time with the finest unit that fits in
//! 8 digits, so a server far away still sees the budget to the nanosecond
//! where it is small and to the hour where it is huge.

use std::time::Duration;

/// Parses a `grpc-timeout` value; `None` when it is malformed.
pub fn parse(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // 8 digits always fit in a u64, and no unit below overflows a Duration.
    let n: u64 = digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Formats a timeout for `grpc-timeout`, rounding up so the server never
/// sees less time than the client grants.
pub fn format(timeout: Duration) -> String {
    const MAX: u128 = 99_999_999;
    let nanos = timeout.as_nanos();
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    for (per, unit) in units {
        let n = nanos.div_ceil(per);
        if n <= MAX {
            return format!("{n}{unit}");
        }
    }
    format!("{MAX}H")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse(b"2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse(b"3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse(b"5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse(b"250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse(b"4999861u"), Some(Duration::from_micros(4_999_861)));
        assert_eq!(parse(b"99999999n"), Some(Duration::from_nanos(99_999_999)));
        assert_eq!(parse(b"0m"), Some(Duration::ZERO));
        assert_eq!(
            parse(b"99999999H"),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            &b""[..],
            b"S",
            b"5",
            b"5s",
            b"123456789S",
            b"-5S",
            b"5 S",
            b"1.5S",
            b"\xff",
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn formats_with_the_finest_unit_that_fits() {
        assert_eq!(format(Duration::from_nanos(1500)), "1500n");
        assert_eq!(format(Duration::from_millis(250)), "250000u");
        assert_eq!(format(Duration::from_secs(5)), "5000000u");
        assert_eq!(format(Duration::from_secs(1000)), "1000000m");
        assert_eq!(format(Duration::from_secs(365 * 86400)), "31536000S");
        assert_eq!(format(Duration::MAX), "99999999H");
        for d in [1u64, 999, 123_456_789, 98_765_432_101, 7_777_777_777_777] {
            let d = Duration::from_nanos(d);
            let back = parse(format(d).as_bytes()).unwrap();
            assert!(back >= d, "{d:?} -> {back:?}");
        }
    }
}
