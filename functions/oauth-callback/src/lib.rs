//! `GET /v1/oauth/{vendor}/callback?code&state` (public): takes the single-use
//! state, exchanges the code, stores the sealed tokens, enqueues a backfill,
//! and sends the user back to the app's return URL with the outcome.

use connector_core::http::api::{path_param, query_param, respond};
use connector_core::vendors::registry;
use connector_core::vendors::token as oauth;
use connector_core::{flows, App, Error, Result, Vendor};
use lambda_http::{Body, Request, RequestExt, Response};
use std::collections::HashMap;

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(callback(app, &req).await)
}

fn redirect(return_url: &str, pairs: &[(&str, &str)]) -> Result<Response<Body>> {
    let mut url = url::Url::parse(return_url)
        .map_err(|_| Error::Corrupt("stored return URL is invalid".into()))?;
    url.query_pairs_mut().extend_pairs(pairs);
    Ok(Response::builder()
        .status(302)
        .header("location", url.as_str())
        .header("cache-control", "no-store")
        .body(Body::Empty)
        .expect("valid response"))
}

async fn callback(app: &App, req: &Request) -> Result<Response<Body>> {
    let vendor: Vendor = path_param(req, "vendor")?.parse()?;
    if registry::spec(vendor).oauth.is_none() {
        return Err(Error::BadRequest(format!(
            "{vendor} connects without OAuth; POST /v1/connections/{vendor}"
        )));
    }
    // A hosted connect flow (Terra) hands our state back as `reference_id`.
    let state = query_param(req, "state")
        .or_else(|| query_param(req, "reference_id"))
        .ok_or_else(|| Error::BadRequest("state is missing".into()))?;
    let state_item = oauth::take_state(&app.ephemeral, vendor, &state).await?;
    let return_url = state_item
        .get("return_url")
        .cloned()
        .ok_or_else(|| Error::Corrupt("OAuth state item lacks return_url".into()))?;
    let v = vendor.as_str();
    if let Some(err) = query_param(req, "error") {
        // The vendor's error code only (e.g. access_denied), never free text.
        let reason: String = err
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return redirect(
            &return_url,
            &[("vendor", v), ("status", "error"), ("reason", &reason)],
        );
    }
    let (driver, ctx) = app.driver(vendor).await?;
    let query: HashMap<String, String> = req
        .query_string_parameters_ref()
        .map(|q| {
            q.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let user_id = state_item
        .get("user_id")
        .cloned()
        .ok_or_else(|| Error::Corrupt("OAuth state item lacks user_id".into()))?;
    match driver.hosted_callback(&ctx, &state, &query).await {
        Ok(None) => {}
        Ok(Some((vendor_user_id, tokens))) => {
            flows::connect::establish(app, &user_id, vendor, &vendor_user_id, &tokens).await?;
            return redirect(&return_url, &[("vendor", v), ("status", "connected")]);
        }
        Err(e) => {
            tracing::warn!(%vendor, error = %e, "hosted connect could not be confirmed");
            return redirect(
                &return_url,
                &[
                    ("vendor", v),
                    ("status", "error"),
                    ("reason", "identify_failed"),
                ],
            );
        }
    }
    let Some(code) = query_param(req, "code") else {
        return redirect(
            &return_url,
            &[
                ("vendor", v),
                ("status", "error"),
                ("reason", "missing_code"),
            ],
        );
    };
    let creds = app.vendor_credentials(vendor).await?;
    let done = match oauth::complete(&app.http, &app.envelope, &creds, &state_item, &code).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(%vendor, error = %e, "code exchange failed");
            return redirect(
                &return_url,
                &[
                    ("vendor", v),
                    ("status", "error"),
                    ("reason", "exchange_failed"),
                ],
            );
        }
    };
    let vendor_user_id = match driver.identify_user(&ctx, &done.grant, &done.user_id).await {
        Ok(id) if !id.is_empty() => id,
        outcome => {
            let error = outcome.err().map(|e| e.to_string()).unwrap_or_default();
            tracing::warn!(%vendor, error, "could not identify the vendor user");
            return redirect(
                &return_url,
                &[
                    ("vendor", v),
                    ("status", "error"),
                    ("reason", "identify_failed"),
                ],
            );
        }
    };
    flows::connect::establish(
        app,
        &done.user_id,
        vendor,
        &vendor_user_id,
        &done.grant.tokens,
    )
    .await?;
    redirect(&return_url, &[("vendor", v), ("status", "connected")])
}
