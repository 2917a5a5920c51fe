//! The data API, translated to `flows::data`: `POST /v1/sync` queues a
//! pull, `GET /v1/reports` serves daily summaries, `GET /v1/metrics` serves
//! series with units and sources.

use chrono::NaiveDate;
use connector_core::domain::health::MetricType;
use connector_core::flows::data::{self, MetricsQuery};
use connector_core::http::api::{json, json_body, query_param, respond, route, user_id};
use connector_core::{App, Error, Result, Vendor};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(dispatch(app, &req).await)
}

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>> {
    let user = user_id(req)?;
    match route(req).as_str() {
        "POST /v1/sync" => sync(app, req, &user).await,
        "GET /v1/reports" => {
            let reports = data::reports(app, &user, parse_u32(req, "days")?).await?;
            Ok(json(200, &reports))
        }
        "GET /v1/metrics" => {
            let page = data::metrics(app, &user, metrics_query(req)?).await?;
            Ok(json(200, &page))
        }
        other => Err(Error::NotFound(format!("route {other:?}"))),
    }
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    vendor: Option<String>,
    days: Option<u32>,
}

async fn sync(app: &App, req: &Request, user: &str) -> Result<Response<Body>> {
    let body: SyncBody = json_body(req)?;
    let vendor: Vendor = body
        .vendor
        .as_deref()
        .ok_or_else(|| Error::BadRequest("vendor is required".into()))?
        .parse()
        .map_err(|_| Error::BadRequest("vendor is not a known vendor".into()))?;
    let job = data::queue_sync(app, user, vendor, body.days).await?;
    Ok(json(
        202,
        &serde_json::json!({ "job_id": job.job_id, "vendor": vendor, "from": job.from, "to": job.to }),
    ))
}

fn metrics_query(req: &Request) -> Result<MetricsQuery> {
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
    Ok(MetricsQuery {
        metrics,
        since: parse_date(req, "since")?,
        until: parse_date(req, "until")?,
        limit: parse_u32(req, "limit")?,
        cursor: query_param(req, "cursor"),
    })
}

fn parse_u32(req: &Request, name: &str) -> Result<Option<u32>> {
    query_param(req, name)
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| Error::BadRequest(format!("{name} must be a whole number")))
        })
        .transpose()
}

fn parse_date(req: &Request, name: &str) -> Result<Option<NaiveDate>> {
    query_param(req, name)
        .map(|v| {
            NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                .map_err(|_| Error::BadRequest(format!("{name} must be a date YYYY-MM-DD")))
        })
        .transpose()
}
