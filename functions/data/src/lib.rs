//! The data API, translated to `flows::data`: `POST /v1/sync` queues a
//! pull, `GET /v1/reports` serves daily summaries, `GET /v1/metrics` serves
//! series with units and sources, `GET /v1/changes` the user's change feed
//! (`flows::events`).

use chrono::NaiveDate;
use connector_core::domain::app_event::AppEvent;
use connector_core::domain::health::MetricType;
use connector_core::flows::data::{
    self, LatestValues, MetricsPage, MetricsQuery, Reports, Workouts,
};
use connector_core::flows::events;
use connector_core::http::api::{
    json, json_body, query_param, respond, route, user_id, whole_number,
};
use connector_core::http::openapi::{BadRequest, TooManyRequests, Unauthorized, Unavailable};
use connector_core::{App, Error, Result, Vendor};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(dispatch(app, &req).await)
}

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>> {
    let user = user_id(req)?;
    match route(req).as_str() {
        "POST /v1/sync" => sync(app, req, &user).await,
        "GET /v1/reports" => reports(app, req, &user).await,
        "GET /v1/metrics" => metrics(app, req, &user).await,
        "GET /v1/changes" => changes(app, req, &user).await,
        "GET /v1/metrics/latest" => latest(app, req, &user).await,
        "GET /v1/workouts" => workouts(app, req, &user).await,
        other => Err(Error::NotFound(format!("route {other:?}"))),
    }
}

/// What to pull.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncBody {
    /// The vendor to pull from.
    #[schema(value_type = Vendor, required = true)]
    vendor: Option<String>,
    /// How many of the last days to pull (default 3).
    #[schema(minimum = 1, maximum = 90)]
    #[serde(default, deserialize_with = "whole_number")]
    days: Option<u32>,
}

/// The pull queued (or the job already waiting that now includes these days).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SyncQueued {
    /// The waiting job that will run the pull.
    pub job_id: String,
    /// The vendor.
    pub vendor: Vendor,
    /// The first day pulled.
    pub from: NaiveDate,
    /// The last day pulled.
    pub to: NaiveDate,
}

/// Pull the caller's last days from one vendor now.
///
/// At most one live job waits per user and vendor: while one waits, a new
/// request only adds its days to it, and `job_id` is that job's. Manual
/// pulls at one vendor start at least `CONNECTOR_MANUAL_SYNC_GAP_SECS` apart;
/// past `CONNECTOR_MANUAL_SYNCS_PER_HOUR` an hour, 429.
#[utoipa::path(
    post,
    path = "/v1/sync",
    tag = "data",
    request_body = SyncBody,
    responses(
        (status = 202, body = SyncQueued),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = connector_core::http::openapi::NotFound),
        (status = 409, response = connector_core::http::openapi::Conflict),
        (status = 413, response = connector_core::http::openapi::PayloadTooLarge),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    ),
    security(("user_jwt" = []))
)]
pub async fn sync(app: &App, req: &Request, user: &str) -> Result<Response<Body>> {
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
        &SyncQueued {
            job_id: job.job_id,
            vendor,
            from: job.from,
            to: job.to,
        },
    ))
}

/// The caller's daily summaries of the last days, newest first.
///
/// `sources` names each value's source. At most 90 rows, so one page.
#[utoipa::path(
    get,
    path = "/v1/reports",
    tag = "data",
    params(
        ("days" = Option<u32>, Query, minimum = 1, maximum = 90,
            description = "How many of the last days (default 14)."),
    ),
    responses(
        (status = 200, body = Reports),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("user_jwt" = []))
)]
pub async fn reports(app: &App, req: &Request, user: &str) -> Result<Response<Body>> {
    let reports = data::reports(app, user, parse_u32(req, "days")?).await?;
    Ok(json(200, &reports))
}

/// Series of the caller's samples, with unit and source per point, a page at a time.
///
/// Pages hold at most `limit` points, filled series by series in the order
/// asked; pass the returned `next_cursor` as `cursor` for the next page.
#[utoipa::path(
    get,
    path = "/v1/metrics",
    tag = "data",
    params(
        ("types" = Vec<MetricType>, Query, style = Form, explode = false,
            description = "The metrics, comma-separated, in the order the page fills them."),
        ("since" = Option<NaiveDate>, Query,
            description = "The first user-local day (default 13 days before `until`)."),
        ("until" = Option<NaiveDate>, Query,
            description = "The last user-local day (default today); at most 90 days after `since`."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 5000,
            description = "Most points on the page (default 1000)."),
        ("cursor" = Option<String>, Query,
            description = "The `next_cursor` of the page before, unchanged."),
    ),
    responses(
        (status = 200, body = MetricsPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("user_jwt" = []))
)]
pub async fn metrics(app: &App, req: &Request, user: &str) -> Result<Response<Body>> {
    let page = data::metrics(app, user, metrics_query(req)?).await?;
    Ok(json(200, &page))
}

/// A page of the change feed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChangesPage {
    /// The caller's events after the cursor, oldest first.
    pub events: Vec<AppEvent>,
    /// Pass it as `cursor` for the events after these (also when `events` is
    /// empty: the next call resumes here).
    pub cursor: String,
}

/// The caller's events, oldest first, resumable with a cursor.
///
/// Events are kept 7 days and appear here 2 seconds after they happen (so
/// a reader past one cannot miss another kept a moment before it). An
/// event's `id` is the same every time the same occurrence is reported:
/// dedupe on it. A cursor works until the events it points past expire.
#[utoipa::path(
    get,
    path = "/v1/changes",
    tag = "data",
    params(
        ("cursor" = Option<String>, Query,
            description = "The `cursor` of the page before, unchanged; none for the oldest kept event."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500,
            description = "Most events on the page (default 100)."),
    ),
    responses(
        (status = 200, body = ChangesPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("user_jwt" = []))
)]
pub async fn changes(app: &App, req: &Request, user: &str) -> Result<Response<Body>> {
    let limit = parse_u32(req, "limit")?.unwrap_or(100);
    if !(1..=events::MAX_PAGE as u32).contains(&limit) {
        return Err(Error::BadRequest(format!(
            "limit must be 1 to {}",
            events::MAX_PAGE
        )));
    }
    let cursor = query_param(req, "cursor");
    let page = events::changes(app, user, cursor.as_deref(), limit as usize).await?;
    Ok(json(
        200,
        &ChangesPage {
            events: page.events,
            cursor: page.cursor,
        },
    ))
}

/// The newest value of each metric asked, for an app's summary screen.
///
/// Each from any source, with its unit, day, time where it has one, and
/// source; `point` is `null` for a metric the user has no value of.
#[utoipa::path(
    get,
    path = "/v1/metrics/latest",
    tag = "data",
    params(
        ("types" = Vec<MetricType>, Query, style = Form, explode = false, min_items = 1, max_items = 20,
            description = "The metrics, comma-separated (at most 20)."),
    ),
    responses(
        (status = 200, body = LatestValues),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("user_jwt" = []))
)]
pub async fn latest(app: &App, req: &Request, user: &str) -> Result<Response<Body>> {
    let values = data::latest(app, user, metric_types(req)?).await?;
    Ok(json(200, &values))
}

/// The caller's workouts, oldest first: sport, start, duration, distance,
/// calories and source.
///
/// A vendor's workout (its duration, distance and calories stored as
/// metrics) is joined back by source and start; the phone's pushed
/// workouts are listed as pushed. A value the source did not give is `null`.
#[utoipa::path(
    get,
    path = "/v1/workouts",
    tag = "data",
    params(
        ("since" = Option<NaiveDate>, Query,
            description = "The first user-local day (default 13 days before `until`)."),
        ("until" = Option<NaiveDate>, Query,
            description = "The last user-local day (default today); at most 90 days after `since`."),
    ),
    responses(
        (status = 200, body = Workouts),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    ),
    security(("user_jwt" = []))
)]
pub async fn workouts(app: &App, req: &Request, user: &str) -> Result<Response<Body>> {
    let since = parse_date(req, "since")?;
    let until = parse_date(req, "until")?;
    let list = data::workouts(app, user, since, until).await?;
    Ok(json(200, &list))
}

fn metric_types(req: &Request) -> Result<Vec<MetricType>> {
    let types =
        query_param(req, "types").ok_or_else(|| Error::BadRequest("types is required".into()))?;
    types
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            MetricType::parse(t)
                .ok_or_else(|| Error::BadRequest(format!("unknown metric type {t:?}")))
        })
        .collect()
}

fn metrics_query(req: &Request) -> Result<MetricsQuery> {
    Ok(MetricsQuery {
        metrics: metric_types(req)?,
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
