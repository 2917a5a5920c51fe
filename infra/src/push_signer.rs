//! Signs a phone push the way the iOS app does: X-Sync-Timestamp and
//! X-Sync-Signature = lowercase hex HMAC-SHA256(secret, timestamp + "." + body).

use connector_core::vendors::signature::sign_hex_sha256;

pub struct SignedPush {
    pub timestamp: String,
    pub signature: String,
}

pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> SignedPush {
    SignedPush {
        timestamp: timestamp.to_string(),
        signature: sign_hex_sha256(secret.as_bytes(), &[timestamp.as_bytes(), b".", body]),
    }
}
