//! Fitbit through the Google Health API v4, as
//! docs/vendors/fitbit-google-health.md describes it: Google OAuth (body
//! credentials, PKCE, refresh tokens that do not rotate, `POST /revoke`),
//! `GET /v4/users/me/identity`, data-point lists with AIP-160 filters
//! (`>=`, `<`, `AND`), newest first, `pageToken` (sleep and exercise at most
//! 25 a page), `:dailyRollUp` (total calories at most 14 days), 300 requests
//! a minute, and subscriber verification and notifications that carry the
//! endpoint secret as their `Authorization` header.

use super::limits::{Limiter, Verdict, Window};
use super::oauth::{self, Issued, OAuthPolicy, Pkce};
use super::{json_response, VendorSim};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use connector_core::vendors::spec::ClientAuth;
use connector_core::Vendor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

pub const OAUTH_PATHS: (&str, &str) = ("/o/oauth2/v2/auth", "/token");
/// Every simulated user lives at UTC+1, like the fixtures.
pub const OFFSET_SECS: i64 = 3600;

pub fn sim() -> VendorSim {
    VendorSim::new(
        Vendor::Fitbit,
        OAUTH_PATHS,
        router,
        OAuthPolicy {
            client_auth: ClientAuth::Body,
            pkce: Pkce::Optional,
            min_state_len: 0,
            code_ttl_secs: 600,
            access_ttl_secs: 3599,
            refresh_needs_scope: None,
            rotate_refresh: false,
        },
        Limiter::new(vec![Window::new(300, std::time::Duration::from_secs(60))]),
        |sim| format!("SIMhealthUser{:04}", sim.next_user_number()),
    )
}

fn token_response(_sim: &VendorSim, i: &Issued) -> Value {
    let mut v = json!({
        "access_token": i.access_token,
        "expires_in": i.expires_in,
        "token_type": "Bearer",
        "scope": i.scope,
    });
    // Google sends a refresh token with the code exchange only.
    if let (Some(r), false) = (&i.refresh_token, i.refreshed) {
        v["refresh_token"] = json!(r);
    }
    v
}

pub fn router(sim: Arc<VendorSim>) -> Router {
    oauth::routes(OAUTH_PATHS, token_response)
        .route("/revoke", post(revoke))
        .route("/v4/users/me/identity", get(identity))
        .route("/v4/users/me/dataTypes/{kind}/dataPoints", get(list))
        .route("/v4/users/me/dataTypes/{kind}/{call}", post(rollup))
        .route("/_sim/verify", post(verify_subscriber))
        .route("/_sim/notify", post(send_notification))
        .with_state(sim)
}

fn google_error(status: StatusCode, message: &str) -> Response {
    let reason = match status.as_u16() {
        429 => "RESOURCE_EXHAUSTED",
        401 => "UNAUTHENTICATED",
        _ => "INVALID_ARGUMENT",
    };
    json_response(
        status,
        json!({ "error": { "code": status.as_u16(), "message": message, "status": reason } }),
    )
}

/// Google documents no rate-limit headers: a bare 429.
fn rate_headers(_v: &Verdict, _w: &[(u32, u64)]) -> Vec<(&'static str, String)> {
    vec![]
}

fn guard(sim: &VendorSim, headers: &HeaderMap) -> Result<String, Box<Response>> {
    match sim.guard(headers, rate_headers) {
        Ok((user, _)) => Ok(user),
        Err(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => Err(Box::new(google_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Quota exceeded",
        ))),
        Err(_) => Err(Box::new(google_error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials.",
        ))),
    }
}

async fn identity(State(sim): State<Arc<VendorSim>>, headers: HeaderMap) -> Response {
    match guard(&sim, &headers) {
        Ok(user) => json_response(
            StatusCode::OK,
            json!({ "name": "users/me/identity", "healthUserId": user, "legacyUserId": format!("L{}", &user[user.len() - 4..]) }),
        ),
        Err(r) => *r,
    }
}

async fn revoke(State(sim): State<Arc<VendorSim>>, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let token = form.get("token").cloned().unwrap_or_default();
    let user = {
        let book = sim.oauth.lock().unwrap();
        book.owner_of(&token)
    };
    match user {
        Some(u) => {
            sim.oauth.lock().unwrap().revoke_user(&u);
            sim.stats.revocations.fetch_add(1, SeqCst);
            json_response(StatusCode::OK, json!({}))
        }
        None => json_response(
            StatusCode::BAD_REQUEST,
            json!({ "error": "invalid_token", "error_description": "Token expired or revoked" }),
        ),
    }
}

/// One simulated user-day.
pub struct Day {
    pub date: NaiveDate,
    pub steps: i64,
    pub calories: f64,
    pub resting_hr: i64,
    pub hrv: f64,
    pub spo2: f64,
    pub minutes_asleep: i64,
    /// (active minutes, metres, kcal) of a run at 17:30 local.
    pub run: Option<(i64, f64, f64)>,
}

pub fn day(user: &str, date: NaiveDate) -> Day {
    let seed = Sha256::digest(format!("google-health|{user}|{date}").as_bytes());
    let f = |i: usize| f64::from(u16::from_be_bytes([seed[2 * i], seed[2 * i + 1]])) / 65_536.0;
    let r1 = |x: f64| (x * 10.0).round() / 10.0;
    Day {
        date,
        steps: (2000.0 + f(0) * 12_000.0) as i64,
        calories: r1(1700.0 + f(1) * 1200.0),
        resting_hr: (48.0 + f(2) * 18.0) as i64,
        hrv: r1(25.0 + f(3) * 60.0),
        spo2: r1(94.0 + f(4) * 4.0),
        minutes_asleep: (330.0 + f(5) * 150.0) as i64,
        run: (f(6) < 0.6).then(|| {
            let m = (25.0 + f(7) * 40.0) as i64;
            (m, (m * 165) as f64, r1(m as f64 * 10.5))
        }),
    }
}

fn gdate(d: NaiveDate) -> Value {
    use chrono::Datelike;
    json!({ "year": d.year(), "month": d.month(), "day": d.day() })
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn local(date: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    date.and_hms_opt(h, m, 0).expect("time").and_utc() - Duration::seconds(OFFSET_SECS)
}

fn interval(start: DateTime<Utc>, end: DateTime<Utc>) -> Value {
    let off = format!("{OFFSET_SECS}s");
    json!({ "startTime": ts(start), "startUtcOffset": off, "endTime": ts(end), "endUtcOffset": off })
}

/// (the time the filter compares, the data point) of a type on a day: the
/// date of a daily summary, sleep's UTC end, exercise's civil (local) start.
fn point(user: &str, kind: &str, date: NaiveDate) -> Option<(String, Value)> {
    let d = day(user, date);
    let src = json!({ "platform": "FITBIT", "recordingMethod": "DERIVED" });
    Some(match kind {
        "daily-resting-heart-rate" => (
            date.to_string(),
            json!({ "dataSource": src,
            "dailyRestingHeartRate": { "date": gdate(date), "beatsPerMinute": d.resting_hr.to_string(),
                "dailyRestingHeartRateMetadata": { "calculationMethod": "WITH_SLEEP" } } }),
        ),
        "daily-heart-rate-variability" => (
            date.to_string(),
            json!({ "dataSource": src,
            "dailyHeartRateVariability": { "date": gdate(date),
                "averageHeartRateVariabilityMilliseconds": d.hrv,
                "nonRemHeartRateBeatsPerMinute": (d.resting_hr + 2).to_string() } }),
        ),
        "daily-oxygen-saturation" => (
            date.to_string(),
            json!({ "dataSource": src,
            "dailyOxygenSaturation": { "date": gdate(date), "averagePercentage": d.spo2,
                "lowerBoundPercentage": d.spo2 - 1.5, "upperBoundPercentage": d.spo2 + 1.2 } }),
        ),
        "sleep" => {
            let end = local(date, 6, 30);
            let start = end - Duration::minutes(d.minutes_asleep + 30);
            (
                ts(end),
                json!({
                "name": format!("users/{user}/dataTypes/sleep/dataPoints/sim-sleep-{date}"),
                "dataSource": { "platform": "FITBIT", "recordingMethod": "PASSIVELY_MEASURED" },
                "sleep": { "interval": interval(start, end), "type": "STAGES",
                    "summary": { "minutesAsleep": d.minutes_asleep.to_string(), "minutesAwake": "30",
                        "minutesInSleepPeriod": (d.minutes_asleep + 30).to_string() },
                    "metadata": { "processed": true, "mainSleep": true, "nap": false } } }),
            )
        }
        "exercise" => {
            let (minutes, metres, kcal) = d.run?;
            let start = local(date, 17, 30);
            let civil_start = (start + Duration::seconds(OFFSET_SECS)).naive_utc();
            (
                civil_start.format("%Y-%m-%dT%H:%M:%S").to_string(),
                json!({
                "name": format!("users/{user}/dataTypes/exercise/dataPoints/sim-run-{date}"),
                "dataSource": { "platform": "FITBIT", "recordingMethod": "ACTIVELY_MEASURED" },
                "exercise": { "interval": interval(start, start + Duration::minutes(minutes + 1)),
                    "exerciseType": "RUNNING", "displayName": "Running",
                    "activeDuration": format!("{}s", minutes * 60),
                    "metricsSummary": { "caloriesKcal": kcal, "distanceMillimeters": metres * 1000.0,
                        "averageHeartRateBeatsPerMinute": "148", "steps": (minutes * 160).to_string() } } }),
            )
        }
        _ => return None,
    })
}

/// `field >= "a" AND field < "b"` → (field, a, b), as AIP-160 allows here.
fn parse_filter(filter: &str) -> Option<(String, String, String)> {
    let (lo, hi) = filter.split_once(" AND ")?;
    let part = |s: &str, op: &str| {
        let (f, v) = s.split_once(op)?;
        Some((f.trim().to_string(), v.trim().trim_matches('"').to_string()))
    };
    let (f1, a) = part(lo, " >= ")?;
    let (f2, b) = part(hi, " < ")?;
    (f1 == f2).then_some((f1, a, b))
}

async fn list(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Path(kind): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let user = match guard(&sim, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let snake = kind.replace('-', "_");
    let expected_field = match kind.as_str() {
        "sleep" => format!("{snake}.interval.end_time"),
        // The discovery document: sessions other than sleep and ECG filter
        // on their civil start time only.
        "exercise" => format!("{snake}.interval.civil_start_time"),
        _ => format!("{snake}.date"),
    };
    let Some((field, lo, hi)) = q.get("filter").and_then(|f| parse_filter(f)) else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "filter must be `field >= \"a\" AND field < \"b\"`",
        );
    };
    if field != expected_field {
        return google_error(
            StatusCode::BAD_REQUEST,
            &format!("{field} cannot filter {kind}"),
        );
    }
    let max_page: usize = if kind == "sleep" || kind == "exercise" {
        25
    } else {
        10_000
    };
    let page_size = match q.get("pageSize").map(|p| p.parse::<usize>()) {
        None => max_page,
        Some(Ok(n)) if (1..=max_page).contains(&n) => n,
        _ => return google_error(StatusCode::BAD_REQUEST, "pageSize out of range"),
    };
    let offset: usize = match q.get("pageToken") {
        None => 0,
        Some(t) => match t.strip_prefix("sim-page-").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return google_error(StatusCode::BAD_REQUEST, "invalid pageToken"),
        },
    };
    let day_of = |s: &str| s.get(..10).and_then(|d| d.parse::<NaiveDate>().ok());
    let (Some(first), Some(last)) = (day_of(&lo), day_of(&hi)) else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "filter values must be dates or RFC 3339 times",
        );
    };
    let today = (Utc::now() + Duration::seconds(OFFSET_SECS)).date_naive();
    let mut all: Vec<(String, Value)> = (first - Duration::days(1))
        .iter_days()
        .take_while(|d| *d <= last.min(today - Duration::days(1)))
        .filter_map(|d| point(&user, &kind, d))
        .filter(|(at, _)| *at >= lo && *at < hi)
        .collect();
    // Newest first.
    all.sort_by(|a, b| b.0.cmp(&a.0));
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|(_, v)| v.clone())
        .collect();
    let mut body = json!({ "dataPoints": page });
    if offset + page_size < all.len() {
        body["nextPageToken"] = json!(format!("sim-page-{}", offset + page_size));
    }
    json_response(StatusCode::OK, body)
}

/// `POST …/dataTypes/{type}/dataPoints:dailyRollUp`.
async fn rollup(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Path((kind, call)): Path<(String, String)>,
    body: String,
) -> Response {
    let user = match guard(&sim, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    if call != "dataPoints:dailyRollUp" {
        return google_error(StatusCode::NOT_FOUND, "unknown method");
    }
    let kind = kind.as_str();
    let req: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(_) => return google_error(StatusCode::BAD_REQUEST, "body is not JSON"),
    };
    let date = |p: &str| -> Option<NaiveDate> {
        let d = req.get("range")?.get(p)?.get("date")?;
        NaiveDate::from_ymd_opt(
            d.get("year")?.as_i64()? as i32,
            d.get("month")?.as_u64()? as u32,
            d.get("day")?.as_u64()? as u32,
        )
    };
    let (Some(start), Some(end)) = (date("start"), date("end")) else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "range.start and range.end are required",
        );
    };
    let max_days = if kind == "total-calories" { 14 } else { 90 };
    if end <= start || (end - start).num_days() > max_days {
        return google_error(
            StatusCode::BAD_REQUEST,
            &format!("range must be positive and at most {max_days} days for {kind}"),
        );
    }
    let today = (Utc::now() + Duration::seconds(OFFSET_SECS)).date_naive();
    let points: Vec<Value> = start
        .iter_days()
        .take_while(|d| *d < end && *d < today)
        .filter_map(|d| {
            let v = day(&user, d);
            let value = match kind {
                "steps" => json!({ "steps": { "countSum": v.steps.to_string() } }),
                "total-calories" => json!({ "totalCalories": { "kcalSum": v.calories } }),
                _ => return None,
            };
            let mut p = json!({
                "civilStartTime": { "date": gdate(d) },
                "civilEndTime": { "date": gdate(d + Duration::days(1)) },
            });
            p.as_object_mut()?.extend(value.as_object()?.clone());
            Some(p)
        })
        .collect();
    if points.is_empty() && kind != "steps" && kind != "total-calories" {
        return google_error(
            StatusCode::BAD_REQUEST,
            &format!("{kind} has no daily roll-up here"),
        );
    }
    json_response(StatusCode::OK, json!({ "rollupDataPoints": points }))
}

async fn deliver(target: &str, authorization: Option<&str>, body: &Value) -> u16 {
    let mut req = reqwest::Client::new()
        .post(target)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    req.send().await.map_or(0, |r| r.status().as_u16())
}

/// Google's subscriber verification: the same body with and without the
/// endpoint secret. Returns both statuses (Google wants 201, then 401/403).
pub async fn verify(sim: &VendorSim, target: &str) -> (u16, u16) {
    let body = json!({ "type": "verification" });
    (
        deliver(target, Some(&sim.app.webhook_secret), &body).await,
        deliver(target, None, &body).await,
    )
}

/// A notification for `user` and `data_type` over `[start, end)`; `secret`
/// None sends it without the endpoint secret.
pub async fn notify(
    target: &str,
    secret: Option<&str>,
    user: &str,
    data_type: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> u16 {
    let body = json!([{ "data": {
        "version": "1", "clientProvidedSubscriptionName": "sim-subscriber",
        "healthUserId": user, "operation": "UPSERT", "dataType": data_type,
        "intervals": [{ "physicalTimeInterval": { "startTime": ts(start), "endTime": ts(end) } }]
    }}]);
    deliver(target, secret, &body).await
}

async fn verify_subscriber(State(sim): State<Arc<VendorSim>>) -> Response {
    let Some(target) = sim.webhook_target() else {
        return (StatusCode::BAD_REQUEST, "no webhook endpoint configured").into_response();
    };
    let (with, without) = verify(&sim, &target).await;
    json_response(
        StatusCode::OK,
        json!({ "with_secret": with, "without_secret": without, "verified": with == 201 && (without == 401 || without == 403) }),
    )
}

/// `POST /fitbit/_sim/notify?user=&type=steps`: a notification for the last 15 minutes.
async fn send_notification(
    State(sim): State<Arc<VendorSim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (Some(user), Some(target)) = (q.get("user"), sim.webhook_target()) else {
        return (
            StatusCode::BAD_REQUEST,
            "user and a webhook endpoint are required",
        )
            .into_response();
    };
    let kind = q.get("type").map(String::as_str).unwrap_or("steps");
    let end = Utc::now();
    let status = notify(
        &target,
        Some(&sim.app.webhook_secret),
        user,
        kind,
        end - Duration::minutes(15),
        end,
    )
    .await;
    json_response(StatusCode::OK, json!({ "status": status }))
}
