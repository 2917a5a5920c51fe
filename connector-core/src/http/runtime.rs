//! The entry point of every HTTP function: API Gateway's event, through
//! lambda_http, into the function's handler — after dropping the client
//! headers lambda_http's conversion would panic on. lambda_http builds the
//! request URI from `x-forwarded-proto` and `host` and unwraps the result,
//! so `X-Forwarded-Proto: ht#tps` made any route a 500 (found by the
//! `apigw_event` fuzz target).

use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::request::LambdaRequest;
use lambda_http::{service_fn, Adapter, Body, Error, Request, RequestExt, Response, Service};
use std::future::Future;
use std::task::{Context, Poll};

const FORWARDED_PROTO: &str = "x-forwarded-proto";

/// Drops an `x-forwarded-proto` other than http or https (lambda_http then
/// assumes https) and a `host` that is not a valid authority (it then uses
/// API Gateway's domain name). Neither is read by the connector.
fn sanitize(event: &mut LambdaRequest) {
    let LambdaRequest::ApiGatewayV2(ag) = event else {
        return;
    };
    let proto_ok = ag
        .headers
        .get(FORWARDED_PROTO)
        .is_none_or(|v| matches!(v.as_bytes(), b"http" | b"https"));
    if !proto_ok {
        ag.headers.remove(FORWARDED_PROTO);
    }
    let host_ok = ag
        .headers
        .get(http::header::HOST)
        .is_none_or(|v| v.to_str().is_ok_and(is_authority));
    if !host_ok {
        ag.headers.remove(http::header::HOST);
    }
}

/// The request a function sees for an event: sanitized, then converted by
/// lambda_http (what `run` does; the local gateway calls it directly).
pub fn to_request(mut event: LambdaRequest) -> Request {
    sanitize(&mut event);
    event.into()
}

/// `host[:port]` that parses the same as a URL's authority and nothing more.
pub fn is_authority(host: &str) -> bool {
    host.parse::<http::uri::Authority>().is_ok()
        && !host.contains('@')
        && url::Url::parse(&format!("https://{host}/")).is_ok_and(|u| u.path() == "/")
}

struct Sanitized<S>(S);

impl<S: Service<LambdaEvent<LambdaRequest>>> Service<LambdaEvent<LambdaRequest>> for Sanitized<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut event: LambdaEvent<LambdaRequest>) -> Self::Future {
        sanitize(&mut event.payload);
        self.0.call(event)
    }
}

/// `lambda_http::run` for a handler that answers every request.
pub async fn run<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    let service = service_fn(move |req: Request| {
        let invocation = req
            .lambda_context_ref()
            .map(|c| (c.request_id.clone(), c.xray_trace_id.clone()));
        let answer = handler(req);
        async move {
            let answer = answer.await;
            if let Some((request_id, trace_id)) = invocation {
                crate::aws::metrics::flush(&request_id, trace_id.as_deref());
            }
            Ok::<_, Error>(answer)
        }
    });
    lambda_runtime::run(Sanitized(Adapter::from(service))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(proto: &str, host: &str) -> LambdaRequest {
        let json = serde_json::json!({
            "version": "2.0",
            "routeKey": "GET /v1/providers",
            "rawPath": "/v1/providers",
            "rawQueryString": "",
            "headers": {"x-forwarded-proto": proto, "host": host},
            "requestContext": {
                "domainName": "api.example.com",
                "http": {"method": "GET", "path": "/v1/providers"},
                "stage": "$default"
            },
            "isBase64Encoded": false
        });
        serde_json::from_value(json).expect("an HTTP API event")
    }

    fn uri_of(e: LambdaRequest) -> String {
        to_request(e).uri().to_string()
    }

    #[test]
    fn hostile_forwarding_headers_are_dropped_not_a_panic() {
        assert_eq!(
            uri_of(event("ht#tps", "api.example.com")),
            "https://api.example.com/v1/providers"
        );
        assert_eq!(
            uri_of(event("http", "a b")),
            "http://api.example.com/v1/providers"
        );
        assert_eq!(
            uri_of(event("https", "api.example.com:8443")),
            "https://api.example.com:8443/v1/providers"
        );
    }

    #[test]
    fn without_sanitizing_lambda_http_panics() {
        let e = event("ht#tps", "api.example.com");
        let converted = std::panic::catch_unwind(|| {
            let _: Request = e.into();
        });
        assert!(
            converted.is_err(),
            "lambda_http now converts it: drop the sanitizing"
        );
    }
}
