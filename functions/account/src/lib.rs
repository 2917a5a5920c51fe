//! `DELETE /v1/me`: the caller deleted (`flows::account`), answered with the
//! receipt: 200 when everything stored is gone, 202 while the sync worker
//! erases the rest. `GET /v1/me/erasure`: where that erasure stands.

use connector_core::domain::erasure::{ErasureRecord, ErasureStatus};
use connector_core::flows::account::{delete_user, Receipt};
use connector_core::flows::erasure;
use connector_core::http::api::{json, respond, route, user_id};
use connector_core::http::openapi::{BadGateway, NotFound, Unauthorized, Unavailable};
use connector_core::{App, Error, Result};
use lambda_http::{Body, Request, Response};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(dispatch(app, &req).await)
}

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>> {
    let user = user_id(req)?;
    match route(req).as_str() {
        "DELETE /v1/me" => delete_me(app, &user).await,
        "GET /v1/me/erasure" => erasure_status(app, &user).await,
        other => Err(Error::NotFound(format!("route {other:?}"))),
    }
}

/// Delete the caller: revoke every connection at its vendor, then erase everything kept.
///
/// Idempotent. A vendor that refuses the revoke never blocks the deletion;
/// one that cannot be reached keeps only its own connection (502 naming
/// it) until a retry. Until the final sweep has run, connecting or pushing
/// as the user answers 409 `erasure_in_progress`.
#[utoipa::path(
    delete,
    path = "/v1/me",
    tag = "account",
    responses(
        (status = 200, description = "Everything stored is gone (a final sweep follows).",
            body = Receipt),
        (status = 202, description = "The sync worker erases the rest: poll `GET /v1/me/erasure`.",
            body = Receipt),
        (status = 401, response = Unauthorized),
        (status = 502, response = BadGateway),
        (status = 503, response = Unavailable),
    ),
    security(("user_jwt" = []))
)]
pub async fn delete_me(app: &App, user: &str) -> Result<Response<Body>> {
    let receipt = delete_user(app, user).await?;
    let status = match receipt.erasure {
        ErasureStatus::InProgress => 202,
        _ => 200,
    };
    Ok(json(status, &receipt))
}

/// Where the caller's erasure stands.
///
/// Kept under a digest of the user id for 30 days after its last step.
#[utoipa::path(
    get,
    path = "/v1/me/erasure",
    tag = "account",
    responses(
        (status = 200, body = ErasureRecord),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    ),
    security(("user_jwt" = []))
)]
pub async fn erasure_status(app: &App, user: &str) -> Result<Response<Body>> {
    Ok(json(200, &erasure::status(app, user).await?))
}
