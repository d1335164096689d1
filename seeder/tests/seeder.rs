//! The seeder's promises: same configuration, same bytes; another seed,
//! other bytes; a failed or cancelled run leaves no file behind; the data
//! follows the design's schema and ranges.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use seeder::{Config, Error};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "seeder-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn same_config_same_bytes_other_seed_other_bytes() {
    let dir = TempDir::new("determinism");
    let config = Config {
        sales: 5_000,
        seed: 42,
    };
    let (a, b, c) = (dir.0.join("a.db"), dir.0.join("b.db"), dir.0.join("c.db"));
    let summary = seeder::write_database(&a, &config).unwrap();
    seeder::write_database(&b, &config).unwrap();
    seeder::write_database(&c, &Config { seed: 43, ..config }).unwrap();
    let (a, b, c) = (
        std::fs::read(a).unwrap(),
        std::fs::read(b).unwrap(),
        std::fs::read(c).unwrap(),
    );
    assert!(a == b, "same flags must give identical files");
    assert!(a != c, "another seed must give another file");
    assert_eq!(summary.bytes, a.len() as u64);
    assert_eq!(summary.sales, 5_000);
    assert_eq!(summary.rows, 5_000 + 5 + 12 + 56 + 150);
    assert_eq!(files_in(&dir.0), ["a.db", "b.db", "c.db"]);
}

#[test]
fn contents_follow_the_design() {
    let dir = TempDir::new("contents");
    let path = dir.0.join("database.db");
    seeder::write_database(
        &path,
        &Config {
            sales: 20_000,
            seed: 7,
        },
    )
    .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(one("SELECT count(*) FROM regions"), 5);
    assert_eq!(one("SELECT count(*) FROM stores"), 12);
    assert_eq!(one("SELECT count(*) FROM products"), 56);
    assert_eq!(one("SELECT count(*) FROM customers"), 150);
    assert_eq!(one("SELECT count(*) FROM sales"), 20_000);
    assert_eq!(one("SELECT count(DISTINCT id) FROM sales"), 20_000);
    assert_eq!(one("SELECT min(id) FROM sales"), 1);
    assert!(one("SELECT min(date) FROM sales") >= seeder::DATE_MIN);
    assert!(one("SELECT max(date) FROM sales") <= seeder::DATE_MAX);
    assert_eq!(one("SELECT min(amount) FROM sales"), 0);
    assert_eq!(one("SELECT max(amount) FROM sales"), 98);
    assert_eq!(one("SELECT count(DISTINCT customer_id) FROM sales"), 150);
    assert_eq!(
        one("SELECT count(DISTINCT store_id * 100 + product_id) FROM sales"),
        672
    );
    assert_eq!(one("SELECT count(DISTINCT category) FROM products"), 8);
    assert_eq!(
        one(
            "SELECT count(*) FROM products WHERE category = 'Computers' AND typeof(price) = 'real'"
        ),
        7
    );
    assert_eq!(
        one("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'sales'"),
        1
    );
    let meta = |key: &str| -> String {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(meta("seed"), "7");
    assert_eq!(meta("sales"), "20000");
    assert_eq!(meta("date_min"), seeder::DATE_MIN.to_string());
    assert_eq!(meta("date_max"), seeder::DATE_MAX.to_string());
    assert_eq!(meta("schema_version"), seeder::SCHEMA_VERSION.to_string());
    // The statistics written from the generator's counts are the ones
    // SQLite's own ANALYZE computes.
    let stat = || -> String {
        conn.query_row(
            "SELECT stat FROM sqlite_stat1 WHERE tbl = 'sales' AND idx = 'sales'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let written = stat();
    conn.execute_batch("ANALYZE sales").unwrap();
    assert_eq!(written, stat());
    // Roughly uniform: each year holds about a sixth of the sales.
    let per_year = one("SELECT count(*) FROM sales WHERE date < 1609459200"); // < 2021
    assert!(
        (2_900..3_800).contains(&per_year),
        "{per_year} sales in 2020"
    );
}

#[test]
fn unwritable_paths_fail_cleanly() {
    let dir = TempDir::new("unwritable");
    let config = Config { sales: 10, seed: 1 };
    let missing_dir = dir.0.join("no/such/dir/database.db");
    let error = seeder::write_database(&missing_dir, &config).unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error}");
    assert!(error.to_string().contains("no/such/dir"), "{error}");
    let error = seeder::write_database(&dir.0, &config).unwrap_err();
    assert!(error.to_string().contains("directory"), "{error}");
    assert!(files_in(&dir.0).is_empty());
}

#[test]
fn cancelling_leaves_the_old_file_untouched() {
    let dir = TempDir::new("cancel");
    let path = dir.0.join("database.db");
    std::fs::write(&path, "previous").unwrap();
    let error = seeder::write_database_with_progress(
        &path,
        &Config {
            sales: 50_000,
            seed: 1,
        },
        |done| {
            if done > 1_000 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .unwrap_err();
    assert!(matches!(error, Error::Cancelled), "{error}");
    assert_eq!(std::fs::read(&path).unwrap(), b"previous");
    assert_eq!(files_in(&dir.0), ["database.db"]);
    // A finished run replaces it.
    seeder::write_database(&path, &Config { sales: 10, seed: 1 }).unwrap();
    assert_ne!(std::fs::read(&path).unwrap(), b"previous");
    assert_eq!(files_in(&dir.0), ["database.db"]);
}
