//! `POST /v1/connections/{vendor}` starts a connection (OAuth redirect, or at
//! once for Mock); `DELETE /v1/connections/{vendor}` revokes it at the vendor
//! and deletes the tokens.

use connector_core::http::api::{json, json_body, path_param, request_domain, respond, user_id};
use connector_core::vendors::driver::HostedConnect;
use connector_core::vendors::token as oauth;
use connector_core::{flows, App, Error, Result, Vendor};
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
    match req.method().as_str() {
        "POST" => connect(app, req, &user, vendor).await,
        "DELETE" => disconnect(app, &user, vendor).await,
        other => Err(Error::BadRequest(format!(
            "method {other} is not supported here"
        ))),
    }
}

async fn connect(app: &App, req: &Request, user: &str, vendor: Vendor) -> Result<Response<Body>> {
    let body: ConnectBody = json_body(req)?;
    let (driver, ctx) = app.driver(vendor).await?;
    if let Some((vendor_user_id, tokens)) = driver.connect_at_once(user).await? {
        flows::connect::establish(app, user, vendor, &vendor_user_id, &tokens).await?;
        return Ok(json(
            200,
            &serde_json::json!({ "vendor": vendor, "status": "connected" }),
        ));
    }
    if !ctx.creds.supported() {
        return Err(Error::VendorNotConfigured(vendor));
    }
    let return_url = app.config.return_url(body.return_url.as_deref())?;
    let redirect_uri = app
        .config
        .callback_url(vendor, request_domain(req).as_deref())?;
    if let Some(p) = &body.provider {
        if p.is_empty() || p.len() > 32 || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(Error::InvalidField {
                field: "provider".into(),
                reason: "provider must be 1-32 letters, digits or underscores".into(),
            });
        }
    }
    let state = oauth::new_state();
    let hosted = driver
        .hosted_connect(
            &ctx,
            &HostedConnect {
                state: &state,
                callback_url: &redirect_uri,
                provider: body.provider.as_deref(),
            },
        )
        .await
        .map_err(|e| Error::vendor(vendor, e))?;
    let url = match hosted {
        Some(url) => {
            oauth::save_state(
                &app.ephemeral,
                &state,
                vendor,
                user,
                &redirect_uri,
                &return_url,
                None,
            )
            .await?;
            url
        }
        None => {
            oauth::begin(
                &app.ephemeral,
                &app.envelope,
                &ctx.creds,
                user,
                &redirect_uri,
                &return_url,
            )
            .await?
        }
    };
    Ok(json(
        200,
        &serde_json::json!({ "vendor": vendor, "redirect_url": url.as_str() }),
    ))
}

async fn disconnect(app: &App, user: &str, vendor: Vendor) -> Result<Response<Body>> {
    let conn = app
        .connections
        .get(user, vendor)
        .await?
        .ok_or_else(|| Error::NotFound(format!("connection to {vendor}")))?;
    let revoked_at_vendor = flows::connect::revoke_at_vendor(app, &conn).await?;
    app.connections.delete(user, vendor).await?;
    tracing::info!(user_id = user, %vendor, revoked_at_vendor, "disconnected");
    let mut body = serde_json::json!({
        "vendor": vendor,
        "status": "disconnected",
        "revoked_at_vendor": revoked_at_vendor,
    });
    if !revoked_at_vendor {
        body["note"] = "the grant could not be revoked from here (the vendor offers no revoke, or this build has no driver for it); revoke it in the vendor's app or account settings".into();
    }
    Ok(json(200, &body))
}
