//! The LB's request handler: pick a worker, forward the raw message, and on a
//! failed worker eject it and retry once on another.
//!
//! Messages are forwarded as bytes, never decoded: the LB does not need to
//! understand a query to route it, and any method the workers serve passes
//! through (an unknown one gets the worker's UNIMPLEMENTED). The one method
//! the LB answers itself is `grpc.health.v1.Health/Check`, about the LB.
//!
//! Retrying is safe because every method behind the LB is a read-only query,
//! and sound because the reply is buffered whole: a call that failed on a
//! worker has sent nothing to the client yet. Only UNAVAILABLE (refused,
//! reset, GOAWAY, connection closed, or a worker saying it cannot serve) is
//! retried; an expired deadline or an application status is the answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proto::grpc::{Code, Handler, Request, Status};
use proto::{paths, HealthCheckRequest, HealthCheckResponse, ServingStatus};

use crate::backend::Backend;
use crate::balancer::Balancer;

/// Services the LB's own health check answers for: the server as a whole
/// ("") and the service it fronts.
const HEALTH_SERVICES: [&str; 2] = ["", "protocol.SimulationService"];

#[derive(Clone)]
pub struct Proxy {
    balancer: Arc<Balancer>,
    default_timeout: Option<Duration>,
}

impl Proxy {
    /// `default_timeout` bounds calls whose client sent no deadline, so a hung
    /// worker cannot hold them forever.
    pub fn new(balancer: Arc<Balancer>, default_timeout: Option<Duration>) -> Proxy {
        Proxy {
            balancer,
            default_timeout,
        }
    }

    async fn forward(self, req: Request) -> Result<Bytes, Status> {
        let deadline = req
            .deadline
            .or_else(|| self.default_timeout.map(|t| Instant::now() + t));
        let first = self.balancer.pick(None).ok_or_else(|| self.no_worker())?;
        let status = match self.attempt(&first, &req, deadline).await {
            Ok(reply) => return Ok(reply),
            Err(status) if status.code == Code::Unavailable => status,
            Err(status) => return Err(status),
        };
        eject(&first, &status);
        match self.balancer.pick(Some(&first)) {
            Some(second) => {
                let result = self.attempt(&second, &req, deadline).await;
                if let Err(status) = &result {
                    if status.code == Code::Unavailable {
                        eject(&second, status);
                    }
                }
                result
            }
            None => Err(Status::new(
                Code::Unavailable,
                format!(
                    "{}; no other healthy worker among {}",
                    status.message,
                    self.balancer.len()
                ),
            )),
        }
    }

    /// One try on one worker, with the time left until the deadline.
    async fn attempt(
        &self,
        backend: &Arc<Backend>,
        req: &Request,
        deadline: Option<Instant>,
    ) -> Result<Bytes, Status> {
        let timeout = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Err(Status::new(Code::DeadlineExceeded, "deadline exceeded")),
            },
            None => None,
        };
        let call = backend.begin();
        let result = backend.unary(&req.path, req.message.clone(), timeout).await;
        if let Err(status) = &result {
            call.failed();
            log::debug!("{} on {}: {status}", req.path, backend.addr());
        }
        result
    }

    fn no_worker(&self) -> Status {
        Status::new(
            Code::Unavailable,
            format!("no healthy worker among {}", self.balancer.len()),
        )
    }

    /// The LB's own health: SERVING while at least one worker is healthy.
    fn health(&self, message: &[u8]) -> Result<Bytes, Status> {
        let req = <HealthCheckRequest as prost::Message>::decode(message).map_err(|e| {
            Status::new(
                Code::InvalidArgument,
                format!("undecodable HealthCheckRequest: {e}"),
            )
        })?;
        if !HEALTH_SERVICES.contains(&req.service.as_str()) {
            return Err(Status::new(
                Code::NotFound,
                format!("unknown service {:?}", req.service),
            ));
        }
        let status = if self.balancer.any_healthy() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        let reply = HealthCheckResponse {
            status: status as i32,
        };
        Ok(prost::Message::encode_to_vec(&reply).into())
    }
}

/// Takes a worker out of rotation after a failed call; the health checker
/// brings it back.
fn eject(backend: &Backend, status: &Status) {
    backend.set_healthy(false, &format!("call failed: {}", status.message));
}

impl Handler for Proxy {
    fn call(
        &self,
        req: Request,
    ) -> Pin<Box<dyn Future<Output = Result<Bytes, Status>> + Send + 'static>> {
        if req.path == paths::HEALTH_CHECK {
            let reply = self.health(&req.message);
            return Box::pin(std::future::ready(reply));
        }
        Box::pin(self.clone().forward(req))
    }
}
