//! Fitbit, through the Google Health API v4 that replaced the Fitbit Web API
//! (switched off in November 2026). Facts and sources:
//! docs/vendors/fitbit-google-health.md.
//!
//! - OAuth: Google's, with `access_type=offline` and `prompt=consent`, PKCE,
//!   body credentials; refresh tokens do not rotate (the stored one is kept
//!   unless a new one comes back). Users may grant fewer scopes than asked:
//!   a data type the grant does not cover answers 403 and is skipped.
//! - User id: `GET /v4/users/me/identity` → `healthUserId`.
//! - Webhooks: the subscriber's endpoint secret is the whole `Authorization`
//!   header value, compared in constant time (`CONNECTOR_FITBIT_WEBHOOK_SECRET`).
//!   Verification: `{"type":"verification"}` with the secret → 201, without →
//!   401. Notifications (an array of `{data:{healthUserId, dataType,
//!   operation, intervals}}`, or one such object) carry no values: they only
//!   trigger a pull. Google's ECDSA payload signature
//!   (`GOOGLE-HEALTH-API-SIGNATURE`, a Tink keyset fetched from gstatic) is
//!   not checked: the keyset format and URL are UNCONFIRMED in Google's own
//!   text, so the bearer secret is the authentication. The dedup key is
//!   built from the notification's fields (Google sends no delivery id).
//! - Data (`/v4/users/me/dataTypes/{type}/dataPoints`, AIP-160 filters,
//!   `pageToken`): daily resting HR, daily HRV, daily SpO2 by their `date`;
//!   sleep by its end (the wake-up day, at the sleep's own UTC offset; main
//!   sleep only); exercise by its local start; steps and total calories from
//!   `:dailyRollUp` (total calories: at most 14 days a request). v4 has no
//!   sleep score and no stress.
//! - Disconnect: `POST https://oauth2.googleapis.com/revoke` (`token=`), the
//!   token endpoint's sibling.

use super::client::{check_status, get_api, send, send_ok};
use crate::domain::connection::TokenSet;
use crate::domain::error::{Error, Result};
use crate::domain::event::{EventKind, WebhookEvent};
use crate::domain::health::{MetricType, Sample};
use crate::domain::vendor::{RawRecord, Vendor, VendorError};
use crate::vendors::client::VendorCtx;
use crate::vendors::driver::{FetchRequest, Fetched, VendorDriver, WebhookReply, WebhookRequest};
use crate::vendors::quota::QuotaWindow;
use crate::vendors::spec::{ClientAuth, OAuthSpec, TokenResponseShape, VendorSpec};
use crate::vendors::time;
use crate::vendors::token::Grant;
use async_trait::async_trait;
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Fitbit (Google Health API): what the connector knows of the vendor.
pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Fitbit,
    display_name: "Fitbit (Google Health API)",
    oauth: Some(OAuthSpec {
        auth_url: "https://accounts.google.com/o/oauth2/v2/auth",
        token_url: "https://oauth2.googleapis.com/token",
        api_base: "https://health.googleapis.com",
        scopes: &[
            "https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly",
            "https://www.googleapis.com/auth/googlehealth.health_metrics_and_measurements.readonly",
            "https://www.googleapis.com/auth/googlehealth.sleep.readonly",
            "https://www.googleapis.com/auth/googlehealth.profile.readonly",
        ],
        client_auth: ClientAuth::Body,
        extra_auth_params: &[("access_type", "offline"), ("prompt", "consent")],
        extra_token_params: &[],
        token_response: TokenResponseShape::Standard,
        pkce: true,
    }),
    // Google Health API: 300 a minute per user, 120,000 per project.
    quota: &[QuotaWindow::user(300, 60), QuotaWindow::app(120_000, 60)],
    signature: None,
};

/// The Fitbit driver, through the Google Health API.
pub struct Fitbit;

const SOURCE: &str = "fitbit";
const MAX_PAGES: usize = 100;
/// `:dailyRollUp` of total calories takes at most 14 days.
const CALORIES_ROLLUP_DAYS: i64 = 14;

/// Google's int64 fields are JSON strings; accept numbers too.
fn int64<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => s.parse().map_err(serde::de::Error::custom),
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| serde::de::Error::custom("not a number")),
        _ => Err(serde::de::Error::custom("expected an int64")),
    }
}

/// `"3600s"` → seconds.
fn duration_secs(s: &str) -> Option<i64> {
    s.strip_suffix('s')?.parse::<f64>().ok().map(|x| x as i64)
}

#[derive(Clone, Copy, Deserialize)]
struct GDate {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl GDate {
    fn naive(self) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(self.year, self.month, self.day)
    }
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Interval {
    pub start_time: DateTime<Utc>,
    #[serde(default)]
    pub start_utc_offset: Option<String>,
    pub end_time: DateTime<Utc>,
    #[serde(default)]
    pub end_utc_offset: Option<String>,
}

/// The user-local date of an instant at Google's offset ("-18000s").
fn local_date(at: DateTime<Utc>, offset: Option<&str>) -> NaiveDate {
    let offset = offset
        .and_then(duration_secs)
        .and_then(|secs| i32::try_from(secs).ok())
        .and_then(FixedOffset::east_opt)
        .unwrap_or_else(time::utc);
    time::local_date(at, offset)
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DailyRestingHeartRate {
    pub date: GDate,
    #[serde(deserialize_with = "int64")]
    pub beats_per_minute: f64,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DailyHeartRateVariability {
    pub date: GDate,
    pub average_heart_rate_variability_milliseconds: f64,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DailyOxygenSaturation {
    pub date: GDate,
    pub average_percentage: f64,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SleepSession {
    pub interval: Interval,
    pub summary: SleepSummary,
    #[serde(default)]
    pub metadata: Option<SleepMetadata>,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SleepSummary {
    #[serde(deserialize_with = "int64")]
    pub minutes_asleep: f64,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SleepMetadata {
    #[serde(default)]
    pub main_sleep: Option<bool>,
    #[serde(default)]
    pub nap: Option<bool>,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Exercise {
    pub interval: Interval,
    pub exercise_type: String,
    #[serde(default)]
    pub active_duration: Option<String>,
    #[serde(default)]
    pub metrics_summary: Option<MetricsSummary>,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricsSummary {
    #[serde(default)]
    pub calories_kcal: Option<f64>,
    #[serde(default)]
    pub distance_millimeters: Option<f64>,
}

/// One day of a `:dailyRollUp`: its civil date and the rolled-up value.
struct DailyRollup {
    pub date: NaiveDate,
    pub value: f64,
}

/// Everything one fetch read, by type.
#[derive(Default)]
struct Points {
    pub resting_hr: Vec<DailyRestingHeartRate>,
    pub hrv: Vec<DailyHeartRateVariability>,
    pub spo2: Vec<DailyOxygenSaturation>,
    pub sleep: Vec<SleepSession>,
    pub exercise: Vec<Exercise>,
    pub steps: Vec<DailyRollup>,
    pub calories: Vec<DailyRollup>,
}

impl Points {
    /// One listed data point, under the field of its type.
    pub fn of(v: &Value) -> Self {
        let one = std::slice::from_ref(v);
        Points {
            resting_hr: field(one, "dailyRestingHeartRate"),
            hrv: field(one, "dailyHeartRateVariability"),
            spo2: field(one, "dailyOxygenSaturation"),
            sleep: field(one, "sleep"),
            exercise: field(one, "exercise"),
            ..Points::default()
        }
    }
}

/// Normalizes Google Health data points (dating rules in the module doc).
fn normalize(p: &Points) -> Vec<Sample> {
    let mut out = Vec::new();
    let daily = |out: &mut Vec<Sample>, m: MetricType, d: Option<NaiveDate>, v: f64| {
        if let Some(d) = d {
            out.push(Sample::daily(m, d, v, SOURCE));
        }
    };
    for x in &p.resting_hr {
        daily(
            &mut out,
            MetricType::RestingHr,
            x.date.naive(),
            x.beats_per_minute,
        );
    }
    for x in &p.hrv {
        daily(
            &mut out,
            MetricType::Hrv,
            x.date.naive(),
            x.average_heart_rate_variability_milliseconds,
        );
    }
    for x in &p.spo2 {
        daily(
            &mut out,
            MetricType::Spo2,
            x.date.naive(),
            x.average_percentage,
        );
    }
    for x in &p.steps {
        daily(&mut out, MetricType::Steps, Some(x.date), x.value);
    }
    for x in &p.calories {
        let kcal = (x.value * 10.0).round() / 10.0;
        daily(&mut out, MetricType::Calories, Some(x.date), kcal);
    }
    for s in &p.sleep {
        let meta = s.metadata.as_ref();
        let main = meta.and_then(|m| m.main_sleep).unwrap_or(true)
            && !meta.and_then(|m| m.nap).unwrap_or(false);
        if !main {
            continue;
        }
        let d = local_date(s.interval.end_time, s.interval.end_utc_offset.as_deref());
        out.push(Sample::daily(
            MetricType::SleepDuration,
            d,
            s.summary.minutes_asleep,
            SOURCE,
        ));
    }
    for e in &p.exercise {
        let start = e.interval.start_time;
        let d = local_date(start, e.interval.start_utc_offset.as_deref());
        let sport = e.exercise_type.to_lowercase();
        let secs = e
            .active_duration
            .as_deref()
            .and_then(duration_secs)
            .unwrap_or_else(|| (e.interval.end_time - start).num_seconds());
        out.push(
            Sample::at(
                MetricType::WorkoutDuration,
                d,
                start,
                (secs as f64 / 60.0).round(),
                SOURCE,
            )
            .with_label(sport.clone()),
        );
        let m = e.metrics_summary.as_ref();
        if let Some(mm) = m.and_then(|m| m.distance_millimeters) {
            out.push(
                Sample::at(MetricType::WorkoutDistance, d, start, mm / 1000.0, SOURCE)
                    .with_label(sport.clone()),
            );
        }
        if let Some(k) = m.and_then(|m| m.calories_kcal) {
            out.push(
                Sample::at(MetricType::WorkoutCalories, d, start, k, SOURCE).with_label(sport),
            );
        }
    }
    out
}

/// Parses a `:dailyRollUp` response: each window's civil start date and `<field>.<sum>`.
fn parse_daily_rollup(v: &Value, field: &str, sum: &str) -> Vec<DailyRollup> {
    v.get("rollupDataPoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let date: GDate =
                serde_json::from_value(p.get("civilStartTime")?.get("date")?.clone()).ok()?;
            let raw = p.get(field)?.get(sum)?;
            let value = match raw {
                Value::String(s) => s.parse().ok()?,
                other => other.as_f64()?,
            };
            Some(DailyRollup {
                date: date.naive()?,
                value,
            })
        })
        .collect()
}

fn rfc3339(d: NaiveDate) -> String {
    format!("{}T00:00:00Z", d.format("%Y-%m-%d"))
}

fn civil(d: NaiveDate) -> Value {
    json!({ "date": { "year": d.year(), "month": d.month(), "day": d.day() } })
}

/// Every page of `type` matching `filter`; a type the grant does not cover (403) is empty.
async fn list(
    ctx: &VendorCtx,
    token: &str,
    kind: &str,
    filter: &str,
) -> Result<Vec<Value>, VendorError> {
    let mut out = Vec::new();
    let mut page: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut url = ctx.api_url(&format!("/v4/users/me/dataTypes/{kind}/dataPoints"))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("filter", filter);
            if let Some(t) = &page {
                q.append_pair("pageToken", t);
            }
        }
        let answer = send(ctx, ctx.http.get(url).bearer_auth(token)).await?;
        if answer.status.as_u16() == 403 {
            tracing::info!(vendor = "fitbit", kind, "data type not granted; skipped");
            return Ok(out);
        }
        check_status(&answer, kind, Utc::now())?;
        let body: Value = answer.json(kind)?;
        for p in body
            .get("dataPoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            out.push(p.clone());
        }
        match body
            .get("nextPageToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            Some(t) => page = Some(t.to_string()),
            None => return Ok(out),
        }
    }
    Err(VendorError::Permanent(format!(
        "{kind}: more than {MAX_PAGES} pages"
    )))
}

/// The values of one data type's field in `points` (e.g. `dailyRestingHeartRate`).
fn field<T: serde::de::DeserializeOwned>(points: &[Value], name: &str) -> Vec<T> {
    points
        .iter()
        .filter_map(|p| serde_json::from_value(p.get(name)?.clone()).ok())
        .collect()
}

async fn daily_rollup(
    ctx: &VendorCtx,
    token: &str,
    kind: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Value, VendorError> {
    let url = ctx.api_url(&format!(
        "/v4/users/me/dataTypes/{kind}/dataPoints:dailyRollUp"
    ))?;
    let body = json!({
        "range": { "start": civil(from), "end": civil(to + Duration::days(1)) },
        "windowSizeDays": 1,
    });
    let answer = send(ctx, ctx.http.post(url).bearer_auth(token).json(&body)).await?;
    if answer.status.as_u16() == 403 {
        return Ok(json!({}));
    }
    check_status(&answer, kind, Utc::now())?;
    answer.json(kind)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    health_user_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    data: NotificationData,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationData {
    health_user_id: String,
    data_type: String,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    intervals: Vec<Value>,
}

/// The events of an authenticated notification body (an array, or one object).
fn parse_notification(body: &[u8], now: DateTime<Utc>) -> Result<Vec<WebhookEvent>> {
    let bad = |e: serde_json::Error| Error::BadRequest(format!("Google Health notification: {e}"));
    let v: Value = serde_json::from_slice(body).map_err(bad)?;
    let items: Vec<Notification> = match v {
        Value::Array(_) => serde_json::from_value(v).map_err(bad)?,
        other => vec![serde_json::from_value(other).map_err(bad)?],
    };
    let mut events = Vec::new();
    for n in items {
        let d = n.data;
        if d.health_user_id.is_empty() || d.health_user_id.len() > 63 {
            return Err(Error::BadRequest("healthUserId is malformed".into()));
        }
        let interval = d.intervals.first();
        let physical_end = interval
            .and_then(|i| i.get("physicalTimeInterval")?.get("endTime")?.as_str())
            .and_then(|t| t.parse::<DateTime<Utc>>().ok());
        let civil_date = interval
            .and_then(|i| {
                let c = i
                    .get("civilTimeInterval")
                    .or_else(|| i.get("civilInterval"))?;
                serde_json::from_value::<GDate>(c.get("end")?.get("date")?.clone()).ok()
            })
            .and_then(GDate::naive);
        // The user's offset is not in the body: reach the latest zone's day.
        let date = civil_date
            .unwrap_or_else(|| (physical_end.unwrap_or(now) + Duration::hours(14)).date_naive());
        let key = format!(
            "{}|{}|{}|{}",
            d.health_user_id,
            d.data_type,
            d.operation.unwrap_or_default(),
            interval.map(Value::to_string).unwrap_or_default()
        );
        events.push(WebhookEvent {
            event_id: hex::encode(Sha256::digest(key.as_bytes())),
            vendor_user_id: d.health_user_id,
            date,
            kind: EventKind::DataChanged,
        });
    }
    Ok(events)
}

#[async_trait]
impl VendorDriver for Fitbit {
    fn vendor(&self) -> Vendor {
        Vendor::Fitbit
    }

    async fn identify(&self, ctx: &VendorCtx, grant: &Grant) -> Result<String, VendorError> {
        let id: Identity = get_api(
            ctx,
            grant.tokens.access_token.expose(),
            "/v4/users/me/identity",
            "identity",
        )
        .await?;
        Ok(id.health_user_id)
    }

    async fn webhook(&self, ctx: &VendorCtx, req: &WebhookRequest<'_>) -> Result<WebhookReply> {
        if req.method != http::Method::POST {
            return Err(Error::NotFound(
                "Google Health verifies subscribers by POST".into(),
            ));
        }
        let given = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !ctx.creds.webhook_secrets().matches("fitbit", given) {
            tracing::warn!(
                vendor = "fitbit",
                bytes = req.body.len(),
                "webhook rejected: endpoint secret missing or wrong"
            );
            return Err(Error::Unauthorized(
                "webhook rejected: Authorization does not match the endpoint secret".into(),
            ));
        }
        let v: Value = serde_json::from_slice(req.body)
            .map_err(|e| Error::BadRequest(format!("Google Health notification: {e}")))?;
        if v.get("type").and_then(Value::as_str) == Some("verification") {
            return Ok(WebhookReply::Handshake {
                status: 201,
                content_type: "application/json",
                body: "{}".into(),
            });
        }
        Ok(WebhookReply::Events(parse_notification(req.body, req.now)?))
    }

    async fn fetch(&self, ctx: &VendorCtx, req: FetchRequest<'_>) -> Result<Fetched, VendorError> {
        let t = req.access_token;
        let (from, to) = (req.from, req.to);
        // Local days, by a date field or a civil time.
        let date_filter = |f: &str| {
            format!(
                "{f} >= \"{}\" AND {f} < \"{}\"",
                from,
                to + Duration::days(1)
            )
        };
        // Sleep is found by its UTC end, a day wider each side, then kept by
        // local day; exercise (like every session but sleep and ECG) can
        // only be filtered on its civil start time, which is the local day.
        let (lo, hi) = (
            rfc3339(from - Duration::days(1)),
            rfc3339(to + Duration::days(2)),
        );
        let sessions = |f: &str| format!("{f} >= \"{lo}\" AND {f} < \"{hi}\"");
        let lists = [
            (
                "daily-resting-heart-rate",
                date_filter("daily_resting_heart_rate.date"),
            ),
            (
                "daily-heart-rate-variability",
                date_filter("daily_heart_rate_variability.date"),
            ),
            (
                "daily-oxygen-saturation",
                date_filter("daily_oxygen_saturation.date"),
            ),
            ("sleep", sessions("sleep.interval.end_time")),
            (
                "exercise",
                date_filter("exercise.interval.civil_start_time"),
            ),
        ];
        // Each data point is normalized once: its samples, and its raw record
        // on the date they land on.
        let mut samples = Vec::new();
        let mut raw = Vec::new();
        for (kind, filter) in lists {
            for v in list(ctx, t, kind, &filter).await? {
                let got = normalize(&Points::of(&v));
                let Some(date) = got.first().map(|s| s.date) else {
                    continue;
                };
                let id = v
                    .get("name")
                    .and_then(Value::as_str)
                    .and_then(|n| n.rsplit('/').next())
                    .map(String::from)
                    .unwrap_or_else(|| date.to_string());
                raw.push(RawRecord {
                    kind: kind.to_string(),
                    id,
                    date,
                    json: v.to_string(),
                });
                samples.extend(got);
            }
        }
        let mut rollups = Points {
            steps: parse_daily_rollup(
                &daily_rollup(ctx, t, "steps", from, to).await?,
                "steps",
                "countSum",
            ),
            ..Points::default()
        };
        let mut day = from;
        while day <= to {
            let last = (day + Duration::days(CALORIES_ROLLUP_DAYS - 1)).min(to);
            let v = daily_rollup(ctx, t, "total-calories", day, last).await?;
            rollups
                .calories
                .extend(parse_daily_rollup(&v, "totalCalories", "kcalSum"));
            day = last + Duration::days(1);
        }
        samples.extend(normalize(&rollups));
        let in_window = |d: NaiveDate| d >= from && d <= to;
        samples.retain(|s| in_window(s.date));
        raw.retain(|r| in_window(r.date));
        Ok(Fetched { samples, raw })
    }

    async fn revoke(
        &self,
        ctx: &VendorCtx,
        _vendor_user_id: &str,
        tokens: &TokenSet,
    ) -> Result<bool, VendorError> {
        // The revoke endpoint sits beside the token endpoint (…/token → …/revoke).
        let token_url = ctx
            .creds
            .token_url
            .as_deref()
            .ok_or_else(|| VendorError::Permanent("token URL is not configured".into()))?;
        let mut url = url::Url::parse(token_url)
            .map_err(|_| VendorError::Permanent("token URL is not a valid URL".into()))?;
        url.path_segments_mut()
            .map_err(|_| VendorError::Permanent("token URL has no path".into()))?
            .pop()
            .push("revoke");
        // Revoking the refresh token ends the whole grant.
        let token = tokens
            .refresh_token
            .as_ref()
            .unwrap_or(&tokens.access_token);
        send_ok(
            ctx,
            ctx.http.post(url).form(&[("token", token.expose())]),
            "revoke",
        )
        .await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
