//! `DELETE /v1/me`: deletes a user. Every connection is revoked at its
//! vendor first (if a vendor cannot be reached the call fails and nothing of
//! that connection is deleted, so a retry can still revoke it), then the
//! tokens, samples, summaries, phone-push records and every short-lived item
//! (OAuth state, dedup and replay keys, rate-limit buckets) are deleted.
//! Idempotent: a second call finds nothing and succeeds.

use crate::domain::error::{Error, Result};
use crate::domain::vendor::Vendor;
use crate::flows::app::App;
use crate::flows::connect::revoke_at_vendor;
use serde::Serialize;

#[derive(Debug, Default, Serialize)]
/// What deleting a user did.
pub struct Receipt {
    /// Whose.
    pub user_id: String,
    /// Every connection, revoked.
    pub connections: Vec<RevokedConnection>,
    /// What was deleted.
    pub deleted: Deleted,
}

#[derive(Debug, Serialize)]
/// One connection of the user and whether the vendor revoked its grant.
pub struct RevokedConnection {
    /// The vendor.
    pub vendor: Vendor,
    /// False where the vendor offers no revoke or the tokens did not open.
    pub revoked_at_vendor: bool,
}

#[derive(Debug, Default, Serialize)]
/// How many items of each table went.
pub struct Deleted {
    /// Connections (with their sealed tokens).
    pub connections: usize,
    /// Samples, summaries, raw records and phone-push records.
    pub health_items: usize,
    /// OAuth state, dedup and replay keys, rate-limit buckets, quota windows.
    pub ephemeral_items: usize,
}

/// Deletes `user`: revokes every connection at its vendor, then deletes
/// everything kept of them. Idempotent.
pub async fn delete_user(app: &App, user: &str) -> Result<Receipt> {
    let user = user.to_string();
    let mut receipt = Receipt {
        user_id: user.clone(),
        ..Default::default()
    };
    for conn in app.connections.list(&user).await? {
        let vendor = conn.vendor;
        let revoked_at_vendor = match revoke_at_vendor(app, &conn).await {
            Err(Error::Crypto(e) | Error::Corrupt(e)) => {
                tracing::warn!(user_id = %user, %vendor, error = %e, "tokens do not open; cannot revoke at the vendor");
                false
            }
            other => other?,
        };
        app.connections.delete(&user, vendor).await?;
        receipt.deleted.connections += 1;
        receipt.connections.push(RevokedConnection {
            vendor,
            revoked_at_vendor,
        });
    }
    receipt.deleted.health_items = app.health.delete_user(&user).await?;
    receipt.deleted.ephemeral_items = app.ephemeral.delete_owned(&user).await?;
    tracing::info!(
        user_id = %user,
        connections = receipt.deleted.connections,
        health_items = receipt.deleted.health_items,
        ephemeral_items = receipt.deleted.ephemeral_items,
        "user deleted"
    );
    Ok(receipt)
}
