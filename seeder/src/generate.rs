//! Deterministic generation of the dimension assignments and the sales rows.
//!
//! Sales are produced in the order of the table's key `(store_id, product_id,
//! date)`, so that SQLite builds the B-tree by appending and never sorts. To
//! keep memory flat, a first pass only draws each sale's (store, product)
//! cell and counts it (672 counters); a second pass generates each cell's
//! sales (date, amount, customer) as one small batch and sorts it by date.
//! Drawing a cell per sale and then its attributes gives exactly the same
//! distribution as drawing all of a sale's fields together: every field stays
//! independent and uniform.

use crate::names::{AMOUNT_MAX, CUSTOMERS, DATE_MAX, DATE_MIN, PRODUCTS, REGIONS, STORES};

/// The random half of the dimension tables.
pub(crate) struct Dimensions {
    /// Region index (0-based) of each store.
    pub store_region: [usize; STORES],
    /// Price of each product, in currency units with two decimals.
    pub product_price: [f64; PRODUCTS],
}

/// One sale without its key prefix (store, product) and id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Sale {
    pub date: i64,
    pub amount: i64,
    pub customer: i64,
}

/// The independent random streams of one seed. Separate streams keep the
/// dimensions identical for every `--sales`, and the row stream independent
/// of how the cells were counted.
pub(crate) struct Streams {
    pub dimensions: fastrand::Rng,
    pub cells: fastrand::Rng,
    pub rows: fastrand::Rng,
}

impl Streams {
    pub fn new(seed: u64) -> Streams {
        let mut root = fastrand::Rng::with_seed(seed);
        Streams {
            dimensions: root.fork(),
            cells: root.fork(),
            rows: root.fork(),
        }
    }
}

pub(crate) fn dimensions(rng: &mut fastrand::Rng) -> Dimensions {
    let store_region = std::array::from_fn(|_| rng.usize(..REGIONS.len()));
    // Whole cents from 1.00 to 999.99.
    let product_price = std::array::from_fn(|_| f64::from(rng.u32(100..100_000)) / 100.0);
    Dimensions {
        store_region,
        product_price,
    }
}

/// Number of sales in each (store, product) cell, indexed `store * PRODUCTS +
/// product` (0-based).
pub(crate) fn cell_counts(rng: &mut fastrand::Rng, sales: u64) -> Vec<u64> {
    let mut counts = vec![0u64; STORES * PRODUCTS];
    for _ in 0..sales {
        counts[rng.usize(..STORES * PRODUCTS)] += 1;
    }
    counts
}

/// Replaces `batch` with `count` new sales sorted by date (then amount and
/// customer, so the order never depends on the sort algorithm).
pub(crate) fn cell_sales(rng: &mut fastrand::Rng, count: u64, batch: &mut Vec<Sale>) {
    batch.clear();
    batch.extend((0..count).map(|_| Sale {
        date: rng.i64(DATE_MIN..=DATE_MAX),
        amount: rng.i64(0..=AMOUNT_MAX),
        customer: rng.i64(1..=CUSTOMERS as i64),
    }));
    batch.sort_unstable();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up() {
        let counts = cell_counts(&mut fastrand::Rng::with_seed(7), 10_000);
        assert_eq!(counts.iter().sum::<u64>(), 10_000);
    }

    #[test]
    fn batches_are_sorted_and_in_range() {
        let mut batch = Vec::new();
        cell_sales(&mut fastrand::Rng::with_seed(7), 5_000, &mut batch);
        assert_eq!(batch.len(), 5_000);
        assert!(batch.windows(2).all(|w| w[0].date <= w[1].date));
        assert!(batch.iter().all(|s| (DATE_MIN..=DATE_MAX).contains(&s.date)
            && (0..=AMOUNT_MAX).contains(&s.amount)
            && (1..=CUSTOMERS as i64).contains(&s.customer)));
    }
}
