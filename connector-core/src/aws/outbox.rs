//! Where events to the app leave the connector: the AppEvents queue, one
//! message per event and channel (so a failing webhook never repeats an
//! event on the bus), and the EventBridge bus the app-events function
//! publishes to.

use crate::aws::client::SdkClient;
use crate::aws::sdk;
use crate::domain::app_event::{AppEvent, Channel, Delivery};
use crate::domain::error::{Error, Result};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

/// The `source` of every event the connector puts on the bus: what an
/// EventBridge rule matches.
pub const EVENT_SOURCE: &str = "wearable-connector";

/// The AppEvents queue and the channels each event is delivered to.
#[derive(Clone)]
pub struct Outbox {
    sqs: SdkClient<aws_sdk_sqs::Client>,
    queue_url: Option<String>,
    channels: Vec<Channel>,
}

impl Outbox {
    /// Events go to `queue_url` once per channel of `channels`; without a
    /// queue or a channel they are only kept in the change feed.
    pub fn new(
        sqs: impl Into<SdkClient<aws_sdk_sqs::Client>>,
        queue_url: Option<String>,
        channels: Vec<Channel>,
    ) -> Self {
        Self {
            sqs: sqs.into(),
            queue_url,
            channels,
        }
    }

    /// Whether events leave the connector at all.
    pub fn is_on(&self) -> bool {
        self.queue_url.is_some() && !self.channels.is_empty()
    }

    /// The queue's URL, when there is one.
    pub fn queue_url(&self) -> Option<&str> {
        self.queue_url.as_deref()
    }

    /// Whether the AppEvents queue answers (for the health route); nothing
    /// to check when events are not queued at all.
    pub async fn answers(&self) -> Result<()> {
        match self.queue_url.as_deref() {
            Some(url) => crate::aws::queue::queue_answers(&self.sqs, url).await,
            None => Ok(()),
        }
    }

    /// Queues `event` for each channel, in one call.
    pub async fn send(&self, event: &AppEvent) -> Result<()> {
        let Some(url) = self.queue_url.as_deref().filter(|_| self.is_on()) else {
            return Ok(());
        };
        let entries = self
            .channels
            .iter()
            .map(|&channel| {
                let body = Delivery {
                    channel,
                    event: event.clone(),
                };
                SendMessageBatchRequestEntry::builder()
                    .id(channel.as_str())
                    .message_body(serde_json::to_string(&body).expect("a delivery serializes"))
                    .build()
                    .expect("entry is complete")
            })
            .collect();
        crate::aws::queue::send_batch(&self.sqs, url, entries).await
    }

    /// Makes a delivery received from the queue visible again after `secs`.
    pub async fn retry_after(&self, receipt_handle: &str, secs: u64) -> Result<()> {
        let Some(url) = self.queue_url.as_deref() else {
            return Ok(());
        };
        crate::aws::queue::visible_after(&self.sqs, url, receipt_handle, secs).await
    }
}

/// The EventBridge bus the app subscribes to.
#[derive(Clone)]
pub struct EventBus {
    client: SdkClient<aws_sdk_eventbridge::Client>,
    name: String,
}

impl EventBus {
    /// The bus `name` through `client`.
    pub fn new(client: impl Into<SdkClient<aws_sdk_eventbridge::Client>>, name: String) -> Self {
        Self {
            client: client.into(),
            name,
        }
    }

    /// Puts `event` on the bus: source [`EVENT_SOURCE`], detail-type the
    /// event's type, detail the event as the webhook body carries it.
    pub async fn put(&self, event: &AppEvent) -> Result<()> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.name)
            .source(EVENT_SOURCE)
            .detail_type(event.kind.as_str())
            .detail(serde_json::to_string(event).expect("an event serializes"))
            .time(aws_sdk_eventbridge::primitives::DateTime::from_millis(
                event.timestamp.timestamp_millis(),
            ))
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| Error::Delivery(format!("PutEvents: {}", sdk(e))))?;
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_code())
                .next()
                .unwrap_or("unknown");
            return Err(Error::Delivery(format!(
                "PutEvents refused the event: {why}"
            )));
        }
        Ok(())
    }
}
