//! Garmin Health API with OAuth 2.0 PKCE. Facts and sources: docs/vendors/garmin.md.
//!
//! - OAuth: PKCE S256 required, client credentials in the form body, no
//!   scope parameter; access 24 h, a new refresh token on every refresh.
//! - User id: `GET /wellness-api/rest/user/id` → `userId`.
//! - History is pushed, not pulled: on connect (Backfill) and on a user's
//!   sync (Manual) the driver asks `GET /wellness-api/rest/backfill/{type}`
//!   (≤ 90 days a request, 30 for activities; 202, or 409 when already
//!   asked), and Garmin then sends pings as the data becomes available.
//! - Webhooks are **unsigned**: a delivery must carry `garmin-client-id`
//!   equal to our client id, and it only ever triggers a pull with the
//!   user's own token — the `callbackURL` it names is never fetched (that
//!   would let anyone point us at any URL), and pushed summaries are never
//!   stored as sent. A ping becomes a Webhook job for the upload day, which
//!   pulls each summary type by upload time in windows of at most 24 h.
//!   `deregistrations` mark the connection revoked. Garmin sends no event
//!   id, so the dedup key is built from the notification's own fields.
//! - Values go on Garmin's `calendarDate` (the user's day on the device;
//!   for sleep, the day the user woke up); activities on the date of
//!   `startTimeInSeconds + startTimeOffsetInSeconds`. Stress 1–100 is
//!   scaled to 0–10 (-1 = no value); calories are active + BMR.
//! - Disconnect: `DELETE /wellness-api/rest/user/registration` → 204.

use super::client::{delete_with_token, get_api, get_json, send, token_still_honoured};
use crate::domain::connection::TokenSet;
use crate::domain::error::{Error, Result};
use crate::domain::event::{EventKind, WebhookEvent};
use crate::domain::health::{MetricType, Sample};
use crate::domain::job::JobReason;
use crate::domain::vendor::{RawRecord, Vendor, VendorError};
use crate::vendors::client::VendorCtx;
use crate::vendors::driver::{FetchRequest, Fetched, VendorDriver, WebhookReply, WebhookRequest};
use crate::vendors::quota::QuotaWindow;
use crate::vendors::signature::secret_matches;
use crate::vendors::spec::{ClientAuth, OAuthSpec, TokenResponseShape, VendorSpec};
use crate::vendors::time::day_start;
use crate::vendors::token::Grant;
use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Garmin: what the connector knows of the vendor.
pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Garmin,
    display_name: "Garmin",
    oauth: Some(OAuthSpec {
        auth_url: "https://connect.garmin.com/oauth2Confirm",
        token_url: "https://diauth.garmin.com/di-oauth2-service/oauth/token",
        api_base: "https://apis.garmin.com",
        scopes: &[],
        client_auth: ClientAuth::Body,
        extra_auth_params: &[],
        extra_token_params: &[],
        token_response: TokenResponseShape::Standard,
        pkce: true,
    }),
    // Garmin documents backfill limits only; 100 a minute is the
    // evaluation key's order of magnitude.
    quota: &[QuotaWindow::app(100, 60)],
    signature: None,
};

/// The Garmin driver.
pub struct Garmin;

const SOURCE: &str = "garmin";
/// The summary types the connector pulls, with the longest backfill a request may ask.
const SUMMARY_TYPES: [(&str, i64); 5] = [
    ("dailies", 90),
    ("sleeps", 90),
    ("hrv", 90),
    ("pulseox", 90),
    ("activities", 30),
];
/// Garmin refuses pulls over more than 24 h of upload time.
const MAX_PULL_SECS: i64 = 86_400;

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Daily {
    // Never read: required, so a record without it is refused.
    #[allow(dead_code)]
    pub summary_id: String,
    pub calendar_date: NaiveDate,
    pub start_time_in_seconds: i64,
    #[serde(default)]
    pub steps: Option<f64>,
    #[serde(default)]
    pub active_kilocalories: Option<f64>,
    #[serde(default)]
    pub bmr_kilocalories: Option<f64>,
    #[serde(default)]
    pub resting_heart_rate_in_beats_per_minute: Option<f64>,
    #[serde(default)]
    pub average_stress_level: Option<f64>,
    #[serde(default)]
    pub time_offset_heart_rate_samples: BTreeMap<String, f64>,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SleepSummary {
    // Never read: required, so a record without it is refused.
    #[allow(dead_code)]
    pub summary_id: String,
    pub calendar_date: NaiveDate,
    pub duration_in_seconds: f64,
    #[serde(default)]
    pub overall_sleep_score: Option<Score>,
}

#[derive(Clone, Deserialize)]
struct Score {
    pub value: f64,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Hrv {
    // Never read: required, so a record without it is refused.
    #[allow(dead_code)]
    pub summary_id: String,
    pub calendar_date: NaiveDate,
    #[serde(default)]
    pub last_night_avg: Option<f64>,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PulseOx {
    // Never read: required, so a record without it is refused.
    #[allow(dead_code)]
    pub summary_id: String,
    pub calendar_date: NaiveDate,
    #[serde(default)]
    pub time_offset_spo2_values: BTreeMap<String, f64>,
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Activity {
    // Never read: required, so a record without it is refused.
    #[allow(dead_code)]
    pub summary_id: String,
    pub activity_type: String,
    pub start_time_in_seconds: i64,
    #[serde(default)]
    pub start_time_offset_in_seconds: i64,
    pub duration_in_seconds: f64,
    #[serde(default)]
    pub distance_in_meters: Option<f64>,
    #[serde(default)]
    pub active_kilocalories: Option<f64>,
}

/// One pull's summaries, by type.
#[derive(Default)]
struct Summaries {
    pub dailies: Vec<Daily>,
    pub sleeps: Vec<SleepSummary>,
    pub hrv: Vec<Hrv>,
    pub pulseox: Vec<PulseOx>,
    pub activities: Vec<Activity>,
}

fn utc(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Normalizes Garmin summaries (see the module doc for the dating rules).
fn normalize(s: &Summaries) -> Vec<Sample> {
    let mut out = Vec::new();
    for d in &s.dailies {
        let day = d.calendar_date;
        if let Some(v) = d.steps {
            out.push(Sample::daily(MetricType::Steps, day, v, SOURCE));
        }
        if let (Some(a), Some(b)) = (d.active_kilocalories, d.bmr_kilocalories) {
            out.push(Sample::daily(MetricType::Calories, day, a + b, SOURCE));
        }
        if let Some(v) = d.resting_heart_rate_in_beats_per_minute {
            out.push(Sample::daily(MetricType::RestingHr, day, v, SOURCE));
        }
        if let Some(v) = d.average_stress_level.filter(|v| *v >= 0.0) {
            out.push(Sample::daily(MetricType::Stress, day, v / 10.0, SOURCE));
        }
        for (offset, bpm) in &d.time_offset_heart_rate_samples {
            let Some(at) = offset
                .parse::<i64>()
                .ok()
                .and_then(|o| utc(d.start_time_in_seconds + o))
            else {
                continue;
            };
            out.push(Sample::at(MetricType::HeartRate, day, at, *bpm, SOURCE));
        }
    }
    for sl in &s.sleeps {
        out.push(Sample::daily(
            MetricType::SleepDuration,
            sl.calendar_date,
            (sl.duration_in_seconds / 60.0).round(),
            SOURCE,
        ));
        if let Some(score) = &sl.overall_sleep_score {
            out.push(Sample::daily(
                MetricType::SleepScore,
                sl.calendar_date,
                score.value,
                SOURCE,
            ));
        }
    }
    for h in &s.hrv {
        if let Some(v) = h.last_night_avg {
            out.push(Sample::daily(MetricType::Hrv, h.calendar_date, v, SOURCE));
        }
    }
    for p in &s.pulseox {
        let values: Vec<f64> = p.time_offset_spo2_values.values().copied().collect();
        if !values.is_empty() {
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            out.push(Sample::daily(
                MetricType::Spo2,
                p.calendar_date,
                round1(mean),
                SOURCE,
            ));
        }
    }
    for a in &s.activities {
        let Some(start) = utc(a.start_time_in_seconds) else {
            continue;
        };
        let Some(day) =
            utc(a.start_time_in_seconds + a.start_time_offset_in_seconds).map(|t| t.date_naive())
        else {
            continue;
        };
        let sport = a.activity_type.to_lowercase();
        out.push(
            Sample::at(
                MetricType::WorkoutDuration,
                day,
                start,
                (a.duration_in_seconds / 60.0).round(),
                SOURCE,
            )
            .with_label(sport.clone()),
        );
        if let Some(m) = a.distance_in_meters {
            out.push(
                Sample::at(MetricType::WorkoutDistance, day, start, m, SOURCE)
                    .with_label(sport.clone()),
            );
        }
        if let Some(k) = a.active_kilocalories {
            out.push(
                Sample::at(MetricType::WorkoutCalories, day, start, k, SOURCE).with_label(sport),
            );
        }
    }
    out
}

/// The upload windows (≤ 24 h each, none in the future) covering the UTC days `from..=to`.
fn upload_windows(from: NaiveDate, to: NaiveDate, now: DateTime<Utc>) -> Vec<(i64, i64)> {
    let start = day_start(from);
    let end = day_start(to + Duration::days(1)).min(now);
    let mut out = Vec::new();
    let mut t = start.timestamp();
    while t < end.timestamp() {
        let next = (t + MAX_PULL_SECS).min(end.timestamp());
        out.push((t, next));
        t = next;
    }
    out
}

/// The backfill requests for the user-local days `from..=to`: (type, start, end).
fn backfill_requests(from: NaiveDate, to: NaiveDate) -> Vec<(&'static str, i64, i64)> {
    let mut out = Vec::new();
    for (kind, max_days) in SUMMARY_TYPES {
        let mut day = from;
        while day <= to {
            // Padded by a day either side below, so each request stays within max_days.
            let last = (day + Duration::days(max_days - 3)).min(to);
            // Summaries are keyed by the device's local day: pad by a day.
            let start = day_start(day - Duration::days(1));
            let end = (last + Duration::days(1))
                .and_hms_opt(23, 59, 59)
                .expect("time")
                .and_utc();
            out.push((kind, start.timestamp(), end.timestamp()));
            day = last + Duration::days(1);
        }
    }
    out
}

async fn pull<T: serde::de::DeserializeOwned>(
    ctx: &VendorCtx,
    token: &str,
    kind: &str,
    window: (i64, i64),
    raw: &mut Vec<serde_json::Value>,
) -> Result<Vec<T>, VendorError> {
    let mut url = ctx.api_url(&format!("/wellness-api/rest/{kind}"))?;
    url.query_pairs_mut()
        .append_pair("uploadStartTimeInSeconds", &window.0.to_string())
        .append_pair("uploadEndTimeInSeconds", &window.1.to_string());
    let items: Vec<serde_json::Value> = get_json(ctx, token, url, kind).await?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(serde_json::from_value(item.clone()).map_err(|e| {
            VendorError::Permanent(format!("{kind}: unexpected summary shape ({e})"))
        })?);
        raw.push(item);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserId {
    user_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notice {
    user_id: String,
    #[serde(default, rename = "callbackURL")]
    callback_url: Option<String>,
    #[serde(default)]
    summary_id: Option<String>,
}

/// The events of an authenticated Garmin notification body.
fn parse_notification(body: &[u8], now: DateTime<Utc>) -> Result<Vec<WebhookEvent>> {
    let envelope: BTreeMap<String, Vec<Notice>> = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("Garmin notification body: {e}")))?;
    let mut events = Vec::new();
    for (kind, notices) in envelope {
        for n in notices {
            if n.user_id.is_empty() || n.user_id.len() > 128 {
                return Err(Error::BadRequest("Garmin userId is malformed".into()));
            }
            if kind == "deregistrations" {
                events.push(WebhookEvent {
                    event_id: format!("deregistration:{}", n.user_id),
                    vendor_user_id: n.user_id,
                    date: now.date_naive(),
                    kind: EventKind::Deauthorized,
                });
                continue;
            }
            // The upload window named by a ping; a push (no callbackURL) is
            // pulled for the day it arrives.
            let window = n.callback_url.as_deref().and_then(|u| {
                let url = url::Url::parse(u).ok()?;
                let get = |k: &str| {
                    url.query_pairs()
                        .find(|(name, _)| name == k)
                        .and_then(|(_, v)| v.parse::<i64>().ok())
                };
                Some((
                    get("uploadStartTimeInSeconds")?,
                    get("uploadEndTimeInSeconds")?,
                ))
            });
            let date = window
                .and_then(|(_, end)| utc(end))
                .unwrap_or(now)
                .date_naive();
            let id = match (window, &n.summary_id) {
                (Some((s, e)), _) => format!("{kind}:{}:{s}-{e}", n.user_id),
                (None, Some(sid)) => format!("{kind}:{}:{sid}", n.user_id),
                (None, None) => format!("{kind}:{}:{}", n.user_id, now.timestamp()),
            };
            events.push(WebhookEvent {
                event_id: id,
                vendor_user_id: n.user_id,
                date,
                kind: EventKind::DataChanged,
            });
        }
    }
    Ok(events)
}

#[async_trait]
impl VendorDriver for Garmin {
    fn vendor(&self) -> Vendor {
        Vendor::Garmin
    }

    async fn identify(&self, ctx: &VendorCtx, grant: &Grant) -> Result<String, VendorError> {
        let id: UserId = get_api(
            ctx,
            grant.tokens.access_token.expose(),
            "/wellness-api/rest/user/id",
            "user id",
        )
        .await?;
        Ok(id.user_id)
    }

    fn unsigned_webhooks(&self) -> bool {
        true
    }

    async fn grant_is_live(
        &self,
        ctx: &VendorCtx,
        access_token: &str,
    ) -> Result<bool, VendorError> {
        token_still_honoured(ctx, access_token, "/wellness-api/rest/user/id", |a| {
            super::client::check_status(a, "user id", Utc::now())
        })
        .await
    }

    async fn webhook(&self, ctx: &VendorCtx, req: &WebhookRequest<'_>) -> Result<WebhookReply> {
        if req.method != http::Method::POST {
            return Err(Error::NotFound(
                "Garmin has no subscription handshake".into(),
            ));
        }
        let client_id = req
            .headers
            .get("garmin-client-id")
            .and_then(|v| v.to_str().ok());
        let ours = ctx
            .creds
            .client_id
            .clone()
            .map(crate::domain::connection::Secret::new);
        if !secret_matches(client_id, ours.as_ref()) {
            tracing::warn!(
                vendor = "garmin",
                bytes = req.body.len(),
                "webhook rejected: garmin-client-id missing or foreign"
            );
            return Err(Error::Unauthorized(
                "webhook rejected: garmin-client-id does not match".into(),
            ));
        }
        Ok(WebhookReply::Events(parse_notification(req.body, req.now)?))
    }

    async fn fetch(&self, ctx: &VendorCtx, req: FetchRequest<'_>) -> Result<Fetched, VendorError> {
        let token = req.access_token;
        if req.reason != JobReason::Webhook {
            for (kind, start, end) in backfill_requests(req.from, req.to) {
                let mut url = ctx.api_url(&format!("/wellness-api/rest/backfill/{kind}"))?;
                url.query_pairs_mut()
                    .append_pair("summaryStartTimeInSeconds", &start.to_string())
                    .append_pair("summaryEndTimeInSeconds", &end.to_string());
                let answer = send(ctx, ctx.http.get(url).bearer_auth(token)).await?;
                // 409: that range was already asked for; Garmin sends it anyway.
                if answer.status.as_u16() != 409 {
                    super::client::check_status(&answer, kind, Utc::now())?;
                }
            }
            return Ok(Fetched::default());
        }
        let mut s = Summaries::default();
        let mut raw: Vec<(&str, serde_json::Value)> = Vec::new();
        for window in upload_windows(req.from, req.to, Utc::now()) {
            let mut r = Vec::new();
            s.dailies
                .extend(pull::<Daily>(ctx, token, "dailies", window, &mut r).await?);
            raw.extend(r.drain(..).map(|v| ("dailies", v)));
            s.sleeps
                .extend(pull::<SleepSummary>(ctx, token, "sleeps", window, &mut r).await?);
            raw.extend(r.drain(..).map(|v| ("sleeps", v)));
            s.hrv
                .extend(pull::<Hrv>(ctx, token, "hrv", window, &mut r).await?);
            raw.extend(r.drain(..).map(|v| ("hrv", v)));
            s.pulseox
                .extend(pull::<PulseOx>(ctx, token, "pulseox", window, &mut r).await?);
            raw.extend(r.drain(..).map(|v| ("pulseox", v)));
            s.activities
                .extend(pull::<Activity>(ctx, token, "activities", window, &mut r).await?);
            raw.extend(r.drain(..).map(|v| ("activities", v)));
        }
        let raw = raw
            .into_iter()
            .filter_map(|(kind, v)| {
                let id = v.get("summaryId")?.as_str()?.to_string();
                let date = v
                    .get("calendarDate")
                    .and_then(|d| d.as_str())
                    .and_then(|d| d.parse().ok())
                    .or_else(|| {
                        let start = v.get("startTimeInSeconds")?.as_i64()?;
                        let offset = v
                            .get("startTimeOffsetInSeconds")
                            .and_then(|o| o.as_i64())
                            .unwrap_or(0);
                        Some(utc(start + offset)?.date_naive())
                    })?;
                Some(RawRecord {
                    kind: kind.to_string(),
                    id,
                    date,
                    json: v.to_string(),
                })
            })
            .collect();
        // Pulls are by upload time: whatever day the data is for, it is kept.
        Ok(Fetched {
            samples: normalize(&s),
            raw,
        })
    }

    async fn revoke(
        &self,
        ctx: &VendorCtx,
        _vendor_user_id: &str,
        tokens: &TokenSet,
    ) -> Result<bool, VendorError> {
        delete_with_token(
            ctx,
            tokens.access_token.expose(),
            "/wellness-api/rest/user/registration",
            "deregistration",
        )
        .await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
