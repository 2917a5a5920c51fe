//! Withings as its docs describe it (docs/vendors/withings.md): OAuth with
//! body client credentials, no PKCE (a challenge is ignored), 30-second
//! codes, the token service `POST /v2/oauth2 action=requesttoken` answering
//! HTTP 200 with `{"status":0,"body":{userid,…}}` (errors wrapped too:
//! `{"status":503,"body":{},"error":…}`), 3-hour access tokens and rotating
//! refresh tokens (stricter than Withings: the old one dies at once, not
//! after 8 h); data services that are `POST`s with an `action`, wrapped the
//! same way, paged with `more`/`offset` (sleep summaries ≤ 7 days a call);
//! 120 requests a minute per app → `status 601` in a 200 body; per-user
//! notify subscriptions whose callback URL is checked with a HEAD;
//! unsigned form-encoded notifications sent on command; and revoke with a
//! nonce from `/v2/signature action=getnonce` and HMAC-SHA256 signatures.

use super::limits::{Limiter, Window};
use super::oauth::{self, Issued, OAuthPolicy, Pkce};
use super::{json_response, VendorSim};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use connector_core::vendors::signature::sign_hex_sha256;
use connector_core::vendors::spec::ClientAuth;
use connector_core::vendors::withings::tz;
use connector_core::Vendor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};

/// (authorize path, token path) under the vendor's base.
pub const OAUTH_PATHS: (&str, &str) = ("/oauth2_user/authorize2", "/v2/oauth2");
pub const TIMEZONE: &str = "Europe/Paris";
pub const PAGE: usize = 5;
pub const MEASURE_PAGE: usize = 10;
pub const SLEEP_MAX_DAYS: i64 = 7;

/// Withings' own bookkeeping: signature nonces handed out and not yet
/// spent, and each user's notify subscriptions as (appli, callback URL).
#[derive(Default)]
pub struct WithingsState {
    nonces: Mutex<HashSet<String>>,
    subscriptions: Mutex<HashMap<String, Vec<(u32, String)>>>,
}

fn state(sim: &VendorSim) -> &WithingsState {
    sim.extra()
}

pub fn sim() -> VendorSim {
    VendorSim::new(
        Vendor::Withings,
        OAUTH_PATHS,
        router,
        OAuthPolicy {
            client_auth: ClientAuth::Body,
            pkce: Pkce::Unsupported,
            min_state_len: 0,
            code_ttl_secs: 30,
            access_ttl_secs: 10_800,
            refresh_needs_scope: None,
            rotate_refresh: true,
        },
        Limiter::new(vec![Window::new(120, std::time::Duration::from_secs(60))]),
        |sim| (9_990_000 + sim.next_user_number()).to_string(),
    )
    .with_extra(WithingsState::default())
}

pub fn router(sim: Arc<VendorSim>) -> Router {
    Router::new()
        .route(OAUTH_PATHS.0, get(oauth::authorize))
        .route(OAUTH_PATHS.1, post(oauth2_service))
        .route("/v2/signature", post(signature_service))
        .route("/measure", post(|s, h, b| data(s, h, b, "/measure")))
        .route("/v2/measure", post(|s, h, b| data(s, h, b, "/v2/measure")))
        .route("/v2/sleep", post(|s, h, b| data(s, h, b, "/v2/sleep")))
        .route("/notify", post(notify_service))
        .route("/_sim/notify", post(send_notification))
        .with_state(sim)
}

fn wrapped(status: i64, body: Value) -> Response {
    let mut v = json!({ "status": status, "body": body });
    if status != 0 {
        v["error"] = json!(match status {
            401 => "XRequestID: Not provided invalid_token: The access token provided is invalid",
            601 => "Too many request",
            _ => "Invalid Params",
        });
    }
    json_response(StatusCode::OK, v)
}

fn form_of(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn token_body(_sim: &VendorSim, i: &Issued) -> Value {
    json!({
        "userid": i.user.parse::<i64>().unwrap_or_default(),
        "access_token": i.access_token,
        "refresh_token": i.refresh_token,
        "expires_in": i.expires_in,
        "scope": i.scope,
        "csrf_token": "SIM-CSRF",
        "token_type": "Bearer",
    })
}

/// `POST /v2/oauth2`: `action=requesttoken` (code and refresh grants, wrapped)
/// or `action=revoke` (nonce + signature).
async fn oauth2_service(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form = form_of(&body);
    match form.get("action").map(String::as_str) {
        Some("requesttoken") => {
            let resp = oauth::token(&sim, &headers, &body, token_body);
            let ok = resp.status() == StatusCode::OK;
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) if ok => wrapped(0, v),
                _ => wrapped(503, json!({})),
            }
        }
        Some("revoke") => revoke(&sim, &form),
        _ => wrapped(503, json!({})),
    }
}

fn signed(sim: &VendorSim, parts: &[&str]) -> String {
    sign_hex_sha256(
        sim.app.client_secret.as_bytes(),
        &[parts.join(",").as_bytes()],
    )
}

/// `POST /v2/signature action=getnonce&client_id&timestamp&signature`.
async fn signature_service(State(sim): State<Arc<VendorSim>>, body: String) -> Response {
    let f = form_of(&body);
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    if get("action") != "getnonce" || get("client_id") != sim.app.client_id {
        return wrapped(503, json!({}));
    }
    let ts = get("timestamp");
    let fresh = ts
        .parse::<i64>()
        .is_ok_and(|t| (Utc::now().timestamp() - t).abs() <= 600);
    if !fresh || get("signature") != signed(&sim, &["getnonce", &sim.app.client_id, ts]) {
        return wrapped(503, json!({}));
    }
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    state(&sim).nonces.lock().unwrap().insert(nonce.clone());
    wrapped(0, json!({ "nonce": nonce }))
}

/// The user unlinked the app in their Withings account: its notify
/// subscriptions go with the grant.
pub fn forget_user(sim: &VendorSim, user: &str) {
    state(sim).subscriptions.lock().unwrap().remove(user);
}

fn revoke(sim: &VendorSim, f: &HashMap<String, String>) -> Response {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let nonce = get("nonce");
    let known = state(sim).nonces.lock().unwrap().remove(nonce);
    if !known
        || get("client_id") != sim.app.client_id
        || get("signature") != signed(sim, &["revoke", &sim.app.client_id, nonce])
    {
        return wrapped(503, json!({}));
    }
    let user = get("userid");
    sim.oauth.lock().unwrap().revoke_user(user);
    state(sim).subscriptions.lock().unwrap().remove(user);
    sim.stats.revocations.fetch_add(1, SeqCst);
    wrapped(0, json!({}))
}

/// Quota first (601), then the bearer (401), both in a 200 body.
fn guard(sim: &VendorSim, headers: &HeaderMap) -> Result<String, Box<Response>> {
    if !sim.limiter.check().allowed {
        sim.stats.rate_limited.fetch_add(1, SeqCst);
        return Err(Box::new(wrapped(601, json!({}))));
    }
    sim.stats.api_requests.fetch_add(1, SeqCst);
    sim.bearer_user(headers)
        .ok_or_else(|| Box::new(wrapped(401, json!({}))))
}

/// One simulated day of a user (deterministic), on the local `date`.
#[derive(Clone, Debug)]
pub struct Day {
    pub date: NaiveDate,
    /// A base for the ids of this day's records.
    pub id: i64,
    pub steps: i64,
    pub active_kcal: f64,
    pub total_kcal: f64,
    /// The night that ends on `date`: (start, end).
    pub sleep: (DateTime<Utc>, DateTime<Utc>),
    pub total_sleep_secs: i64,
    pub sleep_score: i64,
    pub rmssd_start: f64,
    pub rmssd_end: f64,
    /// Weight at 07:00 local, in grams (unit −3 kg).
    pub weight: (DateTime<Utc>, i64),
    /// Heart pulse at 00:20 local (the previous UTC day east of UTC).
    pub pulse: (DateTime<Utc>, i64),
    pub spo2: (DateTime<Utc>, i64),
    /// A run at 18:00 local, some days.
    pub workout: Option<SimWorkout>,
}

/// (id, start, end, kcal, metres) of a simulated workout.
pub type SimWorkout = (i64, DateTime<Utc>, DateTime<Utc>, f64, f64);

fn round_to(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (x * m).round() / m
}

/// A local wall-clock time in the simulated zone, as UTC.
pub fn at_local(date: NaiveDate, h: u32, m: u32) -> DateTime<Utc> {
    let local = date.and_time(NaiveTime::from_hms_opt(h, m, 0).expect("time"));
    let offset = tz::offset_at(TIMEZONE, local.and_utc()).expect("known zone");
    local.and_utc() - Duration::seconds(offset.local_minus_utc().into())
}

pub fn day(user: &str, date: NaiveDate) -> Day {
    let seed = Sha256::digest(format!("withings|{user}|{date}").as_bytes());
    let f = |i: usize| f64::from(u16::from_be_bytes([seed[2 * i], seed[2 * i + 1]])) / 65_536.0;
    let prev = date.pred_opt().expect("date");
    let start = at_local(prev, 23, 0) + Duration::minutes((f(0) * 60.0) as i64);
    let end = start + Duration::minutes(390 + (f(1) * 90.0) as i64);
    let user_num: i64 = user.parse().unwrap_or(0);
    let days = date.signed_duration_since(NaiveDate::from_ymd_opt(2000, 1, 1).expect("date"));
    let id = (user_num % 10_000) * 100_000 + days.num_days();
    let workout = (f(9) < 0.5).then(|| {
        let s = at_local(date, 18, 0);
        let minutes = 30 + (f(10) * 40.0) as i64;
        (
            id,
            s,
            s + Duration::minutes(minutes),
            (minutes as f64 * 9.0).round(),
            (minutes as f64 * 160.0).round(),
        )
    });
    Day {
        date,
        id,
        steps: 4000 + (f(2) * 8000.0) as i64,
        active_kcal: round_to(200.0 + f(3) * 400.0, 1),
        total_kcal: round_to(1800.0 + f(4) * 800.0, 1),
        sleep: (start, end),
        total_sleep_secs: (end - start).num_seconds() - 1800,
        sleep_score: 60 + (f(5) * 40.0) as i64,
        rmssd_start: round_to(30.0 + f(6) * 40.0, 1),
        rmssd_end: round_to(30.0 + f(7) * 40.0, 1),
        weight: (at_local(date, 7, 0), 70_000 + (f(8) * 5000.0) as i64),
        pulse: (at_local(date, 0, 20), 55 + (f(11) * 20.0) as i64),
        spo2: (at_local(date, 9, 15), 95 + (f(12) * 4.0) as i64),
        workout,
    }
}

fn local_today() -> NaiveDate {
    tz::local_date(TIMEZONE, Utc::now())
}

/// Items of one page and the `more`/`offset` of the answer.
fn page(all: Vec<Value>, offset: usize, size: usize) -> (Vec<Value>, bool, usize) {
    let more = offset + size < all.len();
    let items = all.into_iter().skip(offset).take(size).collect();
    (items, more, if more { offset + size } else { 0 })
}

fn measures(user: &str, start: i64, end: i64) -> Vec<Value> {
    let now = Utc::now();
    let (Some(s), Some(e)) = (
        DateTime::from_timestamp(start, 0),
        DateTime::from_timestamp(end, 0),
    ) else {
        return vec![];
    };
    let mut out = Vec::new();
    let first = s.date_naive() - Duration::days(1);
    for date in first
        .iter_days()
        .take_while(|d| *d <= e.date_naive() + Duration::days(1))
    {
        let d = day(user, date);
        for (n, (at, kind, value, unit, model)) in [
            (d.weight.0, 1, d.weight.1, -3, "Body Cardio"),
            (d.pulse.0, 11, d.pulse.1, 0, "BPM Core"),
            (d.spo2.0, 54, d.spo2.1, 0, "ScanWatch"),
        ]
        .into_iter()
        .enumerate()
        {
            let t = at.timestamp();
            if t < start || t > end || at > now {
                continue;
            }
            out.push(json!({
                "grpid": d.id * 10 + n as i64,
                "attrib": 0, "date": t, "created": t + 60, "modified": t + 60, "category": 1,
                "deviceid": "simdevice", "hash_deviceid": "simdevice",
                "measures": [{"value": value, "type": kind, "unit": unit, "algo": 0, "fm": 3}],
                "model": model, "model_id": 6
            }));
        }
    }
    out
}

fn ymd_range(f: &HashMap<String, String>) -> Option<(NaiveDate, NaiveDate)> {
    let s = f.get("startdateymd")?.parse().ok()?;
    let e = f.get("enddateymd")?.parse().ok()?;
    (s <= e).then_some((s, e))
}

async fn data(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    body: String,
    path: &'static str,
) -> Response {
    let user = match guard(&sim, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let f = form_of(&body);
    let offset: usize = f
        .get("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or_default();
    let now = Utc::now();
    let today = local_today();
    let action = f.get("action").map(String::as_str).unwrap_or_default();
    match (path, action) {
        ("/measure", "getmeas") => {
            let num = |k: &str| f.get(k).and_then(|v| v.parse::<i64>().ok());
            let (Some(s), Some(e)) = (num("startdate"), num("enddate")) else {
                return wrapped(503, json!({}));
            };
            if e < s || e - s > 366 * 86_400 {
                return wrapped(503, json!({}));
            }
            let (items, more, next) = page(measures(&user, s, e), offset, MEASURE_PAGE);
            wrapped(
                0,
                json!({"updatetime": now.timestamp(), "timezone": TIMEZONE, "measuregrps": items,
                       "more": i32::from(more), "offset": next}),
            )
        }
        ("/v2/measure", "getactivity")
        | ("/v2/measure", "getworkouts")
        | ("/v2/sleep", "getsummary") => {
            let Some((s, e)) = ymd_range(&f) else {
                return wrapped(503, json!({}));
            };
            if action == "getsummary" && (e - s).num_days() >= SLEEP_MAX_DAYS {
                return wrapped(503, json!({}));
            }
            let mut all = Vec::new();
            for date in s.iter_days().take_while(|d| *d <= e && *d <= today) {
                let d = day(&user, date);
                match action {
                    "getactivity" => all.push(json!({
                        "date": date.to_string(), "timezone": TIMEZONE, "deviceid": "simdevice",
                        "hash_deviceid": "simdevice", "brand": 1, "is_tracker": true,
                        "modified": now.timestamp(), "model": "ScanWatch", "modelid": 93,
                        "steps": d.steps, "distance": d.steps as f64 * 0.75, "elevation": 5,
                        "soft": 4000, "moderate": 1500, "intense": 600, "active": 2100,
                        "calories": d.active_kcal, "totalcalories": d.total_kcal,
                        "hr_average": 70, "hr_min": 52, "hr_max": 150
                    })),
                    "getsummary" if d.sleep.1 <= now => all.push(json!({
                        "id": d.id * 10 + 7, "timezone": TIMEZONE, "model": 16,
                        "model_id": 93, "startdate": d.sleep.0.timestamp(),
                        "enddate": d.sleep.1.timestamp(), "date": date.to_string(),
                        "created": d.sleep.1.timestamp() + 600, "modified": d.sleep.1.timestamp() + 600,
                        "hash_deviceid": "simdevice", "completed": true,
                        "data": {
                            "total_timeinbed": (d.sleep.1 - d.sleep.0).num_seconds(),
                            "total_sleep_time": d.total_sleep_secs, "sleep_score": d.sleep_score,
                            "hr_average": 58, "hr_min": 49, "hr_max": 72, "rr_average": 14,
                            "rmssd_start_avg": d.rmssd_start, "rmssd_end_avg": d.rmssd_end
                        }
                    })),
                    "getworkouts" => {
                        if let Some((id, ws, we, kcal, metres)) = d.workout.filter(|w| w.2 <= now) {
                            all.push(json!({
                                "id": id, "category": 2, "timezone": TIMEZONE, "model": 93,
                                "attrib": 0, "startdate": ws.timestamp(), "enddate": we.timestamp(),
                                "date": date.to_string(), "modified": we.timestamp(),
                                "deviceid": "simdevice",
                                "data": {"calories": kcal, "distance": metres, "hr_average": 140,
                                         "steps": 5000, "intensity": 0}
                            }));
                        }
                    }
                    _ => {}
                }
            }
            let list = if action == "getactivity" {
                "activities"
            } else {
                "series"
            };
            let (items, more, next) = page(all, offset, PAGE);
            wrapped(0, json!({ list: items, "more": more, "offset": next }))
        }
        _ => wrapped(503, json!({})),
    }
}

/// The user's notify subscriptions as (appli, callback URL).
pub fn subscriptions(sim: &VendorSim, user: &str) -> Vec<(u32, String)> {
    state(sim)
        .subscriptions
        .lock()
        .unwrap()
        .get(user)
        .cloned()
        .unwrap_or_default()
}

/// `POST /notify`: `subscribe` (after a HEAD check of the callback URL),
/// `list`, `revoke`.
async fn notify_service(
    State(sim): State<Arc<VendorSim>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let user = match guard(&sim, &headers) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let f = form_of(&body);
    let appli: Option<u32> = f.get("appli").and_then(|a| a.parse().ok());
    let url = f.get("callbackurl").cloned().unwrap_or_default();
    match f.get("action").map(String::as_str) {
        Some("subscribe") => {
            let Some(appli) = appli else {
                return wrapped(503, json!({}));
            };
            let head = reqwest::Client::new()
                .head(&url)
                .timeout(std::time::Duration::from_secs(2))
                .send()
                .await;
            if !head.is_ok_and(|r| r.status().is_success()) {
                return wrapped(2554, json!({}));
            }
            let mut subs = state(&sim).subscriptions.lock().unwrap();
            let list = subs.entry(user).or_default();
            list.retain(|s| *s != (appli, url.clone()));
            list.push((appli, url));
            wrapped(0, json!({}))
        }
        Some("list") => {
            let subscribed: Vec<(u32, String)> = subscriptions(&sim, &user)
                .into_iter()
                .filter(|(a, _)| appli.is_none_or(|x| x == *a))
                .collect();
            wrapped(0, notify_list_body(&subscribed))
        }
        Some("revoke") => {
            if let Some(list) = state(&sim).subscriptions.lock().unwrap().get_mut(&user) {
                list.retain(|(a, u)| !(appli == Some(*a) && *u == url));
            }
            wrapped(0, json!({}))
        }
        _ => wrapped(503, json!({})),
    }
}

/// The `body` of a `notify list` answer: each subscription as Withings'
/// `notify_object` (appli, callback URL, comment).
pub fn notify_list_body(subscribed: &[(u32, String)]) -> Value {
    let profiles: Vec<Value> = subscribed
        .iter()
        .map(|(a, u)| json!({"appli": a, "callbackurl": u, "comment": ""}))
        .collect();
    json!({ "profiles": profiles })
}

/// The form body of a notification as Withings posts it.
pub fn notification_body(
    user: &str,
    appli: u32,
    start: Option<i64>,
    end: Option<i64>,
    action: Option<&str>,
) -> String {
    let mut f = url::form_urlencoded::Serializer::new(String::new());
    f.append_pair("userid", user)
        .append_pair("appli", &appli.to_string());
    if let Some(s) = start {
        f.append_pair("startdate", &s.to_string());
    }
    if let Some(e) = end {
        f.append_pair("enddate", &e.to_string());
    }
    if let Some(a) = action {
        f.append_pair("action", a);
    }
    f.finish()
}

/// Posts `body` (form-encoded, unsigned) to `url`; the receiver's status and body.
pub async fn post_notification(url: &str, body: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    super::deliver(resp).await
}

/// Sends a notification as Withings would: to the callback URL the user
/// subscribed for `appli` (with `forge`, to that URL without its query, as
/// someone who does not know it would). (0, …) when there is no subscription.
pub async fn deliver_notification(
    sim: &VendorSim,
    user: &str,
    appli: u32,
    start: Option<i64>,
    end: Option<i64>,
    action: Option<&str>,
    forge: bool,
) -> (u16, String) {
    let Some((_, url)) = subscriptions(sim, user)
        .into_iter()
        .find(|(a, _)| *a == appli)
    else {
        return (0, "no subscription for this appli".into());
    };
    let url = if forge {
        let mut u = url::Url::parse(&url).expect("stored URL");
        u.set_query(None);
        u.to_string()
    } else {
        url
    };
    post_notification(&url, &notification_body(user, appli, start, end, action)).await
}

/// `POST /withings/_sim/notify?user=&appli=44[&startdate=&enddate=][&action=unlink][&forge=1]`.
async fn send_notification(
    State(sim): State<Arc<VendorSim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(user) = q.get("user") else {
        return (StatusCode::BAD_REQUEST, "user is required").into_response();
    };
    let appli = q.get("appli").and_then(|a| a.parse().ok()).unwrap_or(44);
    let now = Utc::now().timestamp();
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    let (start, end) = if appli == 46 {
        (num("startdate"), num("enddate"))
    } else {
        (
            Some(num("startdate").unwrap_or(now - 8 * 3600)),
            Some(num("enddate").unwrap_or(now)),
        )
    };
    let forge = q.get("forge").is_some_and(|v| v == "1" || v == "true");
    let (status, body) = deliver_notification(
        &sim,
        user,
        appli,
        start,
        end,
        q.get("action").map(String::as_str),
        forge,
    )
    .await;
    json_response(StatusCode::OK, json!({ "status": status, "body": body }))
}
