//! WHOOP as its v2 docs describe it (docs/vendors/whoop.md): OAuth with
//! body client credentials, `offline` for a rotating single-use refresh
//! token; `/developer/v2/...` collections with `start`/`end`, `limit` ≤ 25
//! and `nextToken` → `next_token`, newest first; 100 requests a minute and
//! 10,000 a day with `X-RateLimit-*` headers; revoke by DELETE; webhooks
//! signed base64 HMAC-SHA256(client secret, ms timestamp + body).

use super::limits::{Limiter, Verdict, Window};
use super::oauth::{self, OAuthPolicy, Pkce};
use super::{json_response, VendorSim};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use connector_core::vendors::spec::ClientAuth;
use connector_core::Vendor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;

/// (authorize path, token path) under the vendor's base.
pub const OAUTH_PATHS: (&str, &str) = ("/oauth/oauth2/auth", "/oauth/oauth2/token");
pub const MAX_LIMIT: usize = 25;

pub fn sim() -> VendorSim {
    VendorSim::new(
        Vendor::Whoop,
        OAUTH_PATHS,
        router,
        OAuthPolicy {
            client_auth: ClientAuth::Body,
            pkce: Pkce::Optional,
            min_state_len: 8,
            code_ttl_secs: 600,
            access_ttl_secs: 3600,
            refresh_needs_scope: Some("offline"),
            rotate_refresh: true,
        },
        Limiter::new(vec![
            Window::new(100, std::time::Duration::from_secs(60)),
            Window::new(10_000, std::time::Duration::from_secs(86_400)),
        ]),
        |sim| (99_000_000 + sim.next_user_number()).to_string(),
    )
}

pub fn router(sim: Arc<VendorSim>) -> Router {
    oauth::routes(OAUTH_PATHS, oauth::standard_response)
        .route("/developer/v2/user/profile/basic", get(profile))
        .route(
            "/developer/v2/cycle",
            get(|s, h, q| collection(s, h, q, Kind::Cycle)),
        )
        .route(
            "/developer/v2/recovery",
            get(|s, h, q| collection(s, h, q, Kind::Recovery)),
        )
        .route(
            "/developer/v2/activity/sleep",
            get(|s, h, q| collection(s, h, q, Kind::Sleep)),
        )
        .route(
            "/developer/v2/activity/workout",
            get(|s, h, q| collection(s, h, q, Kind::Workout)),
        )
        .route("/developer/v2/user/access", delete(revoke))
        .route("/_sim/webhook", post(send_webhook))
        .with_state(sim)
}

/// WHOOP's rate-limit headers: `X-RateLimit-Limit: 100, 100;window=60, 10000;window=86400`,
/// `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds to go).
fn rate_headers(v: &Verdict, windows: &[(u32, u64)]) -> Vec<(&'static str, String)> {
    let ws: Vec<String> = windows
        .iter()
        .map(|(l, s)| format!("{l};window={s}"))
        .collect();
    vec![
        (
            "x-ratelimit-limit",
            format!("{}, {}", v.limit, ws.join(", ")),
        ),
        ("x-ratelimit-remaining", v.remaining.to_string()),
        ("x-ratelimit-reset", v.reset_secs.to_string()),
    ]
}

fn guard(sim: &VendorSim, headers: &HeaderMap) -> Result<(String, HeaderMap), Box<Response>> {
    sim.guard(headers, rate_headers)
}

async fn profile(State(sim): State<Arc<VendorSim>>, headers: HeaderMap) -> Response {
    let (user, h) = match guard(&sim, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let id: i64 = user.parse().unwrap_or_default();
    (
        h,
        json_response(
            StatusCode::OK,
            json!({"user_id": id, "email": format!("sim.{id}@example.com"), "first_name": "Sim", "last_name": "User"}),
        ),
    )
        .into_response()
}

async fn revoke(State(sim): State<Arc<VendorSim>>, headers: HeaderMap) -> Response {
    let (user, h) = match guard(&sim, &headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    sim.oauth.lock().unwrap().revoke_user(&user);
    sim.stats.revocations.fetch_add(1, SeqCst);
    (StatusCode::NO_CONTENT, h).into_response()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Cycle,
    Recovery,
    Sleep,
    Workout,
}

/// One simulated night and the day after it, for a user and local date.
pub struct Day {
    pub date: NaiveDate,
    pub sleep_id: String,
    pub cycle_id: i64,
    pub sleep_start: DateTime<Utc>,
    pub sleep_end: DateTime<Utc>,
    pub light_ms: i64,
    pub sws_ms: i64,
    pub rem_ms: i64,
    pub awake_ms: i64,
    pub sleep_performance: f64,
    pub respiratory_rate: f64,
    pub recovery_score: f64,
    pub resting_hr: f64,
    pub hrv_ms: f64,
    pub spo2: f64,
    pub skin_temp: f64,
    pub strain: f64,
    pub kilojoule: f64,
    /// (sport, start, minutes, kilojoule, metres)
    pub workout: Option<(String, DateTime<Utc>, i64, f64, f64)>,
}

fn round_to(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (x * m).round() / m
}

/// Deterministic values for `user` on the local `date` (the wake-up day).
pub fn day(user: &str, offset_minutes: i32, date: NaiveDate) -> Day {
    let seed = Sha256::digest(format!("whoop|{user}|{date}").as_bytes());
    let f = |i: usize| f64::from(u16::from_be_bytes([seed[2 * i], seed[2 * i + 1]])) / 65_536.0;
    let tz = FixedOffset::east_opt(offset_minutes * 60).expect("offset in range");
    let evening = date
        .pred_opt()
        .expect("date")
        .and_hms_opt(22, 0, 0)
        .expect("time");
    let sleep_start = tz
        .from_local_datetime(&evening)
        .single()
        .expect("fixed offsets are unambiguous")
        .with_timezone(&Utc)
        + Duration::minutes((f(0) * 90.0) as i64);
    let asleep_min = 360 + (f(1) * 120.0) as i64;
    let rem_ms = asleep_min * 60_000 * 22 / 100;
    let sws_ms = asleep_min * 60_000 * 20 / 100;
    let light_ms = asleep_min * 60_000 - rem_ms - sws_ms;
    let awake_ms = (10 + (f(2) * 30.0) as i64) * 60_000;
    let sleep_end = sleep_start + Duration::milliseconds(light_ms + sws_ms + rem_ms + awake_ms);
    let user_num: i64 = user.parse().unwrap_or(0);
    let h = hex::encode(&seed[..16]);
    let workout = (f(9) < 0.6).then(|| {
        let start = tz
            .from_local_datetime(&date.and_hms_opt(7, 30, 0).expect("time"))
            .single()
            .expect("fixed offset")
            .with_timezone(&Utc);
        let minutes = 30 + (f(10) * 40.0) as i64;
        (
            "running".to_string(),
            start,
            minutes,
            round_to(minutes as f64 * 46.0, 1),
            round_to(minutes as f64 * 170.0 + f(11) * 100.0, 2),
        )
    });
    Day {
        date,
        sleep_id: format!(
            "{}-{}-4{}-8{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        ),
        cycle_id: (user_num % 100_000) * 1_000_000 + i64::from(date.num_days_from_ce()),
        sleep_start,
        sleep_end,
        light_ms,
        sws_ms,
        rem_ms,
        awake_ms,
        sleep_performance: (60.0 + f(3) * 40.0).round(),
        respiratory_rate: round_to(13.0 + f(4) * 4.0, 1),
        recovery_score: (20.0 + f(5) * 79.0).round(),
        resting_hr: (45.0 + f(6) * 20.0).round(),
        hrv_ms: round_to(30.0 + f(7) * 80.0, 3),
        spo2: round_to(94.0 + f(8) * 5.0, 2),
        skin_temp: round_to(33.0 + f(12) * 1.5, 2),
        strain: round_to(5.0 + f(13) * 13.0, 1),
        kilojoule: round_to(7000.0 + f(14) * 5000.0, 1),
        workout,
    }
}

fn offset_str(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn records(
    user: &str,
    offset: i32,
    kind: Kind,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, Value)> {
    let now = Utc::now();
    let tz = offset_str(offset);
    let uid: i64 = user.parse().unwrap_or(0);
    let first = start.date_naive() - Duration::days(1);
    let last = end.date_naive() + Duration::days(1);
    let mut out = Vec::new();
    for date in first.iter_days().take_while(|d| *d <= last) {
        let d = day(user, offset, date);
        if d.sleep_end > now {
            continue;
        }
        let next_start = day(user, offset, date.succ_opt().expect("date")).sleep_start;
        let created = ts(d.sleep_end + Duration::minutes(10));
        let (at, v) = match kind {
            Kind::Sleep => (
                d.sleep_start,
                json!({
                    "id": d.sleep_id, "cycle_id": d.cycle_id, "user_id": uid,
                    "created_at": created, "updated_at": created,
                    "start": ts(d.sleep_start), "end": ts(d.sleep_end), "timezone_offset": tz,
                    "nap": false, "score_state": "SCORED",
                    "score": {
                        "stage_summary": {
                            "total_in_bed_time_milli": d.light_ms + d.sws_ms + d.rem_ms + d.awake_ms,
                            "total_awake_time_milli": d.awake_ms,
                            "total_no_data_time_milli": 0,
                            "total_light_sleep_time_milli": d.light_ms,
                            "total_slow_wave_sleep_time_milli": d.sws_ms,
                            "total_rem_sleep_time_milli": d.rem_ms,
                            "sleep_cycle_count": 4, "disturbance_count": 8
                        },
                        "sleep_needed": {"baseline_milli": 27_000_000, "need_from_sleep_debt_milli": 0,
                                         "need_from_recent_strain_milli": 0, "need_from_recent_nap_milli": 0},
                        "respiratory_rate": d.respiratory_rate,
                        "sleep_performance_percentage": d.sleep_performance,
                        "sleep_consistency_percentage": 80.0,
                        "sleep_efficiency_percentage": 92.0
                    }
                }),
            ),
            Kind::Recovery => (
                d.sleep_start,
                json!({
                    "cycle_id": d.cycle_id, "sleep_id": d.sleep_id, "user_id": uid,
                    "created_at": created, "updated_at": created, "score_state": "SCORED",
                    "score": {
                        "user_calibrating": false, "recovery_score": d.recovery_score,
                        "resting_heart_rate": d.resting_hr, "hrv_rmssd_milli": d.hrv_ms,
                        "spo2_percentage": d.spo2, "skin_temp_celsius": d.skin_temp
                    }
                }),
            ),
            Kind::Cycle => {
                let mut v = json!({
                    "id": d.cycle_id, "user_id": uid, "created_at": created, "updated_at": created,
                    "start": ts(d.sleep_start), "timezone_offset": tz, "score_state": "SCORED",
                    "score": {"strain": d.strain, "kilojoule": d.kilojoule,
                              "average_heart_rate": 68, "max_heart_rate": 160}
                });
                if next_start <= now {
                    v["end"] = json!(ts(next_start));
                }
                (d.sleep_start, v)
            }
            Kind::Workout => {
                let Some((sport, start, minutes, kj, metres)) = d.workout.clone() else {
                    continue;
                };
                if start + Duration::minutes(minutes) > now {
                    continue;
                }
                (
                    start,
                    json!({
                        "id": format!("{}-0000-4000-8000-{:012}", &d.sleep_id[..8], d.cycle_id),
                        "user_id": uid, "created_at": created, "updated_at": created,
                        "start": ts(start), "end": ts(start + Duration::minutes(minutes)),
                        "timezone_offset": tz, "sport_name": sport, "sport_id": 0,
                        "score_state": "SCORED",
                        "score": {"strain": 10.0, "average_heart_rate": 140, "max_heart_rate": 175,
                                  "kilojoule": kj, "percent_recorded": 100.0, "distance_meter": metres,
                                  "altitude_gain_meter": 20.0, "altitude_change_meter": 1.0,
                                  "zone_durations": {"zone_zero_milli": 0, "zone_one_milli": 0,
                                      "zone_two_milli": 0, "zone_three_milli": 0,
                                      "zone_four_milli": 0, "zone_five_milli": 0}}
                    }),
                )
            }
        };
        if at >= start && at < end {
            out.push((at, v));
        }
    }
    // Newest first, as WHOOP lists them.
    out.sort_by_key(|r| std::cmp::Reverse(r.0));
    out
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
    let bad = |m: &str| (StatusCode::BAD_REQUEST, h.clone(), m.to_string()).into_response();
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 10,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        _ => return bad("limit must be 1..=25"),
    };
    let parse = |k: &str| q.get(k).map(|v| v.parse::<DateTime<Utc>>());
    let start = match parse("start") {
        None => Utc::now() - Duration::days(30),
        Some(Ok(t)) => t,
        Some(Err(_)) => return bad("start must be an ISO 8601 date-time"),
    };
    let end = match parse("end") {
        None => Utc::now(),
        Some(Ok(t)) => t,
        Some(Err(_)) => return bad("end must be an ISO 8601 date-time"),
    };
    let offset = match q.get("nextToken") {
        None => 0,
        Some(t) => match URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("offset:")
                    .and_then(|n| n.parse::<usize>().ok())
            }) {
            Some(n) => n,
            None => return bad("nextToken is not valid"),
        },
    };
    let offset_minutes = sim.ensure_user(&user).utc_offset_minutes;
    let all = records(&user, offset_minutes, kind, start, end);
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(_, v)| v.clone())
        .collect();
    let mut body = json!({ "records": page });
    if offset + limit < all.len() {
        body["next_token"] = json!(URL_SAFE_NO_PAD.encode(format!("offset:{}", offset + limit)));
    }
    (h, json_response(StatusCode::OK, body)).into_response()
}

/// `POST /whoop/_sim/webhook?user=&type=recovery.updated&target=<url>[&forge=1][&trace_id=]`:
/// sends a WHOOP-signed webhook to `target` and reports what it answered.
async fn send_webhook(
    State(sim): State<Arc<VendorSim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (Some(user), Some(target)) = (q.get("user"), q.get("target")) else {
        return (StatusCode::BAD_REQUEST, "user and target are required").into_response();
    };
    let kind = q
        .get("type")
        .cloned()
        .unwrap_or_else(|| "recovery.updated".into());
    let trace = q
        .get("trace_id")
        .cloned()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let forge = q.get("forge").is_some_and(|v| v == "1" || v == "true");
    let (status, body) = deliver_webhook(&sim, target, user, &kind, &trace, forge).await;
    json_response(StatusCode::OK, json!({ "status": status, "body": body }))
}

/// Sends one webhook as WHOOP would; returns the receiver's status and body.
pub async fn deliver_webhook(
    sim: &VendorSim,
    target: &str,
    user: &str,
    kind: &str,
    trace_id: &str,
    forge: bool,
) -> (u16, String) {
    let uid: i64 = user.parse().unwrap_or(0);
    let body = json!({ "user_id": uid, "id": uuid::Uuid::new_v4().to_string(), "type": kind, "trace_id": trace_id })
        .to_string();
    let timestamp = Utc::now().timestamp_millis().to_string();
    let secret = if forge {
        "not-the-client-secret".to_string()
    } else {
        sim.app.client_secret.clone()
    };
    let signature = connector_core::vendors::whoop::scheme().sign(
        secret.as_bytes(),
        Some(&timestamp),
        body.as_bytes(),
    );
    let resp = reqwest::Client::new()
        .post(target)
        .header("content-type", "application/json")
        .header("x-whoop-signature", signature)
        .header("x-whoop-signature-timestamp", timestamp)
        .body(body);
    super::deliver(resp).await
}
