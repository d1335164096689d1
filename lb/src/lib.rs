//! The gRPC load balancer of the RPC architecture.
//!
//! Clients call the LB as if it were a worker. Each call goes to the healthy
//! worker with the fewest calls outstanding, as raw gRPC bytes over a small
//! pool of HTTP/2 connections, and its reply comes back unchanged:
//!
//! ```text
//! client → proxy (pick, forward, eject + retry once) → backend (worker conns) → worker
//!            ↑ balancer: workers from the resolver, health from the checker
//! ```
//!
//! * [`resolver`]: `host:port` list → addresses, re-resolved periodically;
//! * [`backend`]: one worker: connections, outstanding calls, health, counters;
//! * [`balancer`]: the set of workers and the least-outstanding pick;
//! * [`health`]: the per-worker `grpc.health.v1` checker;
//! * [`proxy`]: the gRPC handler;
//! * [`stats`]: the periodic per-worker summary.

pub mod backend;
pub mod balancer;
pub mod health;
pub mod proxy;
pub mod resolver;
pub mod stats;
