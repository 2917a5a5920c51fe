//! Polar AccessLink v3 as its docs describe it (docs/vendors/polar.md):
//! OAuth with HTTP Basic client credentials, a token response naming the
//! user (`x_user_id`) and **no refresh token** (a ~10-year access token);
//! `POST /v3/users {"member-id"}` registration (409 when already
//! registered; data only for registered users); the non-transactional data
//! endpoints (exercises of the last 30 days, sleep and nightly recharge of
//! the last 28, activities by `from`/`to` ≤ 28 days and ≤ 365 days back →
//! 400 past that, continuous heart rate by date, 404/204 = no data);
//! `RateLimit-*` headers (UNCONFIRMED) and 429 past 500 requests per 15
//! minutes; `DELETE /v3/users/{id}` deregistration; webhooks signed hex
//! HMAC-SHA256(signature_secret_key, body) and the unsigned PING, on command.

use super::limits::{Limiter, Verdict, Window};
use super::oauth::{self, Issued, OAuthPolicy, Pkce};
use super::{json_response, SimUser, VendorSim};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, SecondsFormat, TimeZone, Utc};
use connector_core::vendors::spec::ClientAuth;
use connector_core::Vendor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};

/// (authorize path, token path): flow.polar.com and polarremote.com, here
/// under one base.
pub const OAUTH_PATHS: (&str, &str) = ("/oauth2/authorization", "/v2/oauth2/token");
/// Polar issues no refresh token: no grant ever carries this scope.
const NEVER_GRANTED: &str = "sim-polar-issues-no-refresh-tokens";
pub const ACCESS_TTL_SECS: i64 = 315_359_999;
pub const EXERCISE_DAYS: i64 = 30;
pub const SLEEP_DAYS: i64 = 28;
pub const ACTIVITY_RANGE_DAYS: i64 = 28;
pub const ACTIVITY_MAX_AGE_DAYS: i64 = 365;
/// Europe/Berlin in November, like the fixtures.
pub const UTC_OFFSET_MINUTES: i32 = 60;

/// Polar's own bookkeeping: accounts registered with the partner app
/// (`POST /v3/users`), with the partner's `member-id` for each.
#[derive(Default)]
pub struct PolarState {
    pub registrations: Mutex<HashMap<String, String>>,
}

pub fn state(sim: &VendorSim) -> &PolarState {
    sim.extra()
}

pub fn sim() -> VendorSim {
    VendorSim::new(
        Vendor::Polar,
        OAUTH_PATHS,
        router,
        OAuthPolicy {
            client_auth: ClientAuth::Basic,
            pkce: Pkce::Optional,
            min_state_len: 0,
            code_ttl_secs: 600,
            access_ttl_secs: ACCESS_TTL_SECS,
            refresh_needs_scope: Some(NEVER_GRANTED),
            rotate_refresh: false,
        },
        Limiter::new(vec![
            Window::new(500, std::time::Duration::from_secs(900)),
            Window::new(5000, std::time::Duration::from_secs(86_400)),
        ]),
        |sim| {
            let id = (98_000_000 + sim.next_user_number()).to_string();
            sim.users.lock().unwrap().insert(
                id.clone(),
                SimUser {
                    utc_offset_minutes: UTC_OFFSET_MINUTES,
                },
            );
            id
        },
    )
    .with_extra(PolarState::default())
}

pub fn router(sim: Arc<VendorSim>) -> Router {
    oauth::routes(OAUTH_PATHS, token_response)
        .route("/v3/users", post(register))
        .route("/v3/users/{id}", delete(deregister))
        .route("/v3/exercises", get(|s, h| list(s, h, Kind::Exercises)))
        .route("/v3/exercises/{id}", get(exercise))
        .route("/v3/users/sleep", get(|s, h| list(s, h, Kind::Sleep)))
        .route(
            "/v3/users/sleep/{date}",
            get(|s, h, p| one(s, h, p, Kind::Sleep)),
        )
        .route(
            "/v3/users/nightly-recharge",
            get(|s, h| list(s, h, Kind::Recharge)),
        )
        .route(
            "/v3/users/nightly-recharge/{date}",
            get(|s, h, p| one(s, h, p, Kind::Recharge)),
        )
        .route(
            "/v3/users/continuous-heart-rate/{date}",
            get(|s, h, p| one(s, h, p, Kind::HeartRate)),
        )
        .route("/v3/users/activities", get(activities))
        .route(
            "/v3/users/activities/{date}",
            get(|s, h, p| one(s, h, p, Kind::Activity)),
        )
        .route("/_sim/webhook", post(send_webhook))
        .route("/_sim/ping", post(send_ping))
        .with_state(sim)
}

/// Polar's token response: `x_user_id`, no refresh token, no scope.
fn token_response(_sim: &VendorSim, i: &Issued) -> Value {
    json!({
        "access_token": i.access_token,
        "token_type": "bearer",
        "expires_in": i.expires_in,
        "x_user_id": i.user.parse::<i64>().unwrap_or_default(),
    })
}

/// `RateLimit-Usage`, `RateLimit-Limit`, `RateLimit-Reset` (UNCONFIRMED names).
fn rate_headers(v: &Verdict, _windows: &[(u32, u64)]) -> Vec<(&'static str, String)> {
    vec![
        ("ratelimit-usage", (v.limit - v.remaining).to_string()),
        ("ratelimit-limit", v.limit.to_string()),
        ("ratelimit-reset", v.reset_secs.to_string()),
    ]
}

/// Quota, bearer token, then (for data) registration.
fn guard(
    sim: &VendorSim,
    headers: &HeaderMap,
    registered: bool,
) -> Result<(String, HeaderMap), Box<Response>> {
    let (user, h) = sim.guard(headers, rate_headers)?;
    if registered && !state(sim).registrations.lock().unwrap().contains_key(&user) {
        return Err(Box::new(
            (StatusCode::FORBIDDEN, h, "user is not registered").into_response(),
        ));
    }
    Ok((user, h))
}

macro_rules! guarded {
    ($sim:expr, $headers:expr, $registered:expr) => {
        match guard(&$sim, &$headers, $registered) {
            Ok(x) => x,
            Err(r) => return *r,
        }
    };
}

async fn register(State(sim): State<Arc<VendorSim>>, headers: HeaderMap, body: String) -> Response {
    let (user, h) = guarded!(sim, headers, false);
    let member = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["member-id"].as_str().map(String::from))
        .filter(|m| !m.is_empty());
    let Some(member) = member else {
        return (StatusCode::BAD_REQUEST, h, "member-id is required").into_response();
    };
    let mut regs = state(&sim).registrations.lock().unwrap();
    if regs.contains_key(&user) || regs.values().any(|m| *m == member) {
        return (
            StatusCode::CONFLICT,
            h,
            "User already registered to partner or duplicated member-id",
        )
            .into_response();
    }
    regs.insert(user.clone(), member.clone());
    let body = json!({
        "polar-user-id": user.parse::<i64>().unwrap_or_default(), "member-id": member,
        "registration-date": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "first-name": "Sim", "last-name": "User", "birthdate": "1990-01-01", "gender": "FEMALE",
        "weight": 60.0, "height": 168.0, "extra-info": []
    });
    (h, json_response(StatusCode::OK, body)).into_response()
}

async fn deregister(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (user, h) = guarded!(sim, headers, false);
    if id != user {
        return (StatusCode::FORBIDDEN, h).into_response();
    }
    if state(&sim)
        .registrations
        .lock()
        .unwrap()
        .remove(&user)
        .is_none()
    {
        return (StatusCode::NOT_FOUND, h).into_response();
    }
    sim.oauth.lock().unwrap().revoke_user(&user);
    sim.stats.revocations.fetch_add(1, SeqCst);
    (StatusCode::NO_CONTENT, h).into_response()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exercises,
    Sleep,
    Recharge,
    Activity,
    HeartRate,
}

/// A simulated user's day (`date` = the day the night ends).
#[derive(Clone, Debug)]
pub struct Day {
    pub date: NaiveDate,
    pub sleep_start: DateTime<FixedOffset>,
    pub sleep_end: DateTime<FixedOffset>,
    /// (light, deep, rem, unrecognized) seconds.
    pub stages: (i64, i64, i64, i64),
    pub interruptions: i64,
    pub sleep_score: i64,
    pub hrv: i64,
    pub heart_rate_avg: i64,
    pub steps: i64,
    pub calories: i64,
    pub active_calories: i64,
    /// (id, local start, seconds, kcal, metres), some days.
    pub exercise: Option<(String, DateTime<FixedOffset>, i64, i64, f64)>,
}

fn tz() -> FixedOffset {
    FixedOffset::east_opt(UTC_OFFSET_MINUTES * 60).expect("offset")
}

/// Deterministic values for `user` on the local `date`.
pub fn day(user: &str, date: NaiveDate) -> Day {
    let seed = Sha256::digest(format!("polar|{user}|{date}").as_bytes());
    let f = |i: usize| f64::from(u16::from_be_bytes([seed[2 * i], seed[2 * i + 1]])) / 65_536.0;
    let local = |d: NaiveDate, h: u32, m: u32| {
        tz().from_local_datetime(&d.and_hms_opt(h, m, 0).expect("time"))
            .single()
            .expect("fixed offset")
    };
    let sleep_start =
        local(date.pred_opt().expect("date"), 23, 0) + Duration::minutes((f(0) * 40.0) as i64);
    let light = (180 + (f(1) * 80.0) as i64) * 60;
    let deep = (60 + (f(2) * 40.0) as i64) * 60;
    let rem = (70 + (f(3) * 40.0) as i64) * 60;
    let unrecognized = 10 * 60;
    let interruptions = (15 + (f(4) * 20.0) as i64) * 60;
    let sleep_end =
        sleep_start + Duration::seconds(light + deep + rem + unrecognized + interruptions);
    let exercise = (f(9) < 0.6).then(|| {
        let secs = (30 + (f(10) * 40.0) as i64) * 60 + 30;
        (
            hex::encode(&seed[20..26]),
            local(date, 18, 5),
            secs,
            secs / 6,
            ((secs as f64 * 2.9 + f(11) * 100.0) * 10.0).round() / 10.0,
        )
    });
    Day {
        date,
        sleep_start,
        sleep_end,
        stages: (light, deep, rem, unrecognized),
        interruptions,
        sleep_score: 55 + (f(5) * 45.0) as i64,
        hrv: 25 + (f(6) * 60.0) as i64,
        heart_rate_avg: 48 + (f(7) * 15.0) as i64,
        steps: 3000 + (f(8) * 10000.0) as i64,
        calories: 1900 + (f(12) * 900.0) as i64,
        active_calories: 300 + (f(13) * 500.0) as i64,
        exercise,
    }
}

/// The simulated bpm of a continuous-HR sample.
pub fn heart_rate_at(user: &str, date: NaiveDate, hour: u32) -> i64 {
    let seed = Sha256::digest(format!("polar-hr|{user}|{date}|{hour}").as_bytes());
    55 + i64::from(seed[0] % 40)
}

fn today() -> NaiveDate {
    Utc::now().with_timezone(&tz()).date_naive()
}

fn polar_user(user: &str) -> String {
    format!("https://www.polaraccesslink.com/v3/users/{user}")
}

/// The document of one kind for `date`, shaped as Polar sends it, if it
/// exists by now.
fn document(user: &str, kind: Kind, date: NaiveDate) -> Option<Value> {
    let now = Utc::now();
    let d = day(user, date);
    let slept = d.sleep_end <= now;
    match kind {
        Kind::Sleep if slept => {
            let (light, deep, rem, unrec) = d.stages;
            Some(json!({
                "polar_user": polar_user(user), "date": date,
                "sleep_start_time": d.sleep_start.to_rfc3339_opts(SecondsFormat::Secs, false),
                "sleep_end_time": d.sleep_end.to_rfc3339_opts(SecondsFormat::Secs, false),
                "device_id": "SIM0001", "continuity": 3.4, "continuity_class": 3,
                "light_sleep": light, "deep_sleep": deep, "rem_sleep": rem,
                "unrecognized_sleep_stage": unrec, "sleep_score": d.sleep_score,
                "total_interruption_duration": d.interruptions,
                "short_interruption_duration": d.interruptions / 3,
                "long_interruption_duration": d.interruptions - d.interruptions / 3,
                "sleep_charge": 3, "sleep_goal": 28800, "sleep_rating": 4, "sleep_cycles": 5,
                "group_duration_score": 88.0, "group_solidity_score": 74.5,
                "group_regeneration_score": 69.2,
                "hypnogram": {"23:10": 2, "23:40": 4}, "heart_rate_samples": {"23:12": 58}
            }))
        }
        Kind::Recharge if slept => Some(json!({
            "polar_user": polar_user(user), "date": date,
            "heart_rate_avg": d.heart_rate_avg, "beat_to_beat_avg": 1000,
            "heart_rate_variability_avg": d.hrv, "breathing_rate_avg": 14.2,
            "nightly_recharge_status": 4, "ans_charge": 3.5, "ans_charge_status": 4,
            "hrv_samples": {"23:40": d.hrv}, "breathing_samples": {"23:40": 14.1}
        })),
        Kind::Activity if date <= today() => Some(json!({
            "start_time": format!("{date}T00:00:00"), "end_time": format!("{date}T23:59:59"),
            "active_duration": "PT1H48M", "inactive_duration": "PT11H2M", "daily_activity": 71.3,
            "calories": d.calories, "active_calories": d.active_calories, "steps": d.steps,
            "inactivity_alert_count": 1, "distance_from_steps": (d.steps * 3 / 4) as f64
        })),
        Kind::HeartRate => {
            let samples: Vec<Value> = (0..24)
                .filter(|h| {
                    tz().from_local_datetime(&date.and_hms_opt(*h, 5, 0).expect("time"))
                        .single()
                        .is_some_and(|t| t <= now)
                })
                .map(|h| {
                    json!({"heart_rate": heart_rate_at(user, date, h),
                           "sample_time": format!("{h:02}:05:00")})
                })
                .collect();
            (!samples.is_empty()).then(|| {
                json!({"polar_user": polar_user(user), "date": date, "heart_rate_samples": samples})
            })
        }
        Kind::Exercises => {
            let (id, start, secs, kcal, metres) = d.exercise.clone()?;
            let upload = start + Duration::seconds(secs) + Duration::minutes(10);
            (upload <= now).then(|| {
                json!({
                    "id": id, "upload_time": upload.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::Millis, true),
                    "polar_user": polar_user(user), "device": "Polar Sim", "device_id": "SIM0001",
                    "start_time": start.naive_local().format("%Y-%m-%dT%H:%M:%S").to_string(),
                    "start_time_utc_offset": UTC_OFFSET_MINUTES,
                    "duration": format!("PT{}M{}S", secs / 60, secs % 60),
                    "calories": kcal, "distance": metres,
                    "heart_rate": {"average": 148, "maximum": 172}, "training_load": 96.5,
                    "sport": "RUNNING", "has_route": true, "detailed_sport_info": "RUNNING"
                })
            })
        }
        _ => None,
    }
}

/// The last `days` local days, oldest first.
fn recent(days: i64) -> impl Iterator<Item = NaiveDate> {
    let t = today();
    (0..days).rev().map(move |n| t - Duration::days(n))
}

async fn list(State(sim): State<Arc<VendorSim>>, headers: HeaderMap, kind: Kind) -> Response {
    let (user, h) = guarded!(sim, headers, true);
    let docs = |days: i64| -> Vec<Value> {
        recent(days)
            .filter_map(|d| document(&user, kind, d))
            .collect()
    };
    let body = match kind {
        Kind::Exercises => json!(docs(EXERCISE_DAYS)),
        Kind::Sleep => json!({ "nights": docs(SLEEP_DAYS) }),
        Kind::Recharge => json!({ "recharges": docs(SLEEP_DAYS) }),
        _ => return (StatusCode::NOT_FOUND, h).into_response(),
    };
    (h, json_response(StatusCode::OK, body)).into_response()
}

async fn exercise(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (user, h) = guarded!(sim, headers, true);
    let found = recent(EXERCISE_DAYS)
        .filter_map(|d| document(&user, Kind::Exercises, d))
        .find(|e| e["id"] == id.as_str());
    match found {
        Some(e) => (h, json_response(StatusCode::OK, e)).into_response(),
        None => (StatusCode::NOT_FOUND, h).into_response(),
    }
}

async fn one(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Path(date): Path<String>,
    kind: Kind,
) -> Response {
    let (user, h) = guarded!(sim, headers, true);
    let Ok(date) = date.parse::<NaiveDate>() else {
        return (StatusCode::BAD_REQUEST, h, "date must be YYYY-MM-DD").into_response();
    };
    match document(&user, kind, date) {
        Some(doc) => (h, json_response(StatusCode::OK, doc)).into_response(),
        // Activities answer 204 when there is nothing; the others 404.
        None if kind == Kind::Activity => (StatusCode::NO_CONTENT, h).into_response(),
        None => (StatusCode::NOT_FOUND, h).into_response(),
    }
}

async fn activities(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (user, h) = guarded!(sim, headers, true);
    let bad = |m: &str| (StatusCode::BAD_REQUEST, h.clone(), m.to_string()).into_response();
    let parse = |k: &str| q.get(k).map(|v| v.parse::<NaiveDate>());
    let to = match parse("to") {
        None => today(),
        Some(Ok(d)) => d,
        Some(Err(_)) => return bad("to must be YYYY-MM-DD"),
    };
    let from = match parse("from") {
        None => to - Duration::days(ACTIVITY_RANGE_DAYS - 1),
        Some(Ok(d)) => d,
        Some(Err(_)) => return bad("from must be YYYY-MM-DD"),
    };
    if to < from || (to - from).num_days() >= ACTIVITY_RANGE_DAYS {
        return bad("the range may span at most 28 days");
    }
    if from < today() - Duration::days(ACTIVITY_MAX_AGE_DAYS) {
        return bad("from may be at most 365 days ago");
    }
    let docs: Vec<Value> = from
        .iter_days()
        .take_while(|d| *d <= to)
        .filter_map(|d| document(&user, Kind::Activity, d))
        .collect();
    (h, json_response(StatusCode::OK, json!(docs))).into_response()
}

/// `POST /polar/_sim/webhook?event=SLEEP&user=&target=[&date=][&entity_id=][&forge=1]`
async fn send_webhook(
    State(sim): State<Arc<VendorSim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (Some(user), Some(target)) = (q.get("user"), q.get("target")) else {
        return (StatusCode::BAD_REQUEST, "user and target are required").into_response();
    };
    let event = q.get("event").map_or("SLEEP", String::as_str);
    let subject = q
        .get("entity_id")
        .or(q.get("date"))
        .cloned()
        .unwrap_or_else(|| today().to_string());
    let forge = q.get("forge").is_some_and(|v| v == "1" || v == "true");
    let body = payload(event, user, &subject, Utc::now());
    let (status, body) = deliver_webhook(&sim, target, &body, forge).await;
    json_response(StatusCode::OK, json!({ "status": status, "body": body }))
}

/// A webhook body as Polar shapes it: EXERCISE names the exercise
/// (`entity_id`), the dated events their `date`.
pub fn payload(event: &str, user: &str, subject: &str, at: DateTime<Utc>) -> String {
    let uid: i64 = user.parse().unwrap_or_default();
    let base = "https://www.polaraccesslink.com/v3";
    let ts = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let v = match event {
        "EXERCISE" => json!({"event": event, "user_id": uid, "entity_id": subject,
                             "timestamp": ts, "url": format!("{base}/exercises/{subject}")}),
        "SLEEP" => json!({"event": event, "user_id": uid, "date": subject, "timestamp": ts,
                          "url": format!("{base}/users/sleep/{subject}")}),
        "CONTINUOUS_HEART_RATE" => json!({"event": event, "user_id": uid, "date": subject,
                          "timestamp": ts, "url": format!("{base}/users/continuous-heart-rate/{subject}")}),
        _ => json!({"event": event, "user_id": uid, "date": subject, "timestamp": ts,
                    "url": format!("{base}/users/activities/{subject}")}),
    };
    serde_json::to_string_pretty(&v).expect("json")
}

async fn send_to(
    target: &str,
    event: &str,
    signature: Option<String>,
    body: String,
) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(target)
        .header("content-type", "application/json")
        .header("polar-webhook-event", event);
    if let Some(s) = signature {
        req = req.header("polar-webhook-signature", s);
    }
    super::deliver(req.body(body)).await
}

/// Sends one signed event as Polar would; the receiver's status and body.
pub async fn deliver_webhook(
    sim: &VendorSim,
    target: &str,
    body: &str,
    forge: bool,
) -> (u16, String) {
    let secret = if forge {
        "not-the-signature-secret-key".to_string()
    } else {
        sim.app.webhook_secret.clone()
    };
    let event = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["event"].as_str().map(String::from))
        .unwrap_or_default();
    sim.recorder.delivered(body.as_bytes());
    let signature =
        connector_core::vendors::polar::scheme().sign(secret.as_bytes(), None, body.as_bytes());
    send_to(target, &event, Some(signature), body.to_string()).await
}

/// `POST /polar/_sim/ping?target=`
async fn send_ping(
    State(sim): State<Arc<VendorSim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(target) = q.get("target") else {
        return (StatusCode::BAD_REQUEST, "target is required").into_response();
    };
    let (status, body) = deliver_ping(&sim, target).await;
    json_response(StatusCode::OK, json!({ "status": status, "body": body }))
}

/// The PING Polar sends when a webhook is created (before the receiver can
/// know the signature secret): unsigned. Polar requires a 200.
pub async fn deliver_ping(sim: &VendorSim, target: &str) -> (u16, String) {
    let body = json!({
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "event": "PING"
    })
    .to_string();
    sim.recorder.delivered(body.as_bytes());
    send_to(target, "PING", None, body).await
}
