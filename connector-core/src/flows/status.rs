//! `GET /v1/health`: whether the connector's tables, queues and key answer,
//! for load balancers and deploy checks. Each check is one control-plane
//! read (DescribeTable, GetQueueAttributes, DescribeKey), never an item; the
//! answer is kept for [`StatusCache::TTL`] per function instance, so however
//! often the public route is called, an instance makes at most one round of
//! checks in that time. What failed is logged; the answer only says which
//! part is failing.

use crate::domain::error::Result;
use crate::flows::app::App;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The connector's version, as built.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Whether the connector can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Overall {
    /// Every check answered.
    Ok,
    /// At least one check failed: see `checks`.
    Degraded,
}

/// One check's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    /// It answered.
    Ok,
    /// It failed or did not answer in time (the reason is in the log).
    Failing,
}

/// Each backing service's check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Checks {
    /// The three DynamoDB tables.
    pub tables: Check,
    /// The sync and backfill queues.
    pub queues: Check,
    /// The KMS key that seals tokens: it exists and is enabled.
    pub key: Check,
}

/// The health answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ServiceStatus {
    /// `ok` when every check answered.
    pub status: Overall,
    /// The connector's version.
    pub version: String,
    /// When the checks ran (the answer is reused for a few seconds).
    pub checked_at: DateTime<Utc>,
    /// Each check.
    pub checks: Checks,
}

/// The last status of this instance, and the one round of checks under way.
pub struct StatusCache {
    last: Mutex<Option<(Instant, ServiceStatus)>>,
}

impl Default for StatusCache {
    fn default() -> Self {
        Self::new()
    }
}

impl StatusCache {
    /// How long one round of checks answers for.
    pub const TTL: Duration = Duration::from_secs(5);

    /// Nothing checked yet.
    pub fn new() -> Self {
        Self {
            last: Mutex::new(None),
        }
    }

    /// The status checked at most [`Self::TTL`] before `now`, or a new one
    /// from `check`. Callers that arrive while a check runs wait for it
    /// instead of starting their own.
    pub async fn get_or_check<F, Fut>(&self, now: Instant, check: F) -> ServiceStatus
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = ServiceStatus>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, status)) = last.as_ref() {
            if now.saturating_duration_since(*at) < Self::TTL {
                return status.clone();
            }
        }
        let status = check().await;
        *last = Some((now, status.clone()));
        status
    }
}

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
        let (connections, health, ephemeral) = tokio::join!(
            app.connections.answers(),
            app.health.answers(),
            app.ephemeral.answers()
        );
        connections.and(health).and(ephemeral)
    };
    let (tables, queues, key) = tokio::join!(
        outcome("tables", CHECK_TIMEOUT, tables),
        outcome("queues", CHECK_TIMEOUT, app.queue.answers()),
        outcome("key", CHECK_TIMEOUT, app.envelope.key_answers()),
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn status(key: Check) -> ServiceStatus {
        ServiceStatus {
            status: Overall::Ok,
            version: VERSION.into(),
            checked_at: Utc::now(),
            checks: Checks {
                tables: Check::Ok,
                queues: Check::Ok,
                key,
            },
        }
    }

    #[tokio::test]
    async fn one_round_of_checks_answers_for_the_ttl_then_runs_again() {
        let cache = StatusCache::new();
        let rounds = AtomicUsize::new(0);
        let check = |key| {
            rounds.fetch_add(1, Ordering::SeqCst);
            async move { status(key) }
        };
        let t0 = Instant::now();
        assert_eq!(
            cache.get_or_check(t0, || check(Check::Ok)).await.checks.key,
            Check::Ok
        );
        let within = t0 + StatusCache::TTL - Duration::from_millis(1);
        let cached = cache.get_or_check(within, || check(Check::Failing)).await;
        assert_eq!(
            (cached.checks.key, rounds.load(Ordering::SeqCst)),
            (Check::Ok, 1)
        );
        let after = t0 + StatusCache::TTL;
        let fresh = cache.get_or_check(after, || check(Check::Failing)).await;
        assert_eq!(
            (fresh.checks.key, rounds.load(Ordering::SeqCst)),
            (Check::Failing, 2)
        );
    }

    #[tokio::test]
    async fn callers_during_a_check_wait_for_it_instead_of_checking_too() {
        let cache = Arc::new(StatusCache::new());
        let rounds = Arc::new(AtomicUsize::new(0));
        let now = Instant::now();
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let (cache, rounds) = (cache.clone(), rounds.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_check(now, || async move {
                            rounds.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            status(Check::Ok)
                        })
                        .await
                })
            })
            .collect();
        for caller in callers {
            caller.await.unwrap();
        }
        assert_eq!(rounds.load(Ordering::SeqCst), 1);
    }

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
