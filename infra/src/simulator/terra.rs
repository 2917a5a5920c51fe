//! Terra API v2 as docs/vendors/terra.md describes it: app credentials
//! (`dev-id`, `x-api-key`) on every call, `authenticateUser` → the
//! provider's consent page (here a simulated one that redirects back with
//! `user_id` and `reference_id`), `userInfo`, `GET /v2/{daily,sleep,
//! activity,body}` with `to_webhook=false`, `deauthenticateUser` (then a
//! `deauth` event), and webhooks signed `terra-signature: t=…,v1=…`.
//! Users live at UTC-5, like the fixtures.

use super::limits::{Limiter, Window};
use super::oauth::{OAuthPolicy, Pkce};
use super::{json_response, VendorSim};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use chrono::{Duration, NaiveDate, Utc};
use connector_core::vendors::spec::ClientAuth;
use connector_core::Vendor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};

/// Terra has no OAuth endpoints of its own; these paths only fill the config.
pub const OAUTH_PATHS: (&str, &str) = ("/v2/auth/authenticateUser", "/v2/auth/none");
pub const OFFSET_HOURS: i64 = -5;

/// Terra's own bookkeeping: each widget authentication by Terra user id
/// (provider, reference id, success URL, and whether the user consented),
/// in the shape Terra's user objects show it.
#[derive(Default)]
pub struct TerraState {
    auths: Mutex<HashMap<String, Value>>,
}

fn state(sim: &VendorSim) -> &TerraState {
    sim.extra()
}

pub fn sim() -> VendorSim {
    VendorSim::new(
        Vendor::Terra,
        OAUTH_PATHS,
        router,
        OAuthPolicy {
            client_auth: ClientAuth::Body,
            pkce: Pkce::Optional,
            min_state_len: 0,
            code_ttl_secs: 600,
            access_ttl_secs: 3600,
            refresh_needs_scope: None,
            rotate_refresh: false,
        },
        Limiter::new(vec![Window::new(
            6000,
            std::time::Duration::from_secs(3600),
        )]),
        |_| uuid::Uuid::new_v4().to_string(),
    )
    .with_extra(TerraState::default())
}

pub fn router(sim: Arc<VendorSim>) -> Router {
    Router::new()
        .route("/v2/auth/authenticateUser", post(authenticate_user))
        .route("/v2/auth/deauthenticateUser", delete(deauthenticate))
        .route("/v2/userInfo", get(user_info))
        .route("/v2/{kind}", get(data))
        .route("/_sim/consent", get(consent))
        .route("/_sim/webhook", post(send_webhook))
        .with_state(sim)
}

/// Terra's error body: an RFC 9457 problem (`type`, `title`, `instance`,
/// `detail`) as `application/problem+json`.
fn terra_error(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("error").to_lowercase();
    let mut resp = json_response(
        status,
        json!({ "type": "about:blank", "title": title, "instance": "/v2", "detail": message }),
    );
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/problem+json"),
    );
    resp
}

/// Every Terra call carries the app's dev-id and API key.
fn app_guard(sim: &VendorSim, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    if get("dev-id") != Some(sim.app.client_id.as_str())
        || get("x-api-key") != Some(sim.app.client_secret.as_str())
    {
        return Err(Box::new(terra_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized: dev-id or x-api-key is wrong",
        )));
    }
    if !sim.limiter.check().allowed {
        sim.stats.rate_limited.fetch_add(1, SeqCst);
        return Err(Box::new(terra_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate limit exceeded",
        )));
    }
    sim.stats.api_requests.fetch_add(1, SeqCst);
    Ok(())
}

/// The user removed the app at Terra (or at the wearable behind it).
pub fn forget_user(sim: &VendorSim, user_id: &str) {
    state(sim).auths.lock().unwrap().remove(user_id);
}

fn user_record(sim: &VendorSim, user_id: &str) -> Option<Value> {
    state(sim).auths.lock().unwrap().get(user_id).cloned()
}

async fn authenticate_user(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    if let Err(r) = app_guard(&sim, &headers) {
        return *r;
    }
    let Some(provider) = q.get("resource") else {
        return terra_error(StatusCode::BAD_REQUEST, "resource is required");
    };
    let Ok(req) = serde_json::from_str::<Value>(&body) else {
        return terra_error(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    let user_id = (sim.new_user_id)(&sim);
    sim.ensure_user(&user_id);
    state(&sim).auths.lock().unwrap().insert(
        user_id.clone(),
        json!({
            "user_id": user_id, "provider": provider, "reference_id": req["reference_id"],
            "success": req["auth_success_redirect_url"], "active": false,
        }),
    );
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    json_response(
        StatusCode::OK,
        json!({
            "status": "success", "user_id": user_id,
            "auth_url": format!("http://{host}/terra/_sim/consent?user_id={user_id}"),
        }),
    )
}

/// The provider's consent page: consents at once, sends Terra's `auth`
/// event, and redirects to the success URL with `user_id` and `reference_id`.
async fn consent(
    State(sim): State<Arc<VendorSim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(user_id) = q.get("user_id") else {
        return (StatusCode::BAD_REQUEST, "user_id is required").into_response();
    };
    let Some(mut rec) = user_record(&sim, user_id) else {
        return (StatusCode::NOT_FOUND, "no such authentication").into_response();
    };
    rec["active"] = json!(true);
    state(&sim)
        .auths
        .lock()
        .unwrap()
        .insert(user_id.clone(), rec.clone());
    let event = json!({
        "type": "auth", "status": "success", "user": user_view(&rec),
        "message": "User has successfully authenticated",
    });
    deliver_made(&sim, &event, false).await;
    let Ok(mut to) = url::Url::parse(rec["success"].as_str().unwrap_or_default()) else {
        return (StatusCode::BAD_REQUEST, "no valid success URL").into_response();
    };
    to.query_pairs_mut()
        .append_pair("user_id", user_id)
        .append_pair(
            "reference_id",
            rec["reference_id"].as_str().unwrap_or_default(),
        )
        .append_pair("resource", rec["provider"].as_str().unwrap_or_default());
    (StatusCode::FOUND, [("location", to.to_string())]).into_response()
}

fn user_view(rec: &Value) -> Value {
    json!({
        "user_id": rec["user_id"], "provider": rec["provider"], "reference_id": rec["reference_id"],
        "active": rec["active"], "scopes": "ACTIVITY_EXPORT,HEALTH_EXPORT",
        "last_webhook_update": null, "created_at": "2026-11-20T12:00:00.000000+00:00",
    })
}

async fn user_info(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = app_guard(&sim, &headers) {
        return *r;
    }
    match q.get("user_id").and_then(|u| user_record(&sim, u)) {
        Some(rec) if rec["active"] == json!(true) => json_response(
            StatusCode::OK,
            json!({ "status": "success", "is_authenticated": true, "user": user_view(&rec) }),
        ),
        _ => terra_error(StatusCode::NOT_FOUND, "user not found"),
    }
}

async fn deauthenticate(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = app_guard(&sim, &headers) {
        return *r;
    }
    let Some(user_id) = q.get("user_id") else {
        return terra_error(StatusCode::BAD_REQUEST, "user_id is required");
    };
    let Some(rec) = state(&sim).auths.lock().unwrap().remove(user_id) else {
        return terra_error(StatusCode::NOT_FOUND, "user not found");
    };
    sim.stats.revocations.fetch_add(1, SeqCst);
    let event = json!({ "type": "deauth", "user": user_view(&rec), "status": "success",
        "message": "User has deauthenticated" });
    deliver_made(&sim, &event, false).await;
    json_response(StatusCode::OK, json!({ "status": "success" }))
}

/// One simulated user-day.
pub struct Day {
    pub steps: i64,
    pub calories: i64,
    pub resting_hr: i64,
    pub asleep_secs: i64,
    pub sleep_score: i64,
    pub hrv: f64,
    pub weight_kg: f64,
}

pub fn day(user: &str, date: NaiveDate) -> Day {
    let seed = Sha256::digest(format!("terra|{user}|{date}").as_bytes());
    let f = |i: usize| f64::from(u16::from_be_bytes([seed[2 * i], seed[2 * i + 1]])) / 65_536.0;
    Day {
        steps: (2500.0 + f(0) * 11_000.0) as i64,
        calories: (1800.0 + f(1) * 1000.0) as i64,
        resting_hr: (48.0 + f(2) * 18.0) as i64,
        asleep_secs: (21_000.0 + f(3) * 8000.0) as i64,
        sleep_score: (55.0 + f(4) * 40.0) as i64,
        hrv: ((25.0 + f(5) * 60.0) * 10.0).round() / 10.0,
        weight_kg: ((70.0 + f(6) * 15.0) * 10.0).round() / 10.0,
    }
}

fn local(date: NaiveDate, h: u32, m: u32) -> String {
    format!(
        "{}T{h:02}:{m:02}:00.000000{:+03}:00",
        date.format("%Y-%m-%d"),
        OFFSET_HOURS
    )
}

fn record(user: &str, kind: &str, date: NaiveDate) -> Option<Value> {
    let d = day(user, date);
    Some(match kind {
        "daily" => json!({
            "metadata": { "start_time": local(date, 0, 0), "end_time": local(date + Duration::days(1), 0, 0), "upload_type": 1 },
            "distance_data": { "steps": d.steps },
            "calories_data": { "total_burned_calories": d.calories },
            "heart_rate_data": { "summary": { "resting_hr_bpm": d.resting_hr, "avg_hr_bpm": d.resting_hr + 15 } },
        }),
        "sleep" => json!({
            "metadata": { "start_time": local(date - Duration::days(1), 23, 0), "end_time": local(date, 6, 50),
                "is_nap": false, "summary_id": format!("sim-sleep-{date}"), "upload_type": 1 },
            "sleep_durations_data": { "asleep": { "duration_asleep_state_seconds": d.asleep_secs } },
            "scores": { "sleep": d.sleep_score },
            "heart_rate_data": { "summary": { "avg_hrv_rmssd": d.hrv } },
        }),
        "body" => json!({
            "metadata": { "start_time": local(date, 0, 0), "end_time": local(date + Duration::days(1), 0, 0) },
            "measurements_data": { "measurements": [{ "measurement_time": local(date, 7, 40), "weight_kg": d.weight_kg }] },
        }),
        "activity" => return None,
        _ => return None,
    })
}

async fn data(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    Path(kind): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = app_guard(&sim, &headers) {
        return *r;
    }
    if !["daily", "sleep", "activity", "body"].contains(&kind.as_str()) {
        return terra_error(StatusCode::NOT_FOUND, "unknown data type");
    }
    let Some(rec) = q.get("user_id").and_then(|u| user_record(&sim, u)) else {
        return terra_error(StatusCode::NOT_FOUND, "user not found");
    };
    let date = |k: &str| q.get(k).and_then(|v| v.parse::<NaiveDate>().ok());
    let (Some(start), Some(end)) = (date("start_date"), date("end_date")) else {
        return terra_error(
            StatusCode::BAD_REQUEST,
            "start_date and end_date are required",
        );
    };
    if end < start || (end - start).num_days() > 1825 {
        return terra_error(
            StatusCode::BAD_REQUEST,
            "a request may span at most 1825 days",
        );
    }
    if q.get("to_webhook").map(String::as_str) != Some("false") {
        return json_response(
            StatusCode::OK,
            json!({ "reference": "sim", "message": "data will be sent to your webhook" }),
        );
    }
    let user = rec["user_id"].as_str().unwrap_or_default();
    let today = (Utc::now() + Duration::hours(OFFSET_HOURS)).date_naive();
    let records: Vec<Value> = start
        .iter_days()
        .take_while(|d| *d <= end && *d < today)
        .filter_map(|d| record(user, &kind, d))
        .collect();
    json_response(
        StatusCode::OK,
        json!({ "user": user_view(&rec), "data": records, "type": kind }),
    )
}

/// Signs and POSTs an event to the webhook endpoint; returns its status.
pub async fn deliver(sim: &VendorSim, event: &Value, forge: bool) -> u16 {
    let Some(target) = sim.webhook_target() else {
        return 0;
    };
    let body = event.to_string();
    let secret = if forge {
        "not-the-signing-secret".to_string()
    } else {
        sim.app.webhook_secret.clone()
    };
    let signature = connector_core::vendors::terra::sign(
        secret.as_bytes(),
        Utc::now().timestamp(),
        body.as_bytes(),
    );
    reqwest::Client::new()
        .post(target)
        .header("content-type", "application/json")
        .header("terra-signature", signature)
        .body(body)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// [`deliver`] of an event the simulator made, kept for the conformance check.
async fn deliver_made(sim: &VendorSim, event: &Value, forge: bool) -> u16 {
    sim.recorder.delivered(event.to_string().as_bytes());
    deliver(sim, event, forge).await
}

/// A `daily` event for `user` on `date`, as Terra pushes it.
pub fn daily_event(sim: &VendorSim, user: &str, date: NaiveDate) -> Option<Value> {
    let rec = user_record(sim, user)?;
    Some(
        json!({ "type": "daily", "user": user_view(&rec), "data": [record(user, "daily", date)?],
        "version": "2022-03-16" }),
    )
}

/// `POST /terra/_sim/webhook?user=&date=YYYY-MM-DD[&forge=1]`: a signed `daily` event.
async fn send_webhook(
    State(sim): State<Arc<VendorSim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let date = q
        .get("date")
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| {
            (Utc::now() + Duration::hours(OFFSET_HOURS)).date_naive() - Duration::days(1)
        });
    let Some(event) = q.get("user").and_then(|u| daily_event(&sim, u, date)) else {
        return (StatusCode::BAD_REQUEST, "unknown user").into_response();
    };
    let forge = q.get("forge").is_some_and(|v| v == "1");
    let status = deliver_made(&sim, &event, forge).await;
    json_response(StatusCode::OK, json!({ "status": status }))
}
