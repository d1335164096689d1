//! The health checker: one task per worker calls `grpc.health.v1.Health/Check`
//! every interval, puts the worker in rotation when it answers SERVING in
//! time, and takes it out when it does not.
//!
//! Calls that fail eject a worker at once (see `proxy.rs`); the checker is
//! what brings it back, so an ejected worker is probed on the same schedule as
//! a healthy one and returns within one interval of answering again. One
//! failed check is enough to eject: a worker that cannot answer a trivial call
//! within the timeout is dead or drowning, and routing elsewhere is right in
//! both cases.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::grpc::{Code, Status};
use proto::{paths, HealthCheckRequest, HealthCheckResponse, ServingStatus};

use crate::backend::Backend;

/// Checks `backend` now and then every `interval` until it is retired.
pub async fn run(backend: Arc<Backend>, interval: Duration, timeout: Duration) {
    let mut next = Instant::now();
    while !backend.is_retired() {
        match check(&backend, timeout).await {
            Ok(()) => backend.set_healthy(true, "health check passed"),
            Err(reason) => backend.set_healthy(false, &reason),
        };
        // A fixed schedule, not a fixed pause: a slow check does not push
        // the next one back.
        next += interval;
        let now = Instant::now();
        if next < now {
            next = now;
        }
        smol::Timer::at(next).await;
    }
}

/// One health check: Ok when the worker answers SERVING within `timeout`.
pub async fn check(backend: &Backend, timeout: Duration) -> Result<(), String> {
    let req = HealthCheckRequest::default();
    let call = async {
        let reply = backend
            .unary(paths::HEALTH_CHECK, encode(&req), Some(timeout))
            .await?;
        <HealthCheckResponse as prost::Message>::decode(reply)
            .map_err(|e| Status::new(Code::Internal, format!("undecodable health reply: {e}")))
    };
    // The call carries the timeout, but a connect or a stalled peer must not
    // hold the checker beyond it either.
    let expire = async {
        smol::Timer::after(timeout + Duration::from_millis(50)).await;
        Err(Status::new(Code::DeadlineExceeded, "no answer"))
    };
    match smol::future::or(call, expire).await {
        Ok(reply) if reply.status == ServingStatus::Serving as i32 => Ok(()),
        Ok(reply) => Err(format!(
            "health check answered {}",
            ServingStatus::try_from(reply.status)
                .map_or_else(|_| reply.status.to_string(), |s| format!("{s:?}"))
        )),
        Err(s) if s.code == Code::DeadlineExceeded => {
            Err(format!("health check: no answer within {timeout:?}"))
        }
        Err(s) => Err(format!("health check failed: {s}")),
    }
}

fn encode(msg: &impl prost::Message) -> bytes::Bytes {
    msg.encode_to_vec().into()
}
