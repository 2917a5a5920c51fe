//! The local API gateway: turns HTTP requests into API Gateway HTTP API
//! (payload 2.0) events for the same handlers the Lambdas run, after checking
//! the bearer JWT like the HttpApi authorizer on every non-public route.

use crate::dev_jwt;
use crate::template::Route;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use connector_core::App;
use lambda_http::request::LambdaRequest;
use lambda_http::Body;
use std::collections::HashMap;
use std::sync::Arc;

/// The HTTP functions the gateway can invoke (by their cargo binary name).
pub const HTTP_FUNCTIONS: [&str; 10] = [
    "account",
    "api-docs",
    "pages",
    "status",
    "providers",
    "connect",
    "oauth-callback",
    "webhook",
    "data",
    "health-push",
];

pub struct Gateway {
    /// Each function's app (its own role's credentials) by binary.
    pub functions: HashMap<String, Arc<App>>,
    /// Functions served by their real binaries instead (by binary).
    pub binaries: HashMap<String, Arc<crate::lambda::LambdaProcess>>,
    pub routes: Vec<Route>,
    pub jwt_secret: String,
}

pub fn router(gw: Arc<Gateway>) -> axum::Router {
    axum::Router::new()
        .route("/connected", axum::routing::get(connected_page))
        .fallback(dispatch)
        // API Gateway takes up to 10 MB; the functions set their own limits.
        .layer(axum::extract::DefaultBodyLimit::max(10 * 1024 * 1024))
        .with_state(gw)
}

/// The local stand-in for an app's return URL after OAuth. A real app
/// completes a pending consent with its signed-in user's JWT; this page
/// says how, since it has no user of its own.
async fn connected_page(headers: HeaderMap, uri: Uri) -> String {
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let mut page = format!("OAuth finished: {}\n", uri.query().unwrap_or(""));
    if let (Some("pending"), Some(vendor), Some(completion)) = (
        query.get("status").map(String::as_str),
        query.get("vendor"),
        query.get("completion"),
    ) {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1:3000");
        page.push_str(&format!(
            "Complete it as the user who started it, within 5 minutes:\n\
             curl -X POST -H \"Authorization: Bearer $TOKEN\" -d '{{\"completion\":\"{completion}\"}}' \
             http://{host}/v1/connections/{vendor}/complete\n"
        ));
    }
    page
}

fn gateway_message(status: StatusCode, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        serde_json::json!({ "message": message }).to_string(),
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get("authorization")?.to_str().ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
}

async fn dispatch(
    State(gw): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let Some((route, params)) = gw
        .routes
        .iter()
        .find_map(|r| r.matches(method.as_str(), path).map(|p| (r, p)))
    else {
        return gateway_message(StatusCode::NOT_FOUND, "Not Found");
    };
    let claims = if route.public {
        None
    } else {
        match bearer(&headers).and_then(|t| dev_jwt::verify(&gw.jwt_secret, t)) {
            Some(c) => Some(c),
            None => return gateway_message(StatusCode::UNAUTHORIZED, "Unauthorized"),
        }
    };
    let event = api_gateway_event(
        route,
        &params,
        &method,
        &uri,
        &headers,
        &body,
        claims.as_ref(),
    );
    if let Some(process) = gw.binaries.get(&route.binary) {
        // API Gateway gives an HTTP function at most 30 s.
        return match process
            .invoke(&event, std::time::Duration::from_secs(30))
            .await
        {
            Ok(answer) => from_proxy_response(&answer),
            Err(e) => {
                tracing::error!(error = %e, "function binary failed");
                gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        };
    }
    let request = match serde_json::from_value::<LambdaRequest>(event) {
        Ok(e) => connector_core::http::runtime::to_request(e),
        Err(e) => {
            tracing::error!(error = %e, "could not build the Lambda request");
            return gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    let Some(app) = gw.functions.get(&route.binary) else {
        tracing::error!(
            binary = route.binary,
            "route names a function the gateway does not know"
        );
        return gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let response = match route.binary.as_str() {
        "providers" => providers::handle(app, request).await,
        "connect" => connect::handle(app, request).await,
        "oauth-callback" => oauth_callback::handle(app, request).await,
        "webhook" => webhook::handle(app, request).await,
        "data" => data::handle(app, request).await,
        "health-push" => health_push::handle(app, request).await,
        "account" => account::handle(app, request).await,
        "api-docs" => api_docs::handle(&request),
        "pages" => pages::handle(&request),
        "status" => status::handle(app, request).await,
        other => {
            tracing::error!(
                binary = other,
                "route names a function the gateway does not know"
            );
            return gateway_message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    to_axum(response)
}

/// An API Gateway HTTP API payload-2.0 event, as AWS sends it.
pub fn api_gateway_event(
    route: &Route,
    params: &[(String, String)],
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    claims: Option<&HashMap<String, String>>,
) -> serde_json::Value {
    let mut hdrs: HashMap<String, String> = HashMap::new();
    for (k, v) in headers {
        let v = String::from_utf8_lossy(v.as_bytes()).to_string();
        hdrs.entry(k.as_str().to_lowercase())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let raw_query = uri.query().unwrap_or("");
    let mut query: HashMap<String, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(k.to_string())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert_with(|| v.to_string());
    }
    let now = chrono::Utc::now();
    let (body_value, is_b64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (serde_json::Value::Null, false),
        Ok(text) => (serde_json::Value::String(text.to_string()), false),
        Err(_) => (serde_json::Value::String(B64.encode(body)), true),
    };
    let host = hdrs
        .get("host")
        .cloned()
        .unwrap_or_else(|| "127.0.0.1".into());
    let mut context = serde_json::json!({
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": host,
        "domainPrefix": "local",
        "http": {
            "method": method.as_str(),
            "path": uri.path(),
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": hdrs.get("user-agent").cloned().unwrap_or_default(),
        },
        "requestId": uuid::Uuid::new_v4().to_string(),
        "routeKey": route.route_key(),
        "stage": "$default",
        "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
        "timeEpoch": now.timestamp_millis(),
    });
    if let Some(c) = claims {
        context["authorizer"] = serde_json::json!({ "jwt": { "claims": c, "scopes": null } });
    }
    let mut event = serde_json::json!({
        "version": "2.0",
        "routeKey": route.route_key(),
        "rawPath": uri.path(),
        "rawQueryString": raw_query,
        "headers": hdrs,
        "requestContext": context,
        "isBase64Encoded": is_b64,
    });
    if !query.is_empty() {
        event["queryStringParameters"] = serde_json::json!(query);
    }
    if !params.is_empty() {
        event["pathParameters"] =
            serde_json::json!(params.iter().cloned().collect::<HashMap<_, _>>());
    }
    if !body_value.is_null() {
        event["body"] = body_value;
    }
    event
}

/// An HTTP API (payload 2.0) proxy response, as a function binary answers.
pub fn from_proxy_response(answer: &serde_json::Value) -> Response {
    let status = answer["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let text = answer["body"].as_str().unwrap_or_default();
    let body = if answer["isBase64Encoded"].as_bool() == Some(true) {
        B64.decode(text).unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    let header = |name: &str, value: &serde_json::Value| {
        Some((
            name.parse::<axum::http::HeaderName>().ok()?,
            value.as_str()?.parse::<axum::http::HeaderValue>().ok()?,
        ))
    };
    let headers = response.headers_mut();
    for (name, value) in answer["headers"].as_object().into_iter().flatten() {
        if let Some((n, v)) = header(name, value) {
            headers.insert(n, v);
        }
    }
    for (name, values) in answer["multiValueHeaders"]
        .as_object()
        .into_iter()
        .flatten()
    {
        for value in values.as_array().into_iter().flatten() {
            if let Some((n, v)) = header(name, value) {
                headers.append(n, v);
            }
        }
    }
    for cookie in answer["cookies"].as_array().into_iter().flatten() {
        if let Some((n, v)) = header("set-cookie", cookie) {
            headers.append(n, v);
        }
    }
    response
}

fn to_axum(resp: lambda_http::Response<Body>) -> Response {
    let (parts, body) = resp.into_parts();
    let bytes: Vec<u8> = match body {
        Body::Empty => Vec::new(),
        Body::Text(t) => t.into_bytes(),
        Body::Binary(b) => b,
        _ => Vec::new(),
    };
    Response::from_parts(parts, axum::body::Body::from(bytes))
}
