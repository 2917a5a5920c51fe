//! Moves the sync queues' dead letters back onto their queues, and the
//! undelivered events to the app back onto the AppEvents queue, for the
//! local stack (in AWS: `aws sqs start-message-move-task --source-arn <DLQ
//! ARN>`, which returns each message to the queue it came from; see the
//! README).
//! Each message is sent before it is deleted from the DLQ, so a failure
//! half-way duplicates at worst (jobs are idempotent) and never loses one.

use aws_sdk_sqs::Client;
use connector_core::aws::sdk;
use connector_core::domain::job::{JobReason, SyncJob};

/// The local stack's queues, by the stack name `make run` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalQueues {
    pub live: String,
    pub backfill: String,
    pub dead: String,
    pub events: String,
    pub events_dead: String,
}

impl LocalQueues {
    /// Where a dead letter goes back to: a backfill job to the backfill
    /// queue, anything else (other jobs, unreadable bodies) to the live one.
    pub fn home_of(&self, body: &str) -> &str {
        match SyncJob::parse(body) {
            Ok(job) if job.reason == JobReason::Backfill => &self.backfill,
            _ => &self.live,
        }
    }
}

/// Moves every message of the sync DLQ back to its queue; returns how many.
pub async fn redrive(sqs: &Client, queues: &LocalQueues) -> Result<usize, String> {
    move_all(sqs, &queues.dead, |body| queues.home_of(body)).await
}

/// Moves every undelivered event of the AppEvents DLQ back onto the
/// AppEvents queue, for another round of tries; returns how many.
pub async fn redrive_events(sqs: &Client, queues: &LocalQueues) -> Result<usize, String> {
    move_all(sqs, &queues.events_dead, |_| &queues.events).await
}

async fn move_all<'q>(
    sqs: &Client,
    dead: &str,
    home: impl Fn(&str) -> &'q str,
) -> Result<usize, String> {
    let mut moved = 0;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(dead)
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
                .queue_url(home(body))
                .message_body(body)
                .send()
                .await
                .map_err(|e| format!("SendMessage: {}", sdk(e)))?;
            sqs.delete_message()
                .queue_url(dead)
                .receipt_handle(receipt)
                .send()
                .await
                .map_err(|e| format!("DeleteMessage: {}", sdk(e)))?;
            moved += 1;
        }
    }
}

/// Looks up the local stack's queue URLs.
pub async fn local_queues(sqs: &Client, stack: &str) -> Result<LocalQueues, String> {
    let url = |name: String| async move {
        sqs.get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .map_err(|e| format!("GetQueueUrl {name}: {}", sdk(e)))?
            .queue_url
            .ok_or_else(|| format!("no URL for {name}"))
    };
    Ok(LocalQueues {
        live: url(format!("{stack}-SyncQueue")).await?,
        backfill: url(format!("{stack}-BackfillQueue")).await?,
        dead: url(format!("{stack}-SyncDeadLetterQueue")).await?,
        events: url(format!("{stack}-AppEventsQueue")).await?,
        events_dead: url(format!("{stack}-AppEventsDeadLetterQueue")).await?,
    })
}
