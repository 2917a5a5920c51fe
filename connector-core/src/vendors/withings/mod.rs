//! Withings (Public Health Data API). Facts and sources: docs/vendors/withings.md.
//!
//! - OAuth: authorize `account.withings.com/oauth2_user/authorize2` with
//!   comma-separated scopes `user.metrics,user.activity` (`user.info` needs a
//!   contract); token `POST /v2/oauth2` with `action=requesttoken` and body
//!   credentials; the answer is wrapped `{"status":0,"body":{userid,…}}`
//!   (unwrapped in oauth.rs). No PKCE: Withings' description names every
//!   field of the authorize URL and the token request, and neither PKCE
//!   field, so none is sent (`pkce: false`). Access tokens live 3 h;
//!   every refresh returns a new refresh token (the old one dies 8 h later or
//!   once the new access token is used).
//! - User id: the token response's `userid`. After the exchange the user is
//!   subscribed to notifications (`POST /notify action=subscribe`, appli
//!   1 weight, 4 heart/BP/SpO2, 16 activity, 44 sleep, 46 user events) for
//!   the callback `CONNECTOR_WITHINGS_WEBHOOK_URL` (default
//!   `CONNECTOR_PUBLIC_BASE_URL/v1/webhooks/withings`) with
//!   `?token=<CONNECTOR_WITHINGS_VERIFY_TOKEN>` appended; Withings checks
//!   the URL with a HEAD first. Without a verify token or webhook URL no
//!   subscription is made (data still arrives by scheduled and manual syncs).
//! - Notifications are **unsigned** form posts `userid, appli, startdate,
//!   enddate[, action]`. What we check is what Withings sends back to us: the
//!   secret `token` query parameter of the callback URL we registered
//!   (constant time; 401 otherwise; whether Withings keeps a query string in
//!   callback URLs is UNCONFIRMED). Data notifications only queue a pull with
//!   the user's own token, for the local days up to `enddate` (+14 h: the
//!   latest local date anywhere; the worker pulls date-1..=date). appli 46
//!   with `action=unlink` or `delete` → deauthorized. Dedup id (Withings
//!   sends none): `withings:<userid>:<appli>:<startdate>:<enddate>` (plus
//!   `action`/`date` when sent). HEAD and GET (the subscription check) → 200.
//! - Data (all `POST`, bearer, HTTP 200 with `{"status", "body"}`; status 401
//!   and 100–102/200 → refresh, 601 → rate limited for a minute, 522/2554/
//!   2555 → retry later, anything else → permanent): `/measure
//!   action=getmeas` (types 1 weight, 6 fat ratio, 9/10 BP, 11 heart pulse, 54
//!   SpO2; value × 10^unit; category 1 real measures; attrib 1 "ambiguous
//!   device measure" skipped), `/v2/measure action=getactivity` (steps;
//!   calories = `totalcalories`, i.e. active + passive, as WHOOP's kcal),
//!   `/v2/sleep action=getsummary` (≤ 7 days a call; minutes asleep =
//!   `total_sleep_time`, `sleep_score`, HRV = mean of `rmssd_start_avg` and
//!   `rmssd_end_avg` in ms — the unit is UNCONFIRMED; the longest sleep of a
//!   date counts), `/v2/measure action=getworkouts` (minutes from start/end,
//!   kcal, metres). Each pages with `more` / `offset`.
//! - Local dates: activity, sleep and workout series carry their own local
//!   `date` (sleep: the wake-up day); measure groups are epochs converted with
//!   the body's IANA `timezone` (tz.rs, the IANA database; an unknown zone falls back to UTC).
//!   Withings gives no resting heart rate: none is emitted.
//! - Revoke: `POST /v2/signature action=getnonce` (signature = hex
//!   HMAC-SHA256(client secret, `"getnonce,<client_id>,<timestamp>"`)), then
//!   `POST /v2/oauth2 action=revoke` with `userid`, the nonce and the
//!   signature over `"revoke,<client_id>,<nonce>"`; it also ends the user's
//!   notification subscriptions. Whether apps without a contract may call it
//!   is UNCONFIRMED.

pub mod tz;

use super::client::{check_status, send};
use crate::domain::connection::TokenSet;
use crate::domain::error::{Error, Result};
use crate::domain::event::{EventKind, WebhookEvent};
use crate::domain::health::{MetricType, Sample};
use crate::domain::vendor::{RawRecord, Vendor, VendorError};
use crate::vendors::client::VendorCtx;
use crate::vendors::driver::{FetchRequest, Fetched, VendorDriver, WebhookReply, WebhookRequest};
use crate::vendors::quota::QuotaWindow;
use crate::vendors::signature::sign_hex_sha256;
use crate::vendors::spec::{ClientAuth, OAuthSpec, TokenResponseShape, VendorSpec};
use crate::vendors::time::day_start;
use crate::vendors::token::Grant;
use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::HashMap;

/// Withings: what the connector knows of the vendor.
pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Withings,
    display_name: "Withings",
    oauth: Some(OAuthSpec {
        auth_url: "https://account.withings.com/oauth2_user/authorize2",
        token_url: "https://wbsapi.withings.net/v2/oauth2",
        api_base: "https://wbsapi.withings.net",
        // Comma-separated, one entry (see Strava). `user.info` needs a
        // contract with Withings; bed in/out events are not used.
        scopes: &["user.metrics,user.activity"],
        client_auth: ClientAuth::Body,
        extra_auth_params: &[],
        extra_token_params: &[("action", "requesttoken")],
        token_response: TokenResponseShape::StatusBody,
        pkce: false,
    }),
    quota: &[QuotaWindow::app(120, 60)],
    signature: None,
};

/// The Withings driver.
pub struct Withings;

const SOURCE: &str = "withings";
/// A sync never follows more pages than this per call.
const MAX_PAGES: usize = 100;
/// Sleep summaries are asked for at most this many days a call.
const SLEEP_WINDOW_DAYS: i64 = 7;
/// The notification categories a user is subscribed to.
pub const APPLIS: [u32; 5] = [1, 4, 16, 44, 46];
const MEASTYPES: &str = "1,6,9,10,11,54";
const ACTIVITY_FIELDS: &str = "steps,distance,calories,totalcalories,hr_average,hr_min,hr_max";
const SLEEP_FIELDS: &str =
    "total_sleep_time,total_timeinbed,sleep_score,hr_average,hr_min,rr_average,rmssd_start_avg,rmssd_end_avg";
const WORKOUT_FIELDS: &str = "calories,distance,hr_average,steps";
/// The query parameter of our callback URL that carries the verify token.
pub const CALLBACK_TOKEN_PARAM: &str = "token";

#[derive(Clone, Debug, Deserialize)]
struct MeasureBody {
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub measuregrps: Vec<MeasureGroup>,
}

#[derive(Clone, Debug, Deserialize)]
struct MeasureGroup {
    pub grpid: i64,
    #[serde(default)]
    pub attrib: i64,
    pub date: i64,
    #[serde(default = "one")]
    pub category: i64,
    #[serde(default)]
    pub measures: Vec<Measure>,
}

fn one() -> i64 {
    1
}

#[derive(Clone, Debug, Deserialize)]
struct Measure {
    pub value: i64,
    #[serde(rename = "type")]
    pub kind: i64,
    pub unit: i32,
}

impl Measure {
    /// value × 10^unit, divided rather than multiplied so that 72350 × 10^-3
    /// is exactly 72.35.
    pub fn real(&self) -> f64 {
        if self.unit < 0 {
            self.value as f64 / 10f64.powi(-self.unit)
        } else {
            self.value as f64 * 10f64.powi(self.unit)
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
struct ActivityDay {
    pub date: NaiveDate,
    #[serde(default)]
    pub steps: Option<f64>,
    #[serde(default)]
    pub totalcalories: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
struct SleepSeries {
    #[serde(default)]
    pub id: Option<i64>,
    pub date: NaiveDate,
    // Never read: required, so a record without it is refused.
    #[allow(dead_code)]
    pub startdate: i64,
    // Never read: required, so a record without it is refused.
    #[allow(dead_code)]
    pub enddate: i64,
    #[serde(default)]
    pub data: SleepData,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct SleepData {
    #[serde(default)]
    pub total_sleep_time: Option<f64>,
    #[serde(default)]
    pub sleep_score: Option<f64>,
    #[serde(default)]
    pub rr_average: Option<f64>,
    #[serde(default)]
    pub rmssd_start_avg: Option<f64>,
    #[serde(default)]
    pub rmssd_end_avg: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
struct Workout {
    pub id: i64,
    #[serde(default)]
    pub category: i64,
    pub date: NaiveDate,
    pub startdate: i64,
    pub enddate: i64,
    #[serde(default)]
    pub data: WorkoutData,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct WorkoutData {
    #[serde(default)]
    pub calories: Option<f64>,
    #[serde(default)]
    pub distance: Option<f64>,
}

/// Withings' workout categories (API reference `workout_object`; the
/// common ones — the rest keep their number).
fn workout_label(category: i64) -> String {
    match category {
        1 => "walk".into(),
        2 => "run".into(),
        3 => "hiking".into(),
        6 => "cycling".into(),
        7 => "swimming".into(),
        16 => "weights".into(),
        28 => "yoga".into(),
        36 => "other".into(),
        187 => "rowing".into(),
        306 => "indoor_walk".into(),
        307 => "indoor_run".into(),
        308 => "indoor_cycling".into(),
        n => format!("category_{n}"),
    }
}

fn utc(epoch: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(epoch, 0).single()
}

/// Measure groups as samples at their time, on the local date in `timezone`.
fn normalize_measures(body: &MeasureBody) -> Vec<Sample> {
    let zone = body.timezone.as_deref().unwrap_or("UTC");
    let mut out = Vec::new();
    for g in &body.measuregrps {
        // Real measures only (2 = objectives); attrib 1 may be someone else's.
        if g.category != 1 || g.attrib == 1 {
            continue;
        }
        let Some(at) = utc(g.date) else { continue };
        let d = tz::local_date(zone, at);
        for m in &g.measures {
            let metric = match m.kind {
                1 => MetricType::BodyWeight,
                6 => MetricType::BodyFat,
                9 => MetricType::BloodPressureDiastolic,
                10 => MetricType::BloodPressureSystolic,
                11 => MetricType::HeartRate,
                54 => MetricType::Spo2,
                _ => continue,
            };
            out.push(Sample::at(metric, d, at, m.real(), SOURCE));
        }
    }
    out
}

/// Daily steps and total calories on the series' own local date.
fn normalize_activity(days: &[ActivityDay]) -> Vec<Sample> {
    let mut out = Vec::new();
    for a in days {
        if let Some(v) = a.steps {
            out.push(Sample::daily(MetricType::Steps, a.date, v, SOURCE));
        }
        if let Some(v) = a.totalcalories {
            out.push(Sample::daily(MetricType::Calories, a.date, v, SOURCE));
        }
    }
    out
}

/// The night's values on its `date` (the wake-up day); the longest sleep of
/// a date counts, so a nap does not overwrite the night.
fn normalize_sleep(series: &[SleepSeries]) -> Vec<Sample> {
    let mut main: HashMap<NaiveDate, &SleepSeries> = HashMap::new();
    for s in series {
        let longer = |o: &&SleepSeries| {
            s.data.total_sleep_time.unwrap_or(0.0) > o.data.total_sleep_time.unwrap_or(0.0)
        };
        if main.get(&s.date).is_none_or(longer) {
            main.insert(s.date, s);
        }
    }
    let mut nights: Vec<_> = main.into_values().collect();
    nights.sort_by_key(|s| s.date);
    let mut out = Vec::new();
    for s in nights {
        let d = s.date;
        let data = &s.data;
        if let Some(secs) = data.total_sleep_time {
            out.push(Sample::daily(
                MetricType::SleepDuration,
                d,
                (secs / 60.0).round(),
                SOURCE,
            ));
        }
        if let Some(v) = data.sleep_score {
            out.push(Sample::daily(MetricType::SleepScore, d, v, SOURCE));
        }
        if let (Some(a), Some(b)) = (data.rmssd_start_avg, data.rmssd_end_avg) {
            let hrv = ((a + b) / 2.0 * 10.0).round() / 10.0;
            out.push(Sample::daily(MetricType::Hrv, d, hrv, SOURCE));
        }
        if let Some(v) = data.rr_average {
            out.push(Sample::daily(MetricType::RespiratoryRate, d, v, SOURCE));
        }
    }
    out
}

/// Workouts at their start, on their own local date, labelled by category.
fn normalize_workouts(workouts: &[Workout]) -> Vec<Sample> {
    let mut out = Vec::new();
    for w in workouts {
        let Some(start) = utc(w.startdate) else {
            continue;
        };
        let label = workout_label(w.category);
        let at = |metric, v| Sample::at(metric, w.date, start, v, SOURCE).with_label(label.clone());
        let minutes = ((w.enddate - w.startdate) as f64 / 60.0 * 10.0).round() / 10.0;
        out.push(at(MetricType::WorkoutDuration, minutes));
        if let Some(v) = w.data.calories.filter(|v| *v > 0.0) {
            out.push(at(MetricType::WorkoutCalories, v));
        }
        if let Some(v) = w.data.distance.filter(|v| *v > 0.0) {
            out.push(at(MetricType::WorkoutDistance, v));
        }
    }
    out
}

#[derive(Deserialize)]
struct Wrapped {
    status: i64,
    #[serde(default)]
    body: serde_json::Value,
}

/// Withings' in-body status mapped onto the worker's next step.
fn status_error(status: i64, what: &str) -> VendorError {
    match status {
        100..=102 | 200 | 401 => VendorError::Unauthorized,
        // 120 requests a minute per app: the window has turned within a minute.
        601 => VendorError::RateLimited {
            retry_after_secs: 60,
        },
        522 | 2554 | 2555 => VendorError::Transient(format!("{what}: Withings status {status}")),
        s => VendorError::Permanent(format!("{what}: Withings status {s}")),
    }
}

/// POSTs a form to a Withings service and returns the unwrapped `body`.
async fn call(
    ctx: &VendorCtx,
    token: Option<&str>,
    path: &str,
    form: &[(&str, String)],
    what: &str,
) -> Result<serde_json::Value, VendorError> {
    let mut req = ctx.http.post(ctx.api_url(path)?).form(form);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let answer = send(ctx, req).await?;
    check_status(&answer, what, Utc::now())?;
    let w: Wrapped = answer.json(what)?;
    if w.status != 0 {
        return Err(status_error(w.status, what));
    }
    Ok(w.body)
}

/// Every page of one action (`more` / `offset`), as (body, items of `list`).
async fn pages(
    ctx: &VendorCtx,
    token: &str,
    path: &str,
    form: Vec<(&str, String)>,
    list: &str,
) -> Result<Vec<(serde_json::Value, Vec<serde_json::Value>)>, VendorError> {
    let mut out = Vec::new();
    let mut offset: Option<i64> = None;
    for _ in 0..MAX_PAGES {
        let mut f = form.clone();
        if let Some(o) = offset {
            f.push(("offset", o.to_string()));
        }
        let body = call(ctx, Some(token), path, &f, list).await?;
        let items = match body.get(list) {
            Some(serde_json::Value::Array(a)) => a.clone(),
            _ => vec![],
        };
        let more = match body.get("more") {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(v) => v.as_i64().unwrap_or(0) != 0,
            None => false,
        };
        let next = body.get("offset").and_then(serde_json::Value::as_i64);
        out.push((body, items));
        match (more, next) {
            (true, Some(n)) if Some(n) != offset => offset = Some(n),
            _ => return Ok(out),
        }
    }
    Err(VendorError::Permanent(format!(
        "{list}: more than {MAX_PAGES} pages"
    )))
}

fn parse_all<T: DeserializeOwned>(
    items: &[serde_json::Value],
    what: &str,
) -> Result<Vec<T>, VendorError> {
    items
        .iter()
        .map(|v| {
            serde_json::from_value(v.clone())
                .map_err(|e| VendorError::Permanent(format!("{what}: unexpected shape ({e})")))
        })
        .collect()
}

fn ymd(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn epoch(d: NaiveDate) -> i64 {
    day_start(d).timestamp()
}

fn form_of(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

#[async_trait]
impl VendorDriver for Withings {
    fn vendor(&self) -> Vendor {
        Vendor::Withings
    }

    async fn identify(&self, ctx: &VendorCtx, grant: &Grant) -> Result<String, VendorError> {
        let userid = grant
            .extra_str("userid")
            .filter(|u| u.chars().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| VendorError::Permanent("token response names no userid".into()))?;
        let (Some(base), Some(secret)) = (&ctx.creds.webhook_url, &ctx.creds.verify_token) else {
            tracing::warn!(
                vendor = "withings",
                "no webhook URL or verify token configured: user not subscribed to notifications"
            );
            return Ok(userid);
        };
        let mut callback = url::Url::parse(base)
            .map_err(|_| VendorError::Permanent("Withings webhook URL is not a URL".into()))?;
        callback
            .query_pairs_mut()
            .append_pair(CALLBACK_TOKEN_PARAM, secret.expose());
        for appli in APPLIS {
            call(
                ctx,
                Some(grant.tokens.access_token.expose()),
                "/notify",
                &[
                    ("action", "subscribe".into()),
                    ("callbackurl", callback.to_string()),
                    ("appli", appli.to_string()),
                    ("comment", "wearable connector".into()),
                ],
                "notify subscribe",
            )
            .await?;
        }
        Ok(userid)
    }

    async fn webhook(&self, ctx: &VendorCtx, req: &WebhookRequest<'_>) -> Result<WebhookReply> {
        if req.method == http::Method::HEAD || req.method == http::Method::GET {
            // Withings checks the callback URL with a HEAD before subscribing.
            return Ok(WebhookReply::Handshake {
                status: 200,
                content_type: "text/plain",
                body: String::new(),
            });
        }
        if req.method != http::Method::POST {
            return Err(Error::NotFound("Withings notifies by POST".into()));
        }
        let given = req.query.get(CALLBACK_TOKEN_PARAM).map(String::as_str);
        if !ctx.creds.verify_tokens().matches("withings", given) {
            tracing::warn!(
                vendor = "withings",
                bytes = req.body.len(),
                "webhook rejected: callback token missing or wrong"
            );
            return Err(Error::Unauthorized(
                "webhook rejected: not our callback URL".into(),
            ));
        }
        let f = form_of(req.body);
        let field = |k: &str| f.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let userid = field("userid")
            .filter(|u| u.len() <= 20 && u.chars().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| Error::BadRequest("Withings notification without a userid".into()))?;
        let appli: u32 = field("appli")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| Error::BadRequest("Withings notification without an appli".into()))?;
        let epoch_of = |k: &str| field(k).and_then(|v| v.parse::<i64>().ok());
        let (start, end) = (epoch_of("startdate"), epoch_of("enddate"));
        let action = field("action").unwrap_or_default();
        let mut event_id = format!(
            "withings:{userid}:{appli}:{}:{}",
            start.map(|s| s.to_string()).unwrap_or_default(),
            end.map(|s| s.to_string()).unwrap_or_default()
        );
        for extra in [field("action"), field("date")].into_iter().flatten() {
            event_id.push(':');
            event_id.push_str(&extra.chars().take(32).collect::<String>());
        }
        let kind = match (appli, action) {
            (46, "unlink" | "delete") => EventKind::Deauthorized,
            // Profile updates and bed in/out events carry no health data.
            (46 | 50 | 51 | 52, _) => return Ok(WebhookReply::Events(vec![])),
            (1 | 2 | 4 | 16 | 44 | 54 | 55 | 58, _) => EventKind::DataChanged,
            (a, _) => return Ok(WebhookReply::not_synced(&format!("appli/{a}"))),
        };
        let at = end
            .or(start)
            .and_then(utc)
            .or_else(|| {
                field("date")
                    .and_then(|d| d.parse::<NaiveDate>().ok())
                    .map(day_start)
            })
            .unwrap_or(req.now);
        Ok(WebhookReply::Events(vec![WebhookEvent {
            event_id,
            vendor_user_id: userid.to_string(),
            date: (at.min(req.now) + Duration::hours(14)).date_naive(),
            kind,
        }]))
    }

    async fn fetch(&self, ctx: &VendorCtx, req: FetchRequest<'_>) -> Result<Fetched, VendorError> {
        let t = req.access_token;
        let in_window = |d: NaiveDate| d >= req.from && d <= req.to;
        let mut samples = Vec::new();
        let mut raw = Vec::new();
        let mut keep = |kind: &str, id: String, date: NaiveDate, json: &serde_json::Value| {
            if in_window(date) {
                raw.push(RawRecord {
                    kind: kind.into(),
                    id,
                    date,
                    json: json.to_string(),
                });
            }
        };

        // Measures: epochs, widened a day each side, dated by the body's zone.
        let measure_pages = pages(
            ctx,
            t,
            "/measure",
            vec![
                ("action", "getmeas".into()),
                ("meastypes", MEASTYPES.into()),
                ("category", "1".into()),
                ("startdate", epoch(req.from - Duration::days(1)).to_string()),
                ("enddate", epoch(req.to + Duration::days(2)).to_string()),
            ],
            "measuregrps",
        )
        .await?;
        for (body, items) in &measure_pages {
            let mut parsed: MeasureBody = serde_json::from_value(body.clone())
                .map_err(|e| VendorError::Permanent(format!("getmeas: unexpected shape ({e})")))?;
            parsed.measuregrps = parse_all(items, "getmeas")?;
            let zone = parsed.timezone.clone().unwrap_or_else(|| "UTC".into());
            for (g, json) in parsed.measuregrps.iter().zip(items) {
                if let Some(at) = utc(g.date) {
                    keep(
                        "measuregrp",
                        g.grpid.to_string(),
                        tz::local_date(&zone, at),
                        json,
                    );
                }
            }
            samples.extend(normalize_measures(&parsed));
        }

        let by_day = |action: &str, fields: &str, from: NaiveDate, to: NaiveDate| {
            vec![
                ("action", action.to_string()),
                ("startdateymd", ymd(from)),
                ("enddateymd", ymd(to)),
                ("data_fields", fields.to_string()),
            ]
        };
        let mut activities = Vec::new();
        for (_, items) in pages(
            ctx,
            t,
            "/v2/measure",
            by_day("getactivity", ACTIVITY_FIELDS, req.from, req.to),
            "activities",
        )
        .await?
        {
            let parsed: Vec<ActivityDay> = parse_all(&items, "getactivity")?;
            for (a, json) in parsed.iter().zip(&items) {
                keep("activity", a.date.to_string(), a.date, json);
            }
            activities.extend(parsed);
        }
        samples.extend(normalize_activity(&activities));

        let mut sleeps = Vec::new();
        let mut from = req.from;
        while from <= req.to {
            let to = (from + Duration::days(SLEEP_WINDOW_DAYS - 1)).min(req.to);
            for (_, items) in pages(
                ctx,
                t,
                "/v2/sleep",
                by_day("getsummary", SLEEP_FIELDS, from, to),
                "series",
            )
            .await?
            {
                let parsed: Vec<SleepSeries> = parse_all(&items, "getsummary")?;
                for (s, json) in parsed.iter().zip(&items) {
                    let id = s.id.map_or_else(|| s.date.to_string(), |i| i.to_string());
                    keep("sleep", id, s.date, json);
                }
                sleeps.extend(parsed);
            }
            from = to + Duration::days(1);
        }
        samples.extend(normalize_sleep(&sleeps));

        let mut workouts = Vec::new();
        for (_, items) in pages(
            ctx,
            t,
            "/v2/measure",
            by_day("getworkouts", WORKOUT_FIELDS, req.from, req.to),
            "series",
        )
        .await?
        {
            let parsed: Vec<Workout> = parse_all(&items, "getworkouts")?;
            for (w, json) in parsed.iter().zip(&items) {
                keep("workout", w.id.to_string(), w.date, json);
            }
            workouts.extend(parsed);
        }
        samples.extend(normalize_workouts(&workouts));

        samples.retain(|s| in_window(s.date));
        Ok(Fetched { samples, raw })
    }

    async fn revoke(
        &self,
        ctx: &VendorCtx,
        vendor_user_id: &str,
        _tokens: &TokenSet,
    ) -> Result<bool, VendorError> {
        let not_configured = || VendorError::Permanent("Withings client is not configured".into());
        let client_id = ctx.creds.client_id.clone().ok_or_else(not_configured)?;
        let secret = ctx
            .creds
            .client_secret
            .as_ref()
            .ok_or_else(not_configured)?;
        let sign = |parts: &[&str]| {
            sign_hex_sha256(secret.expose().as_bytes(), &[parts.join(",").as_bytes()])
        };
        let timestamp = Utc::now().timestamp().to_string();
        let body = call(
            ctx,
            None,
            "/v2/signature",
            &[
                ("action", "getnonce".into()),
                ("client_id", client_id.clone()),
                ("timestamp", timestamp.clone()),
                ("signature", sign(&["getnonce", &client_id, &timestamp])),
            ],
            "getnonce",
        )
        .await?;
        let nonce = body
            .get("nonce")
            .and_then(|n| n.as_str())
            .ok_or_else(|| VendorError::Permanent("getnonce: no nonce".into()))?
            .to_string();
        call(
            ctx,
            None,
            "/v2/oauth2",
            &[
                ("action", "revoke".into()),
                ("client_id", client_id.clone()),
                ("nonce", nonce.clone()),
                ("signature", sign(&["revoke", &client_id, &nonce])),
                ("userid", vendor_user_id.to_string()),
            ],
            "revoke",
        )
        .await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
