//! SQS → sync jobs. Each record is parsed and run on its own; only the
//! records that failed are reported, so one bad message never fails its
//! batch. A failed job's message is made visible again when it should be
//! retried (retry.rs): after a vendor's 429, as late as the vendor says;
//! otherwise after a jittered exponential backoff.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use connector_core::jobs::SyncJob;
use connector_core::retry::visibility_after;
use connector_core::sync::run_job;
use connector_core::App;

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let result = match SyncJob::parse(record.body.as_deref().unwrap_or_default()) {
            Ok(job) => run_job(app, &job)
                .await
                .map(|outcome| tracing::info!(message_id = %id, job_id = %job.job_id, user_id = %job.user_id, vendor = %job.vendor, ?outcome, "job done")),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            let wait = schedule_retry(app, &record, &e).await;
            tracing::warn!(message_id = %id, error = %e, retry_in_secs = wait, "job failed; will be retried");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}

/// Sets the message's visibility to its retry time; returns the seconds, or
/// None when it could not (the queue's own visibility timeout then applies).
async fn schedule_retry(
    app: &App,
    record: &SqsMessage,
    err: &connector_core::Error,
) -> Option<u64> {
    let receipt = record.receipt_handle.as_deref()?;
    let receives = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let secs = visibility_after(err, receives, &mut rand::thread_rng());
    match app.queue.retry_after(receipt, secs).await {
        Ok(()) => Some(secs),
        Err(e) => {
            tracing::warn!(error = %e, "could not set the retry time");
            None
        }
    }
}
