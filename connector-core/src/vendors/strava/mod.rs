//! Strava (API v3). Facts and sources: docs/vendors/strava.md.
//!
//! - OAuth: client credentials in the form body; scopes are comma-separated
//!   (`read,activity:read_all`, one scope entry so the `oauth2` crate does
//!   not join them with a space); PKCE is not documented — the connector
//!   sends a challenge anyway and Strava ignores it. Access tokens live 6 h;
//!   every refresh may return a new refresh token and the old one dies at
//!   once (the refresh lease in refresh.rs spends each one once).
//! - User id: the exchange response's `athlete.id` (no extra call).
//! - Webhooks: one app-level push subscription. The validation GET
//!   `?hub.mode=subscribe&hub.challenge=…&hub.verify_token=…` is answered
//!   `200 {"hub.challenge": "…"}` only when the verify token matches
//!   `CONNECTOR_STRAVA_VERIFY_TOKEN` (constant time), else 403. Event POSTs
//!   are **unsigned**: they are accepted only when `subscription_id` equals
//!   `CONNECTOR_STRAVA_SUBSCRIPTION_ID` (else 401), and they carry no data
//!   we trust — an activity event only queues a pull with the athlete's own
//!   token. The event has only `event_time` (epoch s), so the pull covers the
//!   local days around it: `date` = the UTC date 14 h after `event_time` (the
//!   latest local date anywhere), and the worker pulls `date-1..=date`.
//!   `object_type=athlete` with `updates.authorized == "false"` is a
//!   deauthorization. Dedup id (Strava sends none):
//!   `strava:<subscription_id>:<owner_id>:<object_id>:<aspect_type>:<event_time>`.
//!   A stale `event_time` is not refused: the body is unsigned, so its
//!   timestamp proves nothing, and a late event only causes a pull.
//! - Data: `GET /api/v3/athlete/activities?after=&before=&page=&per_page=`
//!   (epoch s on `start_date`, newest first), paged until a short page; then
//!   `GET /api/v3/activities/{id}` for each activity in the window (at most
//!   `MAX_DETAILS` a sync) because only the detailed activity has
//!   `calories`. Strava has no sleep, HRV, resting HR or daily totals.
//! - Normalization: a workout belongs to the date of `start_date_local` (the
//!   athlete's wall clock, written with a misleading `Z`: never converted);
//!   its time is `start_date` (UTC). Label = `sport_type` (else `type`).
//!   Duration = `elapsed_time` in minutes (0.1 min); distance in metres;
//!   kcal only from the detailed activity's `calories` (`kilojoules` is
//!   mechanical work and is not converted); average heart rate as a
//!   `heart_rate` sample at the start (bpm); `average_watts` as power.
//! - Rate limits: 429 carries no Retry-After: the wait runs to the next
//!   quarter hour (:00/:15/:30/:45 UTC), or to 00:00 UTC when a daily usage
//!   in `X-ReadRateLimit-Usage` / `X-RateLimit-Usage` has reached its limit.
//! - Revoke: `POST https://www.strava.com/oauth/deauthorize` with the access
//!   token (a reported successor `/oauth/revoke` is UNCONFIRMED).
//! - Not done: a `delete` event queues a pull of its days, but samples of a
//!   deleted activity already stored stay (the store has no per-record delete).

use super::client::{check_status, send, token_still_honoured, Answer};
use crate::domain::connection::{Secret, TokenSet};
use crate::domain::error::{Error, Result};
use crate::domain::event::{EventKind, WebhookEvent};
use crate::domain::health::{MetricType, Sample};
use crate::domain::vendor::{RawRecord, Vendor, VendorError};
use crate::vendors::client::VendorCtx;
use crate::vendors::driver::{FetchRequest, Fetched, VendorDriver, WebhookReply, WebhookRequest};
use crate::vendors::quota::QuotaWindow;
use crate::vendors::signature::secret_matches;
use crate::vendors::spec::{ClientAuth, OAuthSpec, TokenResponseShape, VendorSpec};
use crate::vendors::time::day_start;
use crate::vendors::token::Grant;
use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Timelike, Utc};
use serde::Deserialize;
use std::collections::HashMap;

/// Strava: what the connector knows of the vendor.
pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Strava,
    display_name: "Strava",
    // Strava wants scopes comma-separated: one entry, so the oauth2 crate
    // sends it as is. Data paths (/api/v3/...) and /oauth/deauthorize are
    // both under the origin.
    oauth: Some(OAuthSpec {
        auth_url: "https://www.strava.com/oauth/authorize",
        token_url: "https://www.strava.com/api/v3/oauth/token",
        api_base: "https://www.strava.com",
        scopes: &["read,activity:read_all"],
        client_auth: ClientAuth::Body,
        extra_auth_params: &[("approval_prompt", "auto")],
        extra_token_params: &[],
        token_response: TokenResponseShape::Standard,
        pkce: true,
    }),
    // Read limits: 100 per 15 minutes, 1,000 a day.
    quota: &[QuotaWindow::app(100, 900), QuotaWindow::app(1_000, 86_400)],
    signature: None,
};

/// The Strava driver.
pub struct Strava;

const SOURCE: &str = "strava";
const PER_PAGE: usize = 100;
const MAX_PAGES: usize = 50;
/// Detailed-activity calls per sync (each counts against the read quota).
const MAX_DETAILS: usize = 30;
const ACTIVITIES_PATH: &str = "/api/v3/athlete/activities";
const DEAUTHORIZE_PATH: &str = "/oauth/deauthorize";

#[derive(Clone, Debug, Deserialize)]
struct Activity {
    pub id: i64,
    #[serde(default)]
    pub sport_type: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub start_date: DateTime<Utc>,
    pub start_date_local: String,
    #[serde(default)]
    pub elapsed_time: Option<f64>,
    #[serde(default)]
    pub distance: Option<f64>,
    #[serde(default)]
    pub calories: Option<f64>,
    #[serde(default)]
    pub average_heartrate: Option<f64>,
    #[serde(default)]
    pub average_watts: Option<f64>,
}

impl Activity {
    /// The athlete's local date: the date part of `start_date_local`.
    pub fn local_date(&self) -> Option<NaiveDate> {
        self.start_date_local
            .get(..10)
            .and_then(|d| d.parse::<NaiveDate>().ok())
    }

    pub fn sport(&self) -> String {
        self.sport_type
            .clone()
            .or_else(|| self.kind.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "Workout".into())
    }
}

/// Workouts as samples on the athlete's local start date (see the module doc).
fn normalize(activities: &[Activity]) -> Vec<Sample> {
    let mut out = Vec::new();
    for a in activities {
        let Some(d) = a.local_date() else { continue };
        let sport = a.sport();
        let at = |metric, value| Sample::at(metric, d, a.start_date, value, SOURCE);
        if let Some(s) = a.elapsed_time {
            let minutes = (s / 60.0 * 10.0).round() / 10.0;
            out.push(at(MetricType::WorkoutDuration, minutes).with_label(sport.clone()));
        }
        if let Some(kcal) = a.calories.filter(|c| *c > 0.0) {
            out.push(at(MetricType::WorkoutCalories, kcal).with_label(sport.clone()));
        }
        if let Some(m) = a.distance.filter(|m| *m > 0.0) {
            out.push(at(MetricType::WorkoutDistance, m).with_label(sport.clone()));
        }
        if let Some(hr) = a.average_heartrate.filter(|h| *h > 0.0) {
            out.push(at(MetricType::HeartRate, hr).with_label(sport.clone()));
        }
        if let Some(w) = a.average_watts.filter(|w| *w > 0.0) {
            out.push(at(MetricType::WorkoutPower, w).with_label(sport.clone()));
        }
    }
    out
}

/// Seconds until Strava's quota resets after a 429: the next quarter hour,
/// or the next UTC midnight when a daily usage has reached its limit.
fn rate_limit_wait(headers: &http::HeaderMap, now: DateTime<Utc>) -> u64 {
    let pair = |name: &str| -> Option<(u64, u64)> {
        let v = headers.get(name)?.to_str().ok()?;
        let mut it = v.split(',').map(|x| x.trim().parse::<u64>().ok());
        Some((it.next()??, it.next()??))
    };
    let daily_spent = [
        ("x-ratelimit-limit", "x-ratelimit-usage"),
        ("x-readratelimit-limit", "x-readratelimit-usage"),
    ]
    .iter()
    .any(|(l, u)| matches!((pair(l), pair(u)), (Some((_, dl)), Some((_, du))) if du >= dl));
    let secs_today = i64::from(now.num_seconds_from_midnight());
    let wait = if daily_spent {
        86_400 - secs_today
    } else {
        900 - secs_today % 900
    };
    wait.max(1) as u64
}

/// A Strava answer mapped onto the worker's next step (429 by Strava's rule).
fn check(answer: &Answer, what: &str) -> Result<(), VendorError> {
    let now = Utc::now();
    if answer.status.as_u16() == 429 {
        return Err(VendorError::RateLimited {
            retry_after_secs: rate_limit_wait(&answer.headers, now),
        });
    }
    check_status(answer, what, now)
}

async fn get(
    ctx: &VendorCtx,
    token: &str,
    url: url::Url,
    what: &str,
) -> Result<Answer, VendorError> {
    let answer = send(ctx, ctx.http.get(url).bearer_auth(token)).await?;
    check(&answer, what)?;
    Ok(answer)
}

fn epoch(d: NaiveDate) -> i64 {
    day_start(d).timestamp()
}

/// Every activity that started in `[after, before)` (epoch s), newest first,
/// with its raw JSON.
async fn list(
    ctx: &VendorCtx,
    token: &str,
    after: i64,
    before: i64,
) -> Result<Vec<(Activity, serde_json::Value)>, VendorError> {
    let mut out = Vec::new();
    for page in 1..=MAX_PAGES {
        let mut url = ctx.api_url(ACTIVITIES_PATH)?;
        url.query_pairs_mut()
            .append_pair("after", &after.to_string())
            .append_pair("before", &before.to_string())
            .append_pair("page", &page.to_string())
            .append_pair("per_page", &PER_PAGE.to_string());
        let items: Vec<serde_json::Value> = get(ctx, token, url, "activities")
            .await?
            .json("activities")?;
        let n = items.len();
        for raw in items {
            let a = serde_json::from_value::<Activity>(raw.clone()).map_err(|e| {
                VendorError::Permanent(format!("activities: unexpected record shape ({e})"))
            })?;
            out.push((a, raw));
        }
        if n < PER_PAGE {
            return Ok(out);
        }
    }
    Err(VendorError::Permanent(format!(
        "activities: more than {MAX_PAGES} pages"
    )))
}

/// The detailed activity, or None when it is gone (deleted since the list).
async fn detail(
    ctx: &VendorCtx,
    token: &str,
    id: i64,
) -> Result<Option<(Activity, serde_json::Value)>, VendorError> {
    let url = ctx.api_url(&format!("/api/v3/activities/{id}"))?;
    let answer = send(ctx, ctx.http.get(url).bearer_auth(token)).await?;
    if answer.status.as_u16() == 404 {
        return Ok(None);
    }
    check(&answer, "activity")?;
    let raw: serde_json::Value = answer.json("activity")?;
    let a = serde_json::from_value::<Activity>(raw.clone())
        .map_err(|e| VendorError::Permanent(format!("activity: unexpected shape ({e})")))?;
    Ok(Some((a, raw)))
}

#[derive(Deserialize)]
struct Event {
    object_type: String,
    object_id: i64,
    aspect_type: String,
    owner_id: i64,
    subscription_id: i64,
    event_time: i64,
    #[serde(default)]
    updates: HashMap<String, serde_json::Value>,
}

fn handshake(status: u16, body: serde_json::Value) -> WebhookReply {
    WebhookReply::Handshake {
        status,
        content_type: "application/json",
        body: body.to_string(),
    }
}

#[async_trait]
impl VendorDriver for Strava {
    fn vendor(&self) -> Vendor {
        Vendor::Strava
    }

    async fn identify(&self, _ctx: &VendorCtx, grant: &Grant) -> Result<String, VendorError> {
        match grant.extra.fields.get("athlete").and_then(|a| a.get("id")) {
            Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            _ => Err(VendorError::Permanent(
                "token response names no athlete".into(),
            )),
        }
    }

    fn unsigned_webhooks(&self) -> bool {
        true
    }

    async fn grant_is_live(
        &self,
        ctx: &VendorCtx,
        access_token: &str,
    ) -> Result<bool, VendorError> {
        token_still_honoured(ctx, access_token, "/api/v3/athlete", |a| {
            check(a, "athlete")
        })
        .await
    }

    async fn webhook(&self, ctx: &VendorCtx, req: &WebhookRequest<'_>) -> Result<WebhookReply> {
        if req.method == http::Method::GET {
            let q = |k: &str| req.query.get(k).map(String::as_str);
            if q("hub.mode") != Some("subscribe") {
                return Err(Error::BadRequest("hub.mode must be subscribe".into()));
            }
            let Some(challenge) = q("hub.challenge").filter(|c| !c.is_empty() && c.len() <= 256)
            else {
                return Err(Error::BadRequest("hub.challenge is missing".into()));
            };
            if !ctx
                .creds
                .verify_tokens()
                .matches("strava", q("hub.verify_token"))
            {
                tracing::warn!(
                    vendor = "strava",
                    "subscription validation with a wrong verify token"
                );
                return Ok(handshake(
                    403,
                    serde_json::json!({"error": "verify token mismatch"}),
                ));
            }
            return Ok(handshake(
                200,
                serde_json::json!({ "hub.challenge": challenge }),
            ));
        }
        if req.method != http::Method::POST {
            return Err(Error::NotFound("Strava webhooks are GET or POST".into()));
        }
        let e: Event = serde_json::from_slice(req.body)
            .map_err(|e| Error::BadRequest(format!("Strava event body: {e}")))?;
        // Unsigned: the one thing Strava sends that we chose is the subscription id.
        let ours = ctx
            .creds
            .subscription_id
            .as_deref()
            .map(|s| Secret::new(s.trim()));
        if !secret_matches(Some(&e.subscription_id.to_string()), ours.as_ref()) {
            tracing::warn!(
                vendor = "strava",
                bytes = req.body.len(),
                "webhook rejected: unknown subscription_id"
            );
            return Err(Error::Unauthorized(
                "webhook rejected: not this app's subscription".into(),
            ));
        }
        let event_id = format!(
            "strava:{}:{}:{}:{}:{}",
            e.subscription_id, e.owner_id, e.object_id, e.aspect_type, e.event_time
        );
        let kind = match (e.object_type.as_str(), e.aspect_type.as_str()) {
            ("activity", "create" | "update" | "delete") => EventKind::DataChanged,
            ("athlete", _)
                if e.updates.get("authorized").and_then(|v| v.as_str()) == Some("false") =>
            {
                EventKind::Deauthorized
            }
            // Other athlete updates say nothing about health data.
            ("athlete", _) => return Ok(WebhookReply::Events(vec![])),
            (o, a) => return Ok(WebhookReply::not_synced(&format!("{o}/{a}"))),
        };
        let at = Utc
            .timestamp_opt(e.event_time, 0)
            .single()
            .ok_or_else(|| Error::BadRequest("Strava event_time out of range".into()))?;
        Ok(WebhookReply::Events(vec![WebhookEvent {
            event_id,
            vendor_user_id: e.owner_id.to_string(),
            date: (at + Duration::hours(14)).date_naive(),
            kind,
        }]))
    }

    async fn fetch(&self, ctx: &VendorCtx, req: FetchRequest<'_>) -> Result<Fetched, VendorError> {
        // `after`/`before` filter on the UTC start; local dates are at most
        // a day away from it.
        let after = epoch(req.from - Duration::days(1));
        let before = epoch(req.to + Duration::days(2));
        let in_window = |d: NaiveDate| d >= req.from && d <= req.to;
        let listed = list(ctx, req.access_token, after, before).await?;
        let mut activities = Vec::new();
        let mut raw = Vec::new();
        let mut details = 0;
        for (a, json) in listed {
            let Some(date) = a.local_date().filter(|d| in_window(*d)) else {
                continue;
            };
            let (a, json) = if details < MAX_DETAILS {
                details += 1;
                match detail(ctx, req.access_token, a.id).await? {
                    Some(found) => found,
                    None => continue,
                }
            } else {
                (a, json)
            };
            raw.push(RawRecord {
                kind: "activity".into(),
                id: a.id.to_string(),
                date,
                json: json.to_string(),
            });
            activities.push(a);
        }
        Ok(Fetched {
            samples: normalize(&activities),
            raw,
        })
    }

    async fn revoke(
        &self,
        ctx: &VendorCtx,
        _vendor_user_id: &str,
        tokens: &TokenSet,
    ) -> Result<bool, VendorError> {
        let url = ctx.api_url(DEAUTHORIZE_PATH)?;
        let answer = send(
            ctx,
            ctx.http
                .post(url)
                .form(&[("access_token", tokens.access_token.expose())]),
        )
        .await?;
        check(&answer, "deauthorize")?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
