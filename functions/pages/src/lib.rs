//! `GET /v1/connect` and `GET /v1/dashboard` (public pages): where an app's
//! users connect their wearables and look at their numbers. The pages hold
//! no data: their scripts call the documented API with the user's JWT,
//! which the app hands over in the URL fragment (never sent to a server).
//! Every file is compiled in and served from `GET /v1/pages/{file}` under a
//! Content-Security-Policy that allows this origin only: no CDN, no AWS
//! call, nothing read at start.

use connector_core::http::api::{path_param, respond, route};
use connector_core::http::openapi::NotFound;
use connector_core::{Error, Result};
use lambda_http::{Body, Request, Response};

/// Scripts, styles and data from this origin only; no frames, no forms, no
/// base changes, and the page (with its fragment) named to nobody.
pub const PAGES_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The files under `GET /v1/pages/{file}`: name, content type, contents.
pub const FILES: &[(&str, &str, &str)] = &[
    (
        "pages.css",
        "text/css; charset=utf-8",
        include_str!("../assets/pages.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/common.js"),
    ),
    (
        "connect.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/connect.js"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/dashboard.js"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("../assets/vendor/uPlot.min.css"),
    ),
];

const CONNECT_PAGE: &str = include_str!("../assets/connect.html");
const DASHBOARD_PAGE: &str = include_str!("../assets/dashboard.html");

pub fn handle(req: &Request) -> Response<Body> {
    respond(dispatch(req))
}

fn dispatch(req: &Request) -> Result<Response<Body>> {
    match route(req).as_str() {
        "GET /v1/connect" => Ok(connect_page()),
        "GET /v1/dashboard" => Ok(dashboard_page()),
        "GET /v1/pages/{file}" => page_file(&path_param(req, "file")?),
        other => Err(Error::NotFound(format!("route {other:?}"))),
    }
}

/// The connect page: every vendor, its state in plain words, and Connect,
/// Reconnect or Disconnect; the OAuth return lands here and is completed
/// with the user's JWT. Open it as `/v1/connect#token=<the user's JWT>`.
#[utoipa::path(
    get,
    path = "/v1/connect",
    tag = "pages",
    responses((status = 200, description = "The connect page.", content_type = "text/html", body = String))
)]
pub fn connect_page() -> Response<Body> {
    page(CONNECT_PAGE)
}

/// The data page: the user's last 14, 30 or 90 days as charts, workouts and
/// the connections' state. Open it as `/v1/dashboard#token=<the user's JWT>`.
#[utoipa::path(
    get,
    path = "/v1/dashboard",
    tag = "pages",
    responses((status = 200, description = "The data page.", content_type = "text/html", body = String))
)]
pub fn dashboard_page() -> Response<Body> {
    page(DASHBOARD_PAGE)
}

/// One of the pages' scripts or styles.
#[utoipa::path(
    get,
    path = "/v1/pages/{file}",
    tag = "pages",
    params(("file" = String, Path, description = "The file's name.", example = "connect.js")),
    responses(
        (status = 200, description = "The file.", content_type = "*/*", body = String),
        (status = 404, response = NotFound),
    )
)]
pub fn page_file(file: &str) -> Result<Response<Body>> {
    let (_, content_type, text) = FILES
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| Error::NotFound(format!("page file {file:?}")))?;
    Ok(headers(content_type, "public, max-age=300")
        .body(Body::Text((*text).into()))
        .expect("valid response"))
}

fn page(html: &str) -> Response<Body> {
    headers("text/html; charset=utf-8", "no-cache")
        .body(Body::Text(html.into()))
        .expect("valid response")
}

fn headers(content_type: &str, cache: &str) -> lambda_http::http::response::Builder {
    Response::builder()
        .status(200)
        .header("content-type", content_type)
        .header("cache-control", cache)
        .header("content-security-policy", PAGES_CSP)
        .header("referrer-policy", "no-referrer")
        .header("x-content-type-options", "nosniff")
}
