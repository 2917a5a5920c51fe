//! `/v1/webhooks/<vendor>` (public): a vendor's delivery to
//! `flows::webhook`, answered with its handshake, or with the same body for
//! every accepted delivery (what its events did is logged, never answered:
//! the answer must not tell anyone which vendor users are users here). A
//! source sending one vendor more than its share is refused (429) first.

use chrono::Utc;
use connector_core::flows::webhook::{self, Received};
use connector_core::http::api::{
    body_bytes_up_to, json, path_param, respond, source_ip, MAX_WEBHOOK_BODY_BYTES,
};
use connector_core::http::api::{GatewayRefusal, Problem};
use connector_core::http::openapi::{
    BadRequest, Conflict, NotFound, PayloadTooLarge, TooManyRequests, Unauthenticated, Unavailable,
};
use connector_core::vendors::driver::WebhookRequest;
use connector_core::{App, Error, Result, Vendor};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use std::collections::HashMap;

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let answer = match vendor_of(&req) {
        Ok(vendor) if req.method() == lambda_http::http::Method::POST => deliver(app, &req, vendor)
            .await
            .inspect_err(|e| webhook::count_refused(vendor, e)),
        Ok(vendor) if req.method() == lambda_http::http::Method::HEAD => probe(app, &req, vendor)
            .await
            .inspect_err(|e| webhook::count_refused(vendor, e)),
        Ok(vendor) => handshake(app, &req, vendor)
            .await
            .inspect_err(|e| webhook::count_refused(vendor, e)),
        Err(e) => Err(e),
    };
    respond(answer)
}

/// Only `accepted`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AcceptedStatus {
    Accepted,
}

/// The same answer for every accepted delivery, whatever its events did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryAccepted {
    pub status: AcceptedStatus,
}

/// A vendor's webhook delivery (public; for vendors, not apps).
///
/// Each vendor that sends webhooks has its own route and throttle (Dexcom
/// sends none). The vendor's own authentication is checked (a signature and
/// its freshness, or what an unsigned vendor sends); every accepted delivery
/// gets the same answer, so it tells nobody whether a vendor user is a user
/// here. A vendor's verification request (Polar's ping, Google's
/// `{"type":"verification"}`) is answered as that vendor requires.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{vendor}",
    tag = "vendor webhooks",
    params(("vendor" = String, Path,
        description = "A vendor that sends webhooks.",
        pattern = "^(mock|whoop|garmin|fitbit|oura|polar|strava|withings|terra)$")),
    request_body(description = "The vendor's delivery, as it sends it.", content(
        (serde_json::Value = "application/json"),
        (String = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Accepted, or the vendor's verification answered.", content(
            (DeliveryAccepted = "application/json"),
            (String = "text/plain"),
        )),
        (status = 201, description = "Google Health's verification request, answered.",
            body = serde_json::Value),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 404, description = "No such vendor route (API Gateway's answer), or no \
            receiver for the vendor here (a problem).", content(
            (GatewayRefusal = "application/json"),
            (Problem = "application/problem+json"),
        )),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn deliver(app: &App, req: &Request, vendor: Vendor) -> Result<Response<Body>> {
    dispatch(app, req, vendor).await
}

/// A vendor's subscription handshake (public; for vendors, not apps).
///
/// Answered exactly as that vendor requires: Strava's `hub.challenge`,
/// Oura's `challenge`, Withings' HEAD and GET; 404 for vendors without one.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{vendor}",
    tag = "vendor webhooks",
    params(("vendor" = Vendor, Path, description = "The vendor.")),
    responses(
        (status = 200, description = "The handshake answered.", content(
            (serde_json::Value = "application/json"),
            (String = "text/plain"),
        )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, description = "Strava's handshake with a wrong verify token.",
            body = serde_json::Value),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn handshake(app: &App, req: &Request, vendor: Vendor) -> Result<Response<Body>> {
    dispatch(app, req, vendor).await
}

/// A vendor's check that the webhook URL answers (public; Withings sends a
/// HEAD before it subscribes a user).
#[utoipa::path(
    head,
    path = "/v1/webhooks/{vendor}",
    tag = "vendor webhooks",
    params(("vendor" = Vendor, Path, description = "The vendor.")),
    responses(
        (status = 200, description = "The URL answers."),
        (status = 400, description = "The request is malformed."),
        (status = 401, description = "The secret the vendor sends is wrong."),
        (status = 403, description = "Strava's handshake with a wrong verify token."),
        (status = 404, description = "No handshake for this vendor."),
        (status = 409, description = "The vendor is not configured here."),
        (status = 429, description = "Too many requests."),
        (status = 503, description = "A backing service is unavailable."),
    )
)]
pub async fn probe(app: &App, req: &Request, vendor: Vendor) -> Result<Response<Body>> {
    dispatch(app, req, vendor).await
}

async fn dispatch(app: &App, req: &Request, vendor: Vendor) -> Result<Response<Body>> {
    webhook::admit(app, vendor, &source_ip(req))?;
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
    Ok(match webhook::receive(app, vendor, &delivery).await? {
        Received::Handshake {
            status,
            content_type,
            body,
        } => Response::builder()
            .status(status)
            .header("content-type", content_type)
            .header("cache-control", "no-store")
            .body(Body::Text(body))
            .expect("valid response"),
        Received::Accepted(_) => json(
            200,
            &DeliveryAccepted {
                status: AcceptedStatus::Accepted,
            },
        ),
    })
}

/// The vendor a delivery is for: each vendor's POST has its own route
/// (`/v1/webhooks/whoop`, with its own throttle); the handshakes share
/// `/v1/webhooks/{vendor}`.
fn vendor_of(req: &Request) -> Result<Vendor> {
    let name = match path_param(req, "vendor") {
        Ok(v) => v,
        Err(_) => req
            .uri()
            .path()
            .strip_prefix("/v1/webhooks/")
            .filter(|v| !v.contains('/'))
            .ok_or_else(|| Error::NotFound("no vendor in the path".into()))?
            .to_string(),
    };
    Ok(name.parse()?)
}
