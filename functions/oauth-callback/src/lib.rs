//! `GET /v1/oauth/{vendor}/callback?code&state` (public): the browser's
//! return from the vendor's consent page, parked (`flows::connect::callback`)
//! and sent on to the app's return URL with the one-time completion id.

use connector_core::flows::connect;
use connector_core::http::api::{path_param, respond};
use connector_core::{App, Result, Vendor};
use lambda_http::{Body, Request, RequestExt, Response};
use std::collections::HashMap;

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(callback(app, &req).await)
}

async fn callback(app: &App, req: &Request) -> Result<Response<Body>> {
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
