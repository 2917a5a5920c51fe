//! The data API: `POST /v1/sync` queues a pull, `GET /v1/reports` serves
//! daily summaries, `GET /v1/metrics` serves series with units and sources.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::NaiveDate;
use connector_core::domain::config::MAX_WINDOW_DAYS;
use connector_core::domain::connection::ConnectionStatus;
use connector_core::domain::health::MetricType;
use connector_core::domain::job::{last_days, JobReason, SyncJob};
use connector_core::http::api::{json, json_body, query_param, respond, route, user_id};
use connector_core::{App, Error, Result, Vendor};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

pub const DEFAULT_SYNC_DAYS: u32 = 3;
pub const DEFAULT_REPORT_DAYS: u32 = 14;
pub const DEFAULT_PAGE_POINTS: u32 = 1000;
pub const MAX_PAGE_POINTS: u32 = 5000;

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(dispatch(app, &req).await)
}

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>> {
    let user = user_id(req)?;
    match route(req).as_str() {
        "POST /v1/sync" => sync(app, req, &user).await,
        "GET /v1/reports" => reports(app, req, &user).await,
        "GET /v1/metrics" => metrics(app, req, &user).await,
        other => Err(Error::NotFound(format!("route {other:?}"))),
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    vendor: Option<String>,
    days: Option<u32>,
}

fn days_in_range(name: &str, value: Option<u32>, default: u32) -> Result<u32> {
    let d = value.unwrap_or(default);
    if (1..=MAX_WINDOW_DAYS).contains(&d) {
        Ok(d)
    } else {
        Err(Error::BadRequest(format!(
            "{name} must be between 1 and {MAX_WINDOW_DAYS}"
        )))
    }
}

async fn sync(app: &App, req: &Request, user: &str) -> Result<Response<Body>> {
    let body: SyncBody = json_body(req)?;
    let vendor: Vendor = body
        .vendor
        .as_deref()
        .ok_or_else(|| Error::BadRequest("vendor is required".into()))?
        .parse()
        .map_err(|_| Error::BadRequest("vendor is not a known vendor".into()))?;
    let days = days_in_range("days", body.days, DEFAULT_SYNC_DAYS)?;
    let conn = app
        .connections
        .get(user, vendor)
        .await?
        .ok_or_else(|| Error::NotFound(format!("connection to {vendor}")))?;
    if matches!(
        conn.status,
        ConnectionStatus::RefreshFailed
            | ConnectionStatus::Disconnected
            | ConnectionStatus::Revoked
    ) {
        return Err(Error::Conflict(format!(
            "connection to {vendor} needs the user to reconnect"
        )));
    }
    let (from, to) = last_days(days);
    let job = SyncJob::new(user, vendor, from, to, JobReason::Manual)?;
    app.queue.send(&job).await?;
    Ok(json(
        202,
        &serde_json::json!({ "job_id": job.job_id, "vendor": vendor, "from": from, "to": to }),
    ))
}

fn parse_u32(req: &Request, name: &str) -> Result<Option<u32>> {
    query_param(req, name)
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| Error::BadRequest(format!("{name} must be a whole number")))
        })
        .transpose()
}

async fn reports(app: &App, req: &Request, user: &str) -> Result<Response<Body>> {
    let days = days_in_range("days", parse_u32(req, "days")?, DEFAULT_REPORT_DAYS)?;
    let (from, to) = last_days(days);
    let mut rows = app.health.summaries(user, from, to).await?;
    rows.reverse();
    Ok(json(
        200,
        &serde_json::json!({ "from": from, "to": to, "reports": rows }),
    ))
}

fn parse_date(req: &Request, name: &str) -> Result<Option<NaiveDate>> {
    query_param(req, name)
        .map(|v| {
            NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                .map_err(|_| Error::BadRequest(format!("{name} must be a date YYYY-MM-DD")))
        })
        .transpose()
}

async fn metrics(app: &App, req: &Request, user: &str) -> Result<Response<Body>> {
    let types =
        query_param(req, "types").ok_or_else(|| Error::BadRequest("types is required".into()))?;
    let metrics = types
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            MetricType::parse(t)
                .ok_or_else(|| Error::BadRequest(format!("unknown metric type {t:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    if metrics.is_empty() {
        return Err(Error::BadRequest("types is required".into()));
    }
    let until = parse_date(req, "until")?.unwrap_or_else(|| last_days(1).1);
    let since = parse_date(req, "since")?
        .unwrap_or_else(|| until - chrono::Duration::days(i64::from(DEFAULT_REPORT_DAYS) - 1));
    if since > until {
        return Err(Error::BadRequest("since is after until".into()));
    }
    if (until - since).num_days() >= i64::from(MAX_WINDOW_DAYS) {
        return Err(Error::BadRequest(format!(
            "since..until spans more than {MAX_WINDOW_DAYS} days"
        )));
    }
    let limit = match parse_u32(req, "limit")? {
        None => DEFAULT_PAGE_POINTS,
        Some(l) if (1..=MAX_PAGE_POINTS).contains(&l) => l,
        Some(_) => {
            return Err(Error::BadRequest(format!(
                "limit must be between 1 and {MAX_PAGE_POINTS}"
            )))
        }
    };
    let cursor = query_param(req, "cursor")
        .map(|c| Cursor::decode(&c, &metrics))
        .transpose()?
        .unwrap_or_default();
    // Series in the order asked; a page fills them one after another.
    let mut left = limit as usize;
    let mut next_cursor = None;
    let mut series = Vec::with_capacity(metrics.len());
    for (i, metric) in metrics.iter().enumerate() {
        let mut points = Vec::new();
        if i >= cursor.index && left > 0 && next_cursor.is_none() {
            let after = if i == cursor.index {
                cursor.after.as_deref()
            } else {
                None
            };
            let (samples, more) = app
                .health
                .samples_page(user, *metric, since, until, after, left as i32)
                .await?;
            left -= samples.len();
            points = samples
                .into_iter()
                .map(|s| {
                    let mut p = serde_json::json!({ "date": s.date, "time": s.time, "value": s.value, "source": s.source });
                    if let Some(l) = s.label {
                        p["label"] = l.into();
                    }
                    p
                })
                .collect();
            if let Some(sk) = more {
                next_cursor = Some(
                    Cursor {
                        index: i,
                        after: Some(sk),
                    }
                    .encode(),
                );
            } else if left == 0 && i + 1 < metrics.len() {
                next_cursor = Some(
                    Cursor {
                        index: i + 1,
                        after: None,
                    }
                    .encode(),
                );
            }
        }
        series.push(serde_json::json!({ "type": metric, "unit": metric.unit(), "points": points }));
    }
    Ok(json(
        200,
        &serde_json::json!({ "since": since, "until": until, "series": series, "next_cursor": next_cursor }),
    ))
}

/// Where the next page of /v1/metrics starts: the series index and the last
/// sort key returned (opaque to clients: base64url JSON).
#[derive(Default, Serialize, Deserialize)]
struct Cursor {
    #[serde(rename = "i")]
    index: usize,
    #[serde(rename = "k")]
    after: Option<String>,
}

impl Cursor {
    fn encode(&self) -> String {
        B64.encode(serde_json::to_vec(self).expect("cursor serializes"))
    }

    fn decode(s: &str, metrics: &[MetricType]) -> Result<Self> {
        let bad =
            || Error::BadRequest("cursor is not one this API returned for these types".into());
        let c: Cursor = B64
            .decode(s)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(bad)?;
        let prefix = format!("sample#{}#", metrics.get(c.index).ok_or_else(bad)?.as_str());
        if c.after.as_deref().is_some_and(|k| !k.starts_with(&prefix)) {
            return Err(bad());
        }
        Ok(c)
    }
}
