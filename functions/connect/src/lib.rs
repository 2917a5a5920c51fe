//! `POST /v1/connections/{vendor}` starts a connection (OAuth redirect, or at
//! once for Mock); `POST /v1/connections/{vendor}/complete` completes the
//! consent the browser brought back; `DELETE /v1/connections/{vendor}`
//! revokes it at the vendor and deletes the tokens (`flows::connect`).

use connector_core::flows::connect::{self, ConnectAsk, Started};
use connector_core::http::api::{
    json, json_body, path_param, request_domain, respond, route, user_id,
};
use connector_core::{App, Error, Result, Vendor};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectBody {
    return_url: Option<String>,
    /// For an aggregator (Terra): the wearable to connect through it, e.g. "GARMIN".
    provider: Option<String>,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(dispatch(app, &req).await)
}

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>> {
    let user = user_id(req)?;
    let vendor: Vendor = path_param(req, "vendor")?.parse()?;
    match route(req).as_str() {
        "POST /v1/connections/{vendor}" => start(app, req, &user, vendor).await,
        "POST /v1/connections/{vendor}/complete" => complete(app, req, &user, vendor).await,
        "DELETE /v1/connections/{vendor}" => disconnect(app, &user, vendor).await,
        other => Err(Error::NotFound(format!("route {other:?}"))),
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    completion: Option<String>,
}

async fn complete(app: &App, req: &Request, user: &str, vendor: Vendor) -> Result<Response<Body>> {
    let body: CompleteBody = json_body(req)?;
    let completion = body
        .completion
        .filter(|c| !c.is_empty() && c.len() <= 128)
        .ok_or_else(|| Error::BadRequest("completion is required".into()))?;
    connect::complete(app, user, vendor, &completion).await?;
    Ok(json(
        200,
        &serde_json::json!({ "vendor": vendor, "status": "connected" }),
    ))
}

async fn start(app: &App, req: &Request, user: &str, vendor: Vendor) -> Result<Response<Body>> {
    let body: ConnectBody = json_body(req)?;
    let domain = request_domain(req);
    let ask = ConnectAsk {
        return_url: body.return_url.as_deref(),
        provider: body.provider.as_deref(),
        request_domain: domain.as_deref(),
    };
    Ok(match connect::start(app, user, vendor, ask).await? {
        Started::Connected => json(
            200,
            &serde_json::json!({ "vendor": vendor, "status": "connected" }),
        ),
        Started::Redirect(url) => json(
            200,
            &serde_json::json!({ "vendor": vendor, "redirect_url": url.as_str() }),
        ),
    })
}

async fn disconnect(app: &App, user: &str, vendor: Vendor) -> Result<Response<Body>> {
    let revocation = connect::disconnect(app, user, vendor).await?;
    let mut body = serde_json::json!({
        "vendor": vendor,
        "status": "disconnected",
        "revoked_at_vendor": revocation.revoked_at_vendor(),
    });
    if let Some(note) = revocation.note() {
        body["note"] = note.into();
    }
    Ok(json(200, &body))
}
