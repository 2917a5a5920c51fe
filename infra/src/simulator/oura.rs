//! Oura as its API v2 docs describe it (docs/vendors/oura.md): OAuth with
//! body client credentials and a single-use refresh token that rotates on
//! every refresh (the token response has no user id and no scope);
//! `personal_info` for the user id; `/v2/usercollection/*` documents by
//! `start_date`/`end_date` (heart rate by `start_datetime`/`end_datetime`,
//! at most 30 days → 400) with `next_token` pages; 5000 requests per 5
//! minutes with `Retry-After` and `X-RateLimit-*` on 429; revoke by
//! `/oauth/revoke?access_token=`; webhooks signed UPPERCASE hex
//! HMAC-SHA256(client secret, seconds timestamp + body) and the
//! subscription handshake `GET ?verification_token=&challenge=`, both sent
//! on command; app-level subscriptions (`x-client-id`/`x-client-secret`)
//! created only after the callback passes the handshake, listed, renewed
//! (90 days, UNCONFIRMED) and deleted.

use super::limits::{Limiter, Verdict, Window};
use super::oauth::{self, Issued, OAuthPolicy, Pkce};
use super::{json_response, VendorSim};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, SecondsFormat, TimeZone, Utc};
use connector_core::vendors::spec::ClientAuth;
use connector_core::Vendor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};

pub const OAUTH_PATHS: (&str, &str) = ("/oauth/authorize", "/oauth/token");
/// Documents per page (Oura has no page-size parameter; small to page often).
pub const PAGE_SIZE: usize = 5;
/// The widest heart-rate window (days).
pub const MAX_HEARTRATE_DAYS: i64 = 30;

/// Oura's own bookkeeping: the app's webhook subscriptions, as Oura lists
/// them.
#[derive(Default)]
pub struct OuraState {
    pub subscriptions: Mutex<Vec<Value>>,
}

pub fn state(sim: &VendorSim) -> &OuraState {
    sim.extra()
}

pub fn sim() -> VendorSim {
    VendorSim::new(
        Vendor::Oura,
        OAUTH_PATHS,
        router,
        OAuthPolicy {
            client_auth: ClientAuth::Body,
            pkce: Pkce::Optional,
            min_state_len: 0,
            code_ttl_secs: 600,
            access_ttl_secs: 86_400,
            refresh_needs_scope: None,
            rotate_refresh: true,
        },
        Limiter::new(vec![Window::new(5000, std::time::Duration::from_secs(300))]),
        |sim| format!("sim-oura-user-{:04}", sim.next_user_number()),
    )
    .with_extra(OuraState::default())
}

pub fn router(sim: Arc<VendorSim>) -> Router {
    let mut r = oauth::routes(OAUTH_PATHS, token_response)
        .route("/oauth/revoke", get(revoke))
        .route("/v2/usercollection/personal_info", get(personal_info))
        .route(
            "/v2/usercollection/heartrate",
            get(|s, h, q| collection(s, h, q, Kind::HeartRate)),
        )
        .route(
            "/v2/webhook/subscription",
            get(list_subscriptions).post(create_subscription),
        )
        .route(
            "/v2/webhook/subscription/renew/{id}",
            axum::routing::put(renew_subscription),
        )
        .route(
            "/v2/webhook/subscription/{id}",
            axum::routing::delete(delete_subscription),
        )
        .route("/_sim/webhook", post(send_webhook))
        .route("/_sim/handshake", post(send_handshake));
    for kind in Kind::DAILY {
        r = r.route(
            &format!("/v2/usercollection/{}", kind.path()),
            get(move |s, h, q| collection(s, h, q, kind)),
        );
    }
    r.with_state(sim)
}

/// Oura's token response: no user id, no scope.
fn token_response(_sim: &VendorSim, i: &Issued) -> Value {
    let mut v = json!({
        "token_type": "bearer",
        "access_token": i.access_token,
        "expires_in": i.expires_in,
    });
    if let Some(r) = &i.refresh_token {
        v["refresh_token"] = json!(r);
    }
    v
}

/// Oura sends its rate-limit headers on 429 only.
fn rate_headers(v: &Verdict, windows: &[(u32, u64)]) -> Vec<(&'static str, String)> {
    if v.allowed {
        return Vec::new();
    }
    let window = windows.first().map_or(300, |w| w.1);
    vec![
        ("retry-after", v.reset_secs.to_string()),
        ("x-ratelimit-limit", v.limit.to_string()),
        ("x-ratelimit-window", window.to_string()),
        (
            "x-ratelimit-reset",
            (Utc::now().timestamp() + v.reset_secs as i64).to_string(),
        ),
        ("x-ratelimit-tier", "application".to_string()),
    ]
}

fn guard(sim: &VendorSim, headers: &HeaderMap) -> Result<(String, HeaderMap), Box<Response>> {
    sim.guard(headers, rate_headers)
}

fn detail(status: StatusCode, h: HeaderMap, msg: &str) -> Response {
    (h, json_response(status, json!({ "detail": msg }))).into_response()
}

async fn personal_info(State(sim): State<Arc<VendorSim>>, headers: HeaderMap) -> Response {
    let (user, h) = match guard(&sim, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let body = json!({
        "id": user, "age": 35, "weight": 70.5, "height": 1.78,
        "biological_sex": "female", "email": format!("{user}@example.com")
    });
    (h, json_response(StatusCode::OK, body)).into_response()
}

/// `GET /oauth/revoke?access_token=`: every token of that user dies.
async fn revoke(
    State(sim): State<Arc<VendorSim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let now = Utc::now();
    let user = q
        .get("access_token")
        .and_then(|t| sim.oauth.lock().unwrap().user_of(t, now));
    let Some(user) = user else {
        return json_response(StatusCode::UNAUTHORIZED, json!({"detail": "invalid token"}));
    };
    sim.oauth.lock().unwrap().revoke_user(&user);
    sim.stats.revocations.fetch_add(1, SeqCst);
    json_response(StatusCode::OK, json!({}))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    DailySleep,
    Sleep,
    DailyReadiness,
    DailyActivity,
    DailySpo2,
    Workout,
    HeartRate,
}

impl Kind {
    const DAILY: [Kind; 6] = [
        Kind::DailySleep,
        Kind::Sleep,
        Kind::DailyReadiness,
        Kind::DailyActivity,
        Kind::DailySpo2,
        Kind::Workout,
    ];

    fn path(self) -> &'static str {
        match self {
            Kind::DailySleep => "daily_sleep",
            Kind::Sleep => "sleep",
            Kind::DailyReadiness => "daily_readiness",
            Kind::DailyActivity => "daily_activity",
            Kind::DailySpo2 => "daily_spo2",
            Kind::Workout => "workout",
            Kind::HeartRate => "heartrate",
        }
    }
}

/// A simulated user's day (`date` = Oura's `day`, the wake-up day).
#[derive(Clone, Debug)]
pub struct Day {
    pub date: NaiveDate,
    pub bedtime_start: DateTime<FixedOffset>,
    pub bedtime_end: DateTime<FixedOffset>,
    /// Seconds asleep in the night's long_sleep period.
    pub total_sleep_secs: i64,
    pub average_hrv: i64,
    pub lowest_heart_rate: i64,
    pub sleep_score: i64,
    pub readiness: i64,
    pub steps: i64,
    pub total_calories: i64,
    pub active_calories: i64,
    pub spo2: f64,
    /// An afternoon nap (type `sleep`) of this many seconds, some days.
    pub nap_secs: Option<i64>,
    /// (activity, start, minutes, kcal, metres), some days.
    pub workout: Option<(String, DateTime<FixedOffset>, i64, f64, f64)>,
}

fn tz(offset_minutes: i32) -> FixedOffset {
    FixedOffset::east_opt(offset_minutes * 60).expect("offset in range")
}

/// Deterministic values for `user` on the local `date`.
pub fn day(user: &str, offset_minutes: i32, date: NaiveDate) -> Day {
    let seed = Sha256::digest(format!("oura|{user}|{date}").as_bytes());
    let f = |i: usize| f64::from(u16::from_be_bytes([seed[2 * i], seed[2 * i + 1]])) / 65_536.0;
    let z = tz(offset_minutes);
    let local = |d: NaiveDate, h: u32, m: u32| {
        z.from_local_datetime(&d.and_hms_opt(h, m, 0).expect("time"))
            .single()
            .expect("fixed offsets are unambiguous")
    };
    let bedtime_start =
        local(date.pred_opt().expect("date"), 22, 0) + Duration::minutes((f(0) * 60.0) as i64);
    let asleep_min = 360 + (f(1) * 120.0) as i64;
    let awake_min = 15 + (f(2) * 30.0) as i64;
    let bedtime_end = bedtime_start + Duration::minutes(asleep_min + awake_min);
    let workout = (f(9) < 0.6).then(|| {
        let minutes = 30 + (f(10) * 40.0) as i64;
        (
            "running".to_string(),
            local(date, 17, 30),
            minutes,
            (minutes * 11) as f64,
            ((minutes as f64 * 170.0 + f(11) * 100.0) * 100.0).round() / 100.0,
        )
    });
    Day {
        date,
        bedtime_start,
        bedtime_end,
        total_sleep_secs: asleep_min * 60,
        average_hrv: 30 + (f(3) * 60.0) as i64,
        lowest_heart_rate: 44 + (f(4) * 16.0) as i64,
        sleep_score: 55 + (f(5) * 45.0) as i64,
        readiness: 50 + (f(6) * 50.0) as i64,
        steps: 2000 + (f(7) * 12000.0) as i64,
        total_calories: 1800 + (f(8) * 1200.0) as i64,
        active_calories: 200 + (f(12) * 600.0) as i64,
        spo2: ((94.0 + f(13) * 5.0) * 1000.0).round() / 1000.0,
        nap_secs: (f(14) < 0.4).then_some(1500),
        workout,
    }
}

fn ts(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// The documents of one kind dated `date`, as Oura shapes them (only what
/// has happened by now).
fn documents(user: &str, offset: i32, kind: Kind, date: NaiveDate) -> Vec<Value> {
    let now = Utc::now();
    let d = day(user, offset, date);
    let z = tz(offset);
    let midnight = z
        .from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("time"))
        .single()
        .expect("fixed offset");
    if midnight > now {
        return Vec::new();
    }
    let id = |k: &str| format!("{k}-{user}-{date}");
    let slept = d.bedtime_end <= now;
    match kind {
        Kind::DailySleep if slept => vec![json!({
            "id": id("daily-sleep"), "day": date, "score": d.sleep_score,
            "timestamp": ts(&midnight),
            "contributors": {"deep_sleep": 90, "efficiency": 88, "latency": 80, "rem_sleep": 85,
                             "restfulness": 75, "timing": 90, "total_sleep": 82}
        })],
        Kind::DailyReadiness if slept => vec![json!({
            "id": id("readiness"), "day": date, "score": d.readiness,
            "temperature_deviation": -0.1, "temperature_trend_deviation": 0.05,
            "timestamp": ts(&midnight),
            "contributors": READINESS_CONTRIBUTORS.clone()
        })],
        Kind::DailySpo2 if slept => vec![json!({
            "id": id("spo2"), "day": date, "breathing_disturbance_index": 8,
            "spo2_percentage": {"average": d.spo2}
        })],
        Kind::Sleep => {
            let mut out = Vec::new();
            if slept {
                let in_bed = (d.bedtime_end - d.bedtime_start).num_seconds();
                let deep = d.total_sleep_secs / 5;
                let rem = d.total_sleep_secs / 4;
                out.push(json!({
                    "id": id("sleep"), "day": date, "type": "long_sleep", "period": 1,
                    "bedtime_start": ts(&d.bedtime_start), "bedtime_end": ts(&d.bedtime_end),
                    "total_sleep_duration": d.total_sleep_secs, "time_in_bed": in_bed,
                    "awake_time": in_bed - d.total_sleep_secs, "deep_sleep_duration": deep,
                    "rem_sleep_duration": rem, "light_sleep_duration": d.total_sleep_secs - deep - rem,
                    "latency": 600, "efficiency": 90, "average_breath": 15.5,
                    "average_heart_rate": d.lowest_heart_rate as f64 + 6.25,
                    "lowest_heart_rate": d.lowest_heart_rate, "average_hrv": d.average_hrv,
                    "heart_rate": {"interval": 300.0, "items": [d.lowest_heart_rate + 8, d.lowest_heart_rate], "timestamp": ts(&d.bedtime_start)},
                    "hrv": {"interval": 300.0, "items": [d.average_hrv - 3, d.average_hrv + 3], "timestamp": ts(&d.bedtime_start)},
                    "readiness": {"score": d.readiness, "contributors": READINESS_CONTRIBUTORS.clone(),
                        "temperature_deviation": -0.1, "temperature_trend_deviation": 0.05},
                    "readiness_score_delta": 2, "sleep_score_delta": 1,
                    "low_battery_alert": false, "sleep_algorithm_version": "v2",
                    "movement_30_sec": "1112211111", "sleep_phase_5_min": "4222113334",
                    "restless_periods": 100
                }));
            }
            if let Some(nap) = d.nap_secs {
                let start = midnight + Duration::hours(14);
                let end = start + Duration::seconds(nap + 300);
                if end <= now {
                    out.push(json!({
                        "id": id("nap"), "day": date, "type": "sleep", "period": 2,
                        "bedtime_start": ts(&start), "bedtime_end": ts(&end),
                        "total_sleep_duration": nap, "time_in_bed": nap + 300, "awake_time": 300,
                        "deep_sleep_duration": 0, "rem_sleep_duration": 0, "light_sleep_duration": nap,
                        "average_hrv": 20, "lowest_heart_rate": 70, "average_heart_rate": 74.0,
                        "average_breath": 15.0, "heart_rate": null, "hrv": null,
                        "efficiency": 83, "latency": 120, "readiness": null,
                        "readiness_score_delta": null, "sleep_score_delta": null,
                        "low_battery_alert": false, "sleep_algorithm_version": "v2",
                        "movement_30_sec": null, "sleep_phase_5_min": null, "restless_periods": 3
                    }));
                }
            }
            out
        }
        Kind::DailyActivity => vec![json!({
            "id": id("activity"), "day": date, "steps": d.steps,
            "total_calories": d.total_calories, "active_calories": d.active_calories,
            "target_calories": 450, "equivalent_walking_distance": d.steps * 3 / 4,
            "score": 80, "timestamp": ts(&(midnight + Duration::hours(4))),
            "class_5_min": "1112233321", "average_met_minutes": 1.6,
            "contributors": {"meet_daily_targets": 60, "move_every_hour": 95, "recovery_time": 100,
                             "stay_active": 80, "training_frequency": 71, "training_volume": 98},
            "high_activity_met_minutes": 12, "high_activity_time": 1800,
            "medium_activity_met_minutes": 150, "medium_activity_time": 3600,
            "low_activity_met_minutes": 240, "low_activity_time": 14400,
            "sedentary_met_minutes": 12, "sedentary_time": 30000,
            "resting_time": 28800, "non_wear_time": 600, "inactivity_alerts": 1,
            "met": {"interval": 60.0, "items": [0.9, 1.2, 3.4], "timestamp": ts(&midnight)},
            "target_meters": 8000, "meters_to_target": (8000 - d.steps * 3 / 4).max(0)
        })],
        Kind::Workout => match &d.workout {
            Some((activity, start, minutes, kcal, metres))
                if *start + Duration::minutes(*minutes) <= now =>
            {
                vec![json!({
                    "id": id("workout"), "day": date, "activity": activity,
                    "calories": kcal, "distance": metres,
                    "start_datetime": ts(start),
                    "end_datetime": ts(&(*start + Duration::minutes(*minutes))),
                    "intensity": "moderate", "label": null, "source": "confirmed"
                })]
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Oura's readiness contributors (scores 1–100), all of them required.
static READINESS_CONTRIBUTORS: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
    json!({"activity_balance": 80, "body_temperature": 95, "hrv_balance": 77,
           "previous_day_activity": 88, "previous_night": 84, "recovery_index": 90,
           "resting_heart_rate": 86, "sleep_balance": 79})
});

/// Hourly heart-rate rows (UTC) in `[start, end)`; Oura's are 5-minutely.
pub fn heart_rate(user: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<Value> {
    let now = Utc::now();
    let mut t = start
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    let mut out = Vec::new();
    while t < end.min(now) {
        if t >= start {
            out.push(json!({
                "timestamp": t.to_rfc3339_opts(SecondsFormat::Secs, false),
                "bpm": heart_rate_at(user, t), "source": "awake"
            }));
        }
        t += Duration::hours(1);
    }
    out
}

/// The simulated bpm at an instant.
pub fn heart_rate_at(user: &str, t: DateTime<Utc>) -> i64 {
    let seed = Sha256::digest(format!("oura-hr|{user}|{}", t.timestamp()).as_bytes());
    55 + i64::from(seed[0] % 40)
}

/// `YYYY-MM-DD` or a date-time (its date).
fn parse_date(v: &str) -> Option<NaiveDate> {
    v.parse::<NaiveDate>()
        .ok()
        .or_else(|| DateTime::parse_from_rfc3339(v).ok().map(|t| t.date_naive()))
}

async fn collection(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    kind: Kind,
) -> Response {
    let (user, h) = match guard(&sim, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let bad = |m: &str| detail(StatusCode::BAD_REQUEST, h.clone(), m);
    let offset = match q.get("next_token") {
        None => 0,
        Some(t) => match URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse().ok()))
        {
            Some(n) => n,
            None => return bad("next_token is not valid"),
        },
    };
    let offset_minutes = sim.ensure_user(&user).utc_offset_minutes;
    let all: Vec<Value> = if kind == Kind::HeartRate {
        let parse = |k: &str| {
            q.get(k)
                .map(|v| DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc)))
        };
        let (start, end) = match (parse("start_datetime"), parse("end_datetime")) {
            (Some(Ok(s)), Some(Ok(e))) => (s, e),
            (None, _) | (_, None) => return bad("start_datetime and end_datetime are required"),
            _ => return bad("start_datetime and end_datetime must be ISO 8601 date-times"),
        };
        if end < start || end - start > Duration::days(MAX_HEARTRATE_DAYS) {
            return bad("the heart-rate window must be 0 to 30 days");
        }
        heart_rate(&user, start, end)
    } else {
        let today = Utc::now().with_timezone(&tz(offset_minutes)).date_naive();
        let get = |k: &str| q.get(k).map(|v| parse_date(v));
        let end = match get("end_date") {
            None => today,
            Some(Some(d)) => d,
            Some(None) => return bad("end_date must be a date"),
        };
        let start = match get("start_date") {
            None => end - Duration::days(1),
            Some(Some(d)) => d,
            Some(None) => return bad("start_date must be a date"),
        };
        if end < start {
            return bad("end_date is before start_date");
        }
        start
            .iter_days()
            .take_while(|d| *d <= end.min(today))
            .flat_map(|d| documents(&user, offset_minutes, kind, d))
            .collect()
    };
    let page: Vec<Value> = all.iter().skip(offset).take(PAGE_SIZE).cloned().collect();
    let next = (offset + PAGE_SIZE < all.len())
        .then(|| URL_SAFE_NO_PAD.encode(format!("offset:{}", offset + PAGE_SIZE)));
    (
        h,
        json_response(StatusCode::OK, json!({ "data": page, "next_token": next })),
    )
        .into_response()
}

/// `POST /oura/_sim/webhook?user=&target=[&data_type=sleep][&event_type=update]
/// [&object_id=][&event_time=][&forge=1]`: sends an Oura-signed event.
async fn send_webhook(
    State(sim): State<Arc<VendorSim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (Some(user), Some(target)) = (q.get("user"), q.get("target")) else {
        return (StatusCode::BAD_REQUEST, "user and target are required").into_response();
    };
    let get = |k: &str, d: &str| q.get(k).cloned().unwrap_or_else(|| d.to_string());
    let event = Event {
        event_type: get("event_type", "update"),
        data_type: get("data_type", "sleep"),
        object_id: get("object_id", "sim-object"),
        event_time: get(
            "event_time",
            &Utc::now().to_rfc3339_opts(SecondsFormat::Secs, false),
        ),
    };
    let forge = q.get("forge").is_some_and(|v| v == "1" || v == "true");
    let (status, body) = deliver_webhook(&sim, target, user, &event, forge).await;
    json_response(StatusCode::OK, json!({ "status": status, "body": body }))
}

/// What an Oura event says (the user aside).
pub struct Event {
    pub event_type: String,
    pub data_type: String,
    pub object_id: String,
    pub event_time: String,
}

/// Sends one event as Oura would; returns the receiver's status and body.
pub async fn deliver_webhook(
    sim: &VendorSim,
    target: &str,
    user: &str,
    e: &Event,
    forge: bool,
) -> (u16, String) {
    // Compact JSON in Oura's documented key order.
    let body = format!(
        r#"{{"event_type":{},"data_type":{},"object_id":{},"event_time":{},"user_id":{}}}"#,
        json!(e.event_type),
        json!(e.data_type),
        json!(e.object_id),
        json!(e.event_time),
        json!(user)
    );
    let timestamp = Utc::now().timestamp().to_string();
    let secret = if forge {
        "not-the-client-secret".to_string()
    } else {
        sim.app.client_secret.clone()
    };
    let signature = connector_core::vendors::oura::scheme()
        .sign(secret.as_bytes(), Some(&timestamp), body.as_bytes())
        .to_uppercase();
    let resp = reqwest::Client::new()
        .post(target)
        .header("content-type", "application/json")
        .header("x-oura-signature", signature)
        .header("x-oura-timestamp", timestamp)
        .body(body);
    super::deliver(resp).await
}

/// `POST /oura/_sim/handshake?target=[&token=]`: Oura's subscription check.
async fn send_handshake(
    State(sim): State<Arc<VendorSim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(target) = q.get("target") else {
        return (StatusCode::BAD_REQUEST, "target is required").into_response();
    };
    let token = q
        .get("token")
        .cloned()
        .unwrap_or(sim.app.verify_token.clone());
    let (status, body, accepted) = deliver_handshake(target, &token).await;
    json_response(
        StatusCode::OK,
        json!({ "status": status, "body": body, "accepted": accepted }),
    )
}

/// `GET <callback>?verification_token=&challenge=` as Oura sends it when a
/// subscription is created: (status, body, whether Oura would accept it —
/// 200 and exactly `{"challenge": <challenge>}`).
pub async fn deliver_handshake(target: &str, token: &str) -> (u16, String, bool) {
    let challenge = format!("sim-challenge-{}", uuid::Uuid::new_v4().simple());
    let mut url = match url::Url::parse(target) {
        Ok(u) => u,
        Err(_) => return (0, "target is not a URL".into(), false),
    };
    url.query_pairs_mut()
        .append_pair("verification_token", token)
        .append_pair("challenge", &challenge);
    match reqwest::Client::new().get(url).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let json_type = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            let body = r.text().await.unwrap_or_default();
            let echoed = serde_json::from_str::<Value>(&body).ok()
                == Some(json!({ "challenge": challenge }));
            (status, body, status == 200 && json_type && echoed)
        }
        Err(e) => (0, format!("delivery failed: {e}"), false),
    }
}

/// How long a subscription lives (UNCONFIRMED; the fixtures show 90 days).
pub const SUBSCRIPTION_DAYS: i64 = 90;
const DATA_TYPES: [&str; 17] = [
    "tag",
    "enhanced_tag",
    "workout",
    "session",
    "sleep",
    "daily_sleep",
    "daily_readiness",
    "daily_activity",
    "daily_spo2",
    "sleep_time",
    "rest_mode_period",
    "ring_configuration",
    "daily_stress",
    "daily_cardiovascular_age",
    "daily_resilience",
    "vo2_max",
    "meal",
];

/// The app's own credentials in `x-client-id` / `x-client-secret`.
fn app_authenticated(sim: &VendorSim, headers: &HeaderMap) -> bool {
    let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    get("x-client-id") == Some(sim.app.client_id.as_str())
        && get("x-client-secret") == Some(sim.app.client_secret.as_str())
}

fn expiry(now: DateTime<Utc>) -> String {
    (now + Duration::days(SUBSCRIPTION_DAYS)).to_rfc3339_opts(SecondsFormat::Secs, false)
}

async fn list_subscriptions(State(sim): State<Arc<VendorSim>>, headers: HeaderMap) -> Response {
    if !app_authenticated(&sim, &headers) {
        return detail(StatusCode::UNAUTHORIZED, HeaderMap::new(), "invalid client");
    }
    let all = state(&sim).subscriptions.lock().unwrap().clone();
    json_response(StatusCode::OK, Value::Array(all))
}

/// `POST /v2/webhook/subscription`: Oura first checks the callback with
/// the handshake, and creates the subscription only if it passes.
async fn create_subscription(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !app_authenticated(&sim, &headers) {
        return detail(StatusCode::UNAUTHORIZED, HeaderMap::new(), "invalid client");
    }
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let field = |k: &str| v[k].as_str().filter(|s| !s.is_empty()).map(String::from);
    let (Some(callback), Some(token), Some(event_type), Some(data_type)) = (
        field("callback_url"),
        field("verification_token"),
        field("event_type"),
        field("data_type"),
    ) else {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            HeaderMap::new(),
            "callback_url, verification_token, event_type and data_type are required",
        );
    };
    if !["create", "update", "delete"].contains(&event_type.as_str())
        || !DATA_TYPES.contains(&data_type.as_str())
    {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            HeaderMap::new(),
            "unknown event_type or data_type",
        );
    }
    let (_, _, accepted) = deliver_handshake(&callback, &token).await;
    if !accepted {
        return detail(
            StatusCode::BAD_REQUEST,
            HeaderMap::new(),
            "callback verification failed",
        );
    }
    let sub = json!({
        "id": uuid::Uuid::new_v4().to_string(), "callback_url": callback,
        "event_type": event_type, "data_type": data_type, "expiration_time": expiry(Utc::now())
    });
    state(&sim).subscriptions.lock().unwrap().push(sub.clone());
    json_response(StatusCode::CREATED, sub)
}

async fn renew_subscription(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !app_authenticated(&sim, &headers) {
        return detail(StatusCode::UNAUTHORIZED, HeaderMap::new(), "invalid client");
    }
    let mut subs = state(&sim).subscriptions.lock().unwrap();
    match subs.iter_mut().find(|s| s["id"] == id.as_str()) {
        Some(s) => {
            s["expiration_time"] = json!(expiry(Utc::now()));
            json_response(StatusCode::OK, s.clone())
        }
        None => detail(
            StatusCode::FORBIDDEN,
            HeaderMap::new(),
            "no such subscription",
        ),
    }
}

async fn delete_subscription(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !app_authenticated(&sim, &headers) {
        return detail(StatusCode::UNAUTHORIZED, HeaderMap::new(), "invalid client");
    }
    let mut subs = state(&sim).subscriptions.lock().unwrap();
    let before = subs.len();
    subs.retain(|s| s["id"] != id.as_str());
    if subs.len() == before {
        return detail(
            StatusCode::FORBIDDEN,
            HeaderMap::new(),
            "no such subscription",
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Makes the first `n` subscriptions expire `in_days` from now (tests of renewal).
pub fn expire_subscriptions(sim: &VendorSim, n: usize, in_days: i64) -> Vec<String> {
    let at = (Utc::now() + Duration::days(in_days)).to_rfc3339_opts(SecondsFormat::Secs, false);
    let mut subs = state(sim).subscriptions.lock().unwrap();
    subs.iter_mut()
        .take(n)
        .map(|s| {
            s["expiration_time"] = json!(at);
            s["id"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}
