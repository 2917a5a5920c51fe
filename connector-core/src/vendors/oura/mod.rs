//! Oura (API v2). Facts and sources: docs/vendors/oura.md.
//!
//! - OAuth: client credentials in the form body; PKCE is not documented
//!   (the connector sends it anyway; Oura is not known to refuse it). Access
//!   tokens live ~24 h; every refresh returns a new refresh token and the old
//!   one is treated as spent (single-use, serialized by the refresh lease).
//!   Scopes: `daily` (sleep, readiness, activity), `heartrate`, `workout`,
//!   `spo2Daily` (the current name; older pages said `spo2`), `personal`.
//! - User id: `GET /v2/usercollection/personal_info` → `id` (any token).
//! - Webhooks (app-level subscriptions, one per event × data type):
//!   `x-oura-signature` = UPPERCASE hex HMAC-SHA256(client secret,
//!   `x-oura-timestamp` (epoch seconds) ‖ body); freshness ±5 min (project
//!   choice, Oura documents none). Oura's own example signs
//!   `JSON.stringify(parsedBody)`: the raw body is verified first and, only
//!   if that fails, its whitespace-free (key order kept) form, which is the
//!   same bytes whenever Oura sends compact JSON. The body names no local
//!   day and no delivery id: the dedup id is a hash of user_id, data_type,
//!   object_id, event_type and event_time (to the second), and the pull
//!   covers the day of `event_time` + 12 h and the day before (every offset
//!   from −12:00 to +12:00). Oura has no deauthorization event. The
//!   subscription handshake `GET ?verification_token=&challenge=` is
//!   answered `200 {"challenge": …}` only for `CONNECTOR_OURA_VERIFY_TOKEN`
//!   (constant time), else 401. Subscriptions are created and renewed by
//!   [`subscriptions::ensure`] (`connector-dev oura-subscriptions`).
//! - Data: `/v2/usercollection/{daily_sleep,sleep,daily_readiness,
//!   daily_activity,daily_spo2,workout}` by `start_date`/`end_date` (asked a
//!   day wider each side, kept by Oura's own `day`), `heartrate` by
//!   `start_datetime`/`end_datetime`; `next_token` pages. Windows are cut to
//!   ≤ 30 days per request (heart rate's commonly quoted limit; Oura advises
//!   1–3 months for the others — UNCONFIRMED).
//! - Normalization (see the fixtures README): every value is dated by
//!   Oura's `day` verbatim (a night belongs to the wake-up day; a late nap to
//!   the next day). Sleep duration, HRV (`average_hrv`, ms) and resting HR
//!   come from the day's `long_sleep` period only — the longest one if there
//!   are several; naps and rest periods add nothing. Resting HR is
//!   `lowest_heart_rate` (Oura has no resting-HR value; project convention).
//!   Sleep duration is `total_sleep_duration` in minutes (to 0.1); calories
//!   are `total_calories` (kcal, as sent); SpO2 is `spo2_percentage.average`.
//!   Heart-rate rows carry only UTC times: their local day uses the UTC
//!   offset of the nearest local timestamp Oura sent in the same pull
//!   (sleep, workout, activity), or UTC when there is none.
//! - Revoke: `GET /oauth/revoke?access_token=` (POST as a fallback on
//!   404/405; method UNCONFIRMED). A 401 means the token is already dead.

use super::client::{check_status, get_api, paginate, send, Paging};
use crate::domain::connection::TokenSet;
use crate::domain::error::{Error, Result};
use crate::domain::event::{EventKind, WebhookEvent};
use crate::domain::health::{MetricType, Sample};
use crate::domain::vendor::{RawRecord, Vendor, VendorError};
use crate::vendors::client::VendorCtx;
use crate::vendors::driver::{
    FetchRequest, Fetched, Upkept, VendorDriver, WebhookReply, WebhookRequest,
};
use crate::vendors::quota::QuotaWindow;
use crate::vendors::signature::{
    Algorithm, Encoding, SignatureScheme, SignedMessage, TimestampRule, TimestampUnit,
};
use crate::vendors::spec::{ClientAuth, OAuthSpec, TokenResponseShape, VendorSpec};
use crate::vendors::time::{day_start, offset_at};
use crate::vendors::token::Grant;
use async_trait::async_trait;
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, SecondsFormat, Utc};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Oura: what the connector knows of the vendor.
pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Oura,
    display_name: "Oura",
    oauth: Some(OAuthSpec {
        auth_url: "https://cloud.ouraring.com/oauth/authorize",
        token_url: "https://api.ouraring.com/oauth/token",
        api_base: "https://api.ouraring.com",
        // `daily`: sleep, readiness, activity; `spo2Daily` is SpO2's current name.
        scopes: &["daily", "heartrate", "workout", "spo2Daily"],
        client_auth: ClientAuth::Body,
        extra_auth_params: &[],
        extra_token_params: &[],
        token_response: TokenResponseShape::Standard,
        pkce: true,
    }),
    quota: &[QuotaWindow::app(5_000, 300)],
    signature: Some(scheme()),
};

/// The Oura driver.
pub struct Oura;

const SOURCE: &str = "oura";
/// A sync never follows more pages than this per request window.
const MAX_PAGES: usize = 200;
/// The widest window asked for in one request (days).
const MAX_WINDOW_DAYS: i64 = 30;
const WEBHOOK_TOLERANCE_SECS: i64 = 300;
/// The longest handshake challenge echoed back.
const MAX_CHALLENGE_LEN: usize = 512;

/// Oura's webhook signature: hex HMAC-SHA256 of timestamp + body, fresh within 5 min.
pub const fn scheme() -> SignatureScheme {
    SignatureScheme {
        algorithm: Algorithm::HmacSha256,
        encoding: Encoding::Hex,
        message: SignedMessage::TimestampBody,
        signature_header: "x-oura-signature",
        timestamp: Some(TimestampRule {
            header: "x-oura-timestamp",
            unit: TimestampUnit::Seconds,
            tolerance_secs: WEBHOOK_TOLERANCE_SECS,
        }),
    }
}

#[derive(Clone, Deserialize)]
struct DailySleep {
    pub id: String,
    pub day: NaiveDate,
    #[serde(default)]
    pub score: Option<f64>,
}

#[derive(Clone, Deserialize)]
struct SleepPeriod {
    pub id: String,
    pub day: NaiveDate,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub bedtime_start: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub bedtime_end: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub total_sleep_duration: Option<f64>,
    #[serde(default)]
    pub average_hrv: Option<f64>,
    #[serde(default)]
    pub lowest_heart_rate: Option<f64>,
}

#[derive(Clone, Deserialize)]
struct DailyReadiness {
    pub id: String,
    pub day: NaiveDate,
    #[serde(default)]
    pub score: Option<f64>,
}

#[derive(Clone, Deserialize)]
struct DailyActivity {
    pub id: String,
    pub day: NaiveDate,
    #[serde(default)]
    pub steps: Option<f64>,
    #[serde(default)]
    pub total_calories: Option<f64>,
    #[serde(default)]
    pub timestamp: Option<DateTime<FixedOffset>>,
}

#[derive(Clone, Deserialize)]
struct Spo2Percentage {
    #[serde(default)]
    pub average: Option<f64>,
}

#[derive(Clone, Deserialize)]
struct DailySpo2 {
    pub id: String,
    pub day: NaiveDate,
    #[serde(default)]
    pub spo2_percentage: Option<Spo2Percentage>,
}

#[derive(Clone, Deserialize)]
struct Workout {
    pub id: String,
    pub day: NaiveDate,
    #[serde(default)]
    pub activity: Option<String>,
    #[serde(default)]
    pub calories: Option<f64>,
    #[serde(default)]
    pub distance: Option<f64>,
    pub start_datetime: DateTime<FixedOffset>,
    pub end_datetime: DateTime<FixedOffset>,
}

#[derive(Clone, Deserialize)]
struct HeartRate {
    pub timestamp: DateTime<FixedOffset>,
    pub bpm: f64,
}

/// One pull's documents, by collection.
#[derive(Default)]
struct Collections {
    pub daily_sleep: Vec<DailySleep>,
    pub sleep: Vec<SleepPeriod>,
    pub daily_readiness: Vec<DailyReadiness>,
    pub daily_activity: Vec<DailyActivity>,
    pub daily_spo2: Vec<DailySpo2>,
    pub workout: Vec<Workout>,
    pub heartrate: Vec<HeartRate>,
}

/// The UTC offsets Oura revealed in local timestamps, by instant.
fn known_offsets(c: &Collections) -> Vec<(DateTime<Utc>, FixedOffset)> {
    let mut out: Vec<(DateTime<Utc>, FixedOffset)> = Vec::new();
    let mut add = |t: &DateTime<FixedOffset>| out.push((t.with_timezone(&Utc), *t.offset()));
    for s in &c.sleep {
        s.bedtime_start
            .iter()
            .chain(s.bedtime_end.iter())
            .for_each(&mut add);
    }
    for w in &c.workout {
        add(&w.start_datetime);
        add(&w.end_datetime);
    }
    for a in &c.daily_activity {
        a.timestamp.iter().for_each(&mut add);
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

fn tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Normalizes one pull (rules in the module doc).
fn normalize(c: &Collections) -> Vec<Sample> {
    let mut out = Vec::new();
    let daily = |m: MetricType, d: NaiveDate, v: f64| Sample::daily(m, d, v, SOURCE);
    for s in &c.daily_sleep {
        if let Some(v) = s.score {
            out.push(daily(MetricType::SleepScore, s.day, v));
        }
    }
    for r in &c.daily_readiness {
        if let Some(v) = r.score {
            out.push(daily(MetricType::Readiness, r.day, v));
        }
    }
    for a in &c.daily_activity {
        if let Some(v) = a.steps {
            out.push(daily(MetricType::Steps, a.day, v));
        }
        if let Some(v) = a.total_calories {
            out.push(daily(MetricType::Calories, a.day, v));
        }
    }
    for s in &c.daily_spo2 {
        if let Some(v) = s.spo2_percentage.as_ref().and_then(|p| p.average) {
            out.push(daily(MetricType::Spo2, s.day, v));
        }
    }
    // The main sleep of each day: its longest long_sleep period.
    let mut main: BTreeMap<NaiveDate, &SleepPeriod> = BTreeMap::new();
    for s in c
        .sleep
        .iter()
        .filter(|s| s.kind.as_deref() == Some("long_sleep"))
    {
        let len = |p: &SleepPeriod| p.total_sleep_duration.unwrap_or(0.0);
        match main.get(&s.day) {
            Some(m) if len(m) >= len(s) => {}
            _ => {
                main.insert(s.day, s);
            }
        }
    }
    for (day, s) in main {
        if let Some(v) = s.total_sleep_duration {
            out.push(daily(MetricType::SleepDuration, day, tenth(v / 60.0)));
        }
        if let Some(v) = s.average_hrv {
            out.push(daily(MetricType::Hrv, day, v));
        }
        if let Some(v) = s.lowest_heart_rate {
            out.push(daily(MetricType::RestingHr, day, v));
        }
    }
    for w in &c.workout {
        let sport = w.activity.clone().unwrap_or_else(|| "activity".into());
        let start = w.start_datetime.with_timezone(&Utc);
        let minutes = tenth((w.end_datetime - w.start_datetime).num_seconds() as f64 / 60.0);
        let at = |m: MetricType, v: f64| {
            Sample::at(m, w.day, start, v, SOURCE).with_label(sport.clone())
        };
        out.push(at(MetricType::WorkoutDuration, minutes));
        if let Some(v) = w.calories {
            out.push(at(MetricType::WorkoutCalories, v));
        }
        if let Some(v) = w.distance {
            out.push(at(MetricType::WorkoutDistance, v));
        }
    }
    let known = known_offsets(c);
    for h in &c.heartrate {
        let t = h.timestamp.with_timezone(&Utc);
        let day = t.with_timezone(&offset_at(&known, t)).date_naive();
        out.push(Sample::at(MetricType::HeartRate, day, t, h.bpm, SOURCE));
    }
    out
}

const PAGING: Paging = Paging {
    request_param: "next_token",
    items: "data",
    next: "next_token",
    max_pages: MAX_PAGES,
};

/// Every page of one collection for one window, with each record's raw JSON.
async fn collect<T: DeserializeOwned>(
    ctx: &VendorCtx,
    token: &str,
    path: &str,
    params: &[(&str, String)],
) -> Result<Vec<(T, String)>, VendorError> {
    paginate(ctx, token, path, params, &PAGING).await
}

/// `[from, to]` cut into windows of at most MAX_WINDOW_DAYS days.
fn windows(from: NaiveDate, to: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = (start + Duration::days(MAX_WINDOW_DAYS - 1)).min(to);
        out.push((start, end));
        start = end + Duration::days(1);
    }
    out
}

/// A date collection over `[from, to]`, window by window.
async fn by_dates<T: DeserializeOwned>(
    ctx: &VendorCtx,
    token: &str,
    path: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(T, String)>, VendorError> {
    let mut out = Vec::new();
    for (a, b) in windows(from, to) {
        let params = [("start_date", a.to_string()), ("end_date", b.to_string())];
        out.extend(collect(ctx, token, path, &params).await?);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct PersonalInfo {
    id: String,
}

#[derive(Deserialize)]
struct Notification {
    event_type: String,
    data_type: String,
    #[serde(default)]
    object_id: Option<String>,
    event_time: DateTime<FixedOffset>,
    user_id: String,
}

/// The body without insignificant whitespace, key order kept: what
/// `JSON.stringify(JSON.parse(body))` gives for Oura's string-only payloads.
/// None when that is the body itself.
fn compact_json(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in body {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            if b == b'"' {
                in_string = true;
            }
            out.push(b);
        }
    }
    (out != body).then_some(out)
}

/// The deterministic dedup id of an Oura event.
fn event_id(
    user_id: &str,
    data_type: &str,
    object_id: &str,
    event_type: &str,
    at: &DateTime<Utc>,
) -> String {
    let at = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let digest = Sha256::digest(
        [user_id, data_type, object_id, event_type, &at]
            .join("\u{1f}")
            .as_bytes(),
    );
    format!("oura-{}", hex::encode(&digest[..20]))
}

fn handshake(ctx: &VendorCtx, req: &WebhookRequest<'_>) -> Result<WebhookReply> {
    let token = req.query.get("verification_token").map(String::as_str);
    if !ctx.creds.verify_tokens().matches("oura", token) {
        tracing::warn!(
            vendor = "oura",
            "subscription handshake with a wrong verification token"
        );
        return Err(Error::Unauthorized(
            "verification token does not match".into(),
        ));
    }
    let challenge = req
        .query
        .get("challenge")
        .filter(|c| !c.is_empty() && c.len() <= MAX_CHALLENGE_LEN)
        .ok_or_else(|| Error::BadRequest("challenge is missing or too long".into()))?;
    Ok(WebhookReply::Handshake {
        status: 200,
        content_type: "application/json",
        body: serde_json::json!({ "challenge": challenge }).to_string(),
    })
}

#[async_trait]
impl VendorDriver for Oura {
    fn vendor(&self) -> Vendor {
        Vendor::Oura
    }

    /// Subscriptions are kept once this deployment's webhook URL and the
    /// verification token its handshake answers with are configured.
    fn upkeep_every(&self, ctx: &VendorCtx) -> Option<Duration> {
        (ctx.creds.webhook_url.is_some() && ctx.creds.verify_token.is_some())
            .then(|| Duration::hours(subscriptions::UPKEEP_EVERY_HOURS))
    }

    async fn upkeep(&self, ctx: &VendorCtx, now: DateTime<Utc>) -> Result<Upkept, VendorError> {
        let Some(callback) = ctx.creds.webhook_url.as_deref() else {
            return Ok(Upkept::default());
        };
        let renew_within = Duration::days(subscriptions::RENEW_WITHIN_DAYS);
        let report = subscriptions::ensure(ctx, callback, now, renew_within).await?;
        Ok(Upkept {
            created: report.created.len(),
            renewed: report.renewed.len(),
        })
    }

    async fn identify(&self, ctx: &VendorCtx, grant: &Grant) -> Result<String, VendorError> {
        let p: PersonalInfo = get_api(
            ctx,
            grant.tokens.access_token.expose(),
            "/v2/usercollection/personal_info",
            "personal_info",
        )
        .await?;
        Ok(p.id)
    }

    async fn webhook(&self, ctx: &VendorCtx, req: &WebhookRequest<'_>) -> Result<WebhookReply> {
        if req.method == http::Method::GET {
            return handshake(ctx, req);
        }
        if req.method != http::Method::POST {
            return Err(Error::NotFound(
                "Oura sends GET handshakes and POST events".into(),
            ));
        }
        // Oura signs with the app's client secret.
        let secret = ctx.creds.client_secrets();
        if let Err(raw_err) = req.authenticate(Vendor::Oura, &scheme(), secret) {
            // Oura's example signs the compact re-serialization of the body.
            let compact = compact_json(req.body).ok_or(raw_err)?;
            let again = WebhookRequest {
                body: &compact,
                ..*req
            };
            again.authenticate(Vendor::Oura, &scheme(), secret)?;
        }
        let n: Notification = serde_json::from_slice(req.body)
            .map_err(|e| Error::BadRequest(format!("Oura webhook body: {e}")))?;
        let object_id = n.object_id.unwrap_or_default();
        let ok = |s: &str| !s.is_empty() && s.len() <= 128;
        if !["create", "update", "delete"].contains(&n.event_type.as_str()) {
            return Ok(WebhookReply::not_synced(&n.event_type));
        }
        if !ok(&n.data_type) || !ok(&n.user_id) || object_id.len() > 128 {
            return Err(Error::BadRequest(format!(
                "Oura webhook event {:?} / data type {:?} not understood",
                n.event_type, n.data_type
            )));
        }
        let at = n.event_time.with_timezone(&Utc);
        Ok(WebhookReply::Events(vec![WebhookEvent {
            event_id: event_id(&n.user_id, &n.data_type, &object_id, &n.event_type, &at),
            vendor_user_id: n.user_id,
            date: (at + Duration::hours(12)).date_naive(),
            kind: EventKind::DataChanged,
        }]))
    }

    async fn fetch(&self, ctx: &VendorCtx, req: FetchRequest<'_>) -> Result<Fetched, VendorError> {
        let t = req.access_token;
        // Date parameters are the user's days; ask one day wider each side
        // and keep what Oura dates inside the window.
        let (from, to) = (req.from - Duration::days(1), req.to + Duration::days(1));
        let p = "/v2/usercollection/";
        let daily_sleep: Vec<(DailySleep, String)> =
            by_dates(ctx, t, &format!("{p}daily_sleep"), from, to).await?;
        let sleep: Vec<(SleepPeriod, String)> =
            by_dates(ctx, t, &format!("{p}sleep"), from, to).await?;
        let daily_readiness: Vec<(DailyReadiness, String)> =
            by_dates(ctx, t, &format!("{p}daily_readiness"), from, to).await?;
        let daily_activity: Vec<(DailyActivity, String)> =
            by_dates(ctx, t, &format!("{p}daily_activity"), from, to).await?;
        let daily_spo2: Vec<(DailySpo2, String)> =
            by_dates(ctx, t, &format!("{p}daily_spo2"), from, to).await?;
        let workout: Vec<(Workout, String)> =
            by_dates(ctx, t, &format!("{p}workout"), from, to).await?;
        // Heart rate by UTC instants: every offset of the window's days.
        let mut heartrate: Vec<(HeartRate, String)> = Vec::new();
        for (a, b) in windows(from, to) {
            let instant = |d: NaiveDate| day_start(d).to_rfc3339_opts(SecondsFormat::Secs, true);
            let params = [
                ("start_datetime", instant(a)),
                ("end_datetime", instant(b + Duration::days(1))),
            ];
            heartrate.extend(collect(ctx, t, &format!("{p}heartrate"), &params).await?);
        }

        let c = Collections {
            daily_sleep: firsts(&daily_sleep),
            sleep: firsts(&sleep),
            daily_readiness: firsts(&daily_readiness),
            daily_activity: firsts(&daily_activity),
            daily_spo2: firsts(&daily_spo2),
            workout: firsts(&workout),
            heartrate: firsts(&heartrate),
        };
        let in_window = |d: NaiveDate| d >= req.from && d <= req.to;
        let samples: Vec<Sample> = normalize(&c)
            .into_iter()
            .filter(|x| in_window(x.date))
            .collect();

        let mut raw = Vec::new();
        let mut keep = |kind: &str, id: &str, day: NaiveDate, json: &str| {
            raw.push(RawRecord {
                kind: kind.to_string(),
                id: id.to_string(),
                date: day,
                json: json.to_string(),
            })
        };
        daily_sleep
            .iter()
            .for_each(|(x, j)| keep("daily_sleep", &x.id, x.day, j));
        sleep
            .iter()
            .for_each(|(x, j)| keep("sleep", &x.id, x.day, j));
        daily_readiness
            .iter()
            .for_each(|(x, j)| keep("daily_readiness", &x.id, x.day, j));
        daily_activity
            .iter()
            .for_each(|(x, j)| keep("daily_activity", &x.id, x.day, j));
        daily_spo2
            .iter()
            .for_each(|(x, j)| keep("daily_spo2", &x.id, x.day, j));
        workout
            .iter()
            .for_each(|(x, j)| keep("workout", &x.id, x.day, j));
        // Heart-rate rows have no id: one raw record per local day.
        let mut hr_days: BTreeMap<NaiveDate, Vec<&str>> = BTreeMap::new();
        for s in samples.iter().filter(|s| s.metric == MetricType::HeartRate) {
            hr_days.entry(s.date).or_default();
        }
        let known = known_offsets(&c);
        for (h, j) in &heartrate {
            let t = h.timestamp.with_timezone(&Utc);
            let day = t.with_timezone(&offset_at(&known, t)).date_naive();
            if let Some(rows) = hr_days.get_mut(&day) {
                rows.push(j);
            }
        }
        for (day, rows) in hr_days {
            let id = day.to_string();
            keep("heartrate", &id, day, &format!("[{}]", rows.join(",")));
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
        let mut url = ctx.api_url("/oauth/revoke")?;
        url.query_pairs_mut()
            .append_pair("access_token", tokens.access_token.expose());
        let mut answer = send(ctx, ctx.http.get(url.clone())).await?;
        if matches!(answer.status.as_u16(), 404 | 405) {
            answer = send(ctx, ctx.http.post(url)).await?;
        }
        check_status(&answer, "revoke", Utc::now())?;
        Ok(true)
    }
}

fn firsts<T: Clone>(v: &[(T, String)]) -> Vec<T> {
    v.iter().map(|(x, _)| x.clone()).collect()
}

pub mod subscriptions;

#[cfg(test)]
mod tests;
