//! From a [`Query`] to one SQL statement with bound parameters.
//!
//! `sales` is clustered on `(store_id, product_id, date, id)` (see the
//! seeder), so every statement constrains those three columns: the region
//! selects stores, category and product keyword select products, and an
//! open date range is the widest one. SQLite then seeks once per selected
//! (store, product) pair straight to the date window and reads only the
//! rows that can match; hour, amount and buyer are checked on those rows. `tests/engine_plan.rs` proves the plan of every shape.
//!
//! Keywords use `instr(lower(column), ?)` with an ASCII-lowercased keyword:
//! SQLite's `lower()` folds ASCII only, exactly the contract, and `instr`
//! has no wildcards, so `%` and `_` are literal without escaping.

use crate::request::Query;

/// Which optional filters a query has; one statement text per shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape(u8);

impl Shape {
    const REGION: u8 = 1;
    const CATEGORY: u8 = 2;
    const PRODUCT_KEYWORD: u8 = 4;
    const BUYER_KEYWORD: u8 = 8;
    const HOURS: u8 = 16;
    const AMOUNTS: u8 = 32;
    /// Number of distinct shapes.
    pub const COUNT: usize = 64;

    pub fn of(query: &Query) -> Shape {
        let mut bits = 0;
        for (present, bit) in [
            (query.region.is_some(), Self::REGION),
            (query.category.is_some(), Self::CATEGORY),
            (query.product_keyword.is_some(), Self::PRODUCT_KEYWORD),
            (query.buyer_keyword.is_some(), Self::BUYER_KEYWORD),
            (query.seconds_of_day.is_some(), Self::HOURS),
            (query.amounts.is_some(), Self::AMOUNTS),
        ] {
            if present {
                bits |= bit;
            }
        }
        Shape(bits)
    }

    /// Every shape, for tests and for warming a connection's cache.
    pub fn all() -> impl Iterator<Item = Shape> {
        (0..Self::COUNT as u8).map(Shape)
    }

    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// The statement text. Parameters are numbered in the order [`bind`]
    /// binds them.
    ///
    /// `CROSS JOIN` fixes the loop order: for each store of the region, for
    /// each product of the category, one seek into `sales` on (store,
    /// product, date range). The dimension loops cost a few comparisons
    /// (12 stores, 56 products); no temporary tables are built per query.
    pub fn sql(self) -> String {
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("?{n}")
        };
        let mut filters = Vec::new();
        if self.has(Self::REGION) {
            filters.push(format!(
                "st.region_id = (SELECT id FROM regions WHERE name = {})",
                next()
            ));
        }
        if self.has(Self::CATEGORY) {
            filters.push(format!("p.category = {}", next()));
        }
        if self.has(Self::PRODUCT_KEYWORD) {
            filters.push(format!("instr(lower(p.name), {}) > 0", next()));
        }
        filters.push("s.store_id = st.id AND s.product_id = p.id".to_owned());
        if self.has(Self::BUYER_KEYWORD) {
            let keyword = next();
            filters.push(format!(
                "s.customer_id IN (SELECT id FROM customers WHERE \
                 instr(lower(first_name), {keyword}) > 0 OR instr(lower(last_name), {keyword}) > 0)"
            ));
        }
        filters.push(format!("s.date BETWEEN {} AND {}", next(), next()));
        if self.has(Self::HOURS) {
            // Sales are after 1970, so the remainder is the second of the day.
            filters.push(format!("s.date % 86400 BETWEEN {} AND {}", next(), next()));
        }
        if self.has(Self::AMOUNTS) {
            filters.push(format!("s.amount BETWEEN {} AND {}", next(), next()));
        }
        format!(
            "SELECT count(*), coalesce(sum(s.amount), 0) \
             FROM stores AS st CROSS JOIN products AS p CROSS JOIN sales AS s \
             WHERE {}",
            filters.join(" AND ")
        )
    }
}

/// Binds `query`'s values to a statement prepared from `Shape::of(query).sql()`.
pub fn bind(stmt: &mut rusqlite::Statement<'_>, query: &Query) -> rusqlite::Result<()> {
    let mut n = 0;
    let mut text = |stmt: &mut rusqlite::Statement<'_>, value: &Option<String>| {
        if let Some(value) = value {
            n += 1;
            stmt.raw_bind_parameter(n, value.as_str())?;
        }
        Ok::<_, rusqlite::Error>(())
    };
    text(stmt, &query.region)?;
    text(stmt, &query.category)?;
    text(stmt, &query.product_keyword)?;
    text(stmt, &query.buyer_keyword)?;
    let ranges = [Some(query.dates), query.seconds_of_day, query.amounts];
    for (low, high) in ranges.into_iter().flatten() {
        stmt.raw_bind_parameter(n + 1, low)?;
        stmt.raw_bind_parameter(n + 2, high)?;
        n += 2;
    }
    Ok(())
}
