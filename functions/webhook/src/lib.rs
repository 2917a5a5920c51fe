//! `/v1/webhooks/{vendor}` (public): a vendor's delivery to
//! `flows::webhook`, answered with its handshake, or with the same body for
//! every accepted delivery (what its events did is logged, never answered:
//! the answer must not tell anyone which vendor users are users here).

use chrono::Utc;
use connector_core::flows::webhook::{self, Received};
use connector_core::http::api::{body_bytes_up_to, path_param, respond, MAX_WEBHOOK_BODY_BYTES};
use connector_core::vendors::driver::WebhookRequest;
use connector_core::{App, Result, Vendor};
use lambda_http::{Body, Request, RequestExt, Response};
use std::collections::HashMap;

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(dispatch(app, &req).await)
}

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>> {
    let vendor: Vendor = path_param(req, "vendor")?.parse()?;
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
