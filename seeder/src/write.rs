//! Writing the database: a temporary file beside the target, filled in one
//! transaction with journaling off, then renamed into place.

use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use rusqlite::{Connection, OpenFlags};

use crate::generate::{self, Dimensions, Sale, Streams};
use crate::names::*;
use crate::{Config, Error, Summary};

/// Called with the number of sales written so far; `Break` cancels the run
/// (the temporary file is removed and [`Error::Cancelled`] returned).
pub trait Progress: FnMut(u64) -> ControlFlow<()> {}
impl<F: FnMut(u64) -> ControlFlow<()>> Progress for F {}

const SCHEMA: &str = "
CREATE TABLE regions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE stores (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    region_id INTEGER NOT NULL REFERENCES regions (id)
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price REAL NOT NULL
);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL
);
-- Clustered on the query key: every filter becomes store and product id sets
-- and a date range, so queries seek straight to the matching rows and read
-- nothing else (the table is its own covering index).
CREATE TABLE sales (
    id INTEGER NOT NULL,
    date INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    store_id INTEGER NOT NULL REFERENCES stores (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    PRIMARY KEY (store_id, product_id, date, id)
) WITHOUT ROWID;
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// Writes the database for `config` to `path`, replacing any file there.
pub fn write_database(path: &Path, config: &Config) -> Result<Summary, Error> {
    write_database_with_progress(path, config, |_| ControlFlow::Continue(()))
}

/// [`write_database`], reporting progress after every batch of sales.
pub fn write_database_with_progress(
    path: &Path,
    config: &Config,
    mut progress: impl Progress,
) -> Result<Summary, Error> {
    let started = Instant::now();
    if i64::try_from(config.sales).is_err() {
        return Err(Error::Config(format!(
            "{} sales do not fit SQLite's 64-bit ids",
            config.sales
        )));
    }
    if path.is_dir() {
        return Err(Error::Io {
            action: "write the database to",
            path: path.to_owned(),
            source: std::io::Error::other("it is a directory"),
        });
    }
    let temp = TempFile::create(path)?;
    let sqlite = |action| {
        let path = temp.path.clone();
        move |source| Error::Sqlite {
            action,
            path,
            source,
        }
    };

    let mut conn = Connection::open_with_flags(
        &temp.path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite("open the database"))?;
    // Nothing to recover from: a failed run is deleted, so no journal, no
    // fsync, no lock traffic.
    conn.execute_batch(
        "PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         PRAGMA locking_mode = EXCLUSIVE;
         PRAGMA foreign_keys = OFF;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -32768;",
    )
    .map_err(sqlite("configure the connection"))?;

    let mut streams = Streams::new(config.seed);
    let dims = generate::dimensions(&mut streams.dimensions);
    let tx = conn.transaction().map_err(sqlite("begin"))?;
    tx.execute_batch(SCHEMA)
        .map_err(sqlite("create the tables"))?;
    let dimension_rows = insert_dimensions(&tx, &dims).map_err(sqlite("insert dimensions"))?;
    log::debug!("schema and dimensions: {:?}", started.elapsed());
    let counts = generate::cell_counts(&mut streams.cells, config.sales);
    match insert_sales(&tx, &counts, &mut streams.rows, &mut progress) {
        Ok(ControlFlow::Continue(())) => {}
        Ok(ControlFlow::Break(())) => return Err(Error::Cancelled),
        Err(e) => return Err(sqlite("insert sales")(e)),
    }
    log::debug!("sales inserted: {:?}", started.elapsed());
    insert_meta(&tx, config).map_err(sqlite("insert meta"))?;
    analyze(&tx, &counts).map_err(sqlite("analyze the tables"))?;
    log::debug!("analyzed: {:?}", started.elapsed());
    tx.commit().map_err(sqlite("commit"))?;
    conn.close()
        .map_err(|(_, e)| sqlite("close the database")(e))?;

    log::debug!("closed: {:?}", started.elapsed());
    let bytes = temp.persist(path)?;
    Ok(Summary {
        sales: config.sales,
        rows: config.sales + dimension_rows,
        elapsed: started.elapsed(),
        bytes,
    })
}

fn insert_dimensions(tx: &Connection, dims: &Dimensions) -> rusqlite::Result<u64> {
    let mut rows = 0;
    let mut stmt = tx.prepare("INSERT INTO regions (id, name) VALUES (?1, ?2)")?;
    for (i, name) in REGIONS.iter().enumerate() {
        rows += stmt.execute((i + 1, name))? as u64;
    }
    let mut stmt = tx.prepare("INSERT INTO stores (id, name, region_id) VALUES (?1, ?2, ?3)")?;
    for (i, region) in dims.store_region.iter().enumerate() {
        let name = format!(
            "{} {}",
            STORE_ADJECTIVES[i / STORE_BRANDS.len()],
            STORE_BRANDS[i % STORE_BRANDS.len()]
        );
        rows += stmt.execute((i + 1, name, region + 1))? as u64;
    }
    let mut stmt =
        tx.prepare("INSERT INTO products (id, name, category, price) VALUES (?1, ?2, ?3, ?4)")?;
    for (i, price) in dims.product_price.iter().enumerate() {
        let category = CATEGORIES[i / PRODUCT_ADJECTIVES.len()];
        let name = format!(
            "{} {category}",
            PRODUCT_ADJECTIVES[i % PRODUCT_ADJECTIVES.len()]
        );
        rows += stmt.execute((i + 1, name, category, price))? as u64;
    }
    let mut stmt =
        tx.prepare("INSERT INTO customers (id, first_name, last_name) VALUES (?1, ?2, ?3)")?;
    for i in 0..CUSTOMERS {
        let first = FIRST_NAMES[i / LAST_NAMES.len()];
        let last = LAST_NAMES[i % LAST_NAMES.len()];
        rows += stmt.execute((i + 1, first, last))? as u64;
    }
    Ok(rows)
}

/// Sales per `INSERT` statement: binding many rows per execution spreads
/// the statement's fixed cost (reset, VDBE startup, opening the cursor).
const ROWS_PER_INSERT: usize = 64;

/// An `INSERT` of `rows` sales of one (store, product) cell with
/// consecutive ids: `?1` is the first id, `?2` the store, `?3` the product,
/// then date, amount and customer per row. Binding three values per row
/// instead of six is a tenth of the seeder's time.
fn insert_statement(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|k| {
            let p = 4 + 3 * k;
            format!("(?1 + {k}, ?{p}, ?{}, ?2, ?3, ?{})", p + 1, p + 2)
        })
        .collect();
    format!(
        "INSERT INTO sales (id, date, amount, store_id, product_id, customer_id) VALUES {}",
        values.join(", ")
    )
}

/// Inserts the sales cell by cell in key order; ids follow insertion order.
///
/// A second thread generates and sorts the next cells' sales while this one
/// feeds SQLite; batches go back to it for reuse, so a handful of cell
/// batches is all the memory the run holds, whatever the number of sales.
fn insert_sales(
    tx: &Connection,
    counts: &[u64],
    rng: &mut fastrand::Rng,
    progress: &mut impl Progress,
) -> rusqlite::Result<ControlFlow<()>> {
    let mut many = tx.prepare(&insert_statement(ROWS_PER_INSERT))?;
    let mut one = tx.prepare(&insert_statement(1))?;
    std::thread::scope(|scope| {
        let (generated, batches) = mpsc::sync_channel::<Vec<Sale>>(4);
        let (recycle, used) = mpsc::channel::<Vec<Sale>>();
        scope.spawn(move || {
            for &count in counts {
                let mut batch = used.try_recv().unwrap_or_default();
                generate::cell_sales(rng, count, &mut batch);
                if generated.send(batch).is_err() {
                    return; // the writer stopped early
                }
            }
        });
        let mut next_id: i64 = 1;
        let mut done = 0u64;
        for (cell, batch) in batches.iter().enumerate() {
            let store = (cell / PRODUCTS + 1) as i64;
            let product = (cell % PRODUCTS + 1) as i64;
            let mut chunks = batch.chunks_exact(ROWS_PER_INSERT);
            for chunk in &mut chunks {
                insert_chunk(&mut many, next_id, store, product, chunk)?;
                next_id += chunk.len() as i64;
            }
            for sale in chunks.remainder() {
                insert_chunk(
                    &mut one,
                    next_id,
                    store,
                    product,
                    std::slice::from_ref(sale),
                )?;
                next_id += 1;
            }
            done += batch.len() as u64;
            let _ = recycle.send(batch);
            if progress(done).is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    })
}

fn insert_chunk(
    stmt: &mut rusqlite::Statement<'_>,
    first_id: i64,
    store: i64,
    product: i64,
    sales: &[Sale],
) -> rusqlite::Result<()> {
    stmt.raw_bind_parameter(1, first_id)?;
    stmt.raw_bind_parameter(2, store)?;
    stmt.raw_bind_parameter(3, product)?;
    for (k, sale) in sales.iter().enumerate() {
        let p = 4 + 3 * k;
        stmt.raw_bind_parameter(p, sale.date)?;
        stmt.raw_bind_parameter(p + 1, sale.amount)?;
        stmt.raw_bind_parameter(p + 2, sale.customer)?;
    }
    stmt.raw_execute().map(drop)
}

/// Planner statistics. The small tables are analyzed by SQLite; for
/// `sales` the counts per key prefix are known from generation, so its
/// `sqlite_stat1` row is written directly instead of scanning the table
/// (which would cost a third of the run). Same inputs, same row.
fn analyze(tx: &Connection, counts: &[u64]) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ANALYZE regions; ANALYZE stores; ANALYZE products; ANALYZE customers; ANALYZE meta;",
    )?;
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return Ok(());
    }
    // Average rows per distinct key prefix, rounded up as ANALYZE does;
    // (store, product, date) is as good as unique.
    let per = |distinct: usize| total.div_ceil(distinct.max(1) as u64);
    let stores = counts
        .chunks(PRODUCTS)
        .filter(|cells| cells.iter().any(|&n| n > 0))
        .count();
    let cells = counts.iter().filter(|&&n| n > 0).count();
    let stat = format!("{total} {} {} 1 1", per(stores), per(cells));
    tx.execute(
        "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ('sales', 'sales', ?1)",
        [stat],
    )?;
    Ok(())
}

fn insert_meta(tx: &Connection, config: &Config) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare("INSERT INTO meta (key, value) VALUES (?1, ?2)")?;
    // No timestamps or host names: the file must be a pure function of the
    // configuration.
    for (key, value) in [
        ("schema_version", SCHEMA_VERSION.to_string()),
        ("seed", config.seed.to_string()),
        ("sales", config.sales.to_string()),
        ("date_min", DATE_MIN.to_string()),
        ("date_max", DATE_MAX.to_string()),
    ] {
        stmt.execute((key, value))?;
    }
    Ok(())
}

/// The temporary database beside the target; removed on drop unless it was
/// renamed into place.
struct TempFile {
    path: PathBuf,
    persisted: bool,
}

impl TempFile {
    fn create(target: &Path) -> Result<TempFile, Error> {
        let name = target
            .file_name()
            .ok_or_else(|| Error::Config(format!("{} does not name a file", target.display())))?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".tmp-{}", std::process::id()));
        let path = target.with_file_name(temp_name);
        // create_new: fail clearly on an unwritable directory, and never
        // write into a file someone else is using.
        let _ = fs::remove_file(&path);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| Error::Io {
                action: "create the temporary database",
                path: path.clone(),
                source,
            })?;
        Ok(TempFile {
            path,
            persisted: false,
        })
    }

    /// Renames the file to `target`; returns its size.
    fn persist(mut self, target: &Path) -> Result<u64, Error> {
        let bytes = fs::metadata(&self.path)
            .map_err(|source| Error::Io {
                action: "measure",
                path: self.path.clone(),
                source,
            })?
            .len();
        fs::rename(&self.path, target).map_err(|source| Error::Io {
            action: "move the finished database to",
            path: target.to_owned(),
            source,
        })?;
        self.persisted = true;
        Ok(bytes)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}
