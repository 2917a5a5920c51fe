//! WHOOP (API v2). Facts and sources: docs/vendors/whoop.md.
//!
//! - OAuth: client credentials in the form body; scope `offline` for a
//!   refresh token; refresh tokens rotate and are single-use (the refresh
//!   lease in refresh.rs makes sure one is spent once); state ≥ 8 chars.
//! - User id: `GET /developer/v2/user/profile/basic` → `user_id`.
//! - Webhooks: `X-WHOOP-Signature` = base64 HMAC-SHA256(client secret,
//!   `X-WHOOP-Signature-Timestamp` (ms) + raw body); body `{user_id, id,
//!   type, trace_id}` carries no data, so it only triggers a pull; dedup on
//!   `trace_id`.
//! - Data: `/developer/v2/{cycle,recovery,activity/sleep,activity/workout}`
//!   with `start`/`end` (ISO 8601), `limit` ≤ 25, `nextToken` → `next_token`.
//!   Records carry `timezone_offset`, which decides the user-local day.
//! - Revoke: `DELETE /developer/v2/user/access` → 204.

use super::client::{delete_with_token, get_api, paginate, Paging};
use crate::domain::connection::TokenSet;
use crate::domain::error::{Error, Result};
use crate::domain::event::{EventKind, WebhookEvent};
use crate::domain::health::{MetricType, Sample};
use crate::domain::vendor::{RawRecord, Vendor, VendorError};
use crate::vendors::client::VendorCtx;
use crate::vendors::driver::{FetchRequest, Fetched, VendorDriver, WebhookReply, WebhookRequest};
use crate::vendors::quota::QuotaWindow;
use crate::vendors::signature::{
    Algorithm, Encoding, SignatureScheme, SignedMessage, TimestampRule, TimestampUnit,
};
use crate::vendors::spec::{ClientAuth, OAuthSpec, TokenResponseShape, VendorSpec};
use crate::vendors::time;
use crate::vendors::token::Grant;
use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::HashMap;

/// WHOOP: what the connector knows of the vendor.
pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Whoop,
    display_name: "WHOOP",
    oauth: Some(OAuthSpec {
        auth_url: "https://api.prod.whoop.com/oauth/oauth2/auth",
        token_url: "https://api.prod.whoop.com/oauth/oauth2/token",
        api_base: "https://api.prod.whoop.com",
        scopes: &[
            "read:recovery",
            "read:sleep",
            "read:workout",
            "read:cycles",
            "read:profile",
            "read:body_measurement",
            "offline",
        ],
        client_auth: ClientAuth::Body,
        extra_auth_params: &[],
        extra_token_params: &[],
        token_response: TokenResponseShape::Standard,
        pkce: true,
    }),
    quota: &[QuotaWindow::app(100, 60), QuotaWindow::app(10_000, 86_400)],
    signature: Some(scheme()),
};

/// The WHOOP driver.
pub struct Whoop;

const SOURCE: &str = "whoop";
const PAGE_LIMIT: u32 = 25;
/// A sync never follows more pages than this per collection.
const MAX_PAGES: usize = 200;
const WEBHOOK_TOLERANCE_SECS: i64 = 300;
const KJ_PER_KCAL: f64 = 4.184;

/// WHOOP's webhook signature: base64 HMAC-SHA256 of timestamp (ms) + body, fresh within 5 min.
pub const fn scheme() -> SignatureScheme {
    SignatureScheme {
        algorithm: Algorithm::HmacSha256,
        encoding: Encoding::Base64,
        message: SignedMessage::TimestampBody,
        signature_header: "x-whoop-signature",
        timestamp: Some(TimestampRule {
            header: "x-whoop-signature-timestamp",
            unit: TimestampUnit::Millis,
            tolerance_secs: WEBHOOK_TOLERANCE_SECS,
        }),
    }
}

#[derive(Clone, Deserialize)]
struct Cycle {
    pub id: i64,
    pub start: DateTime<Utc>,
    #[serde(default)]
    pub timezone_offset: Option<String>,
    pub score_state: String,
    #[serde(default)]
    pub score: Option<CycleScore>,
}

#[derive(Clone, Deserialize)]
struct CycleScore {
    pub strain: f64,
    pub kilojoule: f64,
    // Never read: required, so a record without it is refused.
    #[allow(dead_code)]
    pub average_heart_rate: f64,
}

#[derive(Clone, Deserialize)]
struct Recovery {
    pub cycle_id: i64,
    pub sleep_id: String,
    pub score_state: String,
    #[serde(default)]
    pub score: Option<RecoveryScore>,
}

#[derive(Clone, Deserialize)]
struct RecoveryScore {
    pub recovery_score: f64,
    pub resting_heart_rate: f64,
    pub hrv_rmssd_milli: f64,
    #[serde(default)]
    pub spo2_percentage: Option<f64>,
    #[serde(default)]
    pub skin_temp_celsius: Option<f64>,
}

#[derive(Clone, Deserialize)]
struct Sleep {
    pub id: String,
    pub end: DateTime<Utc>,
    #[serde(default)]
    pub timezone_offset: Option<String>,
    pub nap: bool,
    pub score_state: String,
    #[serde(default)]
    pub score: Option<SleepScore>,
}

#[derive(Clone, Deserialize)]
struct SleepScore {
    pub stage_summary: StageSummary,
    #[serde(default)]
    pub respiratory_rate: Option<f64>,
    #[serde(default)]
    pub sleep_performance_percentage: Option<f64>,
}

#[derive(Clone, Deserialize)]
struct StageSummary {
    pub total_light_sleep_time_milli: f64,
    pub total_slow_wave_sleep_time_milli: f64,
    pub total_rem_sleep_time_milli: f64,
}

#[derive(Clone, Deserialize)]
struct Workout {
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(default)]
    pub timezone_offset: Option<String>,
    #[serde(default)]
    pub sport_name: Option<String>,
    pub score_state: String,
    #[serde(default)]
    pub score: Option<WorkoutScore>,
}

#[derive(Clone, Deserialize)]
struct WorkoutScore {
    pub kilojoule: f64,
    #[serde(default)]
    pub distance_meter: Option<f64>,
}

/// The user-local date of an instant, by WHOOP's `timezone_offset`
/// ("-05:00"; "Z" or a missing one is UTC).
fn local_date(at: DateTime<Utc>, offset: Option<&str>) -> NaiveDate {
    time::local_date(
        at,
        offset
            .and_then(time::parse_offset)
            .unwrap_or_else(time::utc),
    )
}

/// Kilojoules to kilocalories, to 0.1 kcal.
fn kcal(kj: f64) -> f64 {
    (kj / KJ_PER_KCAL * 10.0).round() / 10.0
}

/// Normalizes one window's records. A WHOOP cycle starts when the user falls
/// asleep, so recovery, HRV, resting HR, sleep — and the cycle's strain and
/// calories — belong to the day the user woke up from that sleep; workouts
/// to the day they started. Vendor values are kept as sent; only unit
/// conversions are rounded (kcal to 0.1, minutes to whole). Unscored
/// records carry no values yet and are skipped.
fn normalize(
    cycles: &[Cycle],
    recoveries: &[Recovery],
    sleeps: &[Sleep],
    workouts: &[Workout],
) -> Vec<Sample> {
    let scored = |state: &str| state == "SCORED";
    let mut out = Vec::new();
    let sleep_day: HashMap<&str, NaiveDate> = sleeps
        .iter()
        .map(|s| {
            (
                s.id.as_str(),
                local_date(s.end, s.timezone_offset.as_deref()),
            )
        })
        .collect();
    let woke_from: HashMap<i64, NaiveDate> = recoveries
        .iter()
        .filter_map(|r| Some((r.cycle_id, *sleep_day.get(r.sleep_id.as_str())?)))
        .collect();
    // Without its sleep in the window, a cycle's day is that of its start
    // plus 12 hours: the morning after an evening onset.
    let cycle_day: HashMap<i64, NaiveDate> = cycles
        .iter()
        .map(|c| {
            let day = woke_from.get(&c.id).copied().unwrap_or_else(|| {
                local_date(c.start + Duration::hours(12), c.timezone_offset.as_deref())
            });
            (c.id, day)
        })
        .collect();
    for c in cycles.iter().filter(|c| scored(&c.score_state)) {
        let (Some(score), Some(day)) = (&c.score, cycle_day.get(&c.id)) else {
            continue;
        };
        out.push(Sample::daily(
            MetricType::Strain,
            *day,
            score.strain,
            SOURCE,
        ));
        out.push(Sample::daily(
            MetricType::Calories,
            *day,
            kcal(score.kilojoule),
            SOURCE,
        ));
    }
    for r in recoveries.iter().filter(|r| scored(&r.score_state)) {
        let Some(score) = &r.score else { continue };
        let Some(day) = sleep_day
            .get(r.sleep_id.as_str())
            .or_else(|| cycle_day.get(&r.cycle_id))
        else {
            continue;
        };
        let d = *day;
        out.push(Sample::daily(
            MetricType::Recovery,
            d,
            score.recovery_score,
            SOURCE,
        ));
        out.push(Sample::daily(
            MetricType::Hrv,
            d,
            score.hrv_rmssd_milli,
            SOURCE,
        ));
        out.push(Sample::daily(
            MetricType::RestingHr,
            d,
            score.resting_heart_rate,
            SOURCE,
        ));
        if let Some(v) = score.spo2_percentage {
            out.push(Sample::daily(MetricType::Spo2, d, v, SOURCE));
        }
        if let Some(v) = score.skin_temp_celsius {
            out.push(Sample::daily(MetricType::SkinTemperature, d, v, SOURCE));
        }
    }
    // Naps add no daily sleep values: the main sleep of the night does.
    for s in sleeps.iter().filter(|s| scored(&s.score_state) && !s.nap) {
        let Some(score) = &s.score else { continue };
        let d = local_date(s.end, s.timezone_offset.as_deref());
        let st = &score.stage_summary;
        let asleep_ms = st.total_light_sleep_time_milli
            + st.total_slow_wave_sleep_time_milli
            + st.total_rem_sleep_time_milli;
        out.push(Sample::daily(
            MetricType::SleepDuration,
            d,
            (asleep_ms / 60_000.0).round(),
            SOURCE,
        ));
        if let Some(v) = score.sleep_performance_percentage {
            out.push(Sample::daily(MetricType::SleepScore, d, v, SOURCE));
        }
        if let Some(v) = score.respiratory_rate {
            out.push(Sample::daily(MetricType::RespiratoryRate, d, v, SOURCE));
        }
    }
    for w in workouts.iter().filter(|w| scored(&w.score_state)) {
        let Some(score) = &w.score else { continue };
        let d = local_date(w.start, w.timezone_offset.as_deref());
        let sport = w.sport_name.clone().unwrap_or_else(|| "activity".into());
        let minutes = ((w.end - w.start).num_seconds() as f64 / 60.0).round();
        out.push(
            Sample::at(MetricType::WorkoutDuration, d, w.start, minutes, SOURCE)
                .with_label(sport.clone()),
        );
        out.push(
            Sample::at(
                MetricType::WorkoutCalories,
                d,
                w.start,
                kcal(score.kilojoule),
                SOURCE,
            )
            .with_label(sport.clone()),
        );
        if let Some(m) = score.distance_meter {
            out.push(
                Sample::at(MetricType::WorkoutDistance, d, w.start, m, SOURCE).with_label(sport),
            );
        }
    }
    out
}

const PAGING: Paging = Paging {
    request_param: "nextToken",
    items: "records",
    next: "next_token",
    max_pages: MAX_PAGES,
};

/// Every page of one collection in `[start, end)`, with each record's raw JSON.
async fn collect<T: DeserializeOwned>(
    ctx: &VendorCtx,
    token: &str,
    path: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<(T, String)>, VendorError> {
    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let params = [
        ("limit", PAGE_LIMIT.to_string()),
        ("start", at(start)),
        ("end", at(end)),
    ];
    paginate(ctx, token, path, &params, &PAGING).await
}

#[derive(Deserialize)]
struct Profile {
    user_id: i64,
}

#[derive(Deserialize)]
struct Notification {
    user_id: i64,
    #[serde(rename = "type")]
    kind: String,
    trace_id: String,
}

#[async_trait]
impl VendorDriver for Whoop {
    fn vendor(&self) -> Vendor {
        Vendor::Whoop
    }

    async fn identify(&self, ctx: &VendorCtx, grant: &Grant) -> Result<String, VendorError> {
        let p: Profile = get_api(
            ctx,
            grant.tokens.access_token.expose(),
            "/developer/v2/user/profile/basic",
            "profile",
        )
        .await?;
        Ok(p.user_id.to_string())
    }

    async fn webhook(&self, ctx: &VendorCtx, req: &WebhookRequest<'_>) -> Result<WebhookReply> {
        if req.method != http::Method::POST {
            return Err(Error::NotFound(
                "WHOOP has no subscription handshake".into(),
            ));
        }
        // WHOOP signs with the app's client secret, not a separate one.
        req.authenticate(Vendor::Whoop, &scheme(), ctx.creds.client_secrets())?;
        let n: Notification = serde_json::from_slice(req.body)
            .map_err(|e| Error::BadRequest(format!("WHOOP webhook body: {e}")))?;
        let known = ["recovery", "sleep", "workout"]
            .iter()
            .any(|t| n.kind.starts_with(&format!("{t}.")));
        if !known {
            return Ok(WebhookReply::not_synced(&n.kind));
        }
        if n.trace_id.is_empty() || n.trace_id.len() > 128 {
            return Err(Error::BadRequest(format!(
                "WHOOP webhook type {:?} or trace_id not understood",
                n.kind
            )));
        }
        // No date in the body: pull around "today" wherever the user is.
        let date = (req.now + Duration::hours(14)).date_naive();
        Ok(WebhookReply::Events(vec![WebhookEvent {
            event_id: n.trace_id,
            vendor_user_id: n.user_id.to_string(),
            date,
            kind: EventKind::DataChanged,
        }]))
    }

    async fn fetch(&self, ctx: &VendorCtx, req: FetchRequest<'_>) -> Result<Fetched, VendorError> {
        // Records are found by start time in UTC; widen the window by a day
        // each side, then keep what falls on the requested local days.
        let (start, end) = time::covering(req.from, req.to);
        let t = req.access_token;
        let cycles: Vec<(Cycle, String)> =
            collect(ctx, t, "/developer/v2/cycle", start, end).await?;
        let recoveries: Vec<(Recovery, String)> =
            collect(ctx, t, "/developer/v2/recovery", start, end).await?;
        let sleeps: Vec<(Sleep, String)> =
            collect(ctx, t, "/developer/v2/activity/sleep", start, end).await?;
        let workouts: Vec<(Workout, String)> =
            collect(ctx, t, "/developer/v2/activity/workout", start, end).await?;

        let (c, r, s, w) = (
            firsts(&cycles),
            firsts(&recoveries),
            firsts(&sleeps),
            firsts(&workouts),
        );
        let in_window = |d: NaiveDate| d >= req.from && d <= req.to;
        let samples = normalize(&c, &r, &s, &w)
            .into_iter()
            .filter(|x| in_window(x.date))
            .collect();
        let mut raw = Vec::new();
        for (x, json) in &cycles {
            let date = local_date(x.start, x.timezone_offset.as_deref());
            raw.push(raw_record("cycle", x.id.to_string(), date, json));
        }
        let sleep_day: HashMap<&str, NaiveDate> = s
            .iter()
            .map(|x| {
                (
                    x.id.as_str(),
                    local_date(x.end, x.timezone_offset.as_deref()),
                )
            })
            .collect();
        for (x, json) in &recoveries {
            if let Some(date) = sleep_day.get(x.sleep_id.as_str()) {
                raw.push(raw_record("recovery", x.cycle_id.to_string(), *date, json));
            }
        }
        for (x, json) in &sleeps {
            let date = local_date(x.end, x.timezone_offset.as_deref());
            raw.push(raw_record("sleep", x.id.clone(), date, json));
        }
        for (x, json) in &workouts {
            let date = local_date(x.start, x.timezone_offset.as_deref());
            raw.push(raw_record("workout", x.id.clone(), date, json));
        }
        raw.retain(|r| in_window(r.date));
        Ok(Fetched { samples, raw })
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
            "/developer/v2/user/access",
            "revoke",
        )
        .await?;
        Ok(true)
    }
}

fn firsts<T: Clone>(v: &[(T, String)]) -> Vec<T> {
    v.iter().map(|(x, _)| x.clone()).collect()
}

fn raw_record(kind: &str, id: String, date: NaiveDate, json: &str) -> RawRecord {
    RawRecord {
        kind: kind.to_string(),
        id,
        date,
        json: json.to_string(),
    }
}

#[cfg(test)]
mod tests;
