//! Protobuf message types of `sales.proto` and `grpc/health/v1/health.proto`.
//!
//! Derived by hand with `prost` so that no `protoc` is needed at build time.
//! `tests/schema.rs` compiles the `.proto` files with an independent compiler
//! and proves these types encode and decode the same bytes.

/// A query for sales metrics; every empty or unset field is no filter.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct SalesRequest {
    #[prost(string, tag = "1")]
    pub region: String,
    #[prost(string, tag = "2")]
    pub category: String,
    #[prost(string, tag = "3")]
    pub start_date: String,
    #[prost(string, tag = "4")]
    pub end_date: String,
    #[prost(int64, tag = "5")]
    pub min_amount: i64,
    #[prost(int64, tag = "6")]
    pub max_amount: i64,
    #[prost(string, tag = "7")]
    pub product_keyword: String,
    #[prost(string, tag = "8")]
    pub buyer_keyword: String,
    #[prost(int32, optional, tag = "9")]
    pub start_hour: Option<i32>,
    #[prost(int32, optional, tag = "10")]
    pub end_hour: Option<i32>,
}

/// Aggregated metrics for the sales a [`SalesRequest`] selects.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SalesResponse {
    #[prost(int64, tag = "1")]
    pub total_sales_count: i64,
    #[prost(int64, tag = "2")]
    pub total_revenue: i64,
    #[prost(double, tag = "3")]
    pub average_amount: f64,
    /// The id of the worker that served the request.
    #[prost(string, tag = "4")]
    pub region_processed: String,
}

/// No fields.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Empty {}

/// Resource usage of the serving process.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SystemStats {
    /// Process CPU usage in percent of one core since the previous call.
    #[prost(double, tag = "1")]
    pub cpu_usage: f64,
    /// Resident set size in bytes.
    #[prost(uint64, tag = "2")]
    pub memory_usage: u64,
    /// Named after the seed's goroutine count; ours is requests in flight.
    #[prost(uint32, tag = "3")]
    pub active_goroutines: u32,
}

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct HealthCheckResponse {
    #[prost(enumeration = "ServingStatus", tag = "1")]
    pub status: i32,
}

/// `grpc.health.v1.HealthCheckResponse.ServingStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ServingStatus {
    Unknown = 0,
    Serving = 1,
    NotServing = 2,
    ServiceUnknown = 3,
}

/// Full method paths, as they appear in the HTTP/2 `:path` header.
pub mod paths {
    pub const GET_SALES_METRICS: &str = "/protocol.SimulationService/GetSalesMetrics";
    pub const GET_SYSTEM_STATS: &str = "/protocol.SimulationService/GetSystemStats";
    pub const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
}
