//! `GET /v1/health`: whether the connector's tables, queues and key answer,
//! for load balancers and deploy checks. Each check is one control-plane
//! read (DescribeTable, GetQueueAttributes, DescribeKey), never an item; the
//! answer is kept for [`StatusCache::TTL`] per function instance, so however
//! often the public route is called, an instance makes at most one round of
//! checks in that time. What failed is logged; the answer only says which
//! part is failing.

use crate::domain::error::Result;
pub use crate::domain::status::{Check, Checks, Overall, ServiceStatus, StatusCache, VERSION};
use crate::flows::app::App;
use chrono::Utc;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long one check may take before it counts as failing.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The connector's status, checked now or a few seconds ago.
pub async fn status(app: &App) -> ServiceStatus {
    app.status
        .get_or_check(Instant::now(), || check_all(app))
        .await
}

async fn check_all(app: &App) -> ServiceStatus {
    let tables = async {
        let (connections, health, ephemeral, events) = tokio::join!(
            app.connections.answers(),
            app.health.answers(),
            app.ephemeral.answers(),
            app.events.answers()
        );
        connections.and(health).and(ephemeral).and(events)
    };
    let queues = async {
        let (jobs, events) = tokio::join!(app.queue.answers(), app.outbox.answers());
        jobs.and(events)
    };
    let (tables, queues, key) = tokio::join!(
        outcome("tables", CHECK_TIMEOUT, tables),
        outcome("queues", CHECK_TIMEOUT, queues),
        outcome("key", CHECK_TIMEOUT, app.envelope().key_answers()),
    );
    let checks = Checks {
        tables,
        queues,
        key,
    };
    let healthy = [tables, queues, key].iter().all(|c| *c == Check::Ok);
    ServiceStatus {
        status: if healthy {
            Overall::Ok
        } else {
            Overall::Degraded
        },
        version: VERSION.into(),
        checked_at: Utc::now(),
        checks,
    }
}

async fn outcome(name: &str, timeout: Duration, check: impl Future<Output = Result<()>>) -> Check {
    match tokio::time::timeout(timeout, check).await {
        Ok(Ok(())) => Check::Ok,
        Ok(Err(error)) => {
            tracing::warn!(check = name, error = %error, "health check failed");
            Check::Failing
        }
        Err(_) => {
            tracing::warn!(
                check = name,
                timeout_ms = timeout.as_millis() as u64,
                "health check timed out"
            );
            Check::Failing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_check_that_hangs_counts_as_failing() {
        let soon = Duration::from_millis(10);
        let hung = outcome("key", soon, std::future::pending::<Result<()>>());
        assert_eq!(hung.await, Check::Failing);
        let refused = outcome("key", soon, async {
            Err(crate::domain::error::Error::Crypto(
                "DescribeKey: AccessDenied".into(),
            ))
        });
        assert_eq!(refused.await, Check::Failing);
        assert_eq!(outcome("key", soon, async { Ok(()) }).await, Check::Ok);
    }
}
