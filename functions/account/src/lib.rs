//! `DELETE /v1/me`: the caller deleted (`flows::account`), answered with the
//! receipt.

use connector_core::flows::account::delete_user;
use connector_core::http::api::{json, respond, user_id};
use connector_core::{App, Result};
use lambda_http::{Body, Request, Response};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(delete_me(app, &req).await)
}

async fn delete_me(app: &App, req: &Request) -> Result<Response<Body>> {
    let receipt = delete_user(app, &user_id(req)?).await?;
    Ok(json(200, &receipt))
}
