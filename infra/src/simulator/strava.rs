//! Strava API v3 as its docs describe it (docs/vendors/strava.md): OAuth with
//! body client credentials and no PKCE (a challenge is ignored), a token
//! response that names the `athlete` on the code exchange, 6-hour access
//! tokens and refresh tokens that rotate (the old one dies at once);
//! `GET /api/v3/athlete/activities?after=&before=&page=&per_page=` (≤ 200 a
//! page, newest first) and `GET /api/v3/activities/{id}` (the detailed
//! activity, the only one with `calories`); read quota 100 per 15 min and
//! 1,000 a day with `X-RateLimit-*` / `X-ReadRateLimit-*` headers and a bare
//! 429; `POST /oauth/deauthorize`; push subscriptions validated by a GET
//! `hub.challenge` echo; unsigned event POSTs sent on command.

use super::limits::{Limiter, Window};
use super::oauth::{self, Issued, OAuthPolicy, Pkce};
use super::{json_response, SimUser, VendorSim};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use connector_core::vendors::spec::ClientAuth;
use connector_core::Vendor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

/// (authorize path, token path) under the vendor's base.
pub const OAUTH_PATHS: (&str, &str) = ("/oauth/authorize", "/api/v3/oauth/token");
pub const MAX_PER_PAGE: usize = 200;
/// Simulated athletes live in Europe/Berlin in winter (UTC+01:00), like the fixtures.
pub const UTC_OFFSET_MINUTES: i32 = 60;

pub fn sim() -> VendorSim {
    VendorSim::new(
        Vendor::Strava,
        OAUTH_PATHS,
        router,
        OAuthPolicy {
            client_auth: ClientAuth::Body,
            pkce: Pkce::Unsupported,
            min_state_len: 0,
            code_ttl_secs: 600,
            access_ttl_secs: 6 * 3600,
            refresh_needs_scope: None,
            rotate_refresh: true,
        },
        Limiter::new(vec![
            Window::new(100, std::time::Duration::from_secs(900)),
            Window::new(1_000, std::time::Duration::from_secs(86_400)),
        ]),
        |sim| {
            let id = (12_000_000 + sim.next_user_number()).to_string();
            sim.users.lock().unwrap().insert(
                id.clone(),
                SimUser {
                    utc_offset_minutes: UTC_OFFSET_MINUTES,
                },
            );
            id
        },
    )
}

pub fn router(sim: Arc<VendorSim>) -> Router {
    oauth::routes(OAUTH_PATHS, token_response)
        .route("/api/v3/athlete", get(athlete))
        .route("/api/v3/athlete/activities", get(activities))
        .route("/api/v3/activities/{id}", get(activity_detail))
        .route("/api/v3/push_subscriptions", post(create_subscription))
        .route("/oauth/deauthorize", post(deauthorize))
        .route("/_sim/webhook", post(send_webhook))
        .route("/_sim/validate", post(send_validation))
        .with_state(sim)
}

/// Strava's token body: `expires_at` and `expires_in`, no `scope` (it comes
/// on the redirect), and the `athlete` on a code exchange only.
fn token_response(_sim: &VendorSim, i: &Issued) -> Value {
    let mut v = json!({
        "token_type": "Bearer",
        "access_token": i.access_token,
        "expires_at": Utc::now().timestamp() + i.expires_in,
        "expires_in": i.expires_in,
        "refresh_token": i.refresh_token,
    });
    if !i.refreshed {
        let id: i64 = i.user.parse().unwrap_or_default();
        v["athlete"] = json!({
            "id": id, "resource_state": 2, "firstname": "Sim", "lastname": "A.",
            "city": "Berlin", "country": "Germany", "sex": "F", "premium": false, "summit": false,
            "created_at": "2020-01-01T10:00:00Z", "updated_at": "2026-11-20T07:00:00Z"
        });
    }
    v
}

/// Strava's quota headers: overall and read limits as "15min,daily".
fn rate_headers(sim: &VendorSim) -> HeaderMap {
    let usage = sim.limiter.usage();
    let pair = |f: fn(&(u32, u32)) -> u32| {
        usage
            .iter()
            .map(|w| f(w).to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let (limit, used) = (pair(|w| w.0), pair(|w| w.1));
    let mut h = HeaderMap::new();
    // Every simulated call is a read; reads count toward the overall quota too.
    let overall: Vec<String> = usage.iter().map(|w| (w.0 * 2).to_string()).collect();
    h.insert("x-ratelimit-limit", overall.join(",").parse().unwrap());
    h.insert("x-ratelimit-usage", used.parse().unwrap());
    h.insert("x-readratelimit-limit", limit.parse().unwrap());
    h.insert("x-readratelimit-usage", used.parse().unwrap());
    h
}

fn fault(status: StatusCode, h: HeaderMap, message: &str, field: &str, code: &str) -> Response {
    (
        h,
        json_response(
            status,
            json!({"message": message, "errors": [{"resource": "Application", "field": field, "code": code}]}),
        ),
    )
        .into_response()
}

/// The quota (a bare 429 with Strava's usage headers past it), then the bearer.
fn guard(sim: &VendorSim, headers: &HeaderMap) -> Result<(String, HeaderMap), Box<Response>> {
    let verdict = sim.limiter.check();
    let h = rate_headers(sim);
    if !verdict.allowed {
        sim.stats.rate_limited.fetch_add(1, SeqCst);
        return Err(Box::new(fault(
            StatusCode::TOO_MANY_REQUESTS,
            h,
            "Rate Limit Exceeded",
            "rate limit",
            "exceeded",
        )));
    }
    sim.stats.api_requests.fetch_add(1, SeqCst);
    match sim.bearer_user(headers) {
        Some(u) => Ok((u, h)),
        None => Err(Box::new(fault(
            StatusCode::UNAUTHORIZED,
            h,
            "Authorization Error",
            "access_token",
            "invalid",
        ))),
    }
}

/// One simulated activity of an athlete on a local date.
#[derive(Clone, Debug)]
pub struct SimActivity {
    pub id: i64,
    pub sport: &'static str,
    pub start: DateTime<Utc>,
    pub start_local: NaiveDateTime,
    pub elapsed_s: i64,
    pub moving_s: i64,
    pub distance_m: f64,
    /// Only in the detailed activity.
    pub calories: f64,
    pub average_heartrate: Option<f64>,
    pub kilojoules: Option<f64>,
    pub average_watts: Option<f64>,
}

fn round_to(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (x * m).round() / m
}

/// The activity `user` started on the local `date`, if any (deterministic):
/// a run at 07:30 or a late ride at 00:30 local — which, east of UTC, began
/// on the previous UTC day.
pub fn activity(user: &str, offset_minutes: i32, date: NaiveDate) -> Option<SimActivity> {
    let seed = Sha256::digest(format!("strava|{user}|{date}").as_bytes());
    let f = |i: usize| f64::from(u16::from_be_bytes([seed[2 * i], seed[2 * i + 1]])) / 65_536.0;
    if f(0) >= 0.7 {
        return None;
    }
    let ride = f(1) < 0.4;
    let local = date
        .and_hms_opt(if ride { 0 } else { 7 }, 30, 0)
        .expect("time");
    let tz = FixedOffset::east_opt(offset_minutes * 60).expect("offset");
    let start = tz
        .from_local_datetime(&local)
        .single()
        .expect("fixed offset")
        .with_timezone(&Utc);
    let elapsed_s = 60 * (30 + (f(2) * 60.0) as i64) + 6 * (f(3) * 10.0) as i64;
    let user_num: i64 = user.parse().unwrap_or(0);
    Some(SimActivity {
        id: (user_num % 100_000) * 1_000_000 + i64::from(date.num_days_from_ce()),
        sport: if ride { "Ride" } else { "Run" },
        start,
        start_local: local,
        elapsed_s,
        moving_s: elapsed_s - 120,
        distance_m: round_to(
            elapsed_s as f64 * if ride { 7.0 } else { 3.0 } + f(4) * 500.0,
            1,
        ),
        calories: (elapsed_s as f64 / 60.0 * 11.0).round(),
        average_heartrate: (!ride).then(|| round_to(130.0 + f(5) * 30.0, 1)),
        kilojoules: ride.then(|| (elapsed_s as f64 * 0.17).round()),
        average_watts: ride.then(|| (150.0 + f(6) * 50.0).round()),
    })
}

fn to_json(user: &str, offset_minutes: i32, a: &SimActivity, detailed: bool) -> Value {
    let uid: i64 = user.parse().unwrap_or(0);
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let m = offset_minutes.abs();
    let mut v = json!({
        "resource_state": if detailed { 3 } else { 2 },
        "athlete": {"id": uid, "resource_state": 1},
        "name": format!("Sim {}", a.sport),
        "distance": a.distance_m,
        "moving_time": a.moving_s,
        "elapsed_time": a.elapsed_s,
        "total_elevation_gain": 42.0,
        "type": a.sport,
        "sport_type": a.sport,
        "workout_type": null,
        "id": a.id,
        "start_date": a.start.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        // Local wall clock, written with a `Z` as Strava does.
        "start_date_local": a.start_local.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "timezone": format!("(GMT{sign}{:02}:{:02}) Europe/Berlin", m / 60, m % 60),
        "utc_offset": f64::from(offset_minutes * 60),
        "trainer": a.sport == "Ride",
        "commute": false, "manual": false, "private": false,
        "has_heartrate": a.average_heartrate.is_some(),
        "device_name": "Sim Device",
    });
    if let Some(hr) = a.average_heartrate {
        v["average_heartrate"] = json!(hr);
        v["max_heartrate"] = json!(hr + 25.0);
    }
    if let (Some(kj), Some(w)) = (a.kilojoules, a.average_watts) {
        v["kilojoules"] = json!(kj);
        v["average_watts"] = json!(w);
        v["device_watts"] = json!(true);
    }
    if detailed {
        v["calories"] = json!(a.calories);
        v["description"] = json!("");
        v["laps"] = json!([]);
        v["segment_efforts"] = json!([]);
    }
    v
}

/// `getLoggedInAthlete`: the summary representation (no `profile:read_all`).
async fn athlete(State(sim): State<Arc<VendorSim>>, headers: HeaderMap) -> Response {
    let (user, h) = match guard(&sim, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let id: i64 = user.parse().unwrap_or_default();
    (
        h,
        json_response(
            StatusCode::OK,
            json!({ "id": id, "resource_state": 2, "firstname": "Sim", "lastname": "A." }),
        ),
    )
        .into_response()
}

async fn activities(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (user, h) = match guard(&sim, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let bad = |m: &str| fault(StatusCode::BAD_REQUEST, h.clone(), m, "query", "invalid");
    let num = |k: &str| q.get(k).map(|v| v.parse::<i64>());
    let now = Utc::now();
    let after = match num("after") {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad("after must be an epoch timestamp"),
    };
    let before = match num("before") {
        None => now.timestamp(),
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad("before must be an epoch timestamp"),
    };
    let page = match num("page") {
        None => 1,
        Some(Ok(n)) if n >= 1 => n as usize,
        _ => return bad("page must be 1 or more"),
    };
    let per_page = match num("per_page") {
        None => 30,
        Some(Ok(n)) if (1..=MAX_PER_PAGE as i64).contains(&n) => n as usize,
        _ => return bad("per_page must be 1..=200"),
    };
    let offset = sim.ensure_user(&user).utc_offset_minutes;
    let (Some(from), Some(to)) = (
        Utc.timestamp_opt(after.max(now.timestamp() - 3 * 365 * 86_400), 0)
            .single(),
        Utc.timestamp_opt(before.min(now.timestamp() + 86_400), 0)
            .single(),
    ) else {
        return bad("after/before out of range");
    };
    let mut all = Vec::new();
    let first = from.date_naive() - Duration::days(1);
    for date in first
        .iter_days()
        .take_while(|d| *d <= to.date_naive() + Duration::days(1))
    {
        let Some(a) = activity(&user, offset, date) else {
            continue;
        };
        let ts = a.start.timestamp();
        if ts > after && ts < before && a.start + Duration::seconds(a.elapsed_s) <= now {
            all.push(a);
        }
    }
    // Newest first, as Strava lists them.
    all.sort_by_key(|a| std::cmp::Reverse(a.start));
    let items: Vec<Value> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|a| to_json(&user, offset, a, false))
        .collect();
    (h, json_response(StatusCode::OK, Value::Array(items))).into_response()
}

async fn activity_detail(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let (user, h) = match guard(&sim, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let offset = sim.ensure_user(&user).utc_offset_minutes;
    let user_num: i64 = user.parse().unwrap_or(0);
    let found = (id / 1_000_000 == user_num % 100_000)
        .then(|| NaiveDate::from_num_days_from_ce_opt((id % 1_000_000) as i32))
        .flatten()
        .and_then(|d| activity(&user, offset, d))
        .filter(|a| a.id == id);
    match found {
        Some(a) => (
            h,
            json_response(StatusCode::OK, to_json(&user, offset, &a, true)),
        )
            .into_response(),
        None => fault(
            StatusCode::NOT_FOUND,
            h,
            "Record Not Found",
            "id",
            "not found",
        ),
    }
}

/// `POST /oauth/deauthorize` with `access_token`: every token of the athlete dies.
async fn deauthorize(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let user = match form.get("access_token") {
        Some(t) => sim.oauth.lock().unwrap().user_of(t, Utc::now()),
        None => sim.bearer_user(&headers),
    };
    let Some(user) = user else {
        return fault(
            StatusCode::UNAUTHORIZED,
            HeaderMap::new(),
            "Authorization Error",
            "access_token",
            "invalid",
        );
    };
    sim.oauth.lock().unwrap().revoke_user(&user);
    sim.stats.revocations.fetch_add(1, SeqCst);
    json_response(StatusCode::OK, json!({}))
}

/// `POST /api/v3/push_subscriptions` (form `client_id, client_secret,
/// callback_url, verify_token`): validates the callback as Strava does
/// (GET with `hub.challenge`, answered within 2 s with the echo) → `{"id"}`.
async fn create_subscription(State(sim): State<Arc<VendorSim>>, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != sim.app.client_id || get("client_secret") != sim.app.client_secret {
        return fault(
            StatusCode::UNAUTHORIZED,
            HeaderMap::new(),
            "Authorization Error",
            "client_id",
            "invalid",
        );
    }
    let (status, _, ok) = deliver_validation(&sim, get("callback_url"), get("verify_token")).await;
    if !ok {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"message": "Bad Request", "errors": [{"resource": "PushSubscription", "field": "callback url", "code": format!("GET to callback URL does not return 200 ({status})")}]}),
        );
    }
    let id: i64 = sim.app.subscription_id.parse().unwrap_or_default();
    json_response(StatusCode::OK, json!({ "id": id }))
}

/// Sends Strava's validation GET to `callback_url`; returns the status, the
/// body and whether the answer is what Strava accepts (200, JSON, echo).
pub async fn deliver_validation(
    _sim: &VendorSim,
    callback_url: &str,
    verify_token: &str,
) -> (u16, String, bool) {
    let challenge = uuid::Uuid::new_v4().simple().to_string();
    let Ok(mut url) = url::Url::parse(callback_url) else {
        return (0, "callback_url is not a URL".into(), false);
    };
    url.query_pairs_mut()
        .append_pair("hub.mode", "subscribe")
        .append_pair("hub.challenge", &challenge)
        .append_pair("hub.verify_token", verify_token);
    let resp = reqwest::Client::new()
        .get(url)
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await;
    let Ok(r) = resp else {
        return (0, "validation GET failed".into(), false);
    };
    let status = r.status().as_u16();
    let json_ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let body = r.text().await.unwrap_or_default();
    let echoed = serde_json::from_str::<Value>(&body)
        .ok()
        .is_some_and(|v| v == json!({ "hub.challenge": challenge }));
    (status, body, status == 200 && json_ct && echoed)
}

/// An event body as Strava posts it.
pub fn event_body(
    sim: &VendorSim,
    owner: &str,
    aspect: &str,
    object_id: i64,
    event_time: i64,
    forge: bool,
) -> String {
    let owner_id: i64 = owner.parse().unwrap_or_default();
    let sub: i64 = sim.app.subscription_id.parse().unwrap_or_default();
    let subscription_id = if forge { sub + 1 } else { sub };
    let (object_type, aspect_type, object_id, updates) = match aspect {
        "deauthorize" => (
            "athlete",
            "update",
            owner_id,
            json!({"authorized": "false"}),
        ),
        "update" => ("activity", "update", object_id, json!({"title": "Renamed"})),
        other => ("activity", other, object_id, json!({})),
    };
    json!({
        "aspect_type": aspect_type, "event_time": event_time, "object_id": object_id,
        "object_type": object_type, "owner_id": owner_id, "subscription_id": subscription_id,
        "updates": updates
    })
    .to_string()
}

/// Posts one event as Strava would (unsigned JSON); returns the receiver's
/// status and body.
pub async fn deliver_webhook(target: &str, body: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(target)
        .header("content-type", "application/json")
        .body(body.to_string());
    super::deliver(resp).await
}

/// `POST /strava/_sim/webhook?user=&target=&aspect=create|update|delete|deauthorize[&object_id=][&event_time=][&forge=1]`
/// (`forge` = another app's `subscription_id`).
async fn send_webhook(
    State(sim): State<Arc<VendorSim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (Some(user), Some(target)) = (q.get("user"), q.get("target")) else {
        return (StatusCode::BAD_REQUEST, "user and target are required").into_response();
    };
    let aspect = q.get("aspect").map(String::as_str).unwrap_or("create");
    let now = Utc::now();
    let object_id = q
        .get("object_id")
        .and_then(|v| v.parse().ok())
        .or_else(|| {
            let offset = sim.ensure_user(user).utc_offset_minutes;
            (0..30)
                .filter_map(|n| activity(user, offset, now.date_naive() - Duration::days(n)))
                .map(|a| a.id)
                .next()
        })
        .unwrap_or_default();
    let event_time = q
        .get("event_time")
        .and_then(|v| v.parse().ok())
        .unwrap_or(now.timestamp());
    let forge = q.get("forge").is_some_and(|v| v == "1" || v == "true");
    let body = event_body(&sim, user, aspect, object_id, event_time, forge);
    let (status, answer) = deliver_webhook(target, &body).await;
    json_response(StatusCode::OK, json!({ "status": status, "body": answer }))
}

/// `POST /strava/_sim/validate?target=[&verify_token=]`: the subscription
/// validation GET (with the app's verify token unless one is given).
async fn send_validation(
    State(sim): State<Arc<VendorSim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(target) = q.get("target") else {
        return (StatusCode::BAD_REQUEST, "target is required").into_response();
    };
    let token = q
        .get("verify_token")
        .cloned()
        .unwrap_or_else(|| sim.app.verify_token.clone());
    let (status, body, accepted) = deliver_validation(&sim, target, &token).await;
    json_response(
        StatusCode::OK,
        json!({ "status": status, "body": body, "accepted": accepted }),
    )
}
