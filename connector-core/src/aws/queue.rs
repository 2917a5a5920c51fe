//! The SQS queues that carry sync jobs (and the steps of an erasure).

use crate::aws::client::SdkClient;
use crate::aws::sdk;
use crate::domain::erasure::ErasureJob;
use crate::domain::error::{Error, Result};
use crate::domain::event::WebhookNotice;
use crate::domain::job::{JobReason, SyncJob};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

/// The most messages one SendMessageBatch carries.
const BATCH_ENTRIES: usize = 10;
/// The most bytes of message bodies one SendMessageBatch carries (SQS
/// allows 1 MiB in all; the rest is left for the request's own framing).
const BATCH_BODY_BYTES: usize = 900 * 1024;

/// The sync queues. Live jobs (webhook, manual, poll) and history
/// (backfill) go to separate queues so a live job never waits behind a
/// backlog: in AWS the backfill queue's event source is capped at a low
/// concurrency while the live one scales, and the quota (quota.rs) gives
/// backfill only the free slots.
#[derive(Clone)]
pub struct JobQueue {
    sqs: SdkClient<aws_sdk_sqs::Client>,
    live_url: String,
    backfill_url: Option<String>,
}

/// Whether the queue at `url` answers: one GetQueueAttributes asking for
/// nothing but its ARN.
pub(crate) async fn queue_answers(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<()> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| Error::queue("GetQueueAttributes", sdk(e)))?;
    Ok(())
}

impl JobQueue {
    /// Without a backfill queue, history shares the live one.
    pub fn new(
        sqs: impl Into<SdkClient<aws_sdk_sqs::Client>>,
        live_url: String,
        backfill_url: Option<String>,
    ) -> Self {
        Self {
            sqs: sqs.into(),
            live_url,
            backfill_url,
        }
    }

    /// Whether every queue answers (for the health route): one
    /// GetQueueAttributes each, asking for nothing but the queue's ARN.
    pub async fn answers(&self) -> Result<()> {
        for url in std::iter::once(&self.live_url).chain(&self.backfill_url) {
            queue_answers(&self.sqs, url).await?;
        }
        Ok(())
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
        visible_after(&self.sqs, queue_url, receipt_handle, secs).await
    }

    /// Sends `job` as JSON to the queue for its reason.
    pub async fn send(&self, job: &SyncJob) -> Result<()> {
        self.send_delayed(job, 0).await
    }

    /// Sends `job` so that the queue shows it after `delay_secs` (at most
    /// SQS's 900).
    pub async fn send_delayed(&self, job: &SyncJob, delay_secs: u64) -> Result<()> {
        let body = serde_json::to_string(job).expect("job serializes");
        self.send_body(self.url_for(job.reason), body, delay_secs)
            .await
    }

    /// Sends an erasure step to the live queue, shown after `delay_secs`
    /// (at most SQS's 900): the sync worker runs it.
    pub async fn send_erasure(&self, job: &ErasureJob, delay_secs: u64) -> Result<()> {
        let body = serde_json::to_string(job).expect("erasure job serializes");
        self.send_body(&self.live_url, body, delay_secs).await
    }

    /// Sends webhook notices to the live queue, as many to a
    /// SendMessageBatch as SQS allows: one call for up to ten. An entry SQS
    /// refuses fails the whole send (the vendor's retry is deduplicated).
    pub async fn send_notices(&self, notices: &[WebhookNotice]) -> Result<()> {
        let bodies: Vec<String> = notices
            .iter()
            .map(|n| serde_json::to_string(n).expect("notice serializes"))
            .collect();
        for batch in batches(&bodies) {
            let entries = batch
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body.as_str())
                        .build()
                        .expect("id and body are set")
                })
                .collect();
            send_batch(&self.sqs, &self.live_url, entries).await?;
        }
        Ok(())
    }

    async fn send_body(&self, queue_url: &str, body: String, delay_secs: u64) -> Result<()> {
        self.sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .delay_seconds(delay_secs.min(900) as i32)
            .send()
            .await
            .map_err(|e| Error::queue("SendMessage", sdk(e)))?;
        Ok(())
    }
}

/// `bodies` in order, split into batches SendMessageBatch takes whole.
fn batches(bodies: &[String]) -> Vec<&[String]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, body) in bodies.iter().enumerate() {
        if i > start && (i - start == BATCH_ENTRIES || bytes + body.len() > BATCH_BODY_BYTES) {
            out.push(&bodies[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += body.len();
    }
    if start < bodies.len() {
        out.push(&bodies[start..]);
    }
    out
}

/// Sends `entries` (at most ten, within SQS's batch size) to `queue_url`
/// in one SendMessageBatch; an entry SQS refuses fails the send.
pub(crate) async fn send_batch(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    entries: Vec<SendMessageBatchRequestEntry>,
) -> Result<()> {
    let sent = entries.len();
    let out = sqs
        .send_message_batch()
        .queue_url(queue_url)
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(|e| Error::queue("SendMessageBatch", sdk(e)))?;
    match out.failed().first() {
        Some(refused) => Err(Error::queue(
            "SendMessageBatch",
            format!(
                "{} of {sent} messages refused (entry {}: {} {})",
                out.failed().len(),
                refused.id(),
                refused.code(),
                refused.message().unwrap_or_default()
            ),
        )),
        None => Ok(()),
    }
}

/// Makes the message `receipt_handle` of `queue_url` visible again after
/// `secs` (SQS's visibility timeout; at most 12 hours).
pub(crate) async fn visible_after(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    receipt_handle: &str,
    secs: u64,
) -> Result<()> {
    sqs.change_message_visibility()
        .queue_url(queue_url)
        .receipt_handle(receipt_handle)
        .visibility_timeout(i32::try_from(secs).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| Error::queue("ChangeMessageVisibility", sdk(e)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn notices_go_ten_to_a_batch_and_never_past_its_bytes() {
        let small: Vec<String> = (0..23).map(|i| format!("n{i}")).collect();
        let sizes: Vec<usize> = batches(&small).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [10, 10, 3]);
        assert_eq!(batches(&small).concat(), small);
        assert!(batches(&[]).is_empty());

        let big: Vec<String> = (0..5).map(|_| "x".repeat(400 * 1024)).collect();
        let sizes: Vec<usize> = batches(&big).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
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
