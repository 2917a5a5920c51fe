//! `/v1/webhooks/{vendor}` (public): the vendor's driver authenticates the
//! delivery (signature and freshness, a shared secret, or what an unsigned
//! vendor does send) or answers its subscription handshake; each event is
//! deduplicated on the vendor's event id, then queued as a sync (or, for a
//! deauthorization, marks the connection revoked). Answers fast.

use chrono::Utc;
use connector_core::api::{body_bytes_up_to, json, path_param, respond, MAX_WEBHOOK_BODY_BYTES};
use connector_core::domain::connection::ConnectionStatus;
use connector_core::domain::event::{EventKind, WebhookEvent};
use connector_core::domain::job::{JobReason, SyncJob};
use connector_core::vendors::driver::{WebhookReply, WebhookRequest};
use connector_core::vendors::signature::Dedup;
use connector_core::{App, Error, Result, Vendor};
use lambda_http::{Body, Request, RequestExt, Response};
use std::collections::HashMap;

/// How long an event id is remembered (vendors retry for hours to days).
pub const DEDUP_TTL_SECS: i64 = 7 * 86400;

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(dispatch(app, &req).await)
}

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>> {
    let vendor: Vendor = path_param(req, "vendor")?.parse()?;
    let (driver, ctx) = match app.driver(vendor).await {
        Ok(d) => d,
        Err(Error::Vendor { .. }) => {
            return Err(Error::NotFound(format!("webhook receiver for {vendor}")))
        }
        Err(e) => return Err(e),
    };
    let query: HashMap<String, String> = req
        .query_string_parameters_ref()
        .map(|q| {
            q.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let delivery = WebhookRequest {
        method: req.method(),
        headers: req.headers(),
        query: &query,
        body: body_bytes_up_to(req, MAX_WEBHOOK_BODY_BYTES)?,
        now: Utc::now(),
    };
    match driver.webhook(&ctx, &delivery).await? {
        WebhookReply::Handshake {
            status,
            content_type,
            body,
        } => {
            tracing::info!(%vendor, status, "webhook handshake answered");
            Ok(Response::builder()
                .status(status)
                .header("content-type", content_type)
                .header("cache-control", "no-store")
                .body(Body::Text(body))
                .expect("valid response"))
        }
        WebhookReply::Events(events) => accept(app, vendor, events).await,
    }
}

#[derive(Default)]
struct Tally {
    queued: u32,
    revoked: u32,
    duplicates: u32,
    unknown_user: u32,
}

async fn accept(app: &App, vendor: Vendor, events: Vec<WebhookEvent>) -> Result<Response<Body>> {
    let dedup = Dedup {
        store: &app.ephemeral,
        ttl_secs: DEDUP_TTL_SECS,
    };
    let mut tally = Tally::default();
    for event in events {
        let conn = app
            .connections
            .find_by_vendor_user(vendor, &event.vendor_user_id)
            .await?;
        let owner = conn.as_ref().map(|c| c.user_id.as_str());
        if !dedup.first_delivery(vendor, &event.event_id, owner).await? {
            tally.duplicates += 1;
            continue;
        }
        let Some(conn) = conn else {
            tally.unknown_user += 1;
            continue;
        };
        let outcome = match event.kind {
            EventKind::Deauthorized => app
                .connections
                .set_status(
                    &conn.user_id,
                    vendor,
                    ConnectionStatus::Revoked,
                    Some("access was revoked at the vendor; reconnect"),
                )
                .await
                .map(|()| tally.revoked += 1),
            EventKind::DataChanged => {
                // The day before too: a sleep that ends on `date` began the day before.
                let from = event.date.pred_opt().unwrap_or(event.date);
                let job =
                    SyncJob::new(&conn.user_id, vendor, from, event.date, JobReason::Webhook)?;
                app.queue.send(&job).await.map(|()| tally.queued += 1)
            }
        };
        if let Err(e) = outcome {
            // Forget the event so the vendor's retry is processed, not dropped.
            dedup.release(vendor, &event.event_id).await?;
            return Err(e);
        }
    }
    let Tally {
        queued,
        revoked,
        duplicates,
        unknown_user,
    } = tally;
    tracing::info!(%vendor, queued, revoked, duplicates, unknown_user, "webhook accepted");
    Ok(json(
        200,
        &serde_json::json!({
            "queued": queued,
            "revoked": revoked,
            "duplicates": duplicates,
            "unknown_user": unknown_user,
        }),
    ))
}
