//! `GET /v1/oauth/{vendor}/callback?code&state` (public): the browser's
//! return from the vendor's consent page, parked (`flows::connect::callback`)
//! and sent on to the app's return URL with the one-time completion id.

use connector_core::flows::connect;
use connector_core::http::api::{path_param, respond};
use connector_core::http::openapi::{BadRequest, NotFound, Unavailable};
use connector_core::{App, Result, Vendor};
use lambda_http::{Body, Request, RequestExt, Response};
use std::collections::HashMap;

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(callback(app, &req).await)
}

/// The browser's return from a vendor's consent page (public).
///
/// The state works once within 10 minutes. Nothing is exchanged here: the
/// vendor's answer is parked under a one-time completion id and the browser
/// goes on to the app's return URL with `status=pending&vendor=…&completion=…`
/// (complete it with `POST /v1/connections/{vendor}/complete`), or
/// `status=error&reason=…` (`access_denied` or another vendor error code,
/// `missing_code`).
#[utoipa::path(
    get,
    path = "/v1/oauth/{vendor}/callback",
    tag = "connections",
    params(
        ("vendor" = Vendor, Path, description = "The vendor the consent was at."),
        ("state" = Option<String>, Query,
            description = "The single-use state the connect started with (required unless `reference_id` carries it)."),
        ("reference_id" = Option<String>, Query,
            description = "The state, as a hosted connect flow (Terra) hands it back."),
        ("code" = Option<String>, Query, description = "The vendor's authorization code."),
        ("error" = Option<String>, Query, description = "The vendor's error code, e.g. `access_denied`."),
    ),
    responses(
        (status = 302, description = "On to the app's return URL.",
            headers(("location" = String, description = "The return URL with the outcome in its query."))),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn callback(app: &App, req: &Request) -> Result<Response<Body>> {
    let vendor: Vendor = path_param(req, "vendor")?.parse()?;
    // The first value of each parameter, as the vendor sent them.
    let mut query: HashMap<String, String> = HashMap::new();
    if let Some(q) = req.query_string_parameters_ref() {
        for (k, v) in q.iter() {
            query.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
    }
    let returned = connect::callback(app, vendor, &query).await?;
    let mut url = returned.return_url;
    let v = vendor.as_str();
    match &returned.outcome {
        Ok(completion) => url.query_pairs_mut().extend_pairs([
            ("vendor", v),
            ("status", "pending"),
            ("completion", completion.as_str()),
        ]),
        Err(reason) => url.query_pairs_mut().extend_pairs([
            ("vendor", v),
            ("status", "error"),
            ("reason", reason.as_str()),
        ]),
    };
    Ok(Response::builder()
        .status(302)
        .header("location", url.as_str())
        .header("cache-control", "no-store")
        .body(Body::Empty)
        .expect("valid response"))
}
