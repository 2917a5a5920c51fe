//! What an authenticated vendor webhook tells the connector.

use chrono::NaiveDate;

/// What a webhook event asks of the connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// New or changed data: pull it with the user's own token.
    DataChanged,
    /// The user withdrew the grant at the vendor: mark the connection revoked.
    Deauthorized,
}

/// One event from an authenticated webhook: whose, about which user-local
/// day, and the vendor's id for the delivery (the dedup key).
#[derive(Clone, Debug, PartialEq, Eq)]
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
