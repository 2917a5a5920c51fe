//! Sync jobs: what the sync worker is asked to pull, and the SQS queue that
//! carries them.

use crate::config::MAX_WINDOW_DAYS;
use crate::error::{sdk, Error, Result};
use crate::vendors::Vendor;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

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
    pub fn priority(self) -> crate::quota::Priority {
        match self {
            JobReason::Backfill => crate::quota::Priority::Backfill,
            _ => crate::quota::Priority::Live,
        }
    }
}

/// Pull `vendor` data of `user_id` for the user-local dates `from..=to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncJob {
    pub job_id: String,
    pub user_id: String,
    pub vendor: Vendor,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub reason: JobReason,
}

impl SyncJob {
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

/// The sync queues. Live jobs (webhook, manual, poll) and history
/// (backfill) go to separate queues so a live job never waits behind a
/// backlog: in AWS the backfill queue's event source is capped at a low
/// concurrency while the live one scales, and the quota (quota.rs) gives
/// backfill only the free slots.
#[derive(Clone)]
pub struct JobQueue {
    sqs: aws_sdk_sqs::Client,
    live_url: String,
    backfill_url: Option<String>,
}

impl JobQueue {
    /// Without a backfill queue, history shares the live one.
    pub fn new(sqs: aws_sdk_sqs::Client, live_url: String, backfill_url: Option<String>) -> Self {
        Self {
            sqs,
            live_url,
            backfill_url,
        }
    }

    /// The queue a job of `reason` is sent to.
    pub fn url_for(&self, reason: JobReason) -> &str {
        match (reason, &self.backfill_url) {
            (JobReason::Backfill, Some(url)) => url,
            _ => &self.live_url,
        }
    }

    /// The URL of the queue whose ARN is `arn` (SQS events name their queue
    /// by ARN); the live queue when it is neither.
    pub fn url_of_arn(&self, arn: Option<&str>) -> &str {
        let name = arn.and_then(|a| a.rsplit(':').next()).unwrap_or_default();
        std::iter::once(&self.live_url)
            .chain(&self.backfill_url)
            .find(|url| !name.is_empty() && url.rsplit('/').next() == Some(name))
            .unwrap_or(&self.live_url)
    }

    /// Makes a message received from `queue_url` visible again after `secs`
    /// (its retry time).
    pub async fn retry_after(
        &self,
        queue_url: &str,
        receipt_handle: &str,
        secs: u64,
    ) -> Result<()> {
        self.sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(secs).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| Error::queue("ChangeMessageVisibility", sdk(e)))?;
        Ok(())
    }

    pub async fn send(&self, job: &SyncJob) -> Result<()> {
        let body = serde_json::to_string(job).expect("job serializes");
        self.sqs
            .send_message()
            .queue_url(self.url_for(job.reason))
            .message_body(body)
            .send()
            .await
            .map_err(|e| Error::queue("SendMessage", sdk(e)))?;
        Ok(())
    }
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

    fn queue(backfill: Option<&str>) -> JobQueue {
        let conf = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .build();
        JobQueue::new(
            aws_sdk_sqs::Client::from_conf(conf),
            "http://sqs.local/000000000000/app-SyncQueue".into(),
            backfill.map(str::to_string),
        )
    }

    #[test]
    fn backfill_goes_to_its_own_queue_and_retries_go_back_where_they_came_from() {
        let backfill = "http://sqs.local/000000000000/app-BackfillQueue";
        let q = queue(Some(backfill));
        assert_eq!(q.url_for(JobReason::Backfill), backfill);
        for live in [JobReason::Webhook, JobReason::Manual, JobReason::Poll] {
            assert_eq!(q.url_for(live), q.live_url);
        }
        let arn = "arn:aws:sqs:us-east-1:000000000000:app-BackfillQueue";
        assert_eq!(q.url_of_arn(Some(arn)), backfill);
        assert_eq!(
            q.url_of_arn(Some("arn:aws:sqs:us-east-1:000000000000:app-SyncQueue")),
            q.live_url
        );
        assert_eq!(q.url_of_arn(None), q.live_url);

        let shared = queue(None);
        assert_eq!(shared.url_for(JobReason::Backfill), shared.live_url);
        assert_eq!(shared.url_of_arn(Some(arn)), shared.live_url);
    }
}
