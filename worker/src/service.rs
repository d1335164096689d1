//! The worker's gRPC methods: dispatch on the path, decode, run, encode.
//!
//! * `protocol.SimulationService/GetSalesMetrics`: the query, on the pool.
//! * `protocol.SimulationService/GetSystemStats`: CPU, RSS, calls in flight.
//! * `grpc.health.v1.Health/Check`: SERVING until shutdown begins.
//!
//! Query errors become statuses here, once: the engine's `grpc_code()`
//! and its message, which names the offending field.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use prost::Message;
use proto::grpc::server::Reply;
use proto::grpc::{Code, Handler, Request, Status};
use proto::{
    paths, HealthCheckRequest, HealthCheckResponse, SalesRequest, SalesResponse, ServingStatus,
    SystemStats,
};
use worker::{Pool, QueryError};

use crate::stats::{rss_bytes, CpuMeter};

/// The service name a health check may ask about, besides "" (the server).
const SERVICE_NAME: &str = "protocol.SimulationService";

pub struct Service {
    pool: Pool,
    id: Arc<str>,
    in_flight: Arc<AtomicU32>,
    serving: Arc<AtomicBool>,
    cpu: Mutex<CpuMeter>,
}

impl Service {
    /// `serving` is shared with the signal handler, which clears it when
    /// shutdown begins so health checks report NOT_SERVING.
    pub fn new(pool: Pool, id: &str, serving: Arc<AtomicBool>) -> Service {
        Service {
            pool,
            id: id.into(),
            in_flight: Arc::new(AtomicU32::new(0)),
            serving,
            cpu: Mutex::new(CpuMeter::new()),
        }
    }

    fn sales_metrics(&self, message: &[u8]) -> Reply {
        let req = match decode::<SalesRequest>(message) {
            Ok(req) => req,
            Err(status) => return ready(Err(status)),
        };
        let pool = self.pool.clone();
        let id = self.id.clone();
        let in_flight = InFlight::enter(&self.in_flight);
        Box::pin(async move {
            let _in_flight = in_flight;
            let metrics = pool.query(req).await.map_err(query_status)?;
            Ok(encode(&SalesResponse {
                total_sales_count: metrics.count,
                total_revenue: metrics.revenue,
                average_amount: metrics.average,
                region_processed: id.to_string(),
            }))
        })
    }

    fn system_stats(&self) -> Reply {
        let cpu_usage = match self.cpu.lock() {
            Ok(mut meter) => meter.percent(),
            Err(_) => 0.0,
        };
        ready(Ok(encode(&SystemStats {
            cpu_usage,
            memory_usage: rss_bytes(),
            active_goroutines: self.in_flight.load(Ordering::Relaxed),
        })))
    }

    fn health_check(&self, message: &[u8]) -> Reply {
        let req = match decode::<HealthCheckRequest>(message) {
            Ok(req) => req,
            Err(status) => return ready(Err(status)),
        };
        if !req.service.is_empty() && req.service != SERVICE_NAME {
            return ready(Err(Status::new(
                Code::NotFound,
                format!("unknown service {:?}", req.service),
            )));
        }
        let status = if self.serving.load(Ordering::Acquire) {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        ready(Ok(encode(&HealthCheckResponse {
            status: status as i32,
        })))
    }
}

impl Handler for Service {
    fn call(&self, req: Request) -> Reply {
        match req.path.as_str() {
            paths::GET_SALES_METRICS => self.sales_metrics(&req.message),
            paths::GET_SYSTEM_STATS => self.system_stats(),
            paths::HEALTH_CHECK => self.health_check(&req.message),
            other => ready(Err(Status::unimplemented_method(other))),
        }
    }
}

/// Counts a call in flight until dropped (finished, failed or abandoned).
struct InFlight(Arc<AtomicU32>);

impl InFlight {
    fn enter(counter: &Arc<AtomicU32>) -> InFlight {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn ready(result: Result<Bytes, Status>) -> Reply {
    Box::pin(std::future::ready(result))
}

fn decode<M: Message + Default>(message: &[u8]) -> Result<M, Status> {
    // As grpc-go: a request that is not the declared message is INTERNAL.
    M::decode(message)
        .map_err(|e| Status::new(Code::Internal, format!("cannot decode the request: {e}")))
}

fn encode<M: Message>(message: &M) -> Bytes {
    Bytes::from(message.encode_to_vec())
}

fn query_status(e: QueryError) -> Status {
    Status::new(Code::from_u32(e.grpc_code()), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(service: &Service, path: &str, message: Vec<u8>) -> Result<Bytes, Status> {
        smol::block_on(service.call(Request {
            path: path.into(),
            deadline: None,
            message: message.into(),
        }))
    }

    #[test]
    fn dispatch_health_and_errors() {
        let db = std::env::temp_dir().join(format!("worker-service-{}.db", std::process::id()));
        seeder::write_database(
            &db,
            &seeder::Config {
                sales: 100,
                seed: 1,
            },
        )
        .unwrap();
        let serving = Arc::new(AtomicBool::new(true));
        let service = Service::new(Pool::open(&db, 1).unwrap(), "unit", serving.clone());
        let health = |service: &Service, name: &str| {
            let req = HealthCheckRequest {
                service: name.into(),
            };
            call(service, paths::HEALTH_CHECK, req.encode_to_vec())
                .map(|b| HealthCheckResponse::decode(b).unwrap().status)
        };

        assert_eq!(health(&service, ""), Ok(ServingStatus::Serving as i32));
        serving.store(false, Ordering::Release);
        assert_eq!(
            health(&service, SERVICE_NAME),
            Ok(ServingStatus::NotServing as i32)
        );
        assert_eq!(health(&service, "x").unwrap_err().code, Code::NotFound);

        let rep = call(
            &service,
            paths::GET_SALES_METRICS,
            SalesRequest::default().encode_to_vec(),
        );
        let rep = SalesResponse::decode(rep.unwrap()).unwrap();
        assert_eq!(
            (rep.total_sales_count, rep.region_processed.as_str()),
            (100, "unit")
        );

        let bad = SalesRequest {
            start_hour: Some(-1),
            ..Default::default()
        };
        let err = call(&service, paths::GET_SALES_METRICS, bad.encode_to_vec()).unwrap_err();
        assert_eq!(err.code, Code::InvalidArgument);
        assert!(err.message.contains("start_hour"), "{err}");
        let err = call(&service, paths::GET_SALES_METRICS, vec![0xff, 0xff]).unwrap_err();
        assert_eq!(err.code, Code::Internal);
        let err = call(&service, "/protocol.SimulationService/Other", vec![]).unwrap_err();
        assert_eq!(err.code, Code::Unimplemented);
        assert_eq!(service.in_flight.load(Ordering::Relaxed), 0);
        let _ = std::fs::remove_file(&db);
    }
}
