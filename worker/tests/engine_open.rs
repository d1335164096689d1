//! Opening a database: a missing file, something that is not a database or
//! a database of another schema is refused with a message telling the user
//! to run the seeder; a good one reports its `meta`.

mod engine_support;

use engine_support::{seed, TempDir};
use worker::{open_info, DbInfo, Pool, QueryConn};

fn refusal(path: &std::path::Path) -> String {
    let message = open_info(path).expect_err("must refuse").to_string();
    assert!(message.contains("seeder --db"), "{message}");
    assert!(QueryConn::open(path).is_err());
    assert!(Pool::open(path, 1).is_err());
    message
}

#[test]
fn missing_file() {
    let dir = TempDir::new("open-missing");
    let message = refusal(&dir.path().join("database.db"));
    assert!(message.contains("no such file"), "{message}");
}

#[test]
fn a_directory_or_a_text_file() {
    let dir = TempDir::new("open-garbage");
    refusal(dir.path());
    let text = dir.path().join("notes.db");
    std::fs::write(
        &text,
        "not a database at all, but long enough to have a header",
    )
    .unwrap();
    refusal(&text);
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, "").unwrap();
    refusal(&empty);
}

#[test]
fn another_schema() {
    let dir = TempDir::new("open-schema");
    let path = seed(&dir, 100, 1);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE meta SET value = '0' WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let message = refusal(&path);
    assert!(message.contains("schema version 0"), "{message}");

    let other = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&other).unwrap();
    conn.execute_batch("CREATE TABLE sales (id INTEGER PRIMARY KEY, date INTEGER);")
        .unwrap();
    drop(conn);
    refusal(&other);
}

#[test]
fn meta_of_a_seeded_database() {
    let dir = TempDir::new("open-meta");
    let path = seed(&dir, 1_234, 77);
    assert_eq!(
        open_info(&path).unwrap(),
        DbInfo {
            sales: 1_234,
            seed: 77,
            date_min: seeder::DATE_MIN,
            date_max: seeder::DATE_MAX,
        }
    );
    let mut conn = QueryConn::open(&path).unwrap();
    let all = conn.run(&Default::default()).unwrap();
    assert_eq!(all.count, 1_234);
}
