//! `GET /v1/health` (public): whether the connector's tables, queues and key
//! answer (`flows::status`), for load balancers and deploy checks. Its role
//! may describe them and nothing else: it reads no item, token or secret.

use connector_core::flows::status::{status, Overall, ServiceStatus};
use connector_core::http::api::{json, respond, route};
use connector_core::{App, Error};
use lambda_http::{Body, Request, Response};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(match route(&req).as_str() {
        "GET /v1/health" => Ok(health(app).await),
        other => Err(Error::NotFound(format!("route {other:?}"))),
    })
}

/// Whether the connector can serve: 200 when its tables, queues and key
/// answer, 503 (same body) when one does not.
///
/// Each check is one control-plane read; the answer is reused for 5 seconds
/// per function instance, so calling this often costs no more AWS calls.
/// Why a check failed is in the function's log, not in the answer.
#[utoipa::path(
    get,
    path = "/v1/health",
    tag = "service",
    responses(
        (status = 200, description = "Every check answered.", body = ServiceStatus),
        (status = 503, description = "A check failed; `checks` says which.", body = ServiceStatus),
    )
)]
pub async fn health(app: &App) -> Response<Body> {
    let now = status(app).await;
    let code = match now.status {
        Overall::Ok => 200,
        Overall::Degraded => 503,
    };
    let mut response = json(code, &now);
    response.headers_mut().insert(
        "cache-control",
        lambda_http::http::HeaderValue::from_static("no-store"),
    );
    response
}
