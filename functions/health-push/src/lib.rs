//! `POST /v1/health/push` (JWT user): the phone's HealthKit daily summary.
//! Signed envelope (X-Sync-Timestamp, X-Sync-Signature), freshness window,
//! replay rejection, a per-user token bucket, strict bounds, and the
//! deterministic merge by (user, date) written in one transaction.

use chrono::Utc;
use connector_core::aws::store::ephemeral::Bucket;
use connector_core::domain::push::{merge, MergeResult, Push};
use connector_core::http::api::{json, respond, user_id, MAX_BODY_BYTES};
use connector_core::vendors::signature::{phone_push, Rejection};
use connector_core::{App, Error, Result};
use lambda_http::{Body, Request, Response};
use sha2::{Digest, Sha256};
use std::time::Instant;

const CONFLICT_RETRIES: usize = 5;

/// What one push did, for its log line.
#[derive(Default)]
struct Outcome {
    verification: &'static str,
    reason: Option<String>,
    write: Option<MergeResult>,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let started = Instant::now();
    let received_at = Utc::now();
    let bytes = req.body().len();
    let user = user_id(&req).unwrap_or_default();
    let mut outcome = Outcome {
        verification: "not_checked",
        ..Default::default()
    };
    let result = push(app, &req, &mut outcome).await;
    let status = result
        .as_ref()
        .map(|r| r.status().as_u16())
        .unwrap_or_else(|e| e.status());
    // One line per push: never the signature or any body value.
    tracing::info!(
        user_id = %user,
        payload_bytes = bytes,
        received_at = %received_at.to_rfc3339(),
        verification = outcome.verification,
        reason = outcome.reason.as_deref().unwrap_or(""),
        write = outcome.write.map(|w| format!("{w:?}").to_lowercase()).unwrap_or_default(),
        status,
        latency_ms = started.elapsed().as_millis() as u64,
        "health push"
    );
    respond(result)
}

async fn push(app: &App, req: &Request, outcome: &mut Outcome) -> Result<Response<Body>> {
    let user = user_id(req)?;
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(Error::PayloadTooLarge(MAX_BODY_BYTES));
    }
    let window = app.config.push_window_secs;
    let Some(secret) = app.credentials.value("CONNECTOR_PUSH_SECRET").await? else {
        outcome.verification = "rejected";
        outcome.reason = Some("push secret not configured".into());
        tracing::error!("CONNECTOR_PUSH_SECRET is not configured; rejecting pushes");
        return Err(Rejection::BadSignature.into());
    };
    if let Err(r) =
        phone_push(window).verify(secret.expose().as_bytes(), req.headers(), body, Utc::now())
    {
        outcome.verification = "rejected";
        outcome.reason = Some(r.to_string());
        return Err(Error::Unauthorized(format!("push rejected: {r}")));
    }
    outcome.verification = "ok";

    let rate = app.config.push_rate_per_min;
    if let Err(retry_after_secs) = app
        .ephemeral
        .take_token(&format!("push#{user}"), &user, Bucket::per_minute(rate))
        .await?
    {
        outcome.reason = Some("rate limited".into());
        return Err(Error::RateLimited { retry_after_secs });
    }

    let payload = Push::parse(body, Utc::now().date_naive())?;

    // The same (timestamp, signature) twice is a replay, whatever the body.
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let replay_key = format!(
        "push-replay#{}",
        hex::encode(Sha256::digest(format!(
            "{user}|{}|{}",
            header("x-sync-timestamp"),
            header("x-sync-signature")
        )))
    );
    let keep_until = Utc::now() + chrono::Duration::seconds(2 * window + 60);
    if !app
        .ephemeral
        .claim(&replay_key, keep_until, Some(&user))
        .await?
    {
        outcome.verification = "replay";
        outcome.reason = Some("timestamp and signature seen before".into());
        return Err(Error::Unauthorized(
            "push rejected: replayed timestamp and signature".into(),
        ));
    }

    let written = write(app, &user, &payload).await;
    match written {
        Ok(result) => {
            outcome.write = Some(result);
            let status = if result == MergeResult::Created {
                201
            } else {
                200
            };
            Ok(json(
                status,
                &serde_json::json!({ "result": result, "date": payload.date }),
            ))
        }
        Err(e) => {
            // Nothing was written: let the phone's retry through.
            let _ = app.ephemeral.delete(&replay_key).await;
            Err(e)
        }
    }
}

async fn write(app: &App, user: &str, payload: &Push) -> Result<MergeResult> {
    for _ in 0..CONFLICT_RETRIES {
        let stored = app.health.push_day(user, payload.date).await?;
        let (record, result) = merge(stored.as_ref().map(|(r, _)| r), payload);
        // Derived rows are rewritten even when unchanged, so a retry after a
        // partial failure elsewhere still converges.
        if app
            .health
            .save_push_day(user, &record, stored.as_ref().map(|(_, v)| *v))
            .await?
        {
            return Ok(result);
        }
    }
    Err(Error::Storage(
        "push record kept changing under concurrent writes".into(),
    ))
}
