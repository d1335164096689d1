//! The dimension tables' fixed name lists.
//!
//! Only the assignments (a store's region, a product's price) are random; the
//! names and their order are part of the data contract, so ids are stable:
//! region ids follow [`REGIONS`], store `i` is `STORE_ADJECTIVES[i / 3]` with
//! `STORE_BRANDS[i % 3]`, product `i` is `PRODUCT_ADJECTIVES[i % 7]` with
//! `CATEGORIES[i / 7]`, customer `i` is `FIRST_NAMES[i / 15]` with
//! `LAST_NAMES[i % 15]` (all 0-based; SQL ids are these plus one).

/// Region names; `regions.id` is the position plus one.
pub const REGIONS: [&str; 5] = [
    "North America",
    "South America",
    "Europe",
    "Oceania",
    "Asia",
];

/// Product categories; products `7 * i + 1 ..= 7 * i + 7` belong to category `i`.
pub const CATEGORIES: [&str; 8] = [
    "Appliances",
    "Clothing",
    "Books",
    "Miscellaneous",
    "Kitchenware",
    "Computers",
    "Furniture",
    "Beauty",
];

/// First half of a store's name.
pub const STORE_ADJECTIVES: [&str; 4] = ["Central", "Downtown", "Harbor", "Uptown"];

/// Second half of a store's name.
pub const STORE_BRANDS: [&str; 3] = ["Mart", "Outlet", "Emporium"];

/// First half of a product's name; the second half is its category.
pub const PRODUCT_ADJECTIVES: [&str; 7] = [
    "Classic", "Deluxe", "Eco", "Compact", "Premium", "Smart", "Vintage",
];

/// Customers' first names.
pub const FIRST_NAMES: [&str; 10] = [
    "Alice", "Bruno", "Chen", "Dara", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jamal",
];

/// Customers' last names.
pub const LAST_NAMES: [&str; 15] = [
    "Garcia", "Smith", "Kowalski", "Tanaka", "Okafor", "Muller", "Rossi", "Silva", "Novak",
    "Dubois", "Larsen", "Kim", "Patel", "Moreau", "Olsen",
];

/// Number of stores (every adjective with every brand).
pub const STORES: usize = STORE_ADJECTIVES.len() * STORE_BRANDS.len();

/// Number of products (every adjective in every category).
pub const PRODUCTS: usize = PRODUCT_ADJECTIVES.len() * CATEGORIES.len();

/// Number of customers (every first name with every last name).
pub const CUSTOMERS: usize = FIRST_NAMES.len() * LAST_NAMES.len();

/// First second of the sales date range: 2020-01-01 00:00:00 UTC.
pub const DATE_MIN: i64 = 1_577_836_800;

/// Last second of the sales date range: 2025-12-31 23:59:59 UTC.
pub const DATE_MAX: i64 = 1_767_225_599;

/// The largest `sales.amount`; amounts are uniform over `0..=AMOUNT_MAX`.
pub const AMOUNT_MAX: i64 = 98;

/// Written to `meta.schema_version`; bumped whenever tables, columns or the
/// sales key change, so workers refuse a database they cannot query.
pub const SCHEMA_VERSION: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_range_is_2020_through_2025() {
        // 2020-01-01 is 18262 days after the epoch; six years with two leap days.
        assert_eq!(DATE_MIN, 18_262 * 86_400);
        assert_eq!(DATE_MAX + 1 - DATE_MIN, (6 * 365 + 2) * 86_400);
    }

    #[test]
    fn dimension_sizes() {
        assert_eq!((STORES, PRODUCTS, CUSTOMERS), (12, 56, 150));
    }
}
