//! The Events table: each user's events to the app, in the order they were
//! kept, for the change feed; kept [`FEED_RETENTION_DAYS`] (TTL).
//!
//! Items of a user (`user_id`): `t#<unix ms, 13 digits>#<event id>` carries
//! the event; `id#<event id>` marks the id as kept, so the same occurrence
//! reported again is not kept twice (both written in one transaction); the
//! marker's `queued` says the event was handed to the outbox, so an event
//! kept by a try that failed before queueing it is queued by the retry.

use super::item::{get_n, get_s, n, s, Item};
use crate::aws::client::SdkClient;
use crate::aws::sdk;
use crate::domain::app_event::{AppEvent, FEED_RETENTION_DAYS};
use crate::domain::error::{Error, Result};
use aws_sdk_dynamodb::types::{DeleteRequest, Put, TransactWriteItem, WriteRequest};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

/// The Events table.
#[derive(Clone)]
pub struct EventStore {
    db: SdkClient<Client>,
    pub(crate) table: String,
}

/// Where a page of the feed starts: after the item with this sort key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedPosition(pub String);

impl FeedPosition {
    /// Before every event.
    pub fn start() -> Self {
        FeedPosition("t#".into())
    }

    /// The position right after an event kept at `kept` (unix ms) with `id`.
    fn after(kept_ms: i64, id: &str) -> Self {
        FeedPosition(format!("t#{kept_ms:013}#{id}"))
    }

    /// Parses a position as [`FeedPosition::as_str`] spells it; None when it
    /// is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("t#")?;
        let (ms, id) = rest.split_once('#')?;
        let well_formed = ms.len() == 13
            && ms.bytes().all(|b| b.is_ascii_digit())
            && id.len() == 36
            && id.starts_with("evt_")
            && id[4..].bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then(|| FeedPosition(text.into()))
    }

    /// The position's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn kept_ms(&self) -> Option<i64> {
        self.0.get(2..15)?.parse().ok()
    }
}

impl EventStore {
    /// The store on `table` through `db`.
    pub fn new(db: impl Into<SdkClient<Client>>, table: String) -> Self {
        Self {
            db: db.into(),
            table,
        }
    }

    /// Whether the table answers (for the health route).
    pub async fn answers(&self) -> Result<()> {
        super::table::table_answers(&self.db, &self.table).await
    }

    /// Keeps `event` for its user at `now`, unless an event with its id was
    /// kept before. True when kept now.
    pub async fn keep(&self, event: &AppEvent, now: DateTime<Utc>) -> Result<bool> {
        let user_id = event.user_id();
        let expires = (now + chrono::Duration::days(FEED_RETENTION_DAYS)).timestamp();
        let marker = Put::builder()
            .table_name(&self.table)
            .item("user_id", s(user_id))
            .item("sk", s(format!("id#{}", event.id)))
            .item("expires_at", n(expires))
            .condition_expression("attribute_not_exists(sk)")
            .build()
            .expect("put is complete");
        let position = FeedPosition::after(now.timestamp_millis(), &event.id);
        let feed_item = Put::builder()
            .table_name(&self.table)
            .item("user_id", s(user_id))
            .item("sk", s(position.0))
            .item(
                "event",
                s(serde_json::to_string(event).expect("an event serializes")),
            )
            .item("expires_at", n(expires))
            .build()
            .expect("put is complete");
        let items = [marker, feed_item]
            .into_iter()
            .map(|put| TransactWriteItem::builder().put(put).build())
            .collect();
        super::table::transact_if(&self.db, items, "event").await
    }

    /// Whether `event` was handed to the outbox (false when it was never
    /// kept, too).
    pub async fn was_queued(&self, event: &AppEvent) -> Result<bool> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("user_id", s(event.user_id()))
            .key("sk", s(format!("id#{}", event.id)))
            .projection_expression("queued")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::storage("GetItem event marker", sdk(e)))?;
        Ok(out
            .item()
            .and_then(|item| item.get("queued"))
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false))
    }

    /// Records that `event` was handed to the outbox.
    pub async fn mark_queued(&self, event: &AppEvent) -> Result<()> {
        self.db
            .update_item()
            .table_name(&self.table)
            .key("user_id", s(event.user_id()))
            .key("sk", s(format!("id#{}", event.id)))
            .update_expression("SET queued = :t")
            .condition_expression("attribute_exists(sk)")
            .expression_attribute_values(":t", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .send()
            .await
            .map_err(|e| Error::storage("UpdateItem event marker", sdk(e)))?;
        Ok(())
    }

    /// At most `limit` of `user_id`'s events kept after `after` and before
    /// `until`, oldest first, with the position after the last one (or
    /// `after` when there is none). Events past their retention are left
    /// out (TTL deletes lazily).
    pub async fn page(
        &self,
        user_id: &str,
        after: &FeedPosition,
        until: DateTime<Utc>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<(Vec<AppEvent>, FeedPosition)> {
        let out = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("user_id = :u AND sk BETWEEN :after AND :until")
            .expression_attribute_values(":u", s(user_id))
            .expression_attribute_values(":after", s(after.as_str()))
            .expression_attribute_values(":until", s(format!("t#{:013}", until.timestamp_millis())))
            .limit(limit as i32 + 1)
            .send()
            .await
            .map_err(|e| Error::storage("Query events", sdk(e)))?;
        let mut events = Vec::new();
        let mut last = after.clone();
        for item in out.items() {
            let sk = get_s(item, "sk").unwrap_or_default();
            // BETWEEN is inclusive: the page starts after `after`.
            if sk == after.as_str() {
                continue;
            }
            if events.len() == limit {
                break;
            }
            last = FeedPosition(sk.into());
            if get_n::<i64>(item, "expires_at").is_some_and(|t| t <= now.timestamp()) {
                continue;
            }
            events.push(event_of(item)?);
        }
        Ok((events, last))
    }

    /// Deletes every item of `user_id` (events and id markers), page by
    /// page; returns how many. A user's items are bounded by the retention.
    pub async fn delete_all(&self, user_id: &str) -> Result<usize> {
        let mut deleted = 0;
        loop {
            let page = self
                .db
                .query()
                .table_name(&self.table)
                .key_condition_expression("user_id = :u")
                .expression_attribute_values(":u", s(user_id))
                .projection_expression("user_id, sk")
                .consistent_read(true)
                .limit(1000)
                .send()
                .await
                .map_err(|e| Error::storage("Query event keys", sdk(e)))?;
            let requests: Vec<WriteRequest> = page
                .items
                .unwrap_or_default()
                .into_iter()
                .filter_map(|key| {
                    let delete = DeleteRequest::builder().set_key(Some(key)).build().ok()?;
                    Some(WriteRequest::builder().delete_request(delete).build())
                })
                .collect();
            if requests.is_empty() {
                return Ok(deleted);
            }
            deleted += requests.len();
            super::table::batch_write(&self.db, &self.table, requests).await?;
        }
    }

    /// When the event at `position` was kept, if it names one.
    pub fn kept_at(position: &FeedPosition) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(position.kept_ms()?)
    }
}

fn event_of(item: &Item) -> Result<AppEvent> {
    let text = get_s(item, "event").unwrap_or_default();
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("event item: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_only_as_written() {
        let id = format!("evt_{}", "0a".repeat(16));
        let p = FeedPosition::after(1_764_930_000_123, &id);
        assert_eq!(FeedPosition::parse(p.as_str()), Some(p.clone()));
        assert_eq!(
            EventStore::kept_at(&p).unwrap().timestamp_millis(),
            1_764_930_000_123
        );
        for bad in [
            "",
            "t#",
            "id#evt_00",
            "t#1764930000123",
            "t#176493000012#evt_0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
            "t#1764930000123#evt_0a0a",
            "t#1764930000123#evt_0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0z",
            "t#176493000012x#evt_0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
        ] {
            assert_eq!(FeedPosition::parse(bad), None, "{bad}");
        }
    }
}
