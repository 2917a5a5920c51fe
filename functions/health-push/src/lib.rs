//! `POST /v1/health/push` (JWT user): the phone's HealthKit daily summary,
//! accepted by `flows::push`, answered 201 when the day is new, and logged
//! in one line per push.

use chrono::Utc;
use connector_core::domain::push::MergeResult;
use connector_core::flows::push::{self, PushLog};
use connector_core::http::api::{json, respond, user_id};
use connector_core::{App, Result};
use lambda_http::{Body, Request, Response};
use std::time::Instant;

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let started = Instant::now();
    let received_at = Utc::now();
    let bytes = req.body().len();
    let user = user_id(&req).unwrap_or_default();
    let mut log = PushLog::default();
    let result = accept(app, &req, &mut log).await;
    let status = result
        .as_ref()
        .map(|r| r.status().as_u16())
        .unwrap_or_else(|e| e.status());
    // One line per push: never the signature or any body value.
    tracing::info!(
        user_id = %user,
        payload_bytes = bytes,
        received_at = %received_at.to_rfc3339(),
        verification = log.verification,
        reason = log.reason.as_deref().unwrap_or(""),
        write = log.write.map(|w| format!("{w:?}").to_lowercase()).unwrap_or_default(),
        status,
        latency_ms = started.elapsed().as_millis() as u64,
        "health push"
    );
    push::count_push(&log, &result);
    respond(result)
}

async fn accept(app: &App, req: &Request, log: &mut PushLog) -> Result<Response<Body>> {
    let user = user_id(req)?;
    let (date, result) = push::accept(app, &user, req.headers(), req.body().as_ref(), log).await?;
    let status = if result == MergeResult::Created {
        201
    } else {
        200
    };
    Ok(json(
        status,
        &serde_json::json!({ "result": result, "date": date }),
    ))
}
