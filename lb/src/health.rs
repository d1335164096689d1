//! The health checker: one task per worker calls `grpc.health.v1.Health/Check`
//! every interval, puts the worker in rotation when it answers SERVING in
//! time, and takes it out when it does not.
//!
//! Calls that fail eject a worker at once (see `proxy.rs`); the checker is
//! what brings it back, so an ejected worker is probed on the same schedule as
//! a healthy one and returns within one interval of answering again.
//!
//! A check that is refused, reset or answered NOT_SERVING ejects at once: the
//! worker is gone or going. A check that merely times out ejects only when the
//! previous one timed out too: on a machine saturated by a benchmark, one slow
//! answer is more likely scheduling noise than a dead worker, and ejecting
//! every worker on the same hiccup would turn overload into an outage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::grpc::{Code, Status};
use proto::{paths, HealthCheckRequest, HealthCheckResponse, ServingStatus};

use crate::backend::Backend;

/// Checks `backend` now and then every `interval` until it is retired.
pub async fn run(backend: Arc<Backend>, interval: Duration, timeout: Duration) {
    let mut next = Instant::now();
    let mut accrual = Accrual::default();
    while !backend.is_retired() {
        let result = check(&backend, timeout).await;
        if let Some((up, reason)) = accrual.verdict(result) {
            backend.set_healthy(up, &reason);
        }
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

/// Turns check results into up/down verdicts: a pass is up, a failure is
/// down, a timeout is down only when the previous check timed out too.
#[derive(Default)]
pub struct Accrual {
    timed_out_before: bool,
}

impl Accrual {
    /// The verdict on one more check, if it gives one, with the reason.
    pub fn verdict(&mut self, result: Result<(), Failure>) -> Option<(bool, String)> {
        let timed_out_before = std::mem::replace(
            &mut self.timed_out_before,
            matches!(result, Err(Failure::TimedOut(_))),
        );
        match result {
            Ok(()) => Some((true, "health check passed".to_string())),
            Err(Failure::Failed(reason)) => Some((false, reason)),
            Err(Failure::TimedOut(reason)) if timed_out_before => {
                Some((false, format!("{reason}, twice in a row")))
            }
            Err(Failure::TimedOut(_)) => None,
        }
    }
}

/// Why a health check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No answer within the timeout.
    TimedOut(String),
    /// Refused, reset, closed, or an answer other than SERVING.
    Failed(String),
}

/// One health check: Ok when the worker answers SERVING within `timeout`.
pub async fn check(backend: &Backend, timeout: Duration) -> Result<(), Failure> {
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
        Ok(reply) => Err(Failure::Failed(format!(
            "health check answered {}",
            ServingStatus::try_from(reply.status)
                .map_or_else(|_| reply.status.to_string(), |s| format!("{s:?}"))
        ))),
        Err(s) if s.code == Code::DeadlineExceeded => Err(Failure::TimedOut(format!(
            "health check: no answer within {timeout:?}"
        ))),
        Err(s) => Err(Failure::Failed(format!("health check failed: {s}"))),
    }
}

fn encode(msg: &impl prost::Message) -> bytes::Bytes {
    msg.encode_to_vec().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_timeout_is_forgiven_two_in_a_row_are_not() {
        let mut a = Accrual::default();
        let slow = || Err(Failure::TimedOut("slow".into()));
        assert_eq!(a.verdict(Ok(())).map(|v| v.0), Some(true));
        assert_eq!(a.verdict(slow()), None);
        assert_eq!(a.verdict(Ok(())).map(|v| v.0), Some(true));
        assert_eq!(a.verdict(slow()), None);
        let (up, reason) = a.verdict(slow()).expect("second timeout in a row");
        assert!(!up && reason.contains("twice"), "{reason}");
    }

    #[test]
    fn a_refusal_or_not_serving_ejects_at_once() {
        let mut a = Accrual::default();
        let refused = Err(Failure::Failed("refused".into()));
        assert_eq!(a.verdict(refused), Some((false, "refused".to_string())));
        let mut a = Accrual::default();
        assert_eq!(a.verdict(Err(Failure::TimedOut("slow".into()))), None);
        assert_eq!(
            a.verdict(Err(Failure::Failed("NotServing".into()))),
            Some((false, "NotServing".to_string()))
        );
    }
}
