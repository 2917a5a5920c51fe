//! Terra (API v2), an aggregator: Terra holds and refreshes each wearable
//! provider's tokens; we call it with the app's credentials. Facts and
//! sources: docs/vendors/terra.md.
//!
//! - Credentials: `CONNECTOR_TERRA_CLIENT_ID` is the `dev-id`,
//!   `CONNECTOR_TERRA_CLIENT_SECRET` the `x-api-key`,
//!   `CONNECTOR_TERRA_WEBHOOK_SECRET` the signing secret.
//! - Connect (a hosted flow, not OAuth): `POST /v2/auth/authenticateUser?
//!   resource=<PROVIDER>` with our single-use state as `reference_id` and our
//!   callback as the success/failure redirect → the provider's `auth_url`.
//!   Terra redirects back with `user_id` and `reference_id`; the callback
//!   confirms with `GET /v2/userInfo?user_id=` that the Terra user carries
//!   that `reference_id` before connecting it. (Terra's widget session is
//!   deprecated since 3 Nov 2026.) The connection keeps no provider token —
//!   only a marker sealed in the token slot, since Terra holds the tokens.
//! - Webhooks: `terra-signature: t=<unix s>,v1=<hex>[,v1=…]`, hex
//!   HMAC-SHA256(secret, t + "." + raw body), any v1 may match, ±300 s (as
//!   Terra's SDK); data events (daily, sleep, activity, body) only trigger a
//!   pull; `deauth` and `access_revoked` mark the connection revoked; every
//!   other type (auth, healthcheck, …) is acknowledged. Dedup key: a hash of
//!   the event type, user and the records' ids/start times.
//! - Data: `GET /v2/{daily,sleep,activity,body}?user_id&start_date&end_date
//!   &to_webhook=false`; values on the date of the payload's local ISO time
//!   (sleep: its end, the wake-up day).
//! - Disconnect: `DELETE /v2/auth/deauthenticateUser?user_id=`.

use super::client::{check_status, send};
use crate::domain::connection::{Secret, TokenSet};
use crate::domain::error::{Error, Result};
use crate::domain::event::{EventKind, WebhookEvent};
use crate::domain::health::{MetricType, Sample};
use crate::domain::vendor::{RawRecord, Vendor, VendorError};
use crate::vendors::client::VendorCtx;
use crate::vendors::driver::{
    FetchRequest, Fetched, HostedConnect, VendorDriver, WebhookReply, WebhookRequest,
};
use crate::vendors::quota::QuotaWindow;
use crate::vendors::signature::{
    Algorithm, Encoding, Rejection, SignatureScheme, SignedMessage, TimestampRule, TimestampUnit,
};
use crate::vendors::spec::{ClientAuth, OAuthSpec, TokenResponseShape, VendorSpec};
use crate::vendors::token::Grant;
use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Terra: what the connector knows of the vendor.
pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Terra,
    display_name: "Terra",
    oauth: Some(OAuthSpec {
        auth_url: "https://api.tryterra.co/v2/auth/authenticateUser",
        token_url: "https://api.tryterra.co/v2/auth/token",
        api_base: "https://api.tryterra.co",
        scopes: &[],
        client_auth: ClientAuth::Body,
        extra_auth_params: &[],
        extra_token_params: &[],
        token_response: TokenResponseShape::Standard,
        pkce: true,
    }),
    quota: &[QuotaWindow::app(100, 60)],
    signature: Some(scheme()),
};

/// The Terra driver: an aggregator of other wearables' data.
pub struct Terra;

const SOURCE: &str = "terra";
const WEBHOOK_TOLERANCE_SECS: i64 = 300;
/// The header Terra signs webhooks in: `t=<unix s>,v1=<hex HMAC>`.
pub const SIGNATURE_HEADER: &str = "terra-signature";
/// What the token slot of a Terra connection holds: Terra keeps the real ones.
const NO_USER_TOKEN: &str = "terra-app-credentials";

/// Terra's rule over a split header: `t` and one `v1` as two header values.
pub const fn scheme() -> SignatureScheme {
    SignatureScheme {
        algorithm: Algorithm::HmacSha256,
        encoding: Encoding::Hex,
        message: SignedMessage::TimestampDotBody,
        signature_header: "x-terra-v1",
        timestamp: Some(TimestampRule {
            header: "x-terra-t",
            unit: TimestampUnit::Seconds,
            tolerance_secs: WEBHOOK_TOLERANCE_SECS,
        }),
    }
}

/// The `terra-signature` value a sender computes.
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    let t = t.to_string();
    format!("t={t},v1={}", scheme().sign(secret, Some(&t), body))
}

/// Checks `terra-signature` (any v1 may match; only v1 counts).
pub fn verify(
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), Rejection> {
    let raw = headers
        .get(SIGNATURE_HEADER)
        .ok_or(Rejection::MissingHeader(SIGNATURE_HEADER))?
        .to_str()
        .map_err(|_| Rejection::Malformed(SIGNATURE_HEADER))?;
    let mut t = None;
    let mut candidates = Vec::new();
    for part in raw.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("v1", v)) => candidates.push(v),
            _ => {}
        }
    }
    let t = t.ok_or(Rejection::Malformed(SIGNATURE_HEADER))?;
    if candidates.is_empty() {
        return Err(Rejection::Malformed(SIGNATURE_HEADER));
    }
    let mut last = Rejection::BadSignature;
    for v1 in candidates {
        let mut h = HeaderMap::new();
        let value =
            |s: &str| HeaderValue::from_str(s).map_err(|_| Rejection::Malformed(SIGNATURE_HEADER));
        h.insert("x-terra-t", value(t)?);
        h.insert("x-terra-v1", value(v1)?);
        match scheme().verify(secret, &h, body, now) {
            Ok(()) => return Ok(()),
            Err(Rejection::Stale(s)) => return Err(Rejection::Stale(s)),
            Err(e) => last = e,
        }
    }
    Err(match last {
        Rejection::MissingHeader(_) | Rejection::Malformed(_) => {
            Rejection::Malformed(SIGNATURE_HEADER)
        }
        other => other,
    })
}

/// The user-local date of a Terra time: its own date part (with an offset
/// it is the local time; without one Terra says it already is).
fn local_date(v: &Value) -> Option<NaiveDate> {
    v.as_str()?.get(..10)?.parse().ok()
}

fn utc(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_f64()
}

fn list<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Vec<Value>> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_array()
}

/// The daily values read from a `daily` record, by path.
const DAILY_VALUES: [(MetricType, &[&str]); 5] = [
    (MetricType::Steps, &["distance_data", "steps"]),
    (
        MetricType::Calories,
        &["calories_data", "total_burned_calories"],
    ),
    (
        MetricType::RestingHr,
        &["heart_rate_data", "summary", "resting_hr_bpm"],
    ),
    (
        MetricType::HeartRate,
        &["heart_rate_data", "summary", "avg_hr_bpm"],
    ),
    (
        MetricType::Spo2,
        &["oxygen_data", "avg_saturation_percentage"],
    ),
];
const SLEEP_ASLEEP_SECONDS: &[&str] = &[
    "sleep_durations_data",
    "asleep",
    "duration_asleep_state_seconds",
];
const SLEEP_SCORE: &[&str] = &["scores", "sleep"];
const SLEEP_HRV: &[&str] = &["heart_rate_data", "summary", "avg_hrv_rmssd"];
const ACTIVITY_CALORIES: &[&str] = &["calories_data", "total_burned_calories"];
const ACTIVITY_METERS: &[&str] = &["distance_data", "summary", "distance_meters"];
const BODY_MEASUREMENTS: &[&str] = &["measurements_data", "measurements"];
const BODY_GLUCOSE: &[&str] = &["glucose_data", "blood_glucose_samples"];

/// Every path the normalizer reads, by Terra data type (`*`: each item of
/// a list), for the test that holds them to Terra's description.
#[cfg(test)]
fn paths_read() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    let meta = |kind, field| (kind, vec!["metadata", field]);
    out.extend(DAILY_VALUES.iter().map(|(_, p)| ("daily", p.to_vec())));
    out.push(meta("daily", "start_time"));
    for p in [SLEEP_ASLEEP_SECONDS, SLEEP_SCORE, SLEEP_HRV] {
        out.push(("sleep", p.to_vec()));
    }
    out.extend([meta("sleep", "is_nap"), meta("sleep", "end_time")]);
    for p in [ACTIVITY_CALORIES, ACTIVITY_METERS] {
        out.push(("activity", p.to_vec()));
    }
    out.extend([
        meta("activity", "start_time"),
        meta("activity", "end_time"),
        meta("activity", "name"),
    ]);
    for field in ["measurement_time", "weight_kg"] {
        out.push(("body", [BODY_MEASUREMENTS, &["*", field]].concat()));
    }
    for field in ["timestamp", "blood_glucose_mg_per_dL"] {
        out.push(("body", [BODY_GLUCOSE, &["*", field]].concat()));
    }
    out
}

/// Normalizes the `data` records of one Terra type.
fn normalize(kind: &str, data: &[Value]) -> Vec<Sample> {
    let mut out = Vec::new();
    for d in data {
        let meta = &d["metadata"];
        match kind {
            "daily" => {
                let Some(day) = local_date(&meta["start_time"]) else {
                    continue;
                };
                for (metric, path) in DAILY_VALUES {
                    if let Some(v) = num(d, path) {
                        out.push(Sample::daily(metric, day, v, SOURCE));
                    }
                }
            }
            "sleep" => {
                if meta["is_nap"].as_bool() == Some(true) {
                    continue;
                }
                let Some(day) = local_date(&meta["end_time"]) else {
                    continue;
                };
                if let Some(s) = num(d, SLEEP_ASLEEP_SECONDS) {
                    out.push(Sample::daily(
                        MetricType::SleepDuration,
                        day,
                        (s / 60.0).round(),
                        SOURCE,
                    ));
                }
                if let Some(v) = num(d, SLEEP_SCORE) {
                    out.push(Sample::daily(MetricType::SleepScore, day, v, SOURCE));
                }
                if let Some(v) = num(d, SLEEP_HRV) {
                    out.push(Sample::daily(MetricType::Hrv, day, v, SOURCE));
                }
            }
            "activity" => {
                let (Some(day), Some(start), Some(end)) = (
                    local_date(&meta["start_time"]),
                    utc(&meta["start_time"]),
                    utc(&meta["end_time"]),
                ) else {
                    continue;
                };
                let label = meta["name"]
                    .as_str()
                    .map(str::to_lowercase)
                    .unwrap_or_else(|| "activity".into());
                let minutes = ((end - start).num_seconds() as f64 / 60.0).round();
                out.push(
                    Sample::at(MetricType::WorkoutDuration, day, start, minutes, SOURCE)
                        .with_label(label.clone()),
                );
                if let Some(k) = num(d, ACTIVITY_CALORIES) {
                    out.push(
                        Sample::at(MetricType::WorkoutCalories, day, start, k, SOURCE)
                            .with_label(label.clone()),
                    );
                }
                if let Some(m) = num(d, ACTIVITY_METERS) {
                    out.push(
                        Sample::at(MetricType::WorkoutDistance, day, start, m, SOURCE)
                            .with_label(label),
                    );
                }
            }
            "body" => {
                for m in list(d, BODY_MEASUREMENTS).into_iter().flatten() {
                    let (Some(day), Some(at), Some(kg)) = (
                        local_date(&m["measurement_time"]),
                        utc(&m["measurement_time"]),
                        m["weight_kg"].as_f64(),
                    ) else {
                        continue;
                    };
                    out.push(Sample::at(MetricType::BodyWeight, day, at, kg, SOURCE));
                }
                for g in list(d, BODY_GLUCOSE).into_iter().flatten() {
                    let (Some(day), Some(at), Some(v)) = (
                        local_date(&g["timestamp"]),
                        utc(&g["timestamp"]),
                        g["blood_glucose_mg_per_dL"].as_f64(),
                    ) else {
                        continue;
                    };
                    out.push(Sample::at(MetricType::Glucose, day, at, v, SOURCE));
                }
            }
            _ => {}
        }
    }
    out
}

const DATA_TYPES: [&str; 4] = ["daily", "sleep", "activity", "body"];

/// The events of an authenticated Terra webhook body.
fn parse_webhook(body: &[u8], now: DateTime<Utc>) -> Result<Vec<WebhookEvent>> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("Terra webhook body: {e}")))?;
    let kind = v["type"]
        .as_str()
        .ok_or_else(|| Error::BadRequest("Terra webhook has no type".into()))?;
    let event = |kind_of: EventKind, date: NaiveDate| -> Result<Vec<WebhookEvent>> {
        let user = v["user"]["user_id"]
            .as_str()
            .filter(|u| !u.is_empty() && u.len() <= 64)
            .ok_or_else(|| Error::BadRequest("Terra webhook has no user.user_id".into()))?;
        // Re-deliveries carry the same records: hash what identifies them.
        let ids: Vec<String> = v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                d["metadata"]["summary_id"]
                    .as_str()
                    .or(d["metadata"]["start_time"].as_str())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        let key = format!("{kind}|{user}|{}|{}", ids.join(","), v["status"]);
        Ok(vec![WebhookEvent {
            event_id: hex::encode(Sha256::digest(key.as_bytes())),
            vendor_user_id: user.to_string(),
            date,
            kind: kind_of,
        }])
    };
    match kind {
        k if DATA_TYPES.contains(&k) => {
            let samples = normalize(k, v["data"].as_array().map_or(&[][..], |a| a.as_slice()));
            let date = samples
                .iter()
                .map(|s| s.date)
                .max()
                .unwrap_or_else(|| now.date_naive());
            event(EventKind::DataChanged, date)
        }
        "deauth" | "access_revoked" => event(EventKind::Deauthorized, now.date_naive()),
        _ => Ok(Vec::new()),
    }
}

fn app_request(
    ctx: &VendorCtx,
    req: reqwest::RequestBuilder,
) -> Result<reqwest::RequestBuilder, VendorError> {
    let missing = || VendorError::Permanent("Terra dev-id and API key are not configured".into());
    let dev_id = ctx.creds.client_id.as_deref().ok_or_else(missing)?;
    let key = ctx.creds.client_secret.as_ref().ok_or_else(missing)?;
    Ok(req
        .header("dev-id", dev_id)
        .header("x-api-key", key.expose()))
}

/// Calls Terra with the app's credentials. A 401 means the API key itself
/// was refused: no user token would help, so it is not retried as one.
async fn call(
    ctx: &VendorCtx,
    req: reqwest::RequestBuilder,
    what: &str,
) -> Result<Value, VendorError> {
    let answer = send(ctx, app_request(ctx, req)?).await?;
    match check_status(&answer, what, Utc::now()) {
        Err(VendorError::Unauthorized) => Err(VendorError::Permanent(format!(
            "{what}: Terra refused the app's dev-id or API key"
        ))),
        other => other,
    }?;
    answer.json(what)
}

#[async_trait]
impl VendorDriver for Terra {
    fn vendor(&self) -> Vendor {
        Vendor::Terra
    }

    async fn identify(&self, _ctx: &VendorCtx, _grant: &Grant) -> Result<String, VendorError> {
        Err(VendorError::Permanent(
            "Terra connects through its hosted flow, not an OAuth code".into(),
        ))
    }

    async fn hosted_connect(
        &self,
        ctx: &VendorCtx,
        req: &HostedConnect<'_>,
    ) -> Result<Option<url::Url>, VendorError> {
        let provider = req.provider.ok_or_else(|| VendorError::BadInput {
            field: "provider",
            reason:
                "Terra connects through a wearable provider: send e.g. {\"provider\":\"GARMIN\"}"
                    .into(),
        })?;
        let mut url = ctx.api_url("/v2/auth/authenticateUser")?;
        url.query_pairs_mut()
            .append_pair("resource", &provider.to_uppercase());
        let body = serde_json::json!({
            "reference_id": req.state,
            "auth_success_redirect_url": req.callback_url.as_str(),
            "auth_failure_redirect_url": req.callback_url.as_str(),
            "language": "en",
        });
        let v = call(ctx, ctx.http.post(url).json(&body), "authenticateUser").await?;
        let auth_url = v["auth_url"]
            .as_str()
            .and_then(|u| url::Url::parse(u).ok())
            .ok_or_else(|| VendorError::Permanent("authenticateUser: no auth_url".into()))?;
        Ok(Some(auth_url))
    }

    async fn hosted_callback(
        &self,
        ctx: &VendorCtx,
        state: &str,
        query: &HashMap<String, String>,
    ) -> Result<Option<(String, TokenSet)>, VendorError> {
        let user_id = query
            .get("user_id")
            .filter(|u| !u.is_empty() && u.len() <= 64)
            .ok_or_else(|| VendorError::Permanent("Terra callback without user_id".into()))?;
        let mut url = ctx.api_url("/v2/userInfo")?;
        url.query_pairs_mut().append_pair("user_id", user_id);
        let info = call(ctx, ctx.http.get(url), "userInfo").await?;
        let reference = info["user"]["reference_id"].as_str().unwrap_or_default();
        // Constant time: the state is a secret until it is spent.
        if !crate::vendors::signature::secret_matches(Some(reference), Some(&Secret::new(state))) {
            return Err(VendorError::Permanent(
                "the Terra user was made for another connect request".into(),
            ));
        }
        Ok(Some((
            user_id.clone(),
            TokenSet {
                access_token: Secret::new(NO_USER_TOKEN),
                refresh_token: None,
                expires_at: None,
                scopes: info["user"]["scopes"]
                    .as_str()
                    .map(|s| s.split(',').map(String::from).collect())
                    .unwrap_or_default(),
            },
        )))
    }

    async fn webhook(&self, ctx: &VendorCtx, req: &WebhookRequest<'_>) -> Result<WebhookReply> {
        if req.method != http::Method::POST {
            return Err(Error::NotFound(
                "Terra has no subscription handshake".into(),
            ));
        }
        let secrets = ctx.creds.webhook_secrets();
        if secrets.current.is_none() {
            tracing::warn!(
                vendor = "terra",
                "webhook secret not configured; rejecting delivery"
            );
            return Err(Rejection::BadSignature.into());
        }
        if let Err(rejection) = secrets.verify("terra", |secret| {
            verify(secret, req.headers, req.body, req.now)
        }) {
            tracing::warn!(vendor = "terra", reason = %rejection, bytes = req.body.len(), "webhook rejected");
            return Err(rejection.into());
        }
        Ok(WebhookReply::Events(parse_webhook(req.body, req.now)?))
    }

    async fn fetch(&self, ctx: &VendorCtx, req: FetchRequest<'_>) -> Result<Fetched, VendorError> {
        let mut samples = Vec::new();
        let mut raw = Vec::new();
        for kind in DATA_TYPES {
            let mut url = ctx.api_url(&format!("/v2/{kind}"))?;
            url.query_pairs_mut()
                .append_pair("user_id", req.vendor_user_id)
                .append_pair("start_date", &(req.from - Duration::days(1)).to_string())
                .append_pair("end_date", &(req.to + Duration::days(1)).to_string())
                .append_pair("to_webhook", "false");
            let v = call(ctx, ctx.http.get(url), kind).await?;
            let data = v["data"].as_array().cloned().unwrap_or_default();
            for d in &data {
                let one = normalize(kind, std::slice::from_ref(d));
                let Some(date) = one.iter().map(|s| s.date).max() else {
                    continue;
                };
                let meta = &d["metadata"];
                let id = meta["summary_id"]
                    .as_str()
                    .or(meta["start_time"].as_str())
                    .unwrap_or_default()
                    .to_string();
                raw.push(RawRecord {
                    kind: kind.to_string(),
                    id,
                    date,
                    json: d.to_string(),
                });
                samples.extend(one);
            }
        }
        let in_window = |d: NaiveDate| d >= req.from && d <= req.to;
        samples.retain(|s: &Sample| in_window(s.date));
        raw.retain(|r| in_window(r.date));
        Ok(Fetched { samples, raw })
    }

    async fn revoke(
        &self,
        ctx: &VendorCtx,
        vendor_user_id: &str,
        _tokens: &TokenSet,
    ) -> Result<bool, VendorError> {
        let mut url = ctx.api_url("/v2/auth/deauthenticateUser")?;
        url.query_pairs_mut().append_pair("user_id", vendor_user_id);
        call(ctx, ctx.http.delete(url), "deauthenticateUser").await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
