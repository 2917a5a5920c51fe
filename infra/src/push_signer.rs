//! Signs a phone push the way the iOS app does: X-Sync-Timestamp and
//! X-Sync-Signature = lowercase hex HMAC-SHA256(secret, timestamp + "." + body).

use connector_core::vendors::signature::phone_push;

pub struct SignedPush {
    pub timestamp: String,
    pub signature: String,
}

pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> SignedPush {
    SignedPush {
        timestamp: timestamp.to_string(),
        // The window only matters to the verifier.
        signature: phone_push(0).sign(secret.as_bytes(), Some(timestamp), body),
    }
}
