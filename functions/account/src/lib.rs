//! `DELETE /v1/me`: the caller deleted (`flows::account`), answered with the
//! receipt: 200 when everything stored is gone, 202 while the sync worker
//! erases the rest. `GET /v1/me/erasure`: where that erasure stands.

use connector_core::domain::erasure::ErasureStatus;
use connector_core::flows::account::delete_user;
use connector_core::flows::erasure;
use connector_core::http::api::{json, respond, route, user_id};
use connector_core::{App, Error, Result};
use lambda_http::{Body, Request, Response};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(dispatch(app, &req).await)
}

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>> {
    let user = user_id(req)?;
    match route(req).as_str() {
        "DELETE /v1/me" => {
            let receipt = delete_user(app, &user).await?;
            let status = match receipt.erasure {
                ErasureStatus::InProgress => 202,
                _ => 200,
            };
            Ok(json(status, &receipt))
        }
        "GET /v1/me/erasure" => Ok(json(200, &erasure::status(app, &user).await?)),
        other => Err(Error::NotFound(format!("route {other:?}"))),
    }
}
