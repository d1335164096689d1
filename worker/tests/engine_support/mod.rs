//! Shared by the engine tests: small seeded databases in private temporary
//! directories, and an in-memory copy of every row to compute answers by
//! brute force.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A directory removed with everything in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "worker-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Seeds `sales` sales into `dir/database.db`.
pub fn seed(dir: &TempDir, sales: u64, seed: u64) -> PathBuf {
    let path = dir.path().join("database.db");
    seeder::write_database(&path, &seeder::Config { sales, seed }).expect("seed database");
    path
}

/// Like [`seed`], then renames one product and one customer so that names
/// contain `%` and `_`: keyword matching must treat them as plain characters.
pub fn seed_with_wildcards(dir: &TempDir, sales: u64, seed: u64) -> PathBuf {
    let path = self::seed(dir, sales, seed);
    let conn = rusqlite::Connection::open(&path).expect("open for update");
    conn.execute_batch(
        "UPDATE products SET name = 'Classic 100% Cotton_Appliances' WHERE id = 1;
         UPDATE customers SET first_name = 'Al_ice%' WHERE id = 1;",
    )
    .expect("rename");
    path
}

pub struct Sale {
    pub date: i64,
    pub amount: i64,
    pub store: usize,
    pub product: usize,
    pub customer: usize,
}

/// Every row of the database, indexed by id.
pub struct Rows {
    pub sales: Vec<Sale>,
    /// `store id → region name`
    pub store_region: Vec<String>,
    /// `product id → (name, category)`
    pub products: Vec<(String, String)>,
    /// `customer id → (first, last)`
    pub customers: Vec<(String, String)>,
}

impl Rows {
    pub fn load(path: &Path) -> Rows {
        let conn = rusqlite::Connection::open(path).expect("open");
        let strings = |sql: &str| -> Vec<(String, String)> {
            let mut out = vec![(String::new(), String::new())];
            let mut stmt = conn.prepare(sql).unwrap();
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)))
                .unwrap();
            for row in rows {
                let (id, a, b) = row.unwrap();
                assert_eq!(id as usize, out.len(), "ids are dense");
                out.push((a, b));
            }
            out
        };
        let store_region = strings(
            "SELECT s.id, r.name, '' FROM stores s JOIN regions r ON r.id = s.region_id ORDER BY s.id",
        )
        .into_iter()
        .map(|(region, _)| region)
        .collect();
        let products = strings("SELECT id, name, category FROM products ORDER BY id");
        let customers = strings("SELECT id, first_name, last_name FROM customers ORDER BY id");
        let mut stmt = conn
            .prepare("SELECT date, amount, store_id, product_id, customer_id FROM sales")
            .unwrap();
        let sales = stmt
            .query_map([], |r| {
                Ok(Sale {
                    date: r.get(0)?,
                    amount: r.get(1)?,
                    store: r.get::<_, i64>(2)? as usize,
                    product: r.get::<_, i64>(3)? as usize,
                    customer: r.get::<_, i64>(4)? as usize,
                })
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        Rows {
            sales,
            store_region,
            products,
            customers,
        }
    }

    /// `(count, revenue)` of the sales `req` selects, by checking every row.
    /// Dates come from the validated query (the date parser has its own unit
    /// tests); every other filter is applied here from the raw request.
    pub fn answer(&self, req: &worker::SalesRequest) -> (i64, i64) {
        let (from, to) = worker::validate(req).expect("valid request").dates;
        let contains = |text: &str, keyword: &str| {
            text.to_ascii_lowercase()
                .contains(&keyword.to_ascii_lowercase())
        };
        let first_hour = req.start_hour.unwrap_or(0) as i64;
        let last_hour = req.end_hour.unwrap_or(23).min(23) as i64;
        let (mut count, mut revenue) = (0, 0);
        for sale in &self.sales {
            let (product, category) = &self.products[sale.product];
            let (first, last) = &self.customers[sale.customer];
            let hour = sale.date.rem_euclid(86_400) / 3600;
            let selected = (req.region.is_empty() || self.store_region[sale.store] == req.region)
                && (req.category.is_empty() || *category == req.category)
                && contains(product, &req.product_keyword)
                && (req.buyer_keyword.is_empty()
                    || contains(first, &req.buyer_keyword)
                    || contains(last, &req.buyer_keyword))
                && (from..=to).contains(&sale.date)
                && (first_hour..=last_hour).contains(&hour)
                && (req.min_amount == 0 || sale.amount >= req.min_amount)
                && (req.max_amount == 0 || sale.amount <= req.max_amount);
            if selected {
                count += 1;
                revenue += sale.amount;
            }
        }
        (count, revenue)
    }
}
