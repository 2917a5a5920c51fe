//! SQS (the AppEvents queue) → deliveries of events to the app
//! (`flows::deliver`). Each record is delivered on its own; only the
//! failed ones are reported, each scheduled for its retry with backoff, so
//! one unreachable webhook never holds back the bus.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use connector_core::domain::metric::{count, Metric};
use connector_core::flows::deliver;
use connector_core::App;

/// Delivers the batch's records one after another.
pub async fn handle(app: &App, event: SqsEvent) -> SqsBatchResponse {
    let mut failures = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let body = record.body.as_deref().unwrap_or_default();
        let (channel, result) = match deliver::parse(body) {
            Ok(delivery) => (
                delivery.channel.as_str(),
                deliver::deliver(app, &delivery).await,
            ),
            Err(e) => ("unreadable", Err(e)),
        };
        let receives = receives_of(&record);
        let counted = match &result {
            Ok(()) => Metric::EventsDelivered,
            Err(_) if receives >= app.config.app_event_max_receives => Metric::EventsDeadLettered,
            Err(_) => Metric::EventsRetried,
        };
        count(counted, &[channel], 1);
        if let Err(e) = result {
            let wait = retry(app, &record, &e, receives).await;
            tracing::warn!(message_id = %id, channel, error = %e, retry_in_secs = wait, "event delivery failed; will be retried");
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
    let cap = app.config.app_event_backoff_cap_secs;
    let secs = deliver::retry_in(err, receives, cap, &mut rand::thread_rng());
    match app.outbox.retry_after(receipt, secs).await {
        Ok(()) => Some(secs),
        Err(e) => {
            tracing::warn!(error = %e, "could not set the retry time");
            None
        }
    }
}
