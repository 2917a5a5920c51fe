//! Dexcom API v3 as docs/vendors/dexcom.md describes it: OAuth at
//! `/v2/oauth2/login` and `/v2/oauth2/token` (body credentials, scope
//! `offline_access`, refresh tokens treated as rotating), no revoke, no
//! webhooks, `dataRange` and `egvs` (zone-less `startDate`/`endDate`, at most
//! 30 days) with `userId` in every response, 60,000 calls an hour.
//! Simplification: a reading every 30 minutes instead of every 5, to keep
//! the tests light; users show local time at UTC-8.

use super::limits::{Limiter, Verdict, Window};
use super::oauth::{self, OAuthPolicy, Pkce};
use super::{json_response, VendorSim};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};
use connector_core::vendors::spec::ClientAuth;
use connector_core::Vendor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

pub const OAUTH_PATHS: (&str, &str) = ("/v2/oauth2/login", "/v2/oauth2/token");
pub const DISPLAY_OFFSET_HOURS: i64 = -8;
pub const READING_MINUTES: i64 = 30;
/// Simulated sensors have been on this long.
pub const HISTORY_DAYS: i64 = 60;

pub fn sim() -> VendorSim {
    VendorSim::new(
        Vendor::Dexcom,
        OAUTH_PATHS,
        router,
        OAuthPolicy {
            client_auth: ClientAuth::Body,
            pkce: Pkce::Optional,
            min_state_len: 0,
            code_ttl_secs: 600,
            access_ttl_secs: 7200,
            refresh_needs_scope: Some("offline_access"),
            rotate_refresh: true,
        },
        Limiter::new(vec![Window::new(
            60_000,
            std::time::Duration::from_secs(3600),
        )]),
        |sim| format!("simdexcomuser{:051}", sim.next_user_number()),
    )
}

/// Dexcom's token answer: `access_token`, `expires_in`, `token_type`,
/// `refresh_token`, and no `scope` (the authentication page's example).
fn token_response(sim: &VendorSim, i: &oauth::Issued) -> serde_json::Value {
    let mut v = oauth::standard_response(sim, i);
    if let Some(o) = v.as_object_mut() {
        o.remove("scope");
    }
    v
}

pub fn router(sim: Arc<VendorSim>) -> Router {
    oauth::routes(OAUTH_PATHS, token_response)
        .route("/v3/users/self/dataRange", get(data_range))
        .route("/v3/users/self/egvs", get(egvs))
        .with_state(sim)
}

fn rate_headers(_v: &Verdict, _w: &[(u32, u64)]) -> Vec<(&'static str, String)> {
    vec![]
}

/// The latest reading time at or before `t`.
fn floor(t: DateTime<Utc>) -> DateTime<Utc> {
    let mins = i64::from(t.minute()) % READING_MINUTES;
    t - Duration::minutes(mins)
        - Duration::seconds(i64::from(t.second()))
        - Duration::nanoseconds(i64::from(t.nanosecond()))
}

/// The simulated glucose value (mg/dL) of `user` at reading time `t`.
pub fn reading(user: &str, t: DateTime<Utc>) -> i64 {
    let seed = Sha256::digest(format!("dexcom|{user}|{}", t.timestamp()).as_bytes());
    70 + i64::from(u16::from_be_bytes([seed[0], seed[1]]) % 110)
}

fn history(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let end = floor(now - Duration::hours(1));
    (floor(end - Duration::days(HISTORY_DAYS)), end)
}

fn fmt(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn display(t: DateTime<Utc>) -> String {
    let local = t + Duration::hours(DISPLAY_OFFSET_HOURS);
    format!(
        "{}{:+03}:00",
        local.format("%Y-%m-%dT%H:%M:%S"),
        DISPLAY_OFFSET_HOURS
    )
}

fn moment(t: DateTime<Utc>) -> Value {
    json!({ "systemTime": fmt(t), "displayTime": fmt(t + Duration::hours(DISPLAY_OFFSET_HOURS)) })
}

async fn data_range(State(sim): State<Arc<VendorSim>>, headers: HeaderMap) -> Response {
    let (user, h) = match sim.guard(&headers, rate_headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let (start, end) = history(Utc::now());
    (
        h,
        json_response(
            StatusCode::OK,
            json!({
                "recordType": "dataRange", "recordVersion": "3.0", "userId": user,
                "calibrations": null,
                "egvs": { "start": moment(start), "end": moment(end) },
                "events": null
            }),
        ),
    )
        .into_response()
}

async fn egvs(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (user, h) = match sim.guard(&headers, rate_headers) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let parse = |k: &str| {
        q.get(k)
            .and_then(|v| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S").ok())
            .map(|t| t.and_utc())
    };
    let (Some(from), Some(to)) = (parse("startDate"), parse("endDate")) else {
        return (
            StatusCode::BAD_REQUEST,
            h,
            "startDate and endDate are required as YYYY-MM-DDThh:mm:ss",
        )
            .into_response();
    };
    if to <= from || to - from > Duration::days(30) {
        return (
            StatusCode::BAD_REQUEST,
            h,
            "the window must be positive and at most 30 days",
        )
            .into_response();
    }
    let (first, last) = history(Utc::now());
    let mut records = Vec::new();
    let mut t = floor(from.max(first));
    if t < from {
        t += Duration::minutes(READING_MINUTES);
    }
    while t <= to.min(last) {
        records.push(json!({
            "recordId": format!("{}-{}", &user[user.len() - 8..], t.timestamp()),
            "systemTime": format!("{}Z", fmt(t)), "displayTime": display(t),
            "transmitterId": "sim-transmitter", "transmitterTicks": t.timestamp() % 1_000_000,
            "value": reading(&user, t), "status": null, "trend": "flat", "trendRate": 0.1,
            "unit": "mg/dL", "rateUnit": "mg/dL/min", "displayDevice": "iOS",
            "transmitterGeneration": "g7"
        }));
        t += Duration::minutes(READING_MINUTES);
    }
    // Newest first, like Dexcom.
    records.reverse();
    (
        h,
        json_response(
            StatusCode::OK,
            json!({ "recordType": "egv", "recordVersion": "3.0", "userId": user, "records": records }),
        ),
    )
        .into_response()
}
