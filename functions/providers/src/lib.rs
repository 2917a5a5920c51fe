//! `GET /v1/providers`: every vendor, whether it is configured here, and the
//! caller's connection to it (`flows::connect::providers`).

use connector_core::flows::connect::{providers, Provider};
use connector_core::http::api::{json, respond, user_id};
use connector_core::{App, Result};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(list(app, &req).await)
}

/// Every vendor the connector knows, with the caller's connection to each.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Providers {
    /// One per vendor, in a fixed order.
    pub providers: Vec<Provider>,
}

/// List the vendors and the caller's connections.
///
/// `supported` is what the token refresher's tick last published (it has the
/// credentials; this function reads none), so a vendor whose credentials were
/// just stored shows within 15 minutes. `status` is the connection's, when
/// the caller has one.
#[utoipa::path(
    get,
    path = "/v1/providers",
    tag = "connections",
    responses(
        (status = 200, body = Providers),
        (status = 401, response = connector_core::http::openapi::Unauthorized),
        (status = 503, response = connector_core::http::openapi::Unavailable),
    ),
    security(("user_jwt" = []))
)]
pub async fn list(app: &App, req: &Request) -> Result<Response<Body>> {
    let providers = providers(app, &user_id(req)?).await?;
    Ok(json(200, &Providers { providers }))
}
