//! `EXPLAIN QUERY PLAN` for every query shape: `sales` is always searched
//! through its key (store, product, date range), never scanned.

mod engine_support;

use engine_support::{seed, TempDir};
use worker::sql::Shape;
use worker::{validate, QueryConn, SalesRequest};

/// A request with exactly the filters of shape number `bits`.
fn request_of_shape(bits: usize) -> SalesRequest {
    let mut req = SalesRequest {
        start_date: "2021-03-01".into(),
        end_date: "2022-02-28".into(),
        ..Default::default()
    };
    if bits & 1 != 0 {
        req.region = "Europe".into();
    }
    if bits & 2 != 0 {
        req.category = "Computers".into();
    }
    if bits & 4 != 0 {
        req.product_keyword = "smart".into();
    }
    if bits & 8 != 0 {
        req.buyer_keyword = "al".into();
    }
    if bits & 16 != 0 {
        req.start_hour = Some(9);
        req.end_hour = Some(17);
    }
    if bits & 32 != 0 {
        req.min_amount = 10;
        req.max_amount = 50;
    }
    req
}

#[test]
fn every_shape_searches_sales_by_key() {
    let dir = TempDir::new("plan");
    let path = seed(&dir, 3_000, 1);
    let mut conn = QueryConn::open(&path).expect("open");
    let mut seen = Vec::new();
    for bits in 0..Shape::COUNT {
        for open_dates in [false, true] {
            let mut req = request_of_shape(bits);
            if open_dates {
                req.start_date.clear();
                req.end_date.clear();
            }
            let query = validate(&req).expect("valid");
            let shape = Shape::of(&query);
            assert_eq!(shape.index(), bits);
            seen.push(shape);
            let plan = conn.explain(&query).expect("explain");
            let text = plan.join("\n");
            // `sales` is aliased `s` in the statement.
            assert!(
                !plan
                    .iter()
                    .any(|step| step == "SCAN s" || step.starts_with("SCAN s ")),
                "shape {bits} scans sales:\n{text}"
            );
            assert!(
                plan.iter().any(|step| {
                    step.starts_with(
                    "SEARCH s USING PRIMARY KEY (store_id=? AND product_id=? AND date>? AND date<?)"
                )
                }),
                "shape {bits} does not seek on the key:\n{text}"
            );
            // The statement also runs, and binds exactly its parameters.
            conn.run(&req).expect("run");
        }
    }
    assert_eq!(seen.len(), 2 * Shape::COUNT);
}

#[test]
fn every_shape_binds_all_its_parameters() {
    for bits in 0..Shape::COUNT {
        let query = validate(&request_of_shape(bits)).unwrap();
        let sql = Shape::of(&query).sql();
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE regions (id INTEGER PRIMARY KEY, name TEXT);
             CREATE TABLE stores (id INTEGER PRIMARY KEY, name TEXT, region_id INTEGER);
             CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, category TEXT, price REAL);
             CREATE TABLE customers (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT);
             CREATE TABLE sales (id, date, amount, store_id, product_id, customer_id);",
        )
        .unwrap();
        let mut stmt = conn.prepare(&sql).unwrap();
        let expected = [
            query.region.is_some(),
            query.category.is_some(),
            query.product_keyword.is_some(),
            query.buyer_keyword.is_some(),
        ]
        .iter()
        .filter(|&&b| b)
        .count()
            + 2
            + 2 * usize::from(query.seconds_of_day.is_some())
            + 2 * usize::from(query.amounts.is_some());
        assert_eq!(stmt.parameter_count(), expected, "{sql}");
        worker::sql::bind(&mut stmt, &query).unwrap();
    }
}
