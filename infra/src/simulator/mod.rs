//! A local stand-in for the vendors' clouds: one HTTP server that speaks
//! each simulated vendor's OAuth and data endpoints as its docs describe,
//! under `/<vendor>` (so `CONNECTOR_<VENDOR>_API_BASE=http://…/<vendor>` and
//! paths are appended exactly as the vendor documents them). It enforces
//! PKCE, rotates single-use refresh tokens, paginates, answers 429 with the
//! vendor's own rate-limit headers past its limit, and sends correctly
//! signed webhooks on command (`POST /_sim/<vendor>/webhook`).

pub mod dexcom;
pub mod faults;
pub mod fitbit;
pub mod garmin;
pub mod limits;
pub mod oauth;
pub mod oura;
pub mod polar;
pub mod record;
pub mod secrets;
pub mod strava;
pub mod terra;
pub mod whoop;
pub mod withings;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use connector_core::Vendor;
use limits::Limiter;
use oauth::{OAuthBook, OAuthPolicy};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// The app registration the simulator knows the connector by. Values are
/// obviously fake; they only ever work against the simulator.
#[derive(Clone, Debug)]
pub struct AppRegistration {
    pub client_id: String,
    pub client_secret: String,
    pub webhook_secret: String,
    pub verify_token: String,
    pub subscription_id: String,
}

impl AppRegistration {
    pub fn fake(vendor: Vendor) -> Self {
        let v = vendor.as_str();
        let app = Self {
            client_id: format!("sim-{v}-client"),
            client_secret: format!("sim-{v}-client-secret"),
            webhook_secret: format!("sim-{v}-webhook-secret"),
            verify_token: format!("sim-{v}-verify-token"),
            subscription_id: "120475".to_string(),
        };
        for s in [&app.client_secret, &app.webhook_secret, &app.verify_token] {
            secrets::record(s);
        }
        app
    }
}

/// Counters tests read to see what reached the vendor.
#[derive(Default, Debug)]
pub struct Stats {
    pub tokens_issued: AtomicU32,
    pub refresh_requests: AtomicU32,
    /// Refresh attempts with an already-spent rotating refresh token.
    pub refresh_reuse: AtomicU32,
    pub pkce_failures: AtomicU32,
    pub api_requests: AtomicU32,
    pub rate_limited: AtomicU32,
    pub revocations: AtomicU32,
}

/// A simulated account at the vendor.
#[derive(Clone, Debug)]
pub struct SimUser {
    /// The user's UTC offset in minutes (WHOOP's `timezone_offset`).
    pub utc_offset_minutes: i32,
}

/// A vendor's rate-limit headers for a verdict, given its (limit, seconds) windows.
pub type RateHeaders = fn(&limits::Verdict, &[(u32, u64)]) -> Vec<(&'static str, String)>;

/// One simulated vendor.
pub struct VendorSim {
    pub vendor: Vendor,
    /// (authorize path, token path) under the vendor's base URL.
    pub oauth_paths: (&'static str, &'static str),
    /// The vendor's HTTP routes, mounted under `/<vendor>`.
    pub router: fn(Arc<VendorSim>) -> Router,
    pub app: AppRegistration,
    pub oauth_policy: OAuthPolicy,
    pub oauth: Mutex<OAuthBook>,
    pub limiter: Limiter,
    pub users: Mutex<HashMap<String, SimUser>>,
    pub stats: Stats,
    pub new_user_id: fn(&VendorSim) -> String,
    next_user: AtomicU32,
    /// Where the vendor delivers webhooks (its app-level endpoint setting).
    pub webhook_target: Mutex<Option<String>>,
    /// The authorize endpoint shows a consent page with Allow and Deny
    /// (what a person sees) instead of consenting at once.
    pub consent_page: std::sync::atomic::AtomicBool,
    /// Injected 5xx, dropped connections and slowness (reliability tests).
    pub faults: faults::Faults,
    /// What the vendor was asked and answered (conformance checks).
    pub recorder: record::Recorder,
    /// Runs right after the token endpoint answers a refresh, before the
    /// answer leaves (reliability tests: a fault just after the vendor rotated).
    pub after_refresh: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    /// The vendor module's own bookkeeping, typed by the module (e.g.
    /// Withings' notify subscriptions; downcast with `extra::<T>()`).
    extra: Box<dyn std::any::Any + Send + Sync>,
}

impl VendorSim {
    pub fn new(
        vendor: Vendor,
        oauth_paths: (&'static str, &'static str),
        router: fn(Arc<VendorSim>) -> Router,
        oauth_policy: OAuthPolicy,
        limiter: Limiter,
        new_user_id: fn(&VendorSim) -> String,
    ) -> Self {
        Self {
            vendor,
            oauth_paths,
            router,
            app: AppRegistration::fake(vendor),
            oauth_policy,
            oauth: Mutex::new(OAuthBook::default()),
            limiter,
            users: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            new_user_id,
            next_user: AtomicU32::new(1),
            webhook_target: Mutex::new(None),
            consent_page: std::sync::atomic::AtomicBool::new(false),
            faults: faults::Faults::default(),
            recorder: record::Recorder::default(),
            after_refresh: Mutex::new(None),
            extra: Box::new(()),
        }
    }

    /// Gives the vendor module a state of its own.
    pub fn with_extra<T: std::any::Any + Send + Sync>(mut self, extra: T) -> Self {
        self.extra = Box::new(extra);
        self
    }

    pub fn extra<T: std::any::Any>(&self) -> &T {
        self.extra
            .downcast_ref()
            .expect("vendor module state of the type it set")
    }

    pub fn webhook_target(&self) -> Option<String> {
        self.webhook_target.lock().unwrap().clone()
    }

    /// The user removes the app in their account settings at the vendor:
    /// every grant, and what hangs on it there, is gone.
    pub fn user_removes_app(&self, user: &str) {
        self.oauth.lock().unwrap().revoke_user(user);
        match self.vendor {
            Vendor::Terra => terra::forget_user(self, user),
            Vendor::Withings => withings::forget_user(self, user),
            _ => {}
        }
    }

    /// A fresh sequence number for new account ids.
    pub fn next_user_number(&self) -> u32 {
        self.next_user
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    /// Creates the account on first sight (in UTC-5, like the fixtures).
    pub fn ensure_user(&self, id: &str) -> SimUser {
        self.users
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_insert(SimUser {
                utc_offset_minutes: -300,
            })
            .clone()
    }

    /// What every simulated API call goes through: the vendor's quota first
    /// (429 with its headers past it), then the bearer token (401). On
    /// success: the account and the rate-limit headers to send back.
    pub fn guard(
        &self,
        headers: &axum::http::HeaderMap,
        rate_headers: RateHeaders,
    ) -> Result<(String, axum::http::HeaderMap), Box<Response>> {
        use std::sync::atomic::Ordering::SeqCst;
        let verdict = self.limiter.check();
        let mut out = axum::http::HeaderMap::new();
        for (k, v) in rate_headers(&verdict, &self.limiter.describe()) {
            out.insert(k, v.parse().expect("header value"));
        }
        if !verdict.allowed {
            self.stats.rate_limited.fetch_add(1, SeqCst);
            return Err(Box::new(
                (StatusCode::TOO_MANY_REQUESTS, out, "Too Many Requests").into_response(),
            ));
        }
        self.stats.api_requests.fetch_add(1, SeqCst);
        match self.bearer_user(headers) {
            Some(user) => Ok((user, out)),
            None => Err(Box::new(
                (
                    StatusCode::UNAUTHORIZED,
                    out,
                    "invalid or expired access token",
                )
                    .into_response(),
            )),
        }
    }

    /// The account behind `Authorization: Bearer <token>`, if it is live.
    pub fn bearer_user(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        let token = headers
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?;
        self.oauth
            .lock()
            .unwrap()
            .user_of(token, chrono::Utc::now())
    }
}

/// Sends a request a vendor makes to the connector (a webhook, a
/// notification); the receiver's status and body, or 0 and why it failed.
pub async fn deliver(req: reqwest::RequestBuilder) -> (u16, String) {
    let (client, req) = req.build_split();
    let req = match req {
        Ok(r) => r,
        Err(e) => return (0, format!("delivery failed: {e}")),
    };
    for (name, value) in req.headers() {
        let name = name.as_str();
        if name.contains("signature") || name == "authorization" {
            secrets::record(value.to_str().unwrap_or_default());
        }
    }
    match client.execute(req).await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, format!("delivery failed: {e}")),
    }
}

/// The user removes the app at the vendor: `POST /<vendor>/_sim/remove-app?user=`.
async fn remove_app(
    axum::extract::State(sim): axum::extract::State<Arc<VendorSim>>,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    match q.get("user") {
        Some(user) => {
            sim.user_removes_app(user);
            StatusCode::NO_CONTENT.into_response()
        }
        None => (StatusCode::BAD_REQUEST, "user is required").into_response(),
    }
}

pub fn json_response(status: StatusCode, v: serde_json::Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// The simulated vendors, by vendor.
#[derive(Clone, Default)]
pub struct Vendors(pub HashMap<Vendor, Arc<VendorSim>>);

impl Vendors {
    /// Every simulated vendor: one line per vendor module.
    pub fn all() -> Self {
        let sims = [
            whoop::sim(),
            garmin::sim(),
            fitbit::sim(),
            dexcom::sim(),
            strava::sim(),
            withings::sim(),
            terra::sim(),
            oura::sim(),
            polar::sim(),
        ];
        Self(sims.into_iter().map(|s| (s.vendor, Arc::new(s))).collect())
    }

    pub fn get(&self, v: Vendor) -> &Arc<VendorSim> {
        self.0
            .get(&v)
            .unwrap_or_else(|| panic!("{v} is not simulated"))
    }
}

/// A running simulator.
pub struct Simulator {
    pub addr: SocketAddr,
    pub vendors: Vendors,
    task: JoinHandle<()>,
    logs: Option<fn() -> String>,
    check_shapes: bool,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.task.abort();
        if self.check_shapes && !std::thread::panicking() {
            let problems = self.shape_problems();
            assert!(
                problems.is_empty(),
                "the simulator's requests or answers break the vendors' descriptions:\n{}",
                problems.join("\n")
            );
        }
        if let (Some(logs), false) = (self.logs, std::thread::panicking()) {
            let leaked = secrets::leaked_in(&logs());
            assert!(
                leaked.is_empty(),
                "{} simulator secret(s) in the logs: {leaked:?}",
                leaked.len()
            );
        }
    }
}

impl Simulator {
    pub async fn start(bind: SocketAddr) -> std::io::Result<Self> {
        let vendors = Vendors::all();
        let mut router = Router::new();
        for (vendor, sim) in &vendors.0 {
            // Faults wrap the recorder: it keeps the vendor's own answers.
            let routes = (sim.router)(sim.clone())
                .route(
                    "/_sim/remove-app",
                    axum::routing::post(remove_app).with_state(sim.clone()),
                )
                .layer(axum::middleware::from_fn_with_state(
                    sim.clone(),
                    record::record,
                ))
                .layer(axum::middleware::from_fn_with_state(
                    sim.clone(),
                    faults::inject,
                ));
            router = router.nest(&format!("/{}", vendor.as_str()), routes);
        }
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "vendor simulator stopped");
            }
        });
        Ok(Self {
            addr,
            vendors,
            task,
            logs: None,
            check_shapes: false,
        })
    }

    /// When the simulator goes away (its test ends), fails if any secret
    /// any simulated vendor issued or used (see `secrets`) is in `logs()`.
    pub fn check_logs_on_drop(&mut self, logs: fn() -> String) {
        self.logs = Some(logs);
    }

    /// When the simulator goes away (its test ends), fails if any answer it
    /// gave breaks the vendor's published description
    /// (`crate::conformance::simulator`; nothing when the descriptions are
    /// absent).
    pub fn check_shapes_on_drop(&mut self) {
        self.check_shapes = true;
    }

    /// Every mismatch between what the simulated vendors answered so far
    /// and their descriptions, `<vendor> <method> <path>: <what>`.
    pub fn shape_problems(&self) -> Vec<String> {
        let Some(dir) = crate::conformance::specs_dir() else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        for (vendor, sim) in &self.vendors.0 {
            let (exchanges, delivered) = (sim.recorder.exchanges(), sim.recorder.deliveries());
            if let Some(r) = crate::conformance::simulator::check(
                &dir,
                *vendor,
                sim.oauth_paths,
                &exchanges,
                &delivered,
            ) {
                if r.checked + r.requests_checked + r.webhooks_checked > 0 {
                    // Seen with `cargo test -- --nocapture`: how much was held to the description.
                    eprintln!(
                        "simulator conformance: {vendor}: {} answers, {} requests and {} webhook bodies checked, operations {:?}, requests not checked {:?}",
                        r.checked, r.requests_checked, r.webhooks_checked, r.operations, r.requests_unchecked
                    );
                }
                problems.extend(r.problems.into_iter().map(|p| format!("{vendor} {p}")));
            }
        }
        problems.sort();
        problems
    }

    /// Every OAuth vendor's authorize endpoint asks the person (Allow or
    /// Deny) instead of consenting at once.
    pub fn show_consent_pages(&self) {
        for sim in self.vendors.0.values() {
            sim.consent_page
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    pub fn base(&self, vendor: Vendor) -> String {
        format!("http://{}/{}", self.addr, vendor.as_str())
    }

    pub fn sim(&self, vendor: Vendor) -> &Arc<VendorSim> {
        self.vendors.get(vendor)
    }

    /// Points every simulated vendor's webhooks at a gateway's
    /// `/v1/webhooks/<vendor>` (what a developer sets in the vendor's portal).
    pub fn deliver_webhooks_to(&self, gateway: &str) {
        for (vendor, sim) in &self.vendors.0 {
            *sim.webhook_target.lock().unwrap() =
                Some(format!("{gateway}/v1/webhooks/{}", vendor.as_str()));
        }
    }

    /// The connector configuration that points every simulated vendor here.
    pub fn env(&self) -> HashMap<String, String> {
        let mut env = HashMap::new();
        for (vendor, sim) in &self.vendors.0 {
            let p = format!("CONNECTOR_{}", vendor.env_name());
            let base = self.base(*vendor);
            let (auth, token) = sim.oauth_paths;
            env.insert(format!("{p}_CLIENT_ID"), sim.app.client_id.clone());
            env.insert(format!("{p}_CLIENT_SECRET"), sim.app.client_secret.clone());
            env.insert(
                format!("{p}_WEBHOOK_SECRET"),
                sim.app.webhook_secret.clone(),
            );
            env.insert(format!("{p}_VERIFY_TOKEN"), sim.app.verify_token.clone());
            env.insert(
                format!("{p}_SUBSCRIPTION_ID"),
                sim.app.subscription_id.clone(),
            );
            env.insert(format!("{p}_AUTH_URL"), format!("{base}{auth}"));
            env.insert(format!("{p}_TOKEN_URL"), format!("{base}{token}"));
            env.insert(format!("{p}_API_BASE"), base);
        }
        env
    }
}
