//! Fault modes of a simulated vendor, for reliability tests: the next N API
//! calls answer 5xx, or have their connection dropped before any answer,
//! every call can be slowed down, and answers can be padded to a vendor
//! gone wrong's size. The `/_sim` control routes and the OAuth endpoints are
//! left alone, but for the token endpoint's own padding.

use super::VendorSim;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

#[derive(Default, Debug)]
pub struct Faults {
    fail_5xx: AtomicU32,
    drop_next: AtomicU32,
    delay_ms: AtomicU64,
    pad_api_bytes: AtomicU64,
    pad_token_bytes: AtomicU64,
    /// How many faults were injected so far.
    pub injected: AtomicU32,
}

fn take(n: &AtomicU32) -> bool {
    n.fetch_update(SeqCst, SeqCst, |v| v.checked_sub(1)).is_ok()
}

impl Faults {
    /// The next `n` API calls answer 503.
    pub fn fail_next(&self, n: u32) {
        self.fail_5xx.store(n, SeqCst);
    }

    /// The next `n` API calls lose their connection without an answer.
    pub fn drop_next(&self, n: u32) {
        self.drop_next.store(n, SeqCst);
    }

    /// Every API call waits this long before answering.
    pub fn slow_down(&self, ms: u64) {
        self.delay_ms.store(ms, SeqCst);
    }

    /// Every JSON object the API answers carries a `_pad` field of `bytes`
    /// more bytes (0: none).
    pub fn pad_api_answers(&self, bytes: u64) {
        self.pad_api_bytes.store(bytes, SeqCst);
    }

    /// Every token endpoint answer that is a JSON object carries a `_pad`
    /// field of `bytes` more bytes (0: none).
    pub fn pad_token_answers(&self, bytes: u64) {
        self.pad_token_bytes.store(bytes, SeqCst);
    }
}

/// `resp` with a `_pad` string of `bytes` bytes added to its JSON object.
async fn padded(resp: Response, bytes: u64) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(raw) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut json: serde_json::Value = match serde_json::from_slice(&raw) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => return Response::from_parts(parts, axum::body::Body::from(raw)),
    };
    json["_pad"] = "x".repeat(bytes as usize).into();
    let body = serde_json::to_vec(&json).expect("json");
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// The middleware that applies a vendor's faults to its API routes.
pub async fn inject(State(sim): State<Arc<VendorSim>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let (auth, token) = sim.oauth_paths;
    let exempt = path.contains("/_sim/") || path.ends_with(auth) || path.ends_with(token);
    if exempt {
        let pad = sim.faults.pad_token_bytes.load(SeqCst);
        let is_token = path.ends_with(token);
        let resp = next.run(req).await;
        return if is_token && pad > 0 {
            padded(resp, pad).await
        } else {
            resp
        };
    }
    let faults = &sim.faults;
    let delay = faults.delay_ms.load(SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    if take(&faults.drop_next) {
        faults.injected.fetch_add(1, SeqCst);
        // Unwinding the connection's task closes it with no response.
        panic!("simulated dropped connection (expected in fault tests)");
    }
    if take(&faults.fail_5xx) {
        faults.injected.fetch_add(1, SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, "simulated outage").into_response();
    }
    let pad = faults.pad_api_bytes.load(SeqCst);
    let resp = next.run(req).await;
    if pad > 0 {
        padded(resp, pad).await
    } else {
        resp
    }
}
