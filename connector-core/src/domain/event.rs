//! What an authenticated vendor webhook tells the connector, and the notice
//! that carries one event from the webhook function to the sync worker.

use crate::domain::error::{Error, Result};
use crate::domain::vendor::Vendor;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// What a webhook event asks of the connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// New or changed data: pull it with the user's own token.
    DataChanged,
    /// The user withdrew the grant at the vendor: mark the connection revoked.
    Deauthorized,
}

/// One event from an authenticated webhook: whose, about which user-local
/// day, and the vendor's id for the delivery (the dedup key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEvent {
    /// The vendor's id for the delivery, the dedup key.
    pub event_id: String,
    /// The user's id at the vendor.
    pub vendor_user_id: String,
    /// The user-local day the event is about.
    pub date: NaiveDate,
    /// What the event asks for.
    pub kind: EventKind,
}

/// One accepted webhook event queued for the sync worker, which looks its
/// user up, drops a repeat and acts on it (`flows::webhook::act_on`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookNotice {
    /// The vendor that sent the event.
    pub vendor: Vendor,
    /// The event.
    pub event: WebhookEvent,
}

impl WebhookNotice {
    /// A notice from the queue: well-formed JSON naming a user and an event id.
    pub fn parse(body: &str) -> Result<Self> {
        let notice: Self = serde_json::from_str(body)
            .map_err(|e| Error::BadRequest(format!("webhook notice is malformed: {e}")))?;
        if notice.event.vendor_user_id.is_empty() || notice.event.event_id.is_empty() {
            return Err(Error::BadRequest(
                "webhook notice has no vendor user or event id".into(),
            ));
        }
        Ok(notice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::erasure::ErasureJob;
    use crate::domain::job::{JobReason, SyncJob};

    #[test]
    fn a_notice_parses_from_its_own_wire_shape_and_no_other_message_does() {
        let notice = WebhookNotice {
            vendor: Vendor::Whoop,
            event: WebhookEvent {
                event_id: "evt-1".into(),
                vendor_user_id: "10129".into(),
                date: "2026-11-30".parse().unwrap(),
                kind: EventKind::DataChanged,
            },
        };
        let body = serde_json::to_string(&notice).unwrap();
        assert_eq!(
            body,
            r#"{"vendor":"whoop","event":{"event_id":"evt-1","vendor_user_id":"10129","date":"2026-11-30","kind":"data_changed"}}"#
        );
        assert_eq!(WebhookNotice::parse(&body).unwrap(), notice);
        assert!(SyncJob::parse(&body).is_err());
        assert!(ErasureJob::parse(&body).is_err());

        let job = SyncJob::new(
            "u1",
            Vendor::Whoop,
            notice.event.date,
            notice.event.date,
            JobReason::Webhook,
        )
        .unwrap();
        assert!(WebhookNotice::parse(&serde_json::to_string(&job).unwrap()).is_err());
        assert!(WebhookNotice::parse(r#"{"erase_user":"u1","pass":"continue"}"#).is_err());

        let no_user = body.replace("10129", "");
        assert!(WebhookNotice::parse(&no_user).is_err());
        let extra = body.replace(
            r#""vendor":"whoop","#,
            r#""vendor":"whoop","user_id":"u9","#,
        );
        assert!(WebhookNotice::parse(&extra).is_err());
    }
}
