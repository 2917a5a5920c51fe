//! Sync jobs: what the sync worker is asked to pull, and for why.

use crate::domain::config::MAX_WINDOW_DAYS;
use crate::domain::error::{Error, Result};
use crate::domain::vendor::Vendor;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Why a sync job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobReason {
    /// The user asked (POST /v1/sync).
    Manual,
    /// History after a new connection.
    Backfill,
    /// A vendor webhook said there is new data.
    Webhook,
    /// The schedule pulls a vendor that sends no webhooks.
    Poll,
}

impl JobReason {
    /// History waits for fresh data: backfill takes only the quota's free slots.
    pub fn priority(self) -> Priority {
        match self {
            JobReason::Backfill => Priority::Backfill,
            _ => Priority::Live,
        }
    }
}

/// Whether a vendor call serves fresh data someone waits for or history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Fresh data someone is waiting for.
    Live,
    /// History: only the quota's free slots.
    Backfill,
}

/// Pull `vendor` data of `user_id` for the user-local dates `from..=to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncJob {
    /// A random UUID naming the job.
    pub job_id: String,
    /// The app user.
    pub user_id: String,
    /// The vendor to pull from.
    pub vendor: Vendor,
    /// First user-local day, inclusive.
    pub from: NaiveDate,
    /// Last user-local day, inclusive.
    pub to: NaiveDate,
    /// Why the job runs.
    pub reason: JobReason,
    /// Days one pull covers at most (default [`PULL_DAYS`]): a job the
    /// quota stopped before it finished a pull hands on its days in
    /// shorter pulls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_days: Option<u32>,
    /// Times in a row this job's days were handed on without a pull
    /// finishing (see `flows::sync`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stalls: u32,
}

/// Days one pull covers when a job does not say.
pub const PULL_DAYS: u32 = 14;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl SyncJob {
    /// A new job with a fresh id; refused without a user or with a reversed or too long window.
    pub fn new(
        user_id: &str,
        vendor: Vendor,
        from: NaiveDate,
        to: NaiveDate,
        reason: JobReason,
    ) -> Result<Self> {
        let job = Self {
            job_id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_string(),
            vendor,
            from,
            to,
            reason,
            pull_days: None,
            stalls: 0,
        };
        job.validate()?;
        Ok(job)
    }

    /// A job body from the queue: well-formed JSON with a sane window.
    pub fn parse(body: &str) -> Result<Self> {
        let job: SyncJob = serde_json::from_str(body)
            .map_err(|e| Error::BadRequest(format!("sync job is malformed: {e}")))?;
        job.validate()?;
        Ok(job)
    }

    fn validate(&self) -> Result<()> {
        if self.user_id.is_empty() {
            return Err(Error::BadRequest("sync job has no user".into()));
        }
        if self.from > self.to {
            return Err(Error::BadRequest(
                "sync job window ends before it starts".into(),
            ));
        }
        if (self.to - self.from).num_days() >= i64::from(MAX_WINDOW_DAYS) {
            return Err(Error::BadRequest(format!(
                "sync job window exceeds {MAX_WINDOW_DAYS} days"
            )));
        }
        if self
            .pull_days
            .is_some_and(|d| d == 0 || d > MAX_WINDOW_DAYS)
        {
            return Err(Error::BadRequest(format!(
                "sync job pull_days is outside 1..={MAX_WINDOW_DAYS}"
            )));
        }
        Ok(())
    }

    /// Days one pull of this job covers at most.
    pub fn pull_days(&self) -> u32 {
        self.pull_days.unwrap_or(PULL_DAYS)
    }
}

/// The `days` user-local dates ending today (UTC until users carry a zone).
pub fn last_days(days: u32) -> (NaiveDate, NaiveDate) {
    let today = chrono::Utc::now().date_naive();
    (
        today - chrono::Duration::days(i64::from(days.max(1)) - 1),
        today,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn parse_accepts_wire_shape_and_rejects_bad_windows() {
        let job = SyncJob::parse(
            r#"{"job_id":"j","user_id":"u","vendor":"mock","from":"2026-11-21","to":"2026-11-23","reason":"manual"}"#,
        )
        .unwrap();
        assert_eq!(
            (job.to - job.from).num_days() + 1,
            3,
            "three days inclusive"
        );
        assert!(SyncJob::parse("not json").is_err());
        assert!(SyncJob::parse(r#"{"job_id":"j","user_id":"u","vendor":"nope","from":"2026-11-21","to":"2026-11-23","reason":"manual"}"#).is_err());
        assert!(SyncJob::new(
            "u",
            Vendor::Mock,
            d("2026-11-23"),
            d("2026-11-22"),
            JobReason::Manual
        )
        .is_err());
        assert!(SyncJob::new(
            "u",
            Vendor::Mock,
            d("2026-01-01"),
            d("2026-12-01"),
            JobReason::Backfill
        )
        .is_err());
        assert!(SyncJob::new(
            "",
            Vendor::Mock,
            d("2026-11-23"),
            d("2026-11-23"),
            JobReason::Manual
        )
        .is_err());
    }
}
