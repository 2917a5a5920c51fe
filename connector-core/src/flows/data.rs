//! The user's data: a pull on demand, daily summaries, and series of
//! samples with units and sources, a page at a time.

use crate::aws::store::ephemeral::Bucket;
use crate::domain::config::MAX_WINDOW_DAYS;
use crate::domain::connection::ConnectionStatus;
use crate::domain::error::{Error, Result};
use crate::domain::health::{DailySummary, MetricType, Sample, PHONE_SOURCE};
use crate::domain::job::{last_days, JobReason, SyncJob};
use crate::domain::vendor::Vendor;
use crate::flows::app::App;
use crate::flows::queueing::{queue_live, Queued};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Days a manual sync pulls unless asked.
pub const DEFAULT_SYNC_DAYS: u32 = 3;
/// Days of reports, and of metrics before `until`, unless asked.
pub const DEFAULT_REPORT_DAYS: u32 = 14;
/// Points a metrics page holds unless asked.
pub const DEFAULT_PAGE_POINTS: u32 = 1000;
/// The most points a metrics page holds.
pub const MAX_PAGE_POINTS: u32 = 5000;

/// `value`, or `default`, when it is a window of 1 to [`MAX_WINDOW_DAYS`] days.
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

/// Queues a pull of `user`'s last `days` days from `vendor` (the user asked),
/// or adds them to the job already waiting for the user there: the job
/// returned is the one that runs them. A user may ask each vendor
/// `manual_syncs_per_hour` times an hour (429 past it).
pub async fn queue_sync(
    app: &App,
    user: &str,
    vendor: Vendor,
    days: Option<u32>,
) -> Result<SyncJob> {
    let days = days_in_range("days", days, DEFAULT_SYNC_DAYS)?;
    let rate = Bucket::per_hour(app.config.manual_syncs_per_hour);
    let key = format!("manualsync#{}#{user}", vendor.as_str());
    if let Err(retry_after_secs) = app.ephemeral.take_token(&key, user, rate).await? {
        return Err(Error::RateLimited { retry_after_secs });
    }
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
    let mut job = SyncJob::new(user, vendor, from, to, JobReason::Manual)?;
    let gapped = app.config.manual_sync_gap_secs > 0;
    if let Queued::Absorbed { into } = queue_live(app, &job, gapped).await? {
        // The job already waiting runs these days too: that is the one to watch.
        job.job_id = into;
    }
    Ok(job)
}

/// The user's daily summaries of the last `days` days, newest first.
pub async fn reports(app: &App, user: &str, days: Option<u32>) -> Result<Reports> {
    let days = days_in_range("days", days, DEFAULT_REPORT_DAYS)?;
    let (from, to) = last_days(days);
    let mut reports = app.health.summaries(user, from, to).await?;
    reports.reverse();
    Ok(Reports { from, to, reports })
}

/// Daily summaries over `from..=to`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Reports {
    /// The first day.
    pub from: NaiveDate,
    /// The last day.
    pub to: NaiveDate,
    /// One per day with data, newest first.
    pub reports: Vec<DailySummary>,
}

/// What a metrics page asks for.
pub struct MetricsQuery {
    /// The series, in the order asked.
    pub metrics: Vec<MetricType>,
    /// The first user-local day (default: `DEFAULT_REPORT_DAYS` before `until`).
    pub since: Option<NaiveDate>,
    /// The last user-local day (default: today).
    pub until: Option<NaiveDate>,
    /// Points on the page (default [`DEFAULT_PAGE_POINTS`]).
    pub limit: Option<u32>,
    /// Where the page starts: a `next_cursor` this API returned.
    pub cursor: Option<String>,
}

/// One page of series.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MetricsPage {
    /// The first day.
    pub since: NaiveDate,
    /// The last day.
    pub until: NaiveDate,
    /// One per metric asked, in that order.
    pub series: Vec<Series>,
    /// Where the next page starts; None on the last.
    pub next_cursor: Option<String>,
}

/// One metric's points on a page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Series {
    /// The metric.
    #[serde(rename = "type")]
    pub metric: MetricType,
    /// Its unit.
    pub unit: &'static str,
    /// Its points.
    pub points: Vec<Point>,
}

/// One sample as served.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Point {
    /// The user-local day.
    pub date: NaiveDate,
    /// The instant, where the sample has one.
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    /// The value, in the metric's unit.
    pub value: f64,
    /// Who measured it.
    pub source: String,
    /// What the metric alone does not say (a workout's sport).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl From<Sample> for Point {
    fn from(s: Sample) -> Self {
        Point {
            date: s.date,
            time: s.time,
            value: s.value,
            source: s.source,
            label: s.label,
        }
    }
}

/// The days `since..=until` a request asks for: until defaults to today,
/// since to [`DEFAULT_REPORT_DAYS`] before it; at most [`MAX_WINDOW_DAYS`].
fn window(since: Option<NaiveDate>, until: Option<NaiveDate>) -> Result<(NaiveDate, NaiveDate)> {
    let until = until.unwrap_or_else(|| last_days(1).1);
    let since =
        since.unwrap_or_else(|| until - chrono::Duration::days(i64::from(DEFAULT_REPORT_DAYS) - 1));
    if since > until {
        return Err(Error::BadRequest("since is after until".into()));
    }
    if (until - since).num_days() >= i64::from(MAX_WINDOW_DAYS) {
        return Err(Error::BadRequest(format!(
            "since..until spans more than {MAX_WINDOW_DAYS} days"
        )));
    }
    Ok((since, until))
}

/// The user's workouts on a window of days.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Workouts {
    /// The first user-local day.
    pub since: NaiveDate,
    /// The last user-local day.
    pub until: NaiveDate,
    /// Oldest first.
    pub workouts: Vec<WorkoutEntry>,
}

/// One workout, from a vendor or the phone.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WorkoutEntry {
    /// The user-local day.
    pub date: NaiveDate,
    /// When it started, where the source says.
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    /// The sport, as the source names it.
    pub sport: Option<String>,
    /// Minutes.
    pub duration_min: Option<f64>,
    /// Metres.
    pub distance_m: Option<f64>,
    /// kcal.
    pub calories_kcal: Option<f64>,
    /// Who recorded it.
    pub source: String,
}

/// What tells one workout from another: its day, start, source and sport.
type WorkoutKey = (
    NaiveDate,
    Option<chrono::DateTime<chrono::Utc>>,
    String,
    Option<String>,
);

/// The metrics a vendor's workout is stored as, joined back into one entry.
const WORKOUT_METRICS: [MetricType; 3] = [
    MetricType::WorkoutDuration,
    MetricType::WorkoutDistance,
    MetricType::WorkoutCalories,
];

/// The user's workouts on `since..=until` (default the last 14 days; at
/// most 90): each vendor workout's samples joined by source and start, and
/// the phone's pushed workouts.
pub async fn workouts(
    app: &App,
    user: &str,
    since: Option<NaiveDate>,
    until: Option<NaiveDate>,
) -> Result<Workouts> {
    let (since, until) = window(since, until)?;
    let mut joined: BTreeMap<WorkoutKey, WorkoutEntry> = BTreeMap::new();
    for metric in WORKOUT_METRICS {
        let mut after = None;
        loop {
            let (samples, more) = app
                .health
                .samples_page(user, metric, since, until, after.as_deref(), 1000)
                .await?;
            for s in samples {
                let entry = joined
                    .entry((s.date, s.time, s.source.clone(), s.label.clone()))
                    .or_insert_with(|| WorkoutEntry {
                        date: s.date,
                        start: s.time,
                        sport: s.label.clone(),
                        duration_min: None,
                        distance_m: None,
                        calories_kcal: None,
                        source: s.source.clone(),
                    });
                match metric {
                    MetricType::WorkoutDuration => entry.duration_min = Some(s.value),
                    MetricType::WorkoutDistance => entry.distance_m = Some(s.value),
                    _ => entry.calories_kcal = Some(s.value),
                }
            }
            match more {
                Some(sk) => after = Some(sk),
                None => break,
            }
        }
    }
    for record in app.health.push_days(user, since, until).await? {
        for stored in record.workouts.into_values() {
            let w = stored.workout;
            let entry = WorkoutEntry {
                date: record.date,
                start: Some(w.start_time),
                sport: Some(w.kind.clone()),
                duration_min: Some(w.duration),
                distance_m: None,
                calories_kcal: Some(w.calories),
                source: PHONE_SOURCE.into(),
            };
            joined.insert(
                (
                    record.date,
                    Some(w.start_time),
                    PHONE_SOURCE.into(),
                    Some(w.kind),
                ),
                entry,
            );
        }
    }
    Ok(Workouts {
        since,
        until,
        workouts: joined.into_values().collect(),
    })
}

/// Most metric types one latest-values request may name.
pub const MAX_LATEST_TYPES: usize = 20;

/// Each metric's newest value.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LatestValues {
    /// One per metric asked, in that order.
    pub latest: Vec<LatestValue>,
}

/// A metric's newest value, if the user has one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LatestValue {
    /// The metric.
    #[serde(rename = "type")]
    pub metric: MetricType,
    /// Its unit.
    pub unit: &'static str,
    /// The newest sample (by its day, then its time), from any source;
    /// `null` when there is none.
    pub point: Option<Point>,
}

/// The newest value of each of `metrics`, in the order asked (a metric
/// named twice is answered once).
pub async fn latest(app: &App, user: &str, metrics: Vec<MetricType>) -> Result<LatestValues> {
    if metrics.is_empty() {
        return Err(Error::BadRequest("types is required".into()));
    }
    // Counted as named, as the description's maxItems counts them.
    if metrics.len() > MAX_LATEST_TYPES {
        return Err(Error::BadRequest(format!(
            "types: at most {MAX_LATEST_TYPES} names"
        )));
    }
    let mut unique = Vec::new();
    for m in metrics {
        if !unique.contains(&m) {
            unique.push(m);
        }
    }
    let mut latest = Vec::with_capacity(unique.len());
    for metric in unique {
        let point = app
            .health
            .latest_sample(user, metric)
            .await?
            .map(Point::from);
        latest.push(LatestValue {
            metric,
            unit: metric.unit(),
            point,
        });
    }
    Ok(LatestValues { latest })
}

/// A page of the user's series: filled one metric after another, at most
/// `limit` points in all.
pub async fn metrics(app: &App, user: &str, q: MetricsQuery) -> Result<MetricsPage> {
    if q.metrics.is_empty() {
        return Err(Error::BadRequest("types is required".into()));
    }
    let (since, until) = window(q.since, q.until)?;
    let limit = match q.limit {
        None => DEFAULT_PAGE_POINTS,
        Some(l) if (1..=MAX_PAGE_POINTS).contains(&l) => l,
        Some(_) => {
            return Err(Error::BadRequest(format!(
                "limit must be between 1 and {MAX_PAGE_POINTS}"
            )))
        }
    };
    let metrics = q.metrics;
    let cursor = q
        .cursor
        .map(|c| Cursor::decode(&c, &metrics))
        .transpose()?
        .unwrap_or_default();
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
            points = samples.into_iter().map(Point::from).collect();
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
        series.push(Series {
            metric: *metric,
            unit: metric.unit(),
            points,
        });
    }
    Ok(MetricsPage {
        since,
        until,
        series,
        next_cursor,
    })
}

/// Where the next page of metrics starts: the series index and the last
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
