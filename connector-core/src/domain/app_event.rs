//! What the connector tells the app: an event per thing that happened to a
//! user's connections or data, with an id that is the same every time the
//! same occurrence is reported (a retried job, a duplicate webhook), so the
//! event is kept once and an app can dedupe on it. An event names users,
//! vendors, days, metric types and counts: never a token or a value.

use crate::domain::connection::{Backfill, BackfillState, ConnectionStatus};
use crate::domain::health::MetricType;
use crate::domain::vendor::Vendor;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// How long the change feed keeps an event.
pub const FEED_RETENTION_DAYS: i64 = 7;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventType {
    /// A sync wrote data.
    #[serde(rename = "data.updated")]
    DataUpdated,
    /// The user connected (or reconnected) a vendor.
    #[serde(rename = "connection.connected")]
    Connected,
    /// The user disconnected a vendor here.
    #[serde(rename = "connection.disconnected")]
    Disconnected,
    /// The user withdrew access at the vendor.
    #[serde(rename = "connection.revoked")]
    Revoked,
    /// The vendor refused to renew the grant: the user must reconnect.
    #[serde(rename = "connection.refresh_failed")]
    RefreshFailed,
    /// The vendor refused a sync for good.
    #[serde(rename = "connection.error")]
    ConnectionError,
    /// The history pulled on connect is complete.
    #[serde(rename = "backfill.completed")]
    BackfillCompleted,
    /// The history pulled on connect stopped for good.
    #[serde(rename = "backfill.failed")]
    BackfillFailed,
    /// Everything the connector stored of a user is erased.
    #[serde(rename = "user.deleted")]
    UserDeleted,
}

impl EventType {
    /// Every type, in declaration order.
    pub const ALL: [EventType; 9] = [
        EventType::DataUpdated,
        EventType::Connected,
        EventType::Disconnected,
        EventType::Revoked,
        EventType::RefreshFailed,
        EventType::ConnectionError,
        EventType::BackfillCompleted,
        EventType::BackfillFailed,
        EventType::UserDeleted,
    ];

    /// The type's name on the wire, e.g. `data.updated`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::DataUpdated => "data.updated",
            EventType::Connected => "connection.connected",
            EventType::Disconnected => "connection.disconnected",
            EventType::Revoked => "connection.revoked",
            EventType::RefreshFailed => "connection.refresh_failed",
            EventType::ConnectionError => "connection.error",
            EventType::BackfillCompleted => "backfill.completed",
            EventType::BackfillFailed => "backfill.failed",
            EventType::UserDeleted => "user.deleted",
        }
    }

    /// The connection event for a status a connection was set to.
    pub fn for_status(status: ConnectionStatus) -> EventType {
        match status {
            ConnectionStatus::Connected => EventType::Connected,
            ConnectionStatus::Disconnected => EventType::Disconnected,
            ConnectionStatus::Revoked => EventType::Revoked,
            ConnectionStatus::RefreshFailed => EventType::RefreshFailed,
            ConnectionStatus::Error => EventType::ConnectionError,
        }
    }
}

/// An event about one user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppEvent {
    /// Stable per occurrence: `evt_` and 32 hex digits.
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// What the event is about: always `user_id`; `vendor` for connection,
    /// data and backfill events; `reason` when a connection or backfill
    /// failed; for `data.updated`, the user-local `days`, the
    /// `metric_types` and the counts of `samples` and `summaries` written;
    /// for backfill events, `days_asked` and `days_done`.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// The id of the occurrence `parts` name.
fn event_id(kind: EventType, parts: &[&str]) -> String {
    let mut digest = Sha256::new();
    digest.update(kind.as_str());
    for part in parts {
        digest.update([0]);
        digest.update(part.as_bytes());
    }
    format!("evt_{}", hex::encode(&digest.finalize()[..16]))
}

impl AppEvent {
    /// The user the event is about.
    pub fn user_id(&self) -> &str {
        self.data["user_id"].as_str().unwrap_or_default()
    }

    /// A connection of `user_id` at `vendor` changed: connected (or
    /// reconnected) at `connected_at`, or set to `kind` with `reason`.
    /// `occurrence` tells this change from the connection's others (its
    /// `connected_at` and token version, a job id): the same change
    /// reported twice is one event.
    pub fn connection(
        kind: EventType,
        user_id: &str,
        vendor: Vendor,
        occurrence: &str,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Self {
        let mut data = serde_json::json!({"user_id": user_id, "vendor": vendor});
        if let Some(reason) = reason {
            data["reason"] = reason.into();
        }
        Self {
            id: event_id(kind, &[user_id, vendor.as_str(), occurrence]),
            kind,
            timestamp: at,
            data,
        }
    }

    /// The backfill of the grant `grant` of `user_id` at `vendor` ended:
    /// completed (`reason` None) or failed for `reason`.
    pub fn backfill_ended(
        user_id: &str,
        vendor: Vendor,
        grant: &str,
        backfill: &Backfill,
        at: DateTime<Utc>,
    ) -> Self {
        let kind = match backfill.state {
            BackfillState::Failed => EventType::BackfillFailed,
            _ => EventType::BackfillCompleted,
        };
        let mut data = serde_json::json!({
            "user_id": user_id,
            "vendor": vendor,
            "days_asked": backfill.days_asked,
            "days_done": backfill.days_done,
        });
        if let Some(reason) = &backfill.reason {
            data["reason"] = reason.as_str().into();
        }
        Self {
            id: event_id(kind, &[user_id, vendor.as_str(), grant]),
            kind,
            timestamp: at,
            data,
        }
    }

    /// Everything stored of `user_id` is erased (the erasure that started
    /// at `started`).
    pub fn user_deleted(user_id: &str, started: &str, at: DateTime<Utc>) -> Self {
        Self {
            id: event_id(EventType::UserDeleted, &[user_id, started]),
            kind: EventType::UserDeleted,
            timestamp: at,
            data: serde_json::json!({"user_id": user_id}),
        }
    }

    /// A sync of `user_id` at `vendor` (job `job_id`) wrote `samples`
    /// samples on the user-local `days` and `summaries` daily summaries.
    /// The same job writing the same again (a retry) is the same event.
    pub fn data_updated(
        user_id: &str,
        vendor: Vendor,
        job_id: &str,
        written: &DataWritten,
        at: DateTime<Utc>,
    ) -> Self {
        let days: Vec<String> = written.days.iter().map(|d| d.to_string()).collect();
        let counts = format!("{}/{}", written.samples, written.summaries);
        let occurrence = [job_id, &days.join(","), &counts];
        Self {
            id: event_id(
                EventType::DataUpdated,
                &[&[user_id, vendor.as_str()][..], &occurrence[..]].concat(),
            ),
            kind: EventType::DataUpdated,
            timestamp: at,
            data: serde_json::json!({
                "user_id": user_id,
                "vendor": vendor,
                "days": days,
                "metric_types": written.metric_types,
                "samples": written.samples,
                "summaries": written.summaries,
            }),
        }
    }
}

/// Where an event is delivered: each channel gets its own queued delivery,
/// so one that fails is retried without repeating the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The EventBridge bus of the stack (`CONNECTOR_APP_EVENT_BUS`).
    Bus,
    /// The app's HTTP endpoint (`CONNECTOR_APP_WEBHOOK_URL`).
    Webhook,
}

impl Channel {
    /// The channel's name on the wire and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Bus => "bus",
            Channel::Webhook => "webhook",
        }
    }
}

/// One event for one channel: the body of an AppEvents queue message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Where it goes.
    pub channel: Channel,
    /// What it says.
    pub event: AppEvent,
}

/// What a sync wrote, summed over its parts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataWritten {
    /// The user-local days written.
    pub days: BTreeSet<NaiveDate>,
    /// The metric types written.
    pub metric_types: BTreeSet<MetricType>,
    /// Samples written.
    pub samples: usize,
    /// Daily summaries written.
    pub summaries: usize,
}

impl DataWritten {
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.samples == 0 && self.summaries == 0
    }

    /// Adds `other`'s writes.
    pub fn add(&mut self, other: DataWritten) {
        self.days.extend(other.days);
        self.metric_types.extend(other.metric_types);
        self.samples += other.samples;
        self.summaries += other.summaries;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-12-05T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn the_same_occurrence_has_the_same_id_and_another_does_not() {
        let e = |kind, user, occurrence| {
            AppEvent::connection(kind, user, Vendor::Whoop, occurrence, None, at()).id
        };
        let id = e(EventType::Revoked, "u1", "2026-12-01T00:00:00Z");
        assert_eq!(id, e(EventType::Revoked, "u1", "2026-12-01T00:00:00Z"));
        assert!(id.starts_with("evt_") && id.len() == 36, "{id}");
        assert_ne!(id, e(EventType::Revoked, "u2", "2026-12-01T00:00:00Z"));
        assert_ne!(id, e(EventType::Connected, "u1", "2026-12-01T00:00:00Z"));
        assert_ne!(id, e(EventType::Revoked, "u1", "2026-12-02T00:00:00Z"));
        // Parts are separated: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            AppEvent::connection(EventType::Revoked, "ab", Vendor::Whoop, "c", None, at()).id,
            AppEvent::connection(EventType::Revoked, "a", Vendor::Whoop, "bc", None, at()).id
        );
    }

    #[test]
    fn a_data_update_names_days_types_and_counts_and_a_retry_is_the_same_event() {
        let written = DataWritten {
            days: ["2026-12-04".parse().unwrap(), "2026-12-05".parse().unwrap()].into(),
            metric_types: [MetricType::Hrv, MetricType::Steps].into(),
            samples: 40,
            summaries: 2,
        };
        let event = AppEvent::data_updated("u1", Vendor::Oura, "job-1", &written, at());
        let wire = serde_json::to_value(&event).unwrap();
        assert_eq!(wire["type"], "data.updated");
        assert_eq!(
            wire["data"],
            serde_json::json!({"user_id": "u1", "vendor": "oura",
                "days": ["2026-12-04", "2026-12-05"], "metric_types": ["hrv", "steps"],
                "samples": 40, "summaries": 2})
        );
        let later = at() + chrono::Duration::minutes(5);
        assert_eq!(
            AppEvent::data_updated("u1", Vendor::Oura, "job-1", &written, later).id,
            event.id
        );
        let more = DataWritten {
            samples: 41,
            ..written.clone()
        };
        assert_ne!(
            AppEvent::data_updated("u1", Vendor::Oura, "job-1", &more, at()).id,
            event.id
        );
        assert_eq!(event.user_id(), "u1");
    }

    #[test]
    fn each_type_has_its_wire_name() {
        for kind in EventType::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}
