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
        Ok(())
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
