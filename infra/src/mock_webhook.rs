//! Builds a correctly signed Mock webhook, as the Mock vendor would send it.

use connector_core::vendors::mock::mock_user_id;
use connector_core::vendors::signature::sign_hex_sha256;

pub struct SignedWebhook {
    pub body: String,
    pub timestamp: String,
    pub signature: String,
}

/// A `data.updated` event for connector user `sub` on `date`, signed at `timestamp`.
pub fn sign(secret: &str, event_id: &str, sub: &str, date: &str, timestamp: i64) -> SignedWebhook {
    let body = serde_json::json!({
        "event_id": event_id,
        "user_id": mock_user_id(sub),
        "type": "data.updated",
        "date": date,
    })
    .to_string();
    let ts = timestamp.to_string();
    let signature = sign_hex_sha256(secret.as_bytes(), &[ts.as_bytes(), b".", body.as_bytes()]);
    SignedWebhook {
        body,
        timestamp: ts,
        signature,
    }
}
