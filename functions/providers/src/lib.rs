//! `GET /v1/providers`: every vendor, whether it is configured here, and the
//! caller's connection to it.

use connector_core::http::api::{json, respond, user_id};
use connector_core::vendors::registry;
use connector_core::{App, Result, Vendor};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

#[derive(Serialize)]
pub struct Provider {
    pub id: Vendor,
    pub name: &'static str,
    pub supported: bool,
    pub connected: bool,
    pub status: Option<&'static str>,
    pub last_sync_at: Option<String>,
    pub error: Option<String>,
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(providers(app, &req).await)
}

async fn providers(app: &App, req: &Request) -> Result<Response<Body>> {
    let user = user_id(req)?;
    let connections = app.connections.list(&user).await?;
    let mut out = Vec::with_capacity(Vendor::ALL.len());
    for vendor in Vendor::ALL {
        let conn = connections.iter().find(|c| c.vendor == vendor);
        out.push(Provider {
            id: vendor,
            name: registry::spec(vendor).display_name,
            supported: app.vendor_credentials(vendor).await?.supported(),
            connected: conn.is_some_and(|c| {
                c.status == connector_core::domain::connection::ConnectionStatus::Connected
            }),
            status: conn.map(|c| c.status.as_str()),
            last_sync_at: conn.and_then(|c| c.last_sync_at).map(|t| t.to_rfc3339()),
            error: conn.and_then(|c| c.last_error.clone()),
        });
    }
    Ok(json(200, &serde_json::json!({ "providers": out })))
}
