//! SQS → sync jobs (`flows::sync`), the webhook notices the webhook
//! function queued (`flows::webhook::act_on`) and the steps of an erasure
//! (`flows::erasure`). Each record is parsed and run on its own; only the
//! records that failed are reported, so one bad
//! message never fails its batch, and each failed one is scheduled for its
//! retry.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use connector_core::domain::erasure::ErasureJob;
use connector_core::domain::event::WebhookNotice;
use connector_core::domain::job::SyncJob;
use connector_core::domain::metric::{count, Metric};
use connector_core::flows::erasure;
use connector_core::flows::sync::{gave_up, run_once, schedule_retry};
use connector_core::flows::webhook;
use connector_core::App;
use std::time::{Duration, Instant};

/// When Lambda stops this invocation (its context's deadline, ms since the epoch).
pub fn deadline_of(context: &lambda_runtime::Context) -> Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Instant::now() + Duration::from_millis(context.deadline.saturating_sub(now_ms))
}

/// Runs the batch's records one after another, all before `deadline`.
pub async fn handle(app: &App, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        let mut sync_job = None;
        let (kind, result) = if let Ok(step) = ErasureJob::parse(body) {
            ("erasure", erasure::run_step(app, &step).await.map(|_| ()))
        } else if let Ok(notice) = WebhookNotice::parse(body) {
            ("webhook", webhook::act_on(app, &notice).await.map(|_| ()))
        } else {
            match SyncJob::parse(body) {
                Ok(job) => {
                    let result = run_once(app, &job, &id, deadline).await;
                    let kind = job.vendor.as_str();
                    sync_job = Some(job);
                    (kind, result)
                }
                Err(e) => ("unreadable", Err(e)),
            }
        };
        let receives = receives_of(&record);
        if let (Err(e), Some(job)) = (&result, &sync_job) {
            if receives >= app.config.job_max_receives {
                if let Err(failed) = gave_up(app, job, e, receives).await {
                    tracing::warn!(job_id = %job.job_id, error = %failed, "could not record the backfill's failure");
                }
            }
        }
        let counted = match &result {
            Ok(()) => Metric::JobsDone,
            Err(_) if receives >= app.config.job_max_receives => Metric::JobsDeadLettered,
            Err(_) => Metric::JobsRetried,
        };
        count(counted, &[kind], 1);
        if let Err(e) = result {
            let wait = retry(app, &record, &e, receives).await;
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

/// How many times SQS has delivered `record` (1 on the first try).
fn receives_of(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

async fn retry(
    app: &App,
    record: &SqsMessage,
    err: &connector_core::Error,
    receives: u32,
) -> Option<u64> {
    let receipt = record.receipt_handle.as_deref()?;
    schedule_retry(
        app,
        err,
        record.event_source_arn.as_deref(),
        receipt,
        receives,
    )
    .await
}
