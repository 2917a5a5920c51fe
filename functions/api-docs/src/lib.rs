//! `GET /v1/openapi.json` and `GET /v1/docs` (public): the API's OpenAPI
//! description, as checked into `docs/openapi.json` (a test holds it to what
//! the handlers' annotations generate), and Swagger UI over it, its files
//! compiled in: no CDN, no AWS call, nothing read at start.

use connector_core::http::api::{path_param, respond, route};
use connector_core::http::openapi::NotFound;
use connector_core::{Error, Result};
use lambda_http::{Body, Request, Response};
use std::sync::{Arc, OnceLock};
use utoipa_swagger_ui::Config;

/// The API's description, as served.
pub const DESCRIPTION: &str = include_str!("../../../docs/openapi.json");

/// The reference's page: Swagger UI's own, with a base below /v1/docs.
const DOCS_PAGE: &str = include_str!("docs.html");

/// The reference works offline: its own files, the description, nothing else.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'self'; \
     form-action 'none'; frame-ancestors 'none'";

pub fn handle(req: &Request) -> Response<Body> {
    respond(dispatch(req))
}

fn dispatch(req: &Request) -> Result<Response<Body>> {
    match route(req).as_str() {
        "GET /v1/openapi.json" => Ok(openapi_json()),
        "GET /v1/docs" => docs(),
        "GET /v1/docs/{file}" => docs_file(&path_param(req, "file")?),
        other => Err(Error::NotFound(format!("route {other:?}"))),
    }
}

/// The OpenAPI 3.1 description of every route.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "service",
    responses((status = 200, description = "This document.", body = serde_json::Value))
)]
pub fn openapi_json() -> Response<Body> {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("cache-control", "public, max-age=300")
        .body(Body::Text(DESCRIPTION.into()))
        .expect("valid response")
}

/// A browsable reference of this API (Swagger UI), served with its own files.
#[utoipa::path(
    get,
    path = "/v1/docs",
    tag = "service",
    responses((status = 200, description = "The reference's page.", content_type = "text/html", body = String))
)]
pub fn docs() -> Result<Response<Body>> {
    Ok(docs_response("text/html; charset=utf-8", false)
        .body(Body::Text(DOCS_PAGE.into()))
        .expect("valid response"))
}

/// One of the reference's files (scripts, styles, icons).
#[utoipa::path(
    get,
    path = "/v1/docs/{file}",
    tag = "service",
    params(("file" = String, Path, description = "The file's name.", example = "swagger-ui.css")),
    responses(
        (status = 200, description = "The file (scripts and styles gzip-encoded).",
            content_type = "*/*", body = Vec<u8>),
        (status = 404, response = NotFound),
    )
)]
pub fn docs_file(file: &str) -> Result<Response<Body>> {
    if file == "index.html" {
        return docs();
    }
    let asset = utoipa_swagger_ui::serve(file, swagger_config().clone())
        .map_err(|e| Error::Config(format!("swagger ui: {e}")))?
        .ok_or_else(|| Error::NotFound(format!("docs file {file:?}")))?;
    Ok(docs_response(&asset.content_type, asset.gzpipped)
        .body(Body::Binary(asset.bytes.into_owned()))
        .expect("valid response"))
}

fn docs_response(content_type: &str, gzipped: bool) -> lambda_http::http::response::Builder {
    let builder = Response::builder()
        .status(200)
        .header("content-type", content_type)
        .header("cache-control", "public, max-age=3600")
        .header("content-security-policy", DOCS_CSP)
        .header("x-content-type-options", "nosniff");
    if gzipped {
        builder.header("content-encoding", "gzip")
    } else {
        builder
    }
}

fn swagger_config() -> &'static Arc<Config<'static>> {
    static CONFIG: OnceLock<Arc<Config<'static>>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Arc::new(
            Config::new(["/v1/openapi.json"])
                // Swagger UI's default checks the description at swagger.io.
                .validator_url("none")
                .try_it_out_enabled(true)
                .persist_authorization(false),
        )
    })
}
