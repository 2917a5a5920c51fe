//! The local SQS event sources: receives from the sync queues (or the
//! AppEvents queue), invokes the sync worker (or app-events) with a real SQS
//! event, and deletes only the messages that did not come back in
//! `batchItemFailures` (the rest reappear after their visibility timeout
//! and, after maxReceiveCount, land in the DLQ).
//!
//! `make run` pumps each queue in its own task, as AWS runs one event source
//! per queue; a single round (`once`, used by tests) takes the live queue
//! first and the backfill queue only when the live one is empty.

use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use connector_core::aws::sdk;
use connector_core::App;
use std::collections::HashSet;

/// One queue the pump reads.
#[derive(Clone, Debug)]
pub struct PumpQueue {
    pub url: String,
    pub arn: String,
}

/// The function a pump's queues feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consumer {
    /// `sync-worker`: the sync and backfill queues.
    SyncWorker,
    /// `app-events`: the AppEvents queue.
    AppEvents,
}

impl Consumer {
    /// The function's binary.
    pub fn binary(self) -> &'static str {
        match self {
            Consumer::SyncWorker => "sync-worker",
            Consumer::AppEvents => "app-events",
        }
    }
}

#[derive(Clone)]
pub struct Pump {
    pub consumer: Consumer,
    pub sqs: aws_sdk_sqs::Client,
    /// In priority order: live first.
    pub queues: Vec<PumpQueue>,
    /// How long each invocation of the worker may run.
    pub time_limit: std::time::Duration,
}

/// What the pump invokes: the worker's handler in this process, or its
/// real binary through a Runtime API.
#[derive(Clone, Copy)]
pub enum Worker<'a> {
    InProcess(&'a App),
    Binary(&'a crate::lambda::LambdaProcess),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PumpStats {
    pub received: usize,
    pub failed: usize,
}

impl Pump {
    /// One pump per queue, each reading only its own: run side by side they
    /// are AWS's event sources, one per queue, each with its own workers.
    pub fn per_queue(&self) -> Vec<Pump> {
        self.queues
            .iter()
            .map(|q| Pump {
                consumer: self.consumer,
                sqs: self.sqs.clone(),
                queues: vec![q.clone()],
                time_limit: self.time_limit,
            })
            .collect()
    }

    /// The most messages one invocation takes: the event source's BatchSize.
    fn batch_size(&self) -> i32 {
        match self.consumer {
            Consumer::SyncWorker => 10,
            Consumer::AppEvents => 5,
        }
    }

    /// The live queue's URL (where webhook, manual and poll jobs go).
    pub fn live_url(&self) -> &str {
        &self.queues[0].url
    }

    /// One receive → invoke → delete round on the first queue that has
    /// messages; when none has, waits up to `wait_secs` on the first queue.
    pub async fn once(&self, app: &App, wait_secs: i32) -> Result<PumpStats, String> {
        self.once_via(Worker::InProcess(app), wait_secs).await
    }

    /// [`Pump::once`] with the worker of choice.
    pub async fn once_via(&self, worker: Worker<'_>, wait_secs: i32) -> Result<PumpStats, String> {
        for queue in &self.queues {
            let stats = self.once_on(queue, worker, 0).await?;
            if stats.received > 0 {
                return Ok(stats);
            }
        }
        if wait_secs == 0 {
            return Ok(PumpStats::default());
        }
        self.once_on(&self.queues[0], worker, wait_secs).await
    }

    async fn once_on(
        &self,
        queue: &PumpQueue,
        worker: Worker<'_>,
        wait_secs: i32,
    ) -> Result<PumpStats, String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(self.batch_size())
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
                    "eventSourceARN": queue.arn,
                    "awsRegion": "us-east-1",
                })
            })
            .collect();
        let event: SqsEvent = serde_json::from_value(serde_json::json!({ "Records": records }))
            .map_err(|e| format!("building SQS event: {e}"))?;
        let response = match worker {
            Worker::InProcess(app) => match self.consumer {
                Consumer::SyncWorker => {
                    let deadline = std::time::Instant::now() + self.time_limit;
                    sync_worker::handle(app, event, deadline).await
                }
                Consumer::AppEvents => app_events::handle(app, event).await,
            },
            Worker::Binary(process) => {
                let event = serde_json::to_value(&event).map_err(|e| e.to_string())?;
                let answer = process
                    .invoke(&event, self.time_limit)
                    .await
                    .map_err(|e| e.to_string())?;
                serde_json::from_value(answer)
                    .map_err(|e| format!("the worker's answer is not a batch response: {e}"))?
            }
        };
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
                .queue_url(&queue.url)
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
        self.run_via(Worker::InProcess(app)).await
    }

    /// [`Pump::run`] with the worker of choice.
    pub async fn run_via(&self, worker: Worker<'_>) {
        loop {
            if let Err(e) = self.once_via(worker, 1).await {
                tracing::warn!(error = %e, "queue pump round failed");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}
