//! `/v1/webhooks/<vendor>` (public): a vendor's delivery to
//! `flows::webhook`, answered with its handshake, or with the same body for
//! every accepted delivery (what its events did is logged, never answered:
//! the answer must not tell anyone which vendor users are users here). A
//! source sending one vendor more than its share is refused (429) first.

use chrono::Utc;
use connector_core::flows::webhook::{self, Received};
use connector_core::http::api::{
    body_bytes_up_to, path_param, respond, source_ip, MAX_WEBHOOK_BODY_BYTES,
};
use connector_core::vendors::driver::WebhookRequest;
use connector_core::{App, Error, Result, Vendor};
use lambda_http::{Body, Request, RequestExt, Response};
use std::collections::HashMap;

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let answer = match vendor_of(&req) {
        Ok(vendor) => dispatch(app, &req, vendor)
            .await
            .inspect_err(|e| webhook::count_refused(vendor, e)),
        Err(e) => Err(e),
    };
    respond(answer)
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
        Received::Accepted(_) => Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::Text(r#"{"status":"accepted"}"#.into()))
            .expect("valid response"),
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
