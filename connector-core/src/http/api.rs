//! HTTP plumbing shared by the API functions: who the caller is (the JWT
//! `sub` the authorizer put into the request context), request parsing, and
//! JSON / problem+json responses.

use crate::domain::error::Error;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

/// Largest request body a user route accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest vendor webhook body: vendors push whole summaries (Garmin's push
/// mode, Terra's data events can run to megabytes), and a 413 would make
/// them retry and finally drop the notification. Lambda's own request
/// limit is 6 MB.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 6 * 1024 * 1024;

/// The authenticated user: the `sub` claim of the validated JWT.
pub fn user_id(req: &Request) -> Result<String, Error> {
    let unauthorized = || Error::Unauthorized("a valid bearer token is required".into());
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .and_then(|j| j.claims.get("sub"))
            .filter(|s| !s.is_empty())
            .cloned()
            .ok_or_else(unauthorized),
        _ => Err(unauthorized()),
    }
}

/// The domain the request came in on (for redirect URIs in a first deploy).
pub fn request_domain(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.domain_name.clone(),
        _ => None,
    }
}

/// The matched route, e.g. "GET /v1/reports" (API Gateway's routeKey), or
/// method and path when the context has none.
pub fn route(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) if ctx.route_key.is_some() => {
            ctx.route_key.clone().unwrap_or_default()
        }
        _ => format!("{} {}", req.method(), req.uri().path()),
    }
}

/// The path parameter `name`; missing is a 400.
pub fn path_param(req: &Request, name: &str) -> Result<String, Error> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(String::from)
        .ok_or_else(|| Error::BadRequest(format!("path parameter {name} is missing")))
}

/// The address the request came from, as API Gateway saw it ("" if none).
pub fn source_ip(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// The first value of query parameter `name`, if any.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(String::from)
}

/// The body, refused with 413 above `MAX_BODY_BYTES`.
pub fn body_bytes(req: &Request) -> Result<&[u8], Error> {
    body_bytes_up_to(req, MAX_BODY_BYTES)
}

/// The body, refused with 413 above `limit` bytes.
pub fn body_bytes_up_to(req: &Request, limit: usize) -> Result<&[u8], Error> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > limit {
        return Err(Error::PayloadTooLarge(limit));
    }
    Ok(bytes)
}

/// Parses an optional JSON body; an empty body is `T::default()`.
pub fn json_body<T: serde::de::DeserializeOwned + Default>(req: &Request) -> Result<T, Error> {
    let bytes = body_bytes(req)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| Error::BadRequest(format!("request body: {e}")))
}

/// A JSON response of `value` with `status`.
pub fn json<T: Serialize>(status: u16, value: &T) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(
            serde_json::to_string(value).expect("response serializes"),
        ))
        .expect("valid response")
}

/// A response with `status` and no body.
pub fn empty(status: u16) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Body::Empty)
        .expect("valid response")
}

/// An RFC 9457 problem response. Server-side errors are logged in full and
/// answered with a fixed sentence.
pub fn problem(err: &Error) -> Response<Body> {
    let status = err.status();
    if status >= 500 {
        tracing::error!(error = %err, status, "request failed");
    } else {
        tracing::info!(error = %err, status, "request refused");
    }
    let mut body = serde_json::json!({
        "type": "about:blank",
        "title": err.title(),
        "status": status,
        "detail": err.public_detail(),
    });
    if let Error::InvalidField { field, .. } = err {
        body["field"] = serde_json::Value::String(field.clone());
    }
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/problem+json");
    match err {
        Error::RateLimited { retry_after_secs } => {
            builder = builder.header("retry-after", retry_after_secs.to_string());
        }
        Error::Storage(_) | Error::Queue(_) => builder = builder.header("retry-after", "2"),
        _ => {}
    }
    builder
        .body(Body::Text(body.to_string()))
        .expect("valid response")
}

/// Runs a handler body and turns its error into a problem response.
pub fn respond(result: Result<Response<Body>, Error>) -> Response<Body> {
    result.unwrap_or_else(|e| problem(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_hides_server_details() {
        let r = problem(&Error::Storage(
            "UpdateItem: table t-connections missing".into(),
        ));
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let Body::Text(t) = r.body() else {
            panic!("text body")
        };
        assert!(!t.contains("t-connections"), "{t}");
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        assert_eq!(v["status"], 503);
        assert_eq!(v["title"], "Storage unavailable");
    }

    #[test]
    fn rate_limited_has_retry_after() {
        let r = problem(&Error::RateLimited {
            retry_after_secs: 7,
        });
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "7");
    }

    #[test]
    fn no_authorizer_means_unauthorized() {
        let req = Request::default();
        assert_eq!(user_id(&req).unwrap_err().status(), 401);
    }
}
