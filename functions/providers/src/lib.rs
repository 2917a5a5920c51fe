//! `GET /v1/providers`: every vendor, whether it is configured here, and the
//! caller's connection to it (`flows::connect::providers`);
//! `GET /v1/connections`: the caller's connections with their backfill's
//! progress (`flows::connect::connections`).

use connector_core::flows::connect::{connections, providers, ConnectionSummary, Provider};
use connector_core::http::api::{json, respond, route, user_id};
use connector_core::{App, Error, Result};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(match route(&req).as_str() {
        "GET /v1/providers" => list(app, &req).await,
        "GET /v1/connections" => list_connections(app, &req).await,
        other => Err(Error::NotFound(format!("route {other:?}"))),
    })
}

/// The caller's connections.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Connections {
    /// One per vendor the caller has a connection to, in vendor order.
    pub connections: Vec<ConnectionSummary>,
}

/// List the caller's connections and how their first backfill stands.
///
/// Each connection's `backfill` is the history pulled when it was
/// connected (`CONNECTOR_BACKFILL_DAYS` days): `queued`, `running` with
/// `days_done` of `days_asked`, `done`, or `failed` with a `reason`. A
/// `backfill.completed` or `backfill.failed` event says when it ends.
#[utoipa::path(
    get,
    path = "/v1/connections",
    tag = "connections",
    responses(
        (status = 200, body = Connections),
        (status = 401, response = connector_core::http::openapi::Unauthorized),
        (status = 503, response = connector_core::http::openapi::Unavailable),
    ),
    security(("user_jwt" = []))
)]
pub async fn list_connections(app: &App, req: &Request) -> Result<Response<Body>> {
    let connections = connections(app, &user_id(req)?).await?;
    Ok(json(200, &Connections { connections }))
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
