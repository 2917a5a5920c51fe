//! Polar AccessLink v3. Facts and sources: docs/vendors/polar.md.
//!
//! - OAuth: client credentials as HTTP Basic; PKCE is not documented (the
//!   connector sends it; Polar is not known to refuse it); the only scope is
//!   `accesslink.read_all`. The token response carries the Polar user id as
//!   `x_user_id` and **no refresh token**: the access token is long-lived
//!   (`expires_in` ≈ 10 years observed). When Polar refuses it (401: the
//!   user revoked access, or it expired), nothing can renew it: the sync
//!   worker marks the connection `refresh_failed` ("reconnect") and stops.
//! - Registration: after the exchange the user must be registered with
//!   `POST /v3/users {"member-id"}` (only data uploaded after registration
//!   is ever returned). The member id is [`member_id`]: a hash of the
//!   connector's user id, never the id itself. 409 ("already registered")
//!   is fine. `identify` alone cannot register (it does not know the
//!   connector user): the callback uses `identify_user`.
//! - Webhooks (one per client, made with Basic auth): `Polar-Webhook-Signature`
//!   = hex HMAC-SHA256(`signature_secret_key` = CONNECTOR_POLAR_WEBHOOK_SECRET,
//!   raw body); no timestamp header, so no freshness window — deliveries
//!   are deduplicated on a hash of event, user_id, entity_id or date, and
//!   timestamp, and only ever trigger a pull with the user's own token. The
//!   `PING` sent when the webhook is created, re-pointed or activated
//!   (before the secret is known) is answered 200 whatever its signature,
//!   and queues nothing. SLEEP, CONTINUOUS_HEART_RATE and ACTIVITY_SUMMARY
//!   name the user's day (`date`); EXERCISE does not, so its pull covers the
//!   day of `timestamp` + 12 h and the day before. Other events (SLEEP_WISE_*,
//!   PHYSICAL_INFORMATION) are acknowledged and ignored. Polar has no
//!   deauthorization event, and no nightly-recharge event (a SLEEP pull
//!   also reads nightly recharge).
//! - Data (non-transactional endpoints only; no pagination exists):
//!   `/v3/exercises` (uploads of the last 30 days), `/v3/users/sleep` and
//!   `/v3/users/nightly-recharge` (last 28 days), `/v3/users/activities?from&to`
//!   (≤ 28 days a request, `from` ≤ 365 days old), and
//!   `/v3/users/continuous-heart-rate/{date}` per day (404/204 = none; days
//!   older than 30 days are not asked for).
//! - Normalization (see the fixtures README): exercises on the local date of
//!   `start_time` (local, offset in `start_time_utc_offset` minutes; UTC
//!   start = local − offset); sleep and nightly recharge on Polar's `date`
//!   (the morning the night ends); activity on the middle of its `start_time`..`end_time` (UTC by the description);
//!   continuous HR on the response's `date`, its device-clock times turned
//!   into UTC with the user's offset taken from the exercises and sleeps
//!   of the same pull (UTC when none). Sleep duration = light + deep + REM +
//!   unrecognized (minutes, to 0.1); HRV = nightly recharge
//!   `heart_rate_variability_avg` (RMSSD, ms); calories = the day's total
//!   `calories` (workout kcal are not added). **No resting HR**: Polar has
//!   none, and nightly recharge `heart_rate_avg` is a 4-hour sleep mean,
//!   not a resting rate (project decision).
//! - Revoke: `DELETE /v3/users/{x_user_id}` → 204 (deregisters the user and
//!   revokes the token). 401/404 = already gone at Polar: the disconnect
//!   flow reports that as a refusal, not a revoke.

use super::client::{check_status, get_api, get_json, send};
use crate::domain::connection::TokenSet;
use crate::domain::error::{Error, Result};
use crate::domain::event::{EventKind, WebhookEvent};
use crate::domain::health::{MetricType, Sample};
use crate::domain::vendor::{RawRecord, Vendor, VendorError};
use crate::vendors::client::VendorCtx;
use crate::vendors::driver::{FetchRequest, Fetched, VendorDriver, WebhookReply, WebhookRequest};
use crate::vendors::quota::QuotaWindow;
use crate::vendors::signature::{Algorithm, Encoding, SignatureScheme, SignedMessage};
use crate::vendors::spec::{ClientAuth, OAuthSpec, TokenResponseShape, VendorSpec};
use crate::vendors::time::{offset_at, utc};
use crate::vendors::token::Grant;
use async_trait::async_trait;
use chrono::{
    DateTime, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Polar: what the connector knows of the vendor.
pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Polar,
    display_name: "Polar",
    oauth: Some(OAuthSpec {
        auth_url: "https://flow.polar.com/oauth2/authorization",
        token_url: "https://polarremote.com/v2/oauth2/token",
        api_base: "https://www.polaraccesslink.com",
        scopes: &["accesslink.read_all"],
        client_auth: ClientAuth::Basic,
        extra_auth_params: &[],
        extra_token_params: &[],
        token_response: TokenResponseShape::Standard,
        pkce: true,
    }),
    // Polar's limits grow with registered users (500 + 20 × users per
    // 15 min); the base is the safe floor.
    quota: &[QuotaWindow::app(500, 900), QuotaWindow::app(5_000, 86_400)],
    signature: Some(scheme()),
};

/// The Polar driver.
pub struct Polar;

const SOURCE: &str = "polar";
/// Widest `/v3/users/activities` range (days, inclusive of both ends).
const ACTIVITY_RANGE_DAYS: i64 = 28;
/// How far back `/v3/users/activities` may start (days).
const ACTIVITY_MAX_AGE_DAYS: i64 = 365;
/// How far back continuous heart rate is asked for, day by day.
const HEART_RATE_MAX_AGE_DAYS: i64 = 30;

/// Polar's webhook signature: hex HMAC-SHA256 of the body, no timestamp.
pub const fn scheme() -> SignatureScheme {
    SignatureScheme {
        algorithm: Algorithm::HmacSha256,
        encoding: Encoding::Hex,
        message: SignedMessage::Body,
        signature_header: "polar-webhook-signature",
        timestamp: None,
    }
}

/// The `member-id` Polar registers the connector's user under: stable, and
/// not the connector's user id itself.
pub fn member_id(user_id: &str) -> String {
    let digest = Sha256::digest(format!("wcc-polar-member\u{1f}{user_id}").as_bytes());
    format!("wcc-{}", hex::encode(&digest[..16]))
}

#[derive(Clone, Deserialize)]
struct Exercise {
    pub id: String,
    pub start_time: NaiveDateTime,
    #[serde(default)]
    pub start_time_utc_offset: i32,
    pub duration: String,
    #[serde(default)]
    pub calories: Option<f64>,
    #[serde(default)]
    pub distance: Option<f64>,
    #[serde(default)]
    pub sport: Option<String>,
}

impl Exercise {
    fn offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.start_time_utc_offset * 60).unwrap_or_else(utc)
    }

    pub fn start_utc(&self) -> DateTime<Utc> {
        (self.start_time - Duration::seconds(i64::from(self.offset().local_minus_utc()))).and_utc()
    }
}

#[derive(Clone, Deserialize)]
struct Sleep {
    pub date: NaiveDate,
    #[serde(default)]
    pub sleep_start_time: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub sleep_end_time: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub light_sleep: f64,
    #[serde(default)]
    pub deep_sleep: f64,
    #[serde(default)]
    pub rem_sleep: f64,
    #[serde(default)]
    pub unrecognized_sleep_stage: f64,
    #[serde(default)]
    pub sleep_score: Option<f64>,
}

#[derive(Clone, Deserialize)]
struct NightlyRecharge {
    pub date: NaiveDate,
    #[serde(default)]
    pub heart_rate_variability_avg: Option<f64>,
    /// Only the golden tests read it.
    #[allow(dead_code)]
    #[serde(default)]
    pub heart_rate_avg: Option<f64>,
}

#[derive(Clone, Deserialize)]
struct Activity {
    pub start_time: NaiveDateTime,
    #[serde(default)]
    pub end_time: Option<NaiveDateTime>,
    #[serde(default)]
    pub steps: Option<f64>,
    #[serde(default)]
    pub calories: Option<f64>,
}

impl Activity {
    /// The user's local day. The summary has no date: its `start_time` and
    /// `end_time` span the day, in UTC by Polar's description (local in
    /// Polar's examples). The middle of the span is the local noon either
    /// way, whose date is the local day for any offset within ±12 h; the
    /// start's date would be the day before east of UTC.
    pub fn date(&self) -> NaiveDate {
        let end = self
            .end_time
            .filter(|e| *e > self.start_time)
            .unwrap_or(self.start_time + Duration::hours(24));
        (self.start_time + (end - self.start_time) / 2).date()
    }
}

#[derive(Clone, Deserialize)]
struct HeartRateSample {
    pub heart_rate: f64,
    pub sample_time: NaiveTime,
}

#[derive(Clone, Deserialize)]
struct ContinuousHeartRate {
    pub date: NaiveDate,
    #[serde(default)]
    pub heart_rate_samples: Vec<HeartRateSample>,
}

#[derive(Deserialize)]
struct Nights {
    pub nights: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Recharges {
    pub recharges: Vec<serde_json::Value>,
}

/// One pull's records, by endpoint.
#[derive(Default)]
struct Collections {
    pub exercises: Vec<Exercise>,
    pub sleep: Vec<Sleep>,
    pub recharge: Vec<NightlyRecharge>,
    pub activities: Vec<Activity>,
    pub heart_rate: Vec<ContinuousHeartRate>,
}

/// An ISO-8601 duration (`PT2H44M`, `PT45M30.5S`, `P1DT1H`) in seconds.
fn iso_duration_secs(s: &str) -> Option<f64> {
    let rest = s.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut total = 0.0;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let (_, secs) = units.iter().find(|(u, _)| *u == c)?;
                total += num.parse::<f64>().ok()? * secs;
                num.clear();
            }
        }
        num.is_empty().then_some(())
    };
    take(days, &[('W', 604_800.0), ('D', 86_400.0)])?;
    take(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    Some(total)
}

fn tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The UTC offsets Polar revealed, by instant.
fn known_offsets(c: &Collections) -> Vec<(DateTime<Utc>, FixedOffset)> {
    let mut out = Vec::new();
    for e in &c.exercises {
        out.push((e.start_utc(), e.offset()));
    }
    for s in &c.sleep {
        for t in s.sleep_start_time.iter().chain(s.sleep_end_time.iter()) {
            out.push((t.with_timezone(&Utc), *t.offset()));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

/// Normalizes one pull (rules in the module doc).
fn normalize(c: &Collections) -> Vec<Sample> {
    let mut out = Vec::new();
    let daily = |m: MetricType, d: NaiveDate, v: f64| Sample::daily(m, d, v, SOURCE);
    for e in &c.exercises {
        let Some(secs) = iso_duration_secs(&e.duration) else {
            continue;
        };
        let sport = e.sport.clone().unwrap_or_else(|| "OTHER".into());
        let (date, start) = (e.start_time.date(), e.start_utc());
        let at = |m: MetricType, v: f64| Sample::at(m, date, start, v, SOURCE).with_label(&sport);
        out.push(at(MetricType::WorkoutDuration, tenth(secs / 60.0)));
        if let Some(v) = e.calories {
            out.push(at(MetricType::WorkoutCalories, v));
        }
        if let Some(v) = e.distance {
            out.push(at(MetricType::WorkoutDistance, v));
        }
    }
    for s in &c.sleep {
        let asleep = s.light_sleep + s.deep_sleep + s.rem_sleep + s.unrecognized_sleep_stage;
        if asleep > 0.0 {
            out.push(daily(
                MetricType::SleepDuration,
                s.date,
                tenth(asleep / 60.0),
            ));
        }
        if let Some(v) = s.sleep_score {
            out.push(daily(MetricType::SleepScore, s.date, v));
        }
    }
    for r in &c.recharge {
        if let Some(v) = r.heart_rate_variability_avg {
            out.push(daily(MetricType::Hrv, r.date, v));
        }
    }
    for a in &c.activities {
        if let Some(v) = a.steps {
            out.push(daily(MetricType::Steps, a.date(), v));
        }
        if let Some(v) = a.calories {
            out.push(daily(MetricType::Calories, a.date(), v));
        }
    }
    let known = known_offsets(c);
    for day in &c.heart_rate {
        for s in &day.heart_rate_samples {
            let local = day.date.and_time(s.sample_time);
            let offset = offset_at(&known, local.and_utc());
            let utc = (local - Duration::seconds(i64::from(offset.local_minus_utc()))).and_utc();
            out.push(Sample::at(
                MetricType::HeartRate,
                day.date,
                utc,
                s.heart_rate,
                SOURCE,
            ));
        }
    }
    out
}

/// Parses each raw value, keeping its JSON.
fn parse_all<T: serde::de::DeserializeOwned>(
    what: &str,
    values: Vec<serde_json::Value>,
) -> Result<Vec<(T, String)>, VendorError> {
    values
        .into_iter()
        .map(|raw| {
            let parsed = serde_json::from_value::<T>(raw.clone()).map_err(|e| {
                VendorError::Permanent(format!("{what}: unexpected record shape ({e})"))
            })?;
            Ok((parsed, raw.to_string()))
        })
        .collect()
}

/// `[from, to]` cut into inclusive ranges of at most `days` days.
fn ranges(from: NaiveDate, to: NaiveDate, days: i64) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = (start + Duration::days(days - 1)).min(to);
        out.push((start, end));
        start = end + Duration::days(1);
    }
    out
}

#[derive(Deserialize)]
struct Registered {
    #[serde(rename = "polar-user-id", default)]
    polar_user_id: Option<i64>,
}

#[derive(Deserialize)]
struct Notification {
    event: String,
    #[serde(default)]
    user_id: Option<serde_json::Value>,
    #[serde(default)]
    entity_id: Option<String>,
    #[serde(default)]
    date: Option<NaiveDate>,
    #[serde(default)]
    timestamp: Option<DateTime<FixedOffset>>,
}

/// The deterministic dedup id of a Polar event.
fn event_id(event: &str, user_id: &str, subject: &str, timestamp: &str) -> String {
    let digest = Sha256::digest(
        [event, user_id, subject, timestamp]
            .join("\u{1f}")
            .as_bytes(),
    );
    format!("polar-{}", hex::encode(&digest[..20]))
}

async fn register(ctx: &VendorCtx, grant: &Grant, user_id: &str) -> Result<String, VendorError> {
    let from_token = grant.extra_str("x_user_id");
    let answer = send(
        ctx,
        ctx.http
            .post(ctx.api_url("/v3/users")?)
            .bearer_auth(grant.tokens.access_token.expose())
            .header("accept", "application/json")
            .json(&serde_json::json!({ "member-id": member_id(user_id) })),
    )
    .await?;
    let registered = match answer.status.as_u16() {
        409 => {
            // Already registered to us (a reconnect), or the member id is
            // taken by another Polar account: the token's user id decides.
            tracing::info!(vendor = "polar", "user was already registered");
            None
        }
        _ => {
            check_status(&answer, "register user", Utc::now())?;
            answer
                .json::<Registered>("register user")
                .ok()
                .and_then(|r| r.polar_user_id)
        }
    };
    from_token
        .or_else(|| registered.map(|id| id.to_string()))
        .ok_or_else(|| VendorError::Permanent("Polar named no user id (x_user_id)".into()))
}

/// One day's document, or None when Polar has none (404 or 204).
async fn by_date<T: serde::de::DeserializeOwned>(
    ctx: &VendorCtx,
    token: &str,
    path: &str,
) -> Result<Option<(T, String)>, VendorError> {
    let answer = send(ctx, ctx.http.get(ctx.api_url(path)?).bearer_auth(token)).await?;
    if matches!(answer.status.as_u16(), 204 | 404) || answer.body.is_empty() {
        return Ok(None);
    }
    check_status(&answer, path, Utc::now())?;
    let raw: serde_json::Value = answer.json(path)?;
    Ok(parse_all(path, vec![raw])?.pop())
}

#[async_trait]
impl VendorDriver for Polar {
    fn vendor(&self) -> Vendor {
        Vendor::Polar
    }

    async fn identify(&self, _ctx: &VendorCtx, _grant: &Grant) -> Result<String, VendorError> {
        Err(VendorError::Permanent(
            "Polar registers users under the connector's id: use identify_user".into(),
        ))
    }

    async fn identify_user(
        &self,
        ctx: &VendorCtx,
        grant: &Grant,
        user_id: &str,
    ) -> Result<String, VendorError> {
        register(ctx, grant, user_id).await
    }

    async fn webhook(&self, ctx: &VendorCtx, req: &WebhookRequest<'_>) -> Result<WebhookReply> {
        if req.method != http::Method::POST {
            return Err(Error::NotFound("Polar only POSTs webhooks".into()));
        }
        let n: Notification = serde_json::from_slice(req.body)
            .map_err(|e| Error::BadRequest(format!("Polar webhook body: {e}")))?;
        if n.event == "PING" {
            // Sent before the signature secret exists: answer 200, do nothing.
            return Ok(WebhookReply::Handshake {
                status: 200,
                content_type: "application/json",
                body: r#"{"ping":"ok"}"#.into(),
            });
        }
        req.authenticate(Vendor::Polar, &scheme(), ctx.creds.webhook_secrets())?;
        let user = match &n.user_id {
            Some(serde_json::Value::Number(x)) => x.to_string(),
            Some(serde_json::Value::String(s)) if !s.is_empty() && s.len() <= 64 => s.clone(),
            _ => return Err(Error::BadRequest("Polar webhook without user_id".into())),
        };
        let timestamp = n
            .timestamp
            .ok_or_else(|| Error::BadRequest("Polar webhook without timestamp".into()))?
            .with_timezone(&Utc);
        let (subject, date) = match n.event.as_str() {
            "EXERCISE" => {
                let id = n
                    .entity_id
                    .filter(|s| !s.is_empty() && s.len() <= 128)
                    .ok_or_else(|| Error::BadRequest("EXERCISE without entity_id".into()))?;
                (id, (timestamp + Duration::hours(12)).date_naive())
            }
            "SLEEP" | "CONTINUOUS_HEART_RATE" | "ACTIVITY_SUMMARY" => {
                let d = n
                    .date
                    .ok_or_else(|| Error::BadRequest(format!("{} event without date", n.event)))?;
                (d.to_string(), d)
            }
            other => return Ok(WebhookReply::not_synced(other)),
        };
        let ts = timestamp.to_rfc3339_opts(SecondsFormat::Secs, true);
        Ok(WebhookReply::Events(vec![WebhookEvent {
            event_id: event_id(&n.event, &user, &subject, &ts),
            vendor_user_id: user,
            date,
            kind: EventKind::DataChanged,
        }]))
    }

    async fn fetch(&self, ctx: &VendorCtx, req: FetchRequest<'_>) -> Result<Fetched, VendorError> {
        let t = req.access_token;
        let exercises: Vec<serde_json::Value> =
            get_api(ctx, t, "/v3/exercises", "exercises").await?;
        let exercises: Vec<(Exercise, String)> = parse_all("exercises", exercises)?;
        let nights: Nights = get_api(ctx, t, "/v3/users/sleep", "sleep").await?;
        let sleep: Vec<(Sleep, String)> = parse_all("sleep", nights.nights)?;
        let recharges: Recharges =
            get_api(ctx, t, "/v3/users/nightly-recharge", "nightly-recharge").await?;
        let recharge: Vec<(NightlyRecharge, String)> =
            parse_all("nightly-recharge", recharges.recharges)?;

        let today = Utc::now().date_naive();
        let mut activities: Vec<(Activity, String)> = Vec::new();
        let oldest = today - Duration::days(ACTIVITY_MAX_AGE_DAYS - 1);
        let from = req.from.max(oldest);
        for (a, b) in ranges(from, req.to, ACTIVITY_RANGE_DAYS) {
            let mut url = ctx.api_url("/v3/users/activities")?;
            url.query_pairs_mut()
                .append_pair("from", &a.to_string())
                .append_pair("to", &b.to_string());
            let page: Vec<serde_json::Value> = get_json(ctx, t, url, "activities").await?;
            activities.extend(parse_all::<Activity>("activities", page)?);
        }
        let mut heart_rate: Vec<(ContinuousHeartRate, String)> = Vec::new();
        let hr_from = req
            .from
            .max(today - Duration::days(HEART_RATE_MAX_AGE_DAYS));
        for d in hr_from.iter_days().take_while(|d| *d <= req.to) {
            let path = format!("/v3/users/continuous-heart-rate/{d}");
            if let Some(x) = by_date(ctx, t, &path).await? {
                heart_rate.push(x);
            }
        }

        let c = Collections {
            exercises: firsts(&exercises),
            sleep: firsts(&sleep),
            recharge: firsts(&recharge),
            activities: firsts(&activities),
            heart_rate: firsts(&heart_rate),
        };
        let in_window = |d: NaiveDate| d >= req.from && d <= req.to;
        let samples = normalize(&c)
            .into_iter()
            .filter(|x| in_window(x.date))
            .collect();
        let mut raw = Vec::new();
        let mut keep = |kind: &str, id: String, date: NaiveDate, json: &str| {
            raw.push(RawRecord {
                kind: kind.to_string(),
                id,
                date,
                json: json.to_string(),
            })
        };
        for (x, j) in &exercises {
            keep("exercise", x.id.clone(), x.start_time.date(), j);
        }
        for (x, j) in &sleep {
            keep("sleep", x.date.to_string(), x.date, j);
        }
        for (x, j) in &recharge {
            keep("nightly_recharge", x.date.to_string(), x.date, j);
        }
        for (x, j) in &activities {
            keep("activity", x.date().to_string(), x.date(), j);
        }
        for (x, j) in &heart_rate {
            keep("continuous_heart_rate", x.date.to_string(), x.date, j);
        }
        raw.retain(|r| in_window(r.date));
        Ok(Fetched { samples, raw })
    }

    async fn revoke(
        &self,
        ctx: &VendorCtx,
        vendor_user_id: &str,
        tokens: &TokenSet,
    ) -> Result<bool, VendorError> {
        if vendor_user_id.is_empty() || !vendor_user_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(VendorError::Permanent("Polar user id is not valid".into()));
        }
        let url = ctx.api_url(&format!("/v3/users/{vendor_user_id}"))?;
        let answer = send(
            ctx,
            ctx.http
                .delete(url)
                .bearer_auth(tokens.access_token.expose()),
        )
        .await?;
        check_status(&answer, "deregister user", Utc::now())?;
        Ok(true)
    }
}

fn firsts<T: Clone>(v: &[(T, String)]) -> Vec<T> {
    v.iter().map(|(x, _)| x.clone()).collect()
}

#[cfg(test)]
mod tests;
