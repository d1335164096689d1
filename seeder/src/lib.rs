//! Writes the SQLite sales database the study queries.
//!
//! [`write_database`] creates the tables of the design (regions, stores,
//! products, customers, sales, meta), fills them from a seeded generator and
//! renames the finished file into place, so a reader never sees a partial
//! database. The same [`Config`] always yields the same bytes.
//!
//! Data flows: seed → dimension assignments and per-(store, product) sale
//! counts (`generate.rs`) → rows in key order → SQLite
//! (`write.rs`) → temporary file → rename.
//!
//! ```no_run
//! let config = seeder::Config { sales: 10_000, seed: 1 };
//! let summary = seeder::write_database("database.db".as_ref(), &config)?;
//! println!("{} sales in {:?}", summary.sales, summary.elapsed);
//! # Ok::<(), seeder::Error>(())
//! ```
//!
//! `sales` is a `WITHOUT ROWID` table keyed `(store_id, product_id, date,
//! id)`: every filter of the query maps onto store and product id sets and a
//! date range, so the table itself is the covering index the queries seek in.

mod error;
mod generate;
mod names;
mod write;

pub use error::Error;
pub use names::*;
pub use write::{write_database, write_database_with_progress, Progress};

use std::time::Duration;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Number of rows in `sales`.
    pub sales: u64,
    /// Seed of every random choice; same seed and sales, same file.
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Rows in `sales`.
    pub sales: u64,
    /// Rows in all tables, `meta` and SQLite's statistics excluded.
    pub rows: u64,
    /// Wall time from the first byte to the rename.
    pub elapsed: Duration,
    /// Size of the finished file.
    pub bytes: u64,
}
