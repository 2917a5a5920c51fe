//! Garmin Health API as docs/vendors/garmin.md describes it: OAuth 2.0 with
//! PKCE required (body credentials, a new refresh token on every refresh,
//! `refresh_token_expires_in`), `GET /wellness-api/rest/user/id`, summary
//! pulls by upload time (≤ 24 h, seconds, bare JSON arrays), the backfill
//! endpoints (≤ 90 days, 30 for activities; 202, 409 when asked twice) that
//! make Garmin send pings once the history is "uploaded", unsigned pings
//! carrying `garmin-client-id`, and deregistration (204, then a
//! `deregistrations` notification).

use super::limits::{Limiter, Verdict, Window};
use super::oauth::{self, Issued, OAuthPolicy, Pkce};
use super::{json_response, VendorSim};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use connector_core::vendors::spec::ClientAuth;
use connector_core::Vendor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};

pub const OAUTH_PATHS: (&str, &str) = ("/oauth2Confirm", "/di-oauth2-service/oauth/token");
/// The device's display offset of every simulated user (UTC+1, like the fixtures).
pub const OFFSET_SECS: i64 = 3600;
const TYPES: [(&str, i64); 5] = [
    ("dailies", 90),
    ("sleeps", 90),
    ("hrv", 90),
    ("pulseox", 90),
    ("activities", 30),
];

/// A backfill Garmin accepted: its summaries count as uploaded at `at`.
#[derive(Clone, Debug, PartialEq)]
pub struct Backfill {
    pub user: String,
    pub kind: String,
    pub start: i64,
    pub end: i64,
    pub at: i64,
}

#[derive(Default)]
pub struct GarminState {
    pub backfills: Mutex<Vec<Backfill>>,
    /// Backfill pings delivered (answered by the receiver, whatever it said).
    pub backfill_pings: std::sync::atomic::AtomicU32,
    pub deregistrations: Mutex<Vec<String>>,
}

pub fn sim() -> VendorSim {
    VendorSim::new(
        Vendor::Garmin,
        OAUTH_PATHS,
        router,
        OAuthPolicy {
            client_auth: ClientAuth::Body,
            pkce: Pkce::Required,
            min_state_len: 0,
            code_ttl_secs: 600,
            access_ttl_secs: 86_400,
            refresh_needs_scope: None,
            rotate_refresh: true,
        },
        Limiter::new(vec![Window::new(1000, std::time::Duration::from_secs(60))]),
        |_| uuid::Uuid::new_v4().simple().to_string(),
    )
    .with_extra(GarminState::default())
}

fn state(sim: &VendorSim) -> &GarminState {
    sim.extra()
}

fn token_response(_sim: &VendorSim, i: &Issued) -> Value {
    json!({
        "access_token": i.access_token,
        "expires_in": i.expires_in,
        "token_type": "bearer",
        "refresh_token": i.refresh_token,
        "scope": "PARTNER_WRITE PARTNER_READ CONNECT_READ CONNECT_WRITE",
        "jti": uuid::Uuid::new_v4().to_string(),
        "refresh_token_expires_in": 7_775_998,
    })
}

pub fn router(sim: Arc<VendorSim>) -> Router {
    oauth::routes(OAUTH_PATHS, token_response)
        .route("/wellness-api/rest/user/id", get(user_id))
        .route("/wellness-api/rest/user/registration", delete(deregister))
        .route("/wellness-api/rest/backfill/{kind}", get(backfill))
        .route("/wellness-api/rest/{kind}", get(summaries))
        .route("/_sim/deregister", post(user_deregisters))
        .with_state(sim)
}

/// Garmin documents no rate-limit headers; a 429 says when to come back.
fn rate_headers(v: &Verdict, _windows: &[(u32, u64)]) -> Vec<(&'static str, String)> {
    if v.allowed {
        vec![]
    } else {
        vec![("retry-after", v.reset_secs.to_string())]
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({ "errorMessage": message }))
}

async fn user_id(State(sim): State<Arc<VendorSim>>, headers: HeaderMap) -> Response {
    match sim.guard(&headers, rate_headers) {
        Ok((user, h)) => {
            (h, json_response(StatusCode::OK, json!({ "userId": user }))).into_response()
        }
        Err(r) => *r,
    }
}

async fn deregister(State(sim): State<Arc<VendorSim>>, headers: HeaderMap) -> Response {
    let (user, h) = match sim.guard(&headers, rate_headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    end_registration(&sim, &user).await;
    (StatusCode::NO_CONTENT, h).into_response()
}

/// The user removed the app in Garmin Connect: `POST /garmin/_sim/deregister?user=`.
async fn user_deregisters(
    State(sim): State<Arc<VendorSim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(user) = q.get("user") else {
        return (StatusCode::BAD_REQUEST, "user is required").into_response();
    };
    let status = end_registration(&sim, user).await;
    json_response(StatusCode::OK, json!({ "notification_status": status }))
}

/// Forgets the user's tokens and sends the final `deregistrations` notification.
async fn end_registration(sim: &VendorSim, user: &str) -> u16 {
    sim.oauth.lock().unwrap().revoke_user(user);
    sim.stats.revocations.fetch_add(1, SeqCst);
    state(sim)
        .deregistrations
        .lock()
        .unwrap()
        .push(user.to_string());
    let body = json!({ "deregistrations": [{ "userId": user }] });
    notify(sim, &body).await
}

/// POSTs a notification as Garmin does (no signature; `garmin-client-id`).
/// Returns the receiver's status (0 when there is no endpoint or it failed).
pub async fn notify(sim: &VendorSim, body: &Value) -> u16 {
    let Some(target) = sim.webhook_target() else {
        return 0;
    };
    notify_with(&target, Some(&sim.app.client_id), body).await
}

pub async fn notify_with(target: &str, client_id: Option<&str>, body: &Value) -> u16 {
    notify_answered(target, client_id, body).await.0
}

/// POSTs a notification as Garmin does; the receiver's status and body (0
/// and why, when it could not be sent).
pub async fn notify_answered(target: &str, client_id: Option<&str>, body: &Value) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(target)
        .header("content-type", "application/json;charset=UTF-8")
        .header("user-agent", "Garmin Health API")
        .body(body.to_string());
    if let Some(id) = client_id {
        req = req.header("garmin-client-id", id);
    }
    super::deliver(req).await
}

/// A ping for one summary type and upload window, as Garmin shapes it.
pub fn ping(kind: &str, user: &str, start: i64, end: i64) -> Value {
    json!({ kind: [{
        "userId": user,
        "callbackURL": format!(
            "https://apis.garmin.com/wellness-api/rest/{kind}?uploadStartTimeInSeconds={start}&uploadEndTimeInSeconds={end}&token=FAKE-PULL-TOKEN"
        ),
    }]})
}

/// One body of `n` pings of `kind` about `user`: ten-minute windows a
/// minute apart, the newest ending at `now`.
pub fn pings(kind: &str, user: &str, n: i64, now: i64) -> Value {
    let each: Vec<Value> = (0..n)
        .map(|k| ping(kind, user, now - 600 - k * 60, now - k * 60)[kind][0].clone())
        .collect();
    json!({ kind: each })
}

async fn backfill(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Path(kind): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (user, h) = match sim.guard(&headers, rate_headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let Some((_, max_days)) = TYPES.iter().find(|(k, _)| *k == kind) else {
        return error(StatusCode::NOT_FOUND, "unknown summary type");
    };
    let get = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    let (Some(start), Some(end)) = (
        get("summaryStartTimeInSeconds"),
        get("summaryEndTimeInSeconds"),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "summary start and end are required",
        );
    };
    if end <= start || end - start > max_days * 86_400 {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("range must be positive and at most {max_days} days"),
        );
    }
    // Counted as uploaded just before the ping that announces it.
    let at = Utc::now().timestamp() - 1;
    {
        let mut backfills = state(&sim).backfills.lock().unwrap();
        if backfills
            .iter()
            .any(|b| b.user == user && b.kind == kind && b.start == start && b.end == end)
        {
            return error(StatusCode::CONFLICT, "duplicate backfill request");
        }
        backfills.push(Backfill {
            user: user.clone(),
            kind: kind.clone(),
            start,
            end,
            at,
        });
    }
    // Garmin answers at once and pings when the history is ready.
    let sim = sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        notify(&sim, &ping(&kind, &user, at - 1, at + 1)).await;
        state(&sim).backfill_pings.fetch_add(1, SeqCst);
    });
    (StatusCode::ACCEPTED, h).into_response()
}

/// One simulated user-day, in Garmin's units.
pub struct Day {
    pub date: NaiveDate,
    pub steps: i64,
    pub active_kcal: i64,
    pub bmr_kcal: i64,
    pub resting_hr: i64,
    pub stress: i64,
    pub sleep_secs: i64,
    pub sleep_score: i64,
    pub hrv: i64,
    pub spo2: [i64; 3],
    /// (minutes, metres, kcal) of an evening run.
    pub run: Option<(i64, f64, i64)>,
}

pub fn day(user: &str, date: NaiveDate) -> Day {
    let seed = Sha256::digest(format!("garmin|{user}|{date}").as_bytes());
    let f = |i: usize| f64::from(u16::from_be_bytes([seed[2 * i], seed[2 * i + 1]])) / 65_536.0;
    let n = |i: usize, lo: f64, span: f64| (lo + f(i) * span) as i64;
    Day {
        date,
        steps: n(0, 3000.0, 12_000.0),
        active_kcal: n(1, 200.0, 700.0),
        bmr_kcal: n(2, 1600.0, 200.0),
        resting_hr: n(3, 45.0, 20.0),
        stress: n(4, 10.0, 50.0),
        sleep_secs: n(5, 21_600.0, 7200.0),
        sleep_score: n(6, 50.0, 45.0),
        hrv: n(7, 30.0, 60.0),
        spo2: [n(8, 94.0, 5.0), n(9, 94.0, 5.0), n(10, 94.0, 5.0)],
        run: (f(11) < 0.6).then(|| {
            let minutes = n(12, 30.0, 40.0);
            (minutes, (minutes * 170) as f64 + 0.5, minutes * 11)
        }),
    }
}

fn local_midnight(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp()
        - OFFSET_SECS
}

/// The summaries of one kind on one day: (start time, natural upload time, JSON).
fn summaries_of(user: &str, kind: &str, date: NaiveDate) -> Vec<(i64, i64, Value)> {
    let d = day(user, date);
    let start = local_midnight(date);
    let uploaded = start + 86_400 + 2 * 3600;
    let cal = date.to_string();
    let sid = |k: &str| format!("sim-{k}-{user}-{cal}");
    match kind {
        "dailies" => vec![(
            start,
            uploaded,
            json!({
                "summaryId": sid("daily"), "calendarDate": cal, "activityType": "GENERIC",
                "startTimeInSeconds": start, "startTimeOffsetInSeconds": OFFSET_SECS,
                "durationInSeconds": 86_400, "steps": d.steps, "distanceInMeters": d.steps as f64 * 0.75,
                "activeTimeInSeconds": 3600, "activeKilocalories": d.active_kcal,
                "bmrKilocalories": d.bmr_kcal, "floorsClimbed": 4,
                "minHeartRateInBeatsPerMinute": d.resting_hr - 4,
                "averageHeartRateInBeatsPerMinute": 64, "maxHeartRateInBeatsPerMinute": 160,
                "restingHeartRateInBeatsPerMinute": d.resting_hr,
                "timeOffsetHeartRateSamples": { "28800": d.resting_hr + 8, "28815": d.resting_hr + 9 },
                "averageStressLevel": d.stress, "maxStressLevel": 90, "stressQualifier": "balanced",
                "stepsGoal": 8000, "intensityDurationGoalInSeconds": 9000, "floorsClimbedGoal": 10
            }),
        )],
        "sleeps" => {
            let s = start - 5400;
            vec![(
                s,
                uploaded,
                json!({
                    "summaryId": sid("sleep"), "calendarDate": cal, "startTimeInSeconds": s,
                    "startTimeOffsetInSeconds": OFFSET_SECS, "durationInSeconds": d.sleep_secs,
                    "unmeasurableSleepInSeconds": 0, "deepSleepDurationInSeconds": d.sleep_secs / 4,
                    "lightSleepDurationInSeconds": d.sleep_secs / 2, "remSleepInSeconds": d.sleep_secs / 4,
                    "awakeDurationInSeconds": 1200, "validation": "ENHANCED_FINAL",
                    "overallSleepScore": { "value": d.sleep_score, "qualifierKey": "GOOD" }
                }),
            )]
        }
        "hrv" => vec![(
            start - 5400,
            uploaded,
            json!({
                "summaryId": sid("hrv"), "calendarDate": cal, "startTimeInSeconds": start - 5400,
                "durationInSeconds": 24_000, "startTimeOffsetInSeconds": OFFSET_SECS,
                "lastNightAvg": d.hrv, "lastNight5MinHigh": d.hrv + 20, "hrvValues": { "300": d.hrv }
            }),
        )],
        "pulseox" => vec![(
            start,
            uploaded,
            json!({
                "summaryId": sid("pulseox"), "calendarDate": cal, "startTimeInSeconds": start,
                "durationInSeconds": 86_400, "startTimeOffsetInSeconds": OFFSET_SECS,
                "timeOffsetSpo2Values": { "3600": d.spo2[0], "7200": d.spo2[1], "10800": d.spo2[2] },
                "onDemand": false
            }),
        )],
        "activities" => match d.run {
            None => vec![],
            Some((minutes, metres, kcal)) => {
                let s = start + 17 * 3600 + 1800;
                vec![(
                    s,
                    s + minutes * 60 + 300,
                    json!({
                        "summaryId": sid("activity"), "activityId": s, "activityName": "Evening Run",
                        "activityType": "RUNNING", "startTimeInSeconds": s,
                        "startTimeOffsetInSeconds": OFFSET_SECS, "durationInSeconds": minutes * 60,
                        "distanceInMeters": metres, "averageHeartRateInBeatsPerMinute": 150,
                        "activeKilocalories": kcal, "steps": minutes * 160, "deviceName": "Sim Device",
                        "manual": false
                    }),
                )]
            }
        },
        _ => vec![],
    }
}

async fn summaries(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Path(kind): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (user, h) = match sim.guard(&headers, rate_headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if !TYPES.iter().any(|(k, _)| *k == kind) {
        return error(StatusCode::NOT_FOUND, "unknown summary type");
    }
    let get = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    let (Some(start), Some(end)) = (
        get("uploadStartTimeInSeconds"),
        get("uploadEndTimeInSeconds"),
    ) else {
        return error(StatusCode::BAD_REQUEST, "upload start and end are required");
    };
    if start > 100_000_000_000 || end > 100_000_000_000 {
        return error(
            StatusCode::BAD_REQUEST,
            "time appears to be in milliseconds; use seconds",
        );
    }
    if end <= start || end - start > 86_400 {
        return error(
            StatusCode::BAD_REQUEST,
            "upload range must be positive and at most 86400 seconds",
        );
    }
    let now = Utc::now().timestamp();
    let backfills: Vec<Backfill> = state(&sim)
        .backfills
        .lock()
        .unwrap()
        .iter()
        .filter(|b| b.user == user && b.kind == kind && b.at >= start && b.at < end)
        .cloned()
        .collect();
    // Naturally uploaded the night after, or re-sent by a backfill.
    let first = DateTime::from_timestamp(start - 3 * 86_400, 0)
        .map(|t| t.date_naive())
        .unwrap_or_default();
    let mut days: Vec<NaiveDate> = first
        .iter_days()
        .take_while(|d| local_midnight(*d) + 86_400 <= now.min(end + 86_400))
        .collect();
    for b in &backfills {
        let from = DateTime::from_timestamp(b.start, 0).map(|t| t.date_naive());
        let to = DateTime::from_timestamp(b.end, 0).map(|t| t.date_naive());
        if let (Some(from), Some(to)) = (from, to) {
            days.extend(from.iter_days().take_while(|d| *d <= to));
        }
    }
    days.sort();
    days.dedup();
    let mut out = Vec::new();
    for date in days {
        // Only finished days exist at Garmin.
        if local_midnight(date) + 86_400 > now {
            continue;
        }
        for (s, uploaded, v) in summaries_of(&user, &kind, date) {
            let natural = uploaded >= start && uploaded < end && uploaded <= now;
            let backfilled = backfills.iter().any(|b| s >= b.start && s <= b.end);
            if natural || backfilled {
                out.push(v);
            }
        }
    }
    (h, json_response(StatusCode::OK, Value::Array(out))).into_response()
}
