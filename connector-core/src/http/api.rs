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

/// Parses an optional JSON object body; an empty body or `null` is
/// `T::default()`. Anything but an object is refused, though serde would
/// read a struct from an array too.
pub fn json_body<T: serde::de::DeserializeOwned + Default>(req: &Request) -> Result<T, Error> {
    let bytes = body_bytes(req)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let bad = |e: serde_json::Error| Error::BadRequest(format!("request body: {e}"));
    match serde_json::from_slice(bytes).map_err(bad)? {
        serde_json::Value::Null => Ok(T::default()),
        object @ serde_json::Value::Object(_) => serde_json::from_value(object).map_err(bad),
        _ => Err(Error::BadRequest(
            "request body must be a JSON object".into(),
        )),
    }
}

/// Reads an optional whole number that JSON may write as `47` or `47.0`
/// (the same number to a JSON Schema `integer`), for `deserialize_with`.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::Deserialize;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = match n.as_u64() {
        Some(u) => u32::try_from(u).ok(),
        None => n
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(f))
            .map(|f| f as u32),
    };
    whole
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a whole number")))
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

/// An RFC 9457 problem document: every error the connector answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status and title say what happened.
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub kind: &'static str,
    /// The status's short title, e.g. `Bad request`.
    pub title: &'static str,
    /// The HTTP status, repeated.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong, for a person; server-side failures get a fixed sentence.
    pub detail: String,
    /// The request field with a bad value (422 `Unprocessable content` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// API Gateway's own answer when it refuses a request before any function
/// runs: a missing or invalid bearer token (401), or no such route (404).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GatewayRefusal {
    /// `Unauthorized` or `Not Found`.
    pub message: String,
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
    let body = Problem {
        kind: "about:blank",
        title: err.title(),
        status,
        detail: err.public_detail(),
        field: match err {
            Error::InvalidField { field, .. } => Some(field.clone()),
            _ => None,
        },
    };
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
        .body(Body::Text(
            serde_json::to_string(&body).expect("a problem serializes"),
        ))
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

    fn with_body(body: &str) -> Request {
        let mut req = Request::default();
        *req.body_mut() = Body::Text(body.into());
        req
    }

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Ask {
        #[serde(default, deserialize_with = "whole_number")]
        days: Option<u32>,
        vendor: Option<String>,
    }

    #[test]
    fn a_body_is_an_object_or_nothing() {
        for nothing in ["", "  \n", "null"] {
            assert_eq!(
                json_body::<Ask>(&with_body(nothing)).unwrap(),
                Ask::default()
            );
        }
        let ask: Ask = json_body(&with_body(r#"{"days": 3, "vendor": "mock"}"#)).unwrap();
        assert_eq!((ask.days, ask.vendor.as_deref()), (Some(3), Some("mock")));
        // serde alone reads a struct from an array of its fields.
        for not_an_object in ["[null, null]", "[3, \"mock\"]", "3", "\"x\"", "true"] {
            let err = json_body::<Ask>(&with_body(not_an_object)).unwrap_err();
            assert_eq!(err.status(), 400, "{not_an_object}");
        }
    }

    #[test]
    fn whole_numbers_may_be_written_with_a_fraction_of_zero() {
        let days = |body: &str| json_body::<Ask>(&with_body(body)).map(|a| a.days);
        assert_eq!(days(r#"{"days": 47.0}"#).unwrap(), Some(47));
        assert_eq!(days(r#"{"days": 47}"#).unwrap(), Some(47));
        assert_eq!(days(r#"{"days": null}"#).unwrap(), None);
        for bad in ["47.5", "-1", "4294967296", "1e10", "\"3\""] {
            assert!(days(&format!(r#"{{"days": {bad}}}"#)).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_authorizer_means_unauthorized() {
        let req = Request::default();
        assert_eq!(user_id(&req).unwrap_err().status(), 401);
    }
}
