//! Moves the sync queue's dead letters back onto the queue, for the local
//! stack (in AWS: `aws sqs start-message-move-task --source-arn <DLQ ARN>`,
//! see the README). Each message is sent to the queue before it is deleted
//! from the DLQ, so a failure half-way duplicates at worst (jobs are
//! idempotent) and never loses one.

use aws_sdk_sqs::Client;
use connector_core::error::sdk;

/// Moves every message of `dlq_url` to `queue_url`; returns how many.
pub async fn redrive(sqs: &Client, dlq_url: &str, queue_url: &str) -> Result<usize, String> {
    let mut moved = 0;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| format!("ReceiveMessage: {}", sdk(e)))?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(moved);
        }
        for m in messages {
            let (Some(body), Some(receipt)) = (m.body(), m.receipt_handle()) else {
                continue;
            };
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(body)
                .send()
                .await
                .map_err(|e| format!("SendMessage: {}", sdk(e)))?;
            sqs.delete_message()
                .queue_url(dlq_url)
                .receipt_handle(receipt)
                .send()
                .await
                .map_err(|e| format!("DeleteMessage: {}", sdk(e)))?;
            moved += 1;
        }
    }
}

/// The local stack's queue and DLQ URLs, by the stack name `make run` uses.
pub async fn local_queues(sqs: &Client, stack: &str) -> Result<(String, String), String> {
    let url = |name: String| async move {
        sqs.get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .map_err(|e| format!("GetQueueUrl {name}: {}", sdk(e)))?
            .queue_url
            .ok_or_else(|| format!("no URL for {name}"))
    };
    Ok((
        url(format!("{stack}-SyncQueue")).await?,
        url(format!("{stack}-SyncDeadLetterQueue")).await?,
    ))
}
