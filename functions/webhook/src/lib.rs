//! `POST /v1/webhooks/{vendor}` (public): verify the signature and freshness,
//! dedup on the vendor's event id, enqueue a sync, answer fast.

use chrono::Utc;
use connector_core::api::{body_bytes, json, path_param, respond};
use connector_core::jobs::{JobReason, SyncJob};
use connector_core::webhooks::{Dedup, Rejection};
use connector_core::{App, Error, Result, Vendor};
use lambda_http::{Body, Request, Response};

/// How long an event id is remembered (vendors retry for hours to days).
pub const DEDUP_TTL_SECS: i64 = 7 * 86400;

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(dispatch(app, &req).await)
}

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>> {
    let vendor: Vendor = path_param(req, "vendor")?.parse()?;
    let driver = app
        .vendors
        .get(vendor)
        .cloned()
        .ok_or_else(|| Error::NotFound(format!("webhook receiver for {vendor}")))?;
    if req.method() != lambda_http::http::Method::POST {
        return Err(Error::NotFound(format!(
            "subscription handshake for {vendor}"
        )));
    }
    let body = body_bytes(req)?;
    let scheme = driver
        .webhook_scheme()
        .ok_or_else(|| Error::NotFound(format!("webhook receiver for {vendor}")))?;
    let secret = app
        .credentials
        .value(&format!("CONNECTOR_{}_WEBHOOK_SECRET", vendor.env_name()))
        .await?;
    let Some(secret) = secret else {
        tracing::warn!(%vendor, "webhook secret not configured; rejecting delivery");
        return Err(Rejection::BadSignature.into());
    };
    if let Err(rejection) =
        scheme.verify(secret.expose().as_bytes(), req.headers(), body, Utc::now())
    {
        tracing::warn!(%vendor, reason = %rejection, bytes = body.len(), "webhook rejected");
        return Err(rejection.into());
    }
    let events = driver.parse_webhook(body)?;
    let dedup = Dedup {
        store: &app.ephemeral,
        ttl_secs: DEDUP_TTL_SECS,
    };
    let (mut queued, mut duplicates, mut unknown_user) = (0, 0, 0);
    for event in events {
        let conn = app
            .connections
            .find_by_vendor_user(vendor, &event.vendor_user_id)
            .await?;
        let owner = conn.as_ref().map(|c| c.user_id.as_str());
        if !dedup.first_delivery(vendor, &event.event_id, owner).await? {
            duplicates += 1;
            continue;
        }
        let Some(conn) = conn else {
            unknown_user += 1;
            continue;
        };
        let job = SyncJob::new(
            &conn.user_id,
            vendor,
            event.date,
            event.date,
            JobReason::Webhook,
        )?;
        if let Err(e) = app.queue.send(&job).await {
            // Forget the event so the vendor's retry is processed, not dropped.
            dedup.release(vendor, &event.event_id).await?;
            return Err(e);
        }
        queued += 1;
    }
    tracing::info!(%vendor, queued, duplicates, unknown_user, "webhook accepted");
    Ok(json(
        200,
        &serde_json::json!({ "queued": queued, "duplicates": duplicates, "unknown_user": unknown_user }),
    ))
}
