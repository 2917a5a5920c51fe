//! What a simulated vendor was asked and answered, kept (bounded) so tests
//! can hold the simulator's shapes to the vendors' published descriptions
//! (`crate::conformance`).

use super::VendorSim;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::{Arc, Mutex};

/// At most this many exchanges are kept per vendor (the oldest go first).
const MAX_KEPT: usize = 2_000;
/// Bodies larger than this are not kept (they are not the vendor's shapes:
/// the limits tests' padded answers).
const MAX_BODY: usize = 1 << 20;

/// One request to a simulated vendor and its answer.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The HTTP method, upper case.
    pub method: String,
    /// The path under the vendor's base URL (`/developer/v2/cycle`).
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The request's `Content-Type`, or empty.
    pub request_content_type: String,
    /// The request's body (form posts carry Withings' `action` here).
    pub request_body: Vec<u8>,
    /// The scheme of the request's `Authorization` header (never its credentials).
    pub auth_scheme: Option<String>,
    /// The names of the request's headers, lower case.
    pub header_names: Vec<String>,
    /// The answer's status.
    pub status: u16,
    /// The answer's content type.
    pub content_type: String,
    /// The answer's body.
    pub body: Vec<u8>,
}

/// The exchanges of one simulated vendor, and the webhook bodies it made.
#[derive(Default)]
pub struct Recorder {
    exchanges: Mutex<Vec<Exchange>>,
    deliveries: Mutex<Vec<Vec<u8>>>,
}

impl Recorder {
    /// The exchanges kept so far, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap().clone()
    }

    /// The webhook bodies the simulator made and sent so far, oldest first
    /// (not those a test wrote itself).
    pub fn deliveries(&self) -> Vec<Vec<u8>> {
        self.deliveries.lock().unwrap().clone()
    }

    /// Keeps a webhook body the simulator made.
    pub fn delivered(&self, body: &[u8]) {
        if body.len() <= MAX_BODY {
            keep_last(&self.deliveries, body.to_vec());
        }
    }

    fn keep(&self, e: Exchange) {
        keep_last(&self.exchanges, e);
    }
}

/// Adds `item`, dropping the oldest once `MAX_KEPT` are kept.
fn keep_last<T>(list: &Mutex<Vec<T>>, item: T) {
    let mut kept = list.lock().unwrap();
    if kept.len() >= MAX_KEPT {
        kept.remove(0);
    }
    kept.push(item);
}

/// Middleware: passes the request on and keeps the exchange.
pub async fn record(State(sim): State<Arc<VendorSim>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(request_body) = to_bytes(body, MAX_BODY).await else {
        return Response::builder()
            .status(413)
            .body(Body::from("request too large for the simulator"))
            .unwrap();
    };
    let (method, path, query) = (
        parts.method.to_string(),
        parts.uri.path().to_string(),
        parts.uri.query().unwrap_or_default().to_string(),
    );
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let request_content_type = header(http::header::CONTENT_TYPE);
    let auth_scheme = header(http::header::AUTHORIZATION)
        .split_whitespace()
        .next()
        .map(String::from);
    let header_names = parts
        .headers
        .keys()
        .map(|k| k.as_str().to_string())
        .collect();
    let resp = next
        .run(Request::from_parts(parts, Body::from(request_body.clone())))
        .await;
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    if bytes.len() <= MAX_BODY {
        sim.recorder.keep(Exchange {
            method,
            path,
            query,
            request_content_type,
            request_body: request_body.to_vec(),
            auth_scheme,
            header_names,
            status: parts.status.as_u16(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            body: bytes.to_vec(),
        });
    }
    Response::from_parts(parts, Body::from(bytes))
}
