//! The connector's own health, as the health route answers it, and the
//! cache that makes one round of checks answer for a few seconds.

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
    /// The four DynamoDB tables.
    pub tables: Check,
    /// The sync, backfill and AppEvents queues.
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
}
