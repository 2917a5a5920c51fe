//! `DELETE /v1/me`: deletes a user. Every connection is revoked at its
//! vendor first (if a vendor cannot be reached the call fails and nothing of
//! that connection is deleted, so a retry can still revoke it), then the
//! tokens, samples, summaries, phone-push records and every short-lived item
//! (OAuth state, dedup and replay keys, rate-limit buckets) are deleted.
//! Idempotent: a second call finds nothing and succeeds.

use connector_core::api::{json, respond, user_id};
use connector_core::{connections, App, Error, Result};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

#[derive(Debug, Default, Serialize)]
pub struct Receipt {
    pub user_id: String,
    pub connections: Vec<RevokedConnection>,
    pub deleted: Deleted,
}

#[derive(Debug, Serialize)]
pub struct RevokedConnection {
    pub vendor: connector_core::Vendor,
    pub revoked_at_vendor: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct Deleted {
    pub connections: usize,
    pub health_items: usize,
    pub ephemeral_items: usize,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(delete_me(app, &req).await)
}

async fn delete_me(app: &App, req: &Request) -> Result<Response<Body>> {
    let user = user_id(req)?;
    let mut receipt = Receipt {
        user_id: user.clone(),
        ..Default::default()
    };
    for conn in app.connections.list(&user).await? {
        let vendor = conn.vendor;
        let revoked_at_vendor = match connections::revoke_at_vendor(app, &conn).await {
            Err(Error::Crypto(e)) => {
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
    Ok(json(200, &receipt))
}
