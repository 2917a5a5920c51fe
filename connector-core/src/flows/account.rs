//! `DELETE /v1/me`: deletes a user. Every connection is revoked at its
//! vendor first; a vendor that refuses the revoke (the user already removed
//! the app there) does not stop anything. A vendor that cannot be reached
//! keeps only its own connection, so a retry can still revoke it: the other
//! connections are deleted, and the call fails before the user's data goes.
//! Once no connection is left, the erasure (flows::erasure) deletes the
//! samples, summaries, phone-push records and every short-lived item (OAuth
//! state, dedup and replay keys, rate-limit buckets): page by page, for a
//! few seconds here, then in the sync worker. Idempotent: a second call
//! finds nothing and succeeds.

use crate::domain::erasure::ErasureStatus;
use crate::domain::error::Result;
use crate::domain::vendor::Vendor;
use crate::flows::app::App;
use crate::flows::connect::revoke_at_vendor;
use crate::flows::erasure;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
/// What deleting a user did.
pub struct Receipt {
    /// Whose.
    pub user_id: String,
    /// Every connection, revoked.
    pub connections: Vec<RevokedConnection>,
    /// What was deleted by this request.
    pub deleted: Deleted,
    /// Where the erasure stands: `in_progress` (the sync worker deletes the
    /// rest; poll `GET /v1/me/erasure`) or `deleted` (everything stored is
    /// gone; a final sweep follows for what a running sync job may still write).
    pub erasure: ErasureStatus,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
/// One connection of the user and whether the vendor revoked its grant.
pub struct RevokedConnection {
    /// The vendor.
    pub vendor: Vendor,
    /// Whether the vendor revoked the grant on this request.
    pub revoked_at_vendor: bool,
    /// Why not, where it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
/// How many items of each table went.
pub struct Deleted {
    /// Connections (with their sealed tokens).
    pub connections: usize,
    /// Samples, summaries, raw records and phone-push records.
    pub health_items: usize,
    /// OAuth state, dedup and replay keys, rate-limit buckets, quota windows.
    pub ephemeral_items: usize,
}

/// Deletes `user`: revokes every connection at its vendor, then starts
/// erasing everything kept of them. Idempotent. The first vendor that could not be
/// reached is the error, after every other connection is done.
pub async fn delete_user(app: &App, user: &str) -> Result<Receipt> {
    let user = user.to_string();
    let mut receipt = Receipt {
        user_id: user.clone(),
        connections: Vec::new(),
        deleted: Deleted::default(),
        erasure: ErasureStatus::InProgress,
    };
    let mut unreachable = None;
    for conn in app.connections.list(&user).await? {
        let vendor = conn.vendor;
        let revocation = match revoke_at_vendor(app, &conn).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(user_id = %user, %vendor, error = %e, "could not revoke at the vendor; the connection stays for a retry");
                unreachable.get_or_insert(e);
                continue;
            }
        };
        app.connections.delete(&user, vendor).await?;
        receipt.deleted.connections += 1;
        receipt.connections.push(RevokedConnection {
            vendor,
            revoked_at_vendor: revocation.revoked_at_vendor(),
            note: revocation.note(),
        });
    }
    if let Some(e) = unreachable {
        return Err(e);
    }
    let (step, status) = erasure::start(app, &user).await?;
    receipt.deleted.health_items = step.health_items;
    receipt.deleted.ephemeral_items = step.ephemeral_items;
    receipt.erasure = status;
    tracing::info!(
        user_id = %user,
        connections = receipt.deleted.connections,
        health_items = receipt.deleted.health_items,
        ephemeral_items = receipt.deleted.ephemeral_items,
        erasure = status.as_str(),
        "user deleted"
    );
    Ok(receipt)
}
