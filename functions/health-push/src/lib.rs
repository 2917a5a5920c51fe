//! `POST /v1/health/push` (JWT user): the phone's HealthKit daily summary,
//! accepted by `flows::push`, answered 201 when the day is new, and logged
//! in one line per push.

use chrono::NaiveDate;
use chrono::Utc;
use connector_core::domain::push::{MergeResult, PushBody};
use connector_core::flows::push::{self, PushLog};
use connector_core::http::api::{json, respond, user_id};
use connector_core::http::api::{GatewayRefusal, Problem};
use connector_core::http::openapi::{
    BadRequest, Conflict, PayloadTooLarge, TooManyRequests, Unavailable, Unprocessable,
};
use connector_core::{App, Result};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
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

/// What the push did to the stored day.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PushAccepted {
    pub result: MergeResult,
    /// The day pushed.
    pub date: NaiveDate,
}

/// The phone's signed HealthKit summary of one day.
///
/// Signed with the push secret over the timestamp and the raw body; the
/// same timestamp and signature twice is a replay (401). Values merge with
/// what earlier pushes of the day stored: the newer `generated_at` wins.
#[utoipa::path(
    post,
    path = "/v1/health/push",
    tag = "phone push",
    request_body = PushBody,
    responses(
        (status = 201, description = "The day is new.", body = PushAccepted),
        (status = 200, description = "The day was stored before: merged or unchanged.",
            body = PushAccepted),
        (status = 400, response = BadRequest),
        (status = 401, description = "The bearer JWT (API Gateway's answer), or the signature, \
            its freshness, or a replay (a problem).", content(
            (GatewayRefusal = "application/json"),
            (Problem = "application/problem+json"),
        )),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    ),
    security(("user_jwt" = [], "push_signature" = [], "push_timestamp" = []))
)]
pub async fn accept(app: &App, req: &Request, log: &mut PushLog) -> Result<Response<Body>> {
    let user = user_id(req)?;
    let (date, result) = push::accept(app, &user, req.headers(), req.body().as_ref(), log).await?;
    let status = if result == MergeResult::Created {
        201
    } else {
        200
    };
    Ok(json(status, &PushAccepted { result, date }))
}
