//! SQS → sync jobs. Each record is parsed and run on its own; only the
//! records that failed are reported, so one bad message never fails its
//! batch. A failed job's message is made visible again when it should be
//! retried (retry.rs): after a vendor's 429, as late as the vendor says;
//! otherwise after a jittered exponential backoff.
//!
//! A finished job is marked done (Ephemeral, 24 h) before its message is
//! deleted: when a worker dies after the job but before the delete, or SQS
//! delivers a message twice, the job is not run again.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use connector_core::domain::job::SyncJob;
use connector_core::retry::visibility_after;
use connector_core::sync::run_job;
use connector_core::App;

pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let result = match SyncJob::parse(record.body.as_deref().unwrap_or_default()) {
            Ok(job) => run_once(app, &job, &id).await,
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

async fn run_once(app: &App, job: &SyncJob, message_id: &str) -> connector_core::Result<()> {
    let done_key = format!("job#{}#done", job.job_id);
    if app.ephemeral.get(&done_key).await?.is_some() {
        tracing::info!(%message_id, job_id = %job.job_id, "job already done; duplicate delivery dropped");
        return Ok(());
    }
    let outcome = run_job(app, job).await?;
    let done_for = chrono::Utc::now() + chrono::Duration::hours(24);
    app.ephemeral.claim(&done_key, done_for, None).await?;
    tracing::info!(%message_id, job_id = %job.job_id, user_id = %job.user_id, vendor = %job.vendor, ?outcome, "job done");
    Ok(())
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
    let queue_url = app.queue.url_of_arn(record.event_source_arn.as_deref());
    match app.queue.retry_after(queue_url, receipt, secs).await {
        Ok(()) => Some(secs),
        Err(e) => {
            tracing::warn!(error = %e, "could not set the retry time");
            None
        }
    }
}
