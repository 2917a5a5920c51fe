//! Fault modes of a simulated vendor, for reliability tests: the next N API
//! calls answer 5xx, or have their connection dropped before any answer,
//! and every call can be slowed down. The `/_sim` control routes and the
//! OAuth endpoints are left alone.

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
}

/// The middleware that applies a vendor's faults to its API routes.
pub async fn inject(State(sim): State<Arc<VendorSim>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let (auth, token) = sim.oauth_paths;
    let exempt = path.contains("/_sim/") || path.ends_with(auth) || path.ends_with(token);
    if exempt {
        return next.run(req).await;
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
    next.run(req).await
}
