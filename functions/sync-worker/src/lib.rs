//! SQS → sync jobs. Each record is parsed and run on its own; only the
//! records that failed are reported, so one bad message never fails its batch.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use connector_core::jobs::SyncJob;
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
            tracing::warn!(message_id = %id, error = %e, "job failed; will be retried");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failures.push(failure);
        }
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}
