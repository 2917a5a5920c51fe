//! The local SQS event source: receives from the sync queue, invokes the
//! sync worker with a real SQS event, and deletes only the messages that did
//! not come back in `batchItemFailures` (the rest reappear after their
//! visibility timeout and, after maxReceiveCount, land in the DLQ).

use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use connector_core::error::sdk;
use connector_core::App;
use std::collections::HashSet;

pub struct Pump {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PumpStats {
    pub received: usize,
    pub failed: usize,
}

impl Pump {
    /// One receive → invoke → delete round; waits up to `wait_secs` for messages.
    pub async fn once(&self, app: &App, wait_secs: i32) -> Result<PumpStats, String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| format!("ReceiveMessage: {}", sdk(e)))?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(PumpStats::default());
        }
        let records: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, serde_json::Value> = m
                    .attributes
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_string(), serde_json::Value::String(v.clone())))
                    .collect();
                serde_json::json!({
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt_handle,
                    "body": m.body,
                    "md5OfBody": m.md5_of_body,
                    "attributes": attributes,
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        let event: SqsEvent = serde_json::from_value(serde_json::json!({ "Records": records }))
            .map_err(|e| format!("building SQS event: {e}"))?;
        let response = sync_worker::handle(app, event).await;
        let failed: HashSet<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| !failed.contains(m.message_id.as_deref().unwrap_or_default()))
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone()?)
                    .build()
                    .ok()
            })
            .collect();
        if !done.is_empty() {
            self.sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(done))
                .send()
                .await
                .map_err(|e| format!("DeleteMessageBatch: {}", sdk(e)))?;
        }
        Ok(PumpStats {
            received: messages.len(),
            failed: failed.len(),
        })
    }

    /// Pumps until the task is dropped.
    pub async fn run(&self, app: &App) {
        loop {
            if let Err(e) = self.once(app, 1).await {
                tracing::warn!(error = %e, "queue pump round failed");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}
