//! Hundreds of random requests, every filter combination: the engine's
//! answer must equal a brute-force pass over all rows in Rust.

mod engine_support;

use engine_support::{seed_with_wildcards, Rows, TempDir};
use worker::{QueryConn, QueryError, SalesRequest};

const PRODUCT_KEYWORDS: &[&str] = &[
    "",
    "comp",
    "COMPUTERS",
    "smart c",
    "ic ",
    "%",
    "_",
    "0%",
    "n_a",
    "% c",
    "a%",
    "e_",
    "vintage beauty",
    "xyz",
];
const BUYER_KEYWORDS: &[&str] = &[
    "", "al", "ALICE", "_", "%", "l_i", "ce%", "sm", "o", "a", "zz", "kim", "GARCIA",
];

fn pick<'a>(rng: &mut fastrand::Rng, options: &[&'a str]) -> &'a str {
    options[rng.usize(..options.len())]
}

/// A date between 2019-06 and 2026-06 in a random one of the four formats.
fn random_date(rng: &mut fastrand::Rng) -> String {
    let t = rng.i64(1_559_347_200..1_780_272_000);
    let (days, secs) = (t / 86_400, t % 86_400);
    // civil_from_days, enough for these years.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    match rng.u8(..4) {
        0 => format!("{y:04}-{m:02}-{d:02}"),
        1 => format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}"),
        2 => format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}"),
        _ => format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z"),
    }
}

fn random_request(rng: &mut fastrand::Rng) -> SalesRequest {
    let mut req = SalesRequest::default();
    if rng.bool() {
        req.region = pick(rng, &seeder::REGIONS).to_owned();
    } else if rng.u8(..8) == 0 {
        req.region = pick(rng, &["Atlantis", "europe"]).to_owned();
    }
    if rng.bool() {
        req.category = pick(rng, &seeder::CATEGORIES).to_owned();
    } else if rng.u8(..8) == 0 {
        req.category = "computers".to_owned();
    }
    if rng.u8(..3) == 0 {
        req.product_keyword = pick(rng, PRODUCT_KEYWORDS).to_owned();
    }
    if rng.u8(..3) == 0 {
        req.buyer_keyword = pick(rng, BUYER_KEYWORDS).to_owned();
    }
    if rng.bool() {
        req.start_date = random_date(rng);
    }
    if rng.bool() {
        req.end_date = random_date(rng);
    }
    if rng.bool() {
        req.start_hour = Some(rng.i32(0..=23));
    }
    if rng.bool() {
        req.end_hour = Some(rng.i32(0..=24));
    }
    if rng.u8(..3) == 0 {
        req.min_amount = rng.i64(0..=98);
    }
    if rng.u8(..3) == 0 {
        req.max_amount = rng.i64(0..=98);
    }
    req
}

#[test]
fn random_requests_match_brute_force() {
    let dir = TempDir::new("brute-force");
    let path = seed_with_wildcards(&dir, 4_000, 11);
    let rows = Rows::load(&path);
    let mut conn = QueryConn::open(&path).expect("open");
    let mut rng = fastrand::Rng::with_seed(2024);
    let (mut answered, mut refused, mut non_empty) = (0, 0, 0);
    for i in 0..600 {
        let req = random_request(&mut rng);
        match worker::validate(&req) {
            Ok(_) => {
                let expected = rows.answer(&req);
                let got = conn
                    .run(&req)
                    .unwrap_or_else(|e| panic!("#{i} {req:?}: {e}"));
                assert_eq!((got.count, got.revenue), expected, "#{i} {req:?}");
                let average = if got.count == 0 {
                    0.0
                } else {
                    got.revenue as f64 / got.count as f64
                };
                assert_eq!(got.average, average);
                answered += 1;
                non_empty += usize::from(got.count > 0);
            }
            Err(QueryError::InvalidArgument { field, .. }) => {
                // Only the combinations the generator can make invalid.
                assert!(
                    ["start_date", "start_hour", "min_amount"].contains(&field),
                    "#{i} {req:?}: {field}"
                );
                assert!(matches!(
                    conn.run(&req),
                    Err(QueryError::InvalidArgument { .. })
                ));
                refused += 1;
            }
            Err(e) => panic!("#{i} {req:?}: {e}"),
        }
    }
    // The mix must exercise both outcomes and real matches, not only zeros.
    assert!(
        answered > 300 && refused > 30,
        "{answered} answered, {refused} refused"
    );
    assert!(non_empty > 150, "only {non_empty} non-empty answers");
}

#[test]
fn wildcard_characters_are_literal() {
    let dir = TempDir::new("wildcards");
    let path = seed_with_wildcards(&dir, 2_000, 5);
    let rows = Rows::load(&path);
    let mut conn = QueryConn::open(&path).expect("open");
    let by_product = |keyword: &str| SalesRequest {
        product_keyword: keyword.into(),
        ..Default::default()
    };
    let by_buyer = |keyword: &str| SalesRequest {
        buyer_keyword: keyword.into(),
        ..Default::default()
    };
    // Only product 1 contains '%' and '_'; as LIKE wildcards they would
    // match every product.
    let product_one = rows.sales.iter().filter(|s| s.product == 1).count() as i64;
    assert!(product_one > 0);
    for keyword in ["%", "_", "0% c", "N_A", "100%"] {
        assert_eq!(
            conn.run(&by_product(keyword)).unwrap().count,
            product_one,
            "{keyword}"
        );
    }
    assert_eq!(conn.run(&by_product("0_%")).unwrap().count, 0);
    let customer_one = rows.sales.iter().filter(|s| s.customer == 1).count() as i64;
    assert!(customer_one > 0);
    for keyword in ["%", "_", "L_I", "ce%"] {
        assert_eq!(
            conn.run(&by_buyer(keyword)).unwrap().count,
            customer_one,
            "{keyword}"
        );
    }
    assert_eq!(conn.run(&by_buyer("a%l")).unwrap().count, 0);
}

#[test]
fn the_pool_answers_like_a_connection() {
    let dir = TempDir::new("pool");
    let path = seed_with_wildcards(&dir, 2_000, 3);
    let rows = Rows::load(&path);
    let pool = worker::Pool::open(&path, 2).expect("pool");
    assert_eq!(pool.threads(), 2);
    let mut rng = fastrand::Rng::with_seed(9);
    let requests: Vec<SalesRequest> = (0..200)
        .map(|_| random_request(&mut rng))
        .filter(|r| worker::validate(r).is_ok())
        .collect();
    let answers = smol::block_on(async {
        let tasks: Vec<_> = requests
            .iter()
            .map(|req| {
                let pool = pool.clone();
                let req = req.clone();
                smol::spawn(async move { pool.query(req).await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await);
        }
        answers
    });
    for (req, answer) in requests.iter().zip(answers) {
        let got = answer.expect("answer");
        assert_eq!((got.count, got.revenue), rows.answer(req), "{req:?}");
    }
    let invalid = SalesRequest {
        start_hour: Some(30),
        ..Default::default()
    };
    match smol::block_on(pool.query(invalid)) {
        Err(
            e @ worker::QueryError::InvalidArgument {
                field: "start_hour",
                ..
            },
        ) => {
            assert_eq!(e.grpc_code(), 3)
        }
        other => panic!("{other:?}"),
    }
}
