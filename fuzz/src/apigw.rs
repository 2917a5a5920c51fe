//! API Gateway (HTTP API, payload 2.0) events as the Lambda runtime hands
//! them to a function, through the request helpers every route uses.

use crate::refusal;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use connector_core::http::api::{
    body_bytes_up_to, json_body, path_param, query_param, request_domain, route, user_id,
    MAX_BODY_BYTES, MAX_WEBHOOK_BODY_BYTES,
};
use connector_core::http::runtime::{is_authority, to_request};
use http::uri::PathAndQuery;
use lambda_http::request::LambdaRequest;
use lambda_http::RequestExt;

/// Whether API Gateway could have sent this event: the fields it derives
/// from a request line its own parser accepted, and its stage names. The
/// headers are the client's, so anything goes there.
fn from_api_gateway(event: &LambdaRequest) -> bool {
    let LambdaRequest::ApiGatewayV2(ag) = event else {
        return false;
    };
    let path_ok = ag.raw_path.as_deref().is_none_or(|p| {
        p.starts_with('/') && !p.contains(['?', '#']) && p.parse::<PathAndQuery>().is_ok()
    });
    let query_ok = ag
        .raw_query_string
        .as_deref()
        .is_none_or(|q| !q.contains('#') && format!("/?{q}").parse::<PathAndQuery>().is_ok());
    let domain_ok = (ag.request_context.domain_name.as_deref()).is_none_or(is_authority);
    let stage_ok = ag.request_context.stage.as_deref().is_none_or(|s| {
        s == "$default"
            || (!s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    });
    // API Gateway encodes a binary body itself.
    let body_ok = !ag.is_base64_encoded || ag.body.as_deref().is_none_or(|b| B64.decode(b).is_ok());
    path_ok && query_ok && domain_ok && stage_ok && body_ok
}

/// What a function does with an event: convert it as `http::runtime::run`
/// does, then read it with the helpers.
pub fn event(data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<LambdaRequest>(data) else {
        return;
    };
    if !from_api_gateway(&event) {
        return;
    }
    let req = to_request(event);
    match user_id(&req) {
        Ok(user) => assert!(!user.is_empty(), "an empty user id"),
        Err(e) => refusal("user id", &e, data),
    }
    let _ = request_domain(&req);
    assert!(!route(&req).is_empty(), "an empty route");
    for name in ["vendor", "id"] {
        if let Err(e) = path_param(&req, name) {
            refusal("path parameter", &e, data);
        }
    }
    let _ = query_param(&req, "from");
    let _ = req.query_string_parameters_ref().map(|q| q.iter().count());
    for limit in [MAX_BODY_BYTES, MAX_WEBHOOK_BODY_BYTES] {
        match body_bytes_up_to(&req, limit) {
            Ok(body) => assert!(body.len() <= limit, "a body over its limit"),
            Err(e) => assert_eq!(e.status(), 413, "{e}"),
        }
    }
    if let Err(e) = json_body::<serde_json::Value>(&req) {
        refusal("JSON body", &e, data);
    }
}
