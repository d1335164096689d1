//! The query mix: the stream of `SalesRequest`s a run sends, seeded and reproducible.
//!
//! * `seed` mix — what the seed system's client sends: region "Europe", category
//!   "Computers", a random date window of up to 365 days inside 2020..=2024 (clamped to
//!   the database's range), and a random hour-of-day window.
//! * `random` mix — every filter drawn from the data itself (names read from the
//!   database), each one sometimes left empty, dates in every accepted format.
//!
//! The same seed and the same database give the same requests, in the same order, on
//! both transports.

use std::path::Path;

use proto::SalesRequest;

use crate::args::MixKind;

const DAY: i64 = 86_400;

/// The names the random mix draws from, read from the database.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    pub regions: Vec<String>,
    pub categories: Vec<String>,
    pub products: Vec<String>,
    pub customers: Vec<String>,
}

impl Dictionary {
    /// Reads dimension names from the database (read-only).
    pub fn load(db: &Path) -> Result<Dictionary, String> {
        let flags =
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(db, flags)
            .map_err(|e| format!("{}: {e}", db.display()))?;
        let column = |sql: &str| -> Result<Vec<String>, String> {
            let mut stmt = conn
                .prepare(sql)
                .map_err(|e| format!("{}: {sql}: {e}", db.display()))?;
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("{}: {sql}: {e}", db.display()));
            rows
        };
        let dict = Dictionary {
            regions: column("SELECT name FROM regions ORDER BY id")?,
            categories: column("SELECT DISTINCT category FROM products ORDER BY category")?,
            products: column("SELECT name FROM products ORDER BY id")?,
            customers: column(
                "SELECT first_name FROM customers UNION SELECT last_name FROM customers ORDER BY 1",
            )?,
        };
        if dict.regions.is_empty() || dict.categories.is_empty() {
            return Err(format!("{}: no regions or categories", db.display()));
        }
        Ok(dict)
    }
}

/// Generates requests; one per call to [`Mix::next_request`].
pub struct Mix {
    kind: MixKind,
    rng: fastrand::Rng,
    /// Inclusive day numbers (days since 1970-01-01) dates are drawn from.
    first_day: i64,
    last_day: i64,
    dict: Dictionary,
}

impl Mix {
    /// `date_min`/`date_max` are the database's sale dates (Unix seconds, from `meta`).
    pub fn new(kind: MixKind, seed: u64, date_min: i64, date_max: i64, dict: Dictionary) -> Mix {
        let (db_first, db_last) = (
            date_min.div_euclid(DAY),
            date_max.div_euclid(DAY).max(date_min.div_euclid(DAY)),
        );
        let (mut first_day, mut last_day) = (db_first, db_last);
        if kind == MixKind::Seed {
            // The seed client draws inside 2020..=2024; keep to that where the data allows.
            let (lo, hi) = (days_from_civil(2020, 1, 1), days_from_civil(2024, 12, 31));
            if lo.max(db_first) <= hi.min(db_last) {
                first_day = lo.max(db_first);
                last_day = hi.min(db_last);
            }
        }
        Mix {
            kind,
            rng: fastrand::Rng::with_seed(seed),
            first_day,
            last_day,
            dict,
        }
    }

    pub fn next_request(&mut self) -> SalesRequest {
        match self.kind {
            MixKind::Seed => self.seed_request(),
            MixKind::Random => self.random_request(),
        }
    }

    fn seed_request(&mut self) -> SalesRequest {
        let (start, end) = self.day_window();
        let start_hour = self.rng.i32(0..=23);
        let end_hour = self.rng.i32(start_hour..=24);
        SalesRequest {
            region: "Europe".into(),
            category: "Computers".into(),
            start_date: format_day(start),
            end_date: format_day(end),
            start_hour: Some(start_hour),
            end_hour: Some(end_hour),
            ..SalesRequest::default()
        }
    }

    fn random_request(&mut self) -> SalesRequest {
        let mut req = SalesRequest::default();
        if self.rng.f32() < 0.7 {
            req.region = pick(&mut self.rng, &self.dict.regions);
        }
        if self.rng.f32() < 0.7 {
            req.category = pick(&mut self.rng, &self.dict.categories);
        }
        if self.rng.f32() < 0.7 {
            let (start, end) = self.day_window();
            let start_s = start * DAY + self.rng.i64(0..DAY);
            let end_s = (end * DAY + self.rng.i64(0..DAY)).max(start_s);
            match self.rng.u8(0..4) {
                0 => req.start_date = self.format_any(start_s),
                1 => req.end_date = self.format_any(end_s),
                _ => {
                    req.start_date = self.format_any(start_s);
                    // Truncating both to the minute could put the end before the start;
                    // a date alone means the whole day, so it never can.
                    req.end_date = if req.start_date.len() > 10 {
                        format_day(end)
                    } else {
                        self.format_any(end_s)
                    };
                }
            }
        }
        if self.rng.f32() < 0.3 {
            req.min_amount = self.rng.i64(1..=98);
        }
        if self.rng.f32() < 0.3 {
            req.max_amount = self.rng.i64(req.min_amount.max(1)..=98);
        }
        if self.rng.f32() < 0.2 {
            req.product_keyword = self.keyword_from(KeywordSource::Products);
        }
        if self.rng.f32() < 0.2 {
            req.buyer_keyword = self.keyword_from(KeywordSource::Customers);
        }
        if self.rng.f32() < 0.5 {
            let start = self.rng.i32(0..=23);
            req.start_hour = Some(start);
            req.end_hour = Some(self.rng.i32(start..=24));
        }
        req
    }

    /// A window of 1..=365 days starting on a random day of the range.
    fn day_window(&mut self) -> (i64, i64) {
        let start = self.rng.i64(self.first_day..=self.last_day);
        let end = (start + self.rng.i64(0..365)).min(self.last_day);
        (start, end)
    }

    /// Unix seconds in one of the four accepted formats.
    fn format_any(&mut self, secs: i64) -> String {
        let (y, m, d) = civil_from_days(secs.div_euclid(DAY));
        let t = secs.rem_euclid(DAY);
        let (hh, mm, ss) = (t / 3600, t / 60 % 60, t % 60);
        match self.rng.u8(0..4) {
            0 => format!("{y:04}-{m:02}-{d:02}"),
            1 => format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}"),
            2 => format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}"),
            _ => format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"),
        }
    }

    /// A 2..=5 character piece of a name, in random case (matching is case-insensitive).
    fn keyword_from(&mut self, source: KeywordSource) -> String {
        let names = match source {
            KeywordSource::Products => &self.dict.products,
            KeywordSource::Customers => &self.dict.customers,
        };
        let name = pick(&mut self.rng, names);
        let chars: Vec<char> = name.chars().collect();
        if chars.len() < 2 {
            return name;
        }
        let len = self.rng.usize(2..=chars.len().min(5));
        let at = self.rng.usize(0..=chars.len() - len);
        chars[at..at + len]
            .iter()
            .map(|c| {
                if self.rng.bool() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }
}

enum KeywordSource {
    Products,
    Customers,
}

fn pick(rng: &mut fastrand::Rng, names: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    names[rng.usize(0..names.len())].clone()
}

fn format_day(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number; the inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict() -> Dictionary {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
        Dictionary {
            regions: s(&[
                "North America",
                "South America",
                "Europe",
                "Oceania",
                "Asia",
            ]),
            categories: s(&["Appliances", "Books", "Computers"]),
            products: s(&["Smart Appliances", "Ultra Books", "Eco Computers"]),
            customers: s(&["Alice", "Smith", "Li"]),
        }
    }

    /// 2020-01-01 .. 2025-12-31 23:59:59, the seeder's range.
    fn range() -> (i64, i64) {
        (1_577_836_800, 1_767_225_599)
    }

    #[test]
    fn calendar_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2020, 1, 1) * DAY, 1_577_836_800);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        for day in -1000..30_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn same_seed_same_requests() {
        for kind in [MixKind::Seed, MixKind::Random] {
            let (lo, hi) = range();
            let mut a = Mix::new(kind, 7, lo, hi, dict());
            let mut b = Mix::new(kind, 7, lo, hi, dict());
            let mut c = Mix::new(kind, 8, lo, hi, dict());
            let xs: Vec<_> = (0..100).map(|_| a.next_request()).collect();
            let ys: Vec<_> = (0..100).map(|_| b.next_request()).collect();
            let zs: Vec<_> = (0..100).map(|_| c.next_request()).collect();
            assert_eq!(xs, ys);
            assert_ne!(xs, zs);
        }
    }

    #[test]
    fn seed_mix_is_the_seed_clients_query() {
        let (lo, hi) = range();
        let mut mix = Mix::new(MixKind::Seed, 1, lo, hi, Dictionary::default());
        for _ in 0..2000 {
            let r = mix.next_request();
            assert_eq!(r.region, "Europe");
            assert_eq!(r.category, "Computers");
            assert!(
                r.start_date.as_str() >= "2020-01-01" && r.end_date.as_str() <= "2024-12-31",
                "{r:?}"
            );
            assert!(r.start_date <= r.end_date);
            let (s, e) = (r.start_hour.unwrap(), r.end_hour.unwrap());
            assert!((0..=23).contains(&s) && (s..=24).contains(&e));
        }
    }

    #[test]
    fn seed_mix_clamps_to_a_small_database() {
        // A database holding only March 2021.
        let lo = days_from_civil(2021, 3, 1) * DAY;
        let hi = days_from_civil(2021, 3, 31) * DAY + DAY - 1;
        let mut mix = Mix::new(MixKind::Seed, 3, lo, hi, Dictionary::default());
        for _ in 0..500 {
            let r = mix.next_request();
            assert!(r.start_date.as_str() >= "2021-03-01", "{r:?}");
            assert!(r.end_date.as_str() <= "2021-03-31", "{r:?}");
        }
    }

    #[test]
    fn random_mix_varies_every_filter_and_stays_valid() {
        let (lo, hi) = range();
        let mut mix = Mix::new(MixKind::Random, 11, lo, hi, dict());
        let reqs: Vec<_> = (0..3000).map(|_| mix.next_request()).collect();
        assert!(reqs.iter().any(|r| r.region.is_empty()));
        assert!(reqs.iter().any(|r| !r.region.is_empty()));
        assert!(reqs.iter().any(|r| r.start_date.contains('T')));
        assert!(reqs.iter().any(|r| r.start_date.len() == 16));
        assert!(reqs.iter().any(|r| !r.product_keyword.is_empty()));
        assert!(reqs.iter().any(|r| !r.buyer_keyword.is_empty()));
        assert!(reqs.iter().any(|r| r.min_amount > 0 && r.max_amount > 0));
        assert!(reqs.iter().any(|r| r.start_hour.is_none()));
        for r in &reqs {
            if r.min_amount != 0 && r.max_amount != 0 {
                assert!(r.min_amount <= r.max_amount, "{r:?}");
            }
            if let (Some(s), Some(e)) = (r.start_hour, r.end_hour) {
                assert!((0..=23).contains(&s) && (s..=24).contains(&e));
            }
            assert!(r.product_keyword.len() <= 256 && r.buyer_keyword.len() <= 256);
        }
    }

    /// Every generated request passes the worker's own validation, and runs.
    #[test]
    fn every_request_is_valid_for_the_worker() {
        let dir = std::env::temp_dir().join(format!("hammer-mix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("mix.db");
        seeder::write_database(
            &db,
            &seeder::Config {
                sales: 3000,
                seed: 5,
            },
        )
        .unwrap();
        let info = worker::open_info(&db).unwrap();
        let dict = Dictionary::load(&db).unwrap();
        assert_eq!(dict.regions.len(), 5);
        assert_eq!(dict.categories.len(), 8);
        let mut conn = worker::QueryConn::open(&db).unwrap();
        for kind in [MixKind::Seed, MixKind::Random] {
            let mut mix = Mix::new(kind, 99, info.date_min, info.date_max, dict.clone());
            let mut matched = 0;
            for i in 0..3000 {
                let req = mix.next_request();
                if let Err(e) = worker::validate(&req) {
                    panic!("{kind:?} request refused: {e}: {req:?}");
                }
                if i % 30 == 0 {
                    let m = conn.run(&req).unwrap_or_else(|e| panic!("{e}: {req:?}"));
                    matched += i64::from(m.count > 0);
                }
            }
            // The mix asks for data that exists, not only for empty answers.
            assert!(
                matched > 10,
                "{kind:?}: only {matched} of 100 queries matched any sale"
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
