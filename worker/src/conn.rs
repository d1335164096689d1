//! One read-only SQLite connection that answers queries, and the checks
//! that the file is a database this engine can serve.

use std::path::Path;
use std::sync::Once;

use rusqlite::{Connection, OpenFlags};

use crate::error::{OpenError, QueryError};
use crate::request::{validate, Query};
use crate::sql::{self, Shape};
use crate::{Metrics, SalesRequest};

/// The `meta.schema_version` this engine queries (the seeder's
/// `SCHEMA_VERSION`; a test keeps the two equal).
pub const SCHEMA_VERSION: u32 = 1;

/// What the seeder recorded in `meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbInfo {
    pub sales: u64,
    pub seed: u64,
    /// First second of the sales date range (Unix seconds).
    pub date_min: i64,
    /// Last second of the sales date range (Unix seconds).
    pub date_max: i64,
}

/// Opens `path` and checks that it is a database of the schema this engine
/// queries; returns its `meta`.
pub fn open_info(path: &Path) -> Result<DbInfo, OpenError> {
    let conn = open_read_only(path)?;
    read_info(&conn, path)
}

/// A blocking, read-only connection with a prepared statement cached per
/// query shape. Not shared between threads: the [`Pool`](crate::Pool) gives
/// each of its threads one.
pub struct QueryConn {
    conn: Connection,
    /// Statement text per shape, built on first use; the text is also the
    /// key of rusqlite's statement cache.
    sql: Vec<Option<Box<str>>>,
}

impl QueryConn {
    pub fn open(path: &Path) -> Result<QueryConn, OpenError> {
        let conn = open_read_only(path)?;
        read_info(&conn, path)?;
        conn.set_prepared_statement_cache_capacity(Shape::COUNT);
        Ok(QueryConn {
            conn,
            sql: vec![None; Shape::COUNT],
        })
    }

    /// Validates and answers one request.
    pub fn run(&mut self, req: &SalesRequest) -> Result<Metrics, QueryError> {
        let query = validate(req)?;
        self.run_query(&query)
    }

    /// Answers an already validated query with one statement.
    pub fn run_query(&mut self, query: &Query) -> Result<Metrics, QueryError> {
        let shape = Shape::of(query);
        let sql = self.sql[shape.index()].get_or_insert_with(|| shape.sql().into_boxed_str());
        let internal = |e: rusqlite::Error| QueryError::Internal(e.to_string());
        let mut stmt = self.conn.prepare_cached(sql).map_err(internal)?;
        sql::bind(&mut stmt, query).map_err(internal)?;
        let mut rows = stmt.raw_query();
        let row = rows
            .next()
            .map_err(internal)?
            .ok_or_else(|| QueryError::Internal("aggregate returned no row".into()))?;
        let count: i64 = row.get(0).map_err(internal)?;
        let revenue: i64 = row.get(1).map_err(internal)?;
        Ok(Metrics::new(count, revenue))
    }

    /// The query plan SQLite chose for `query`, one line per step, as
    /// `EXPLAIN QUERY PLAN` reports it.
    pub fn explain(&mut self, query: &Query) -> Result<Vec<String>, QueryError> {
        let internal = |e: rusqlite::Error| QueryError::Internal(e.to_string());
        let sql = format!("EXPLAIN QUERY PLAN {}", Shape::of(query).sql());
        let mut stmt = self.conn.prepare(&sql).map_err(internal)?;
        sql::bind(&mut stmt, query).map_err(internal)?;
        let mut rows = stmt.raw_query();
        let mut plan = Vec::new();
        while let Some(row) = rows.next().map_err(internal)? {
            plan.push(row.get::<_, String>(3).map_err(internal)?);
        }
        Ok(plan)
    }
}

/// Process-wide SQLite settings, applied before the first connection.
fn configure_sqlite() {
    static CONFIGURE: Once = Once::new();
    CONFIGURE.call_once(|| {
        // Memory statistics take a global mutex on every allocation, which
        // serializes the pool's threads; nothing here reads them. This only
        // works before SQLite initializes (it fails harmlessly after, e.g.
        // when the seeder ran first in the same process).
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int argument; SQLite
        // rejects the call with SQLITE_MISUSE once initialized.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                0 as std::ffi::c_int,
            )
        };
        if rc != rusqlite::ffi::SQLITE_OK {
            log::debug!("SQLite memory statistics stay on (sqlite3_config: {rc})");
        }
    });
}

fn open_read_only(path: &Path) -> Result<Connection, OpenError> {
    configure_sqlite();
    let shown = path.display();
    let hint = format!("run `seeder --db {shown}` first");
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err(OpenError(format!("{shown} is not a file; {hint}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(OpenError(format!("{shown}: no such file; {hint}")))
        }
        Err(e) => return Err(OpenError(format!("cannot read {shown}: {e}"))),
    }
    // immutable=1: the seeder never changes a published file (it renames a
    // new one into place), so readers skip all file locking and change
    // detection, which would otherwise cost system calls on every query.
    let uri = format!("file:{}?immutable=1", uri_path(path));
    let conn = Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|e| OpenError(format!("cannot open {shown}: {e}; {hint}")))?;
    // Map the file: pages are read in place instead of copied into each
    // connection's cache. SQLite caps this at its compile-time maximum.
    conn.execute_batch("PRAGMA mmap_size = 17179869184; PRAGMA cache_size = -16384;")
        .map_err(|e| OpenError(format!("{shown} is not a sales database ({e}); {hint}")))?;
    Ok(conn)
}

fn read_info(conn: &Connection, path: &Path) -> Result<DbInfo, OpenError> {
    let version: u32 = meta_value(conn, path, "schema_version")?;
    if version != SCHEMA_VERSION {
        return Err(OpenError(format!(
            "{} has schema version {version}, this worker needs {SCHEMA_VERSION}; run `seeder --db {0}` to rebuild it",
            path.display()
        )));
    }
    Ok(DbInfo {
        sales: meta_value(conn, path, "sales")?,
        seed: meta_value(conn, path, "seed")?,
        date_min: meta_value(conn, path, "date_min")?,
        date_max: meta_value(conn, path, "date_max")?,
    })
}

/// `meta.<key>` parsed as a number.
fn meta_value<T: std::str::FromStr>(
    conn: &Connection,
    path: &Path,
    key: &str,
) -> Result<T, OpenError> {
    let shown = path.display();
    let rebuild = format!("run `seeder --db {shown}` to rebuild it");
    let text: String = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
            row.get(0)
        })
        .map_err(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => {
                OpenError(format!("{shown} has no meta.{key}; {rebuild}"))
            }
            e => OpenError(format!("{shown} is not a sales database ({e}); {rebuild}")),
        })?;
    text.parse().map_err(|_| {
        OpenError(format!(
            "{shown}: meta.{key} = {text:?} is not a number; {rebuild}"
        ))
    })
}

/// `path` as the path part of a `file:` URI: absolute, with the characters
/// URIs reserve percent-encoded.
fn uri_path(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut out = String::new();
    for &b in absolute.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_version_matches_the_seeder() {
        assert_eq!(super::SCHEMA_VERSION, seeder::SCHEMA_VERSION);
    }

    #[test]
    fn uri_escapes_reserved_characters() {
        let uri = super::uri_path(std::path::Path::new("/tmp/a b?c#d%e.db"));
        assert_eq!(uri, "/tmp/a%20b%3Fc%23d%25e.db");
    }
}
