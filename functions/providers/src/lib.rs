//! `GET /v1/providers`: every vendor, whether it is configured here, and the
//! caller's connection to it (`flows::connect::providers`).

use connector_core::flows::connect::providers;
use connector_core::http::api::{json, respond, user_id};
use connector_core::{App, Result};
use lambda_http::{Body, Request, Response};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(list(app, &req).await)
}

async fn list(app: &App, req: &Request) -> Result<Response<Body>> {
    let providers = providers(app, &user_id(req)?).await?;
    Ok(json(200, &serde_json::json!({ "providers": providers })))
}
