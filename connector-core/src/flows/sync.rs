//! Running one sync job: open the connection's tokens, refresh them when
//! they expire (or the vendor says they did), pull, normalize and write
//! idempotently (samples by natural key, summaries by user and day).
//!
//! A job pulls its days in parts of at most [`SyncJob::pull_days`], newest
//! first, each written before the next, and paces its vendor calls within
//! the invocation's time. When the quota (or the vendor's 429) holds it
//! past that, it hands the days it has not written on to a new message,
//! shown when the quota has room, and ends: its waits use none of the
//! queue's receives, and what it pulled stays pulled. A handed-on job that
//! finished no part pulls in halves (down to a day), so a part always
//! comes to fit; after [`MAX_STALLS`] hand-ons in a row without a part it
//! fails instead, into the retries below.
//!
//! A finished job is marked done (Ephemeral, 24 h) before its message is
//! deleted: when a worker dies after the job but before the delete, or SQS
//! delivers a message twice, the job is not run again. A failed job's
//! message is made visible again when it should be retried: after a
//! vendor's 429, as late as the vendor says; otherwise after a jittered
//! exponential backoff.

use crate::domain::app_event::{DataWritten, EventType};
use crate::domain::connection::{Connection, ConnectionStatus};
use crate::domain::error::{Disposition, Error, Result};
use crate::domain::health::DailySummary;
use crate::domain::job::{JobReason, Priority, SyncJob};
use crate::domain::metric::{count_vendor, Metric};
use crate::domain::vendor::VendorError;
use crate::flows::app::App;
use crate::flows::backfill;
use crate::flows::events;
use crate::flows::queueing;
use crate::flows::refresh::{open_tokens, refresh_connection};
use crate::vendors::driver::{FetchRequest, VendorDriver};
use chrono::{NaiveDate, Utc};
use rand::Rng;
use std::time::{Duration, Instant};

/// Refresh this long before the access token expires.
pub const EXPIRY_MARGIN_SECS: i64 = 60;
/// The end of an invocation kept for writing what a job pulled and
/// handing the rest on: its vendor calls wait for slots until before it.
pub const FINISH_MARGIN: Duration = Duration::from_secs(10);
/// Hand-ons in a row without a finished part before a job fails instead.
pub const MAX_STALLS: u32 = 24;

/// How a sync job ended.
#[derive(Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Pulled and written.
    Synced(DataWritten),
    /// Nothing to do: the connection is gone or needs the user.
    Skipped(&'static str),
}

/// Days before this many (today counted) are history: a manual sync pulls
/// them as backfill, after its recent days.
const RECENT_DAYS: i64 = 2;

fn first_recent_day() -> NaiveDate {
    Utc::now().date_naive() - chrono::Duration::days(RECENT_DAYS - 1)
}

/// A manual sync's windows with its recent days first: a window reaching
/// back into history is split there, and the history comes last.
fn recent_first(
    job: &SyncJob,
    windows: Vec<(NaiveDate, NaiveDate)>,
) -> Vec<(NaiveDate, NaiveDate)> {
    if job.reason != JobReason::Manual {
        return windows;
    }
    let recent = first_recent_day();
    let (mut fresh, mut history) = (Vec::new(), Vec::new());
    for (from, to) in windows {
        if from >= recent {
            fresh.push((from, to));
        } else if to < recent {
            history.push((from, to));
        } else {
            fresh.push((recent, to));
            history.push((from, recent - chrono::Duration::days(1)));
        }
    }
    fresh.extend(history);
    fresh
}

/// How urgent a window's vendor calls are: a manual sync's history is
/// backfill (it takes only the quota's free slots, so one user pulling
/// months by hand never holds back another user's live job).
fn priority_of(window: &SyncJob) -> Priority {
    if window.reason == JobReason::Manual && window.to < first_recent_day() {
        Priority::Backfill
    } else {
        window.reason.priority()
    }
}

/// Runs a job's window on its connection as it is now, marking the
/// connection synced when it wrote. `Err` means "retry later" (the message
/// goes back to the queue); failures that a retry cannot fix are recorded
/// on the connection and end the job. Its vendor calls wait for quota
/// slots until `wait_until`.
pub async fn run_job(app: &App, job: &SyncJob, wait_until: Instant) -> Result<JobOutcome> {
    let mut conn = match usable_connection(app, job).await? {
        Ok(conn) => conn,
        Err(skipped) => return Ok(skipped),
    };
    let outcome = pull(app, job, &mut conn, wait_until, true).await?;
    if matches!(outcome, JobOutcome::Synced(_)) {
        mark_synced(app, job).await?;
    }
    Ok(outcome)
}

/// `job`'s connection, read once for all its parts; or how the job ends
/// when there is none it can sync.
async fn usable_connection(
    app: &App,
    job: &SyncJob,
) -> Result<std::result::Result<Connection, JobOutcome>> {
    let Some(conn) = app.connections.get(&job.user_id, job.vendor).await? else {
        return Ok(Err(JobOutcome::Skipped("no connection")));
    };
    if conn.status != ConnectionStatus::Connected && conn.status != ConnectionStatus::Error {
        return Ok(Err(JobOutcome::Skipped(
            "connection needs the user to reconnect",
        )));
    }
    Ok(Ok(conn))
}

/// Pulls `job`'s window on `conn` (refreshed in place when its tokens
/// expire, or the vendor says they did), then writes the samples, raw
/// records and daily summaries; the caller marks the connection synced.
/// `first`: the job's first part, when a pull gap starts.
async fn pull(
    app: &App,
    job: &SyncJob,
    conn: &mut Connection,
    wait_until: Instant,
    first: bool,
) -> Result<JobOutcome> {
    let vendor = job.vendor;
    let (driver, mut ctx) = match app.driver(vendor).await {
        Ok(d) => d,
        Err(e) => return unless_permanent(app, job, e).await,
    };
    ctx.budget = ctx
        .budget
        .for_job(&job.user_id, priority_of(job))
        .until(wait_until);
    let gap_secs = match job.reason {
        JobReason::Webhook if driver.unsigned_webhooks() => Some(app.config.unsigned_pull_gap_secs),
        JobReason::Manual if app.config.manual_sync_gap_secs > 0 => {
            Some(app.config.manual_sync_gap_secs)
        }
        _ => None,
    };
    if let Some(secs) = gap_secs.filter(|_| first) {
        let next = Utc::now() + chrono::Duration::seconds(secs.into());
        app.ephemeral
            .mark_pulled(&job.user_id, vendor, job.reason, next)
            .await?;
    }
    let mut tokens = match open_tokens(app, conn).await {
        Ok(t) => t,
        Err(Error::Corrupt(_)) => {
            return Ok(JobOutcome::Skipped(
                "stored tokens do not open; recorded on the connection",
            ))
        }
        Err(e) => return Err(e),
    };
    if tokens.expires_within(Utc::now(), EXPIRY_MARGIN_SECS) {
        (*conn, tokens) = match refresh_connection(app, conn).await {
            Ok(fresh) => fresh,
            Err(e) => return unless_needs_user(app, job, e).await,
        };
    }
    let mut refreshed_on_401 = false;
    let fetched = async {
        loop {
            let req = FetchRequest {
                user_id: &job.user_id,
                vendor_user_id: &conn.vendor_user_id,
                access_token: tokens.access_token.expose(),
                from: job.from,
                to: job.to,
                reason: job.reason,
            };
            match driver.fetch(&ctx, req).await {
                Ok(s) => return Ok(s),
                Err(VendorError::Unauthorized) if !refreshed_on_401 => {
                    refreshed_on_401 = true;
                    (*conn, tokens) = match refresh_connection(app, conn).await {
                        Ok(fresh) => fresh,
                        Err(e) => return Err(unless_needs_user(app, job, e).await),
                    };
                }
                Err(e) => return Err(unless_permanent(app, job, Error::vendor(vendor, e)).await),
            }
        }
    }
    .await;
    // The vendor calls are done: the quota slots booked ahead go back.
    ctx.budget.release().await;
    let fetched = match fetched {
        Ok(fetched) => fetched,
        Err(ended) => return ended,
    };
    let samples = fetched.samples;
    app.health
        .put_pulled(&job.user_id, vendor, &samples, &fetched.raw)
        .await?;
    count_vendor(Metric::SamplesWritten, vendor, samples.len() as u64);
    let summaries = DailySummary::from_samples(&samples);
    app.health
        .upsert_summaries(&job.user_id, &summaries)
        .await?;
    Ok(JobOutcome::Synced(DataWritten {
        days: samples.iter().map(|s| s.date).collect(),
        metric_types: samples.iter().map(|s| s.metric).collect(),
        samples: samples.len(),
        summaries: summaries.len(),
    }))
}

/// A failed refresh that left the connection `refresh_failed` ends the job
/// (a retry cannot help until the user reconnects); anything else is
/// retried later.
async fn unless_needs_user(app: &App, job: &SyncJob, err: Error) -> Result<JobOutcome> {
    match app.connections.get(&job.user_id, job.vendor).await? {
        Some(c) if c.status == ConnectionStatus::RefreshFailed => {
            tracing::warn!(job_id = %job.job_id, user_id = %job.user_id, vendor = %job.vendor, error = %err, "sync stopped: the user must reconnect");
            Ok(JobOutcome::Skipped(
                "connection needs the user to reconnect",
            ))
        }
        _ => Err(err),
    }
}

/// A failure the vendor made final is recorded on the connection and ends
/// the job; anything else is retried later.
async fn unless_permanent(app: &App, job: &SyncJob, err: Error) -> Result<JobOutcome> {
    if err.disposition() != Disposition::RecordOnConnection {
        return Err(err);
    }
    tracing::warn!(job_id = %job.job_id, user_id = %job.user_id, vendor = %job.vendor, error = %err, "sync failed permanently");
    app.connections
        .set_status(
            &job.user_id,
            job.vendor,
            ConnectionStatus::Error,
            Some(&err.to_string()),
        )
        .await?;
    events::connection_changed(
        app,
        EventType::ConnectionError,
        &job.user_id,
        job.vendor,
        &job.job_id,
        Some(&err.to_string()),
    )
    .await?;
    Ok(JobOutcome::Skipped(
        "vendor refused the job; recorded on the connection",
    ))
}

/// Runs a job received from the queue once, within its invocation's
/// `deadline`: a job already marked done (a duplicate delivery, or a worker
/// that died before deleting its message) is dropped; a live job runs
/// every day it absorbed while it waited (`flows::queueing`), in parts;
/// what the quota holds past the deadline is handed on; a finished (or
/// handed-on) job is marked done for a day.
pub async fn run_once(app: &App, job: &SyncJob, message_id: &str, deadline: Instant) -> Result<()> {
    let done_key = format!("job#{}#done", job.job_id);
    if app.ephemeral.get(&done_key).await?.is_some() {
        tracing::info!(%message_id, job_id = %job.job_id, "job already done; duplicate delivery dropped");
        return Ok(());
    }
    let windows = recent_first(job, queueing::windows_of(app, job).await?);
    let parts = parts_of(&windows, job.pull_days());
    let wait_until = deadline.checked_sub(FINISH_MARGIN).unwrap_or(deadline);
    let tracked = backfill::tracks(job);
    if tracked {
        backfill::started(app, job).await?;
    }
    let mut written = DataWritten::default();
    let mut skipped = None;
    let mut completed = None;
    // A backfill's parts each mark the connection synced with their days;
    // any other job marks it once, after its parts.
    let mut sync_unmarked = false;
    let mut conn = match usable_connection(app, job).await? {
        Ok(conn) => Some(conn),
        Err(skip) => {
            skipped = Some(skip);
            None
        }
    };
    for (i, &(from, to)) in parts.iter().enumerate() {
        let Some(conn) = conn.as_mut() else { break };
        let part = SyncJob {
            from,
            to,
            ..job.clone()
        };
        match pull(app, &part, conn, wait_until, i == 0).await {
            Ok(JobOutcome::Synced(part)) => {
                written.add(part);
                if tracked {
                    completed = backfill::pulled(app, job, from, to).await?.or(completed);
                } else {
                    sync_unmarked = true;
                }
            }
            Ok(skip) => {
                skipped = Some(skip);
                break;
            }
            Err(Error::RateLimited { retry_after_secs }) if hand_on_ok(job, i > 0) => {
                let next = handed_on(job, &parts[i..], i > 0)?;
                for n in &next {
                    app.queue.send_delayed(n, retry_after_secs.max(1)).await?;
                }
                tracing::info!(%message_id, job_id = %job.job_id, user_id = %job.user_id, vendor = %job.vendor, parts_done = i, retry_in_secs = retry_after_secs, next_jobs = ?next.iter().map(|n| n.job_id.as_str()).collect::<Vec<_>>(), "job handed on: the quota is spent until later");
                skipped = Some(JobOutcome::Skipped("handed on"));
                break;
            }
            Err(e) => {
                queueing::requeue_absorbed(app, job, &parts[i..]).await?;
                // What the parts before wrote stays written: say so now.
                if sync_unmarked {
                    mark_synced(app, job).await?;
                }
                events::data_updated(app, &job.user_id, job.vendor, &job.job_id, &written).await?;
                return Err(e);
            }
        }
    }
    if sync_unmarked {
        mark_synced(app, job).await?;
    }
    events::data_updated(app, &job.user_id, job.vendor, &job.job_id, &written).await?;
    if let Some(conn) = &completed {
        backfill::tell_ended(app, conn).await?;
    }
    match &skipped {
        Some(JobOutcome::Skipped(why)) if tracked && ends_backfill(why) => {
            backfill::failed(app, job, why).await?
        }
        _ => {}
    }
    let outcome = skipped.unwrap_or(JobOutcome::Synced(written));
    let done_for = Utc::now() + chrono::Duration::hours(24);
    app.ephemeral.claim(&done_key, done_for, None).await?;
    tracing::info!(%message_id, job_id = %job.job_id, user_id = %job.user_id, vendor = %job.vendor, ?outcome, "job done");
    Ok(())
}

/// Records that `job`'s connection synced now.
async fn mark_synced(app: &App, job: &SyncJob) -> Result<()> {
    app.connections
        .mark_synced(&job.user_id, job.vendor, Utc::now(), &[])
        .await
        .map(|_| ())
}

/// Whether a job skipped for `why` ends its backfill: the connection needs
/// the user, or the vendor refused; not when it was handed on or is gone.
fn ends_backfill(why: &str) -> bool {
    !matches!(why, "handed on" | "no connection")
}

/// A job that failed on its last receive: its backfill (if it is one) has
/// failed too, for `err`.
pub async fn gave_up(app: &App, job: &SyncJob, err: &Error, receives: u32) -> Result<()> {
    if !backfill::tracks(job) {
        return Ok(());
    }
    let why = format!("gave up after {receives} tries: {}", err.public_detail());
    backfill::failed(app, job, &why).await
}

/// `windows` in pulls of at most `days` days, each window's newest first.
fn parts_of(windows: &[(NaiveDate, NaiveDate)], days: u32) -> Vec<(NaiveDate, NaiveDate)> {
    let span = chrono::Duration::days(i64::from(days.max(1)) - 1);
    let mut parts = Vec::new();
    for &(from, to) in windows {
        let mut end = to;
        loop {
            let start = (end - span).max(from);
            parts.push((start, end));
            match start.pred_opt() {
                Some(before) if start > from => end = before,
                _ => break,
            }
        }
    }
    parts
}

/// Whether a job stopped by the quota may hand its days on (`progressed`:
/// it finished a part first) rather than fail.
fn hand_on_ok(job: &SyncJob, progressed: bool) -> bool {
    progressed || job.stalls < MAX_STALLS
}

/// The jobs that carry on `left`, the parts a job did not finish: one per
/// run of consecutive days, pulling in halves when no part finished.
fn handed_on(
    job: &SyncJob,
    left: &[(NaiveDate, NaiveDate)],
    progressed: bool,
) -> Result<Vec<SyncJob>> {
    let (stalls, pull_days) = if progressed {
        (0, job.pull_days())
    } else {
        (job.stalls + 1, (job.pull_days() / 2).max(1))
    };
    let days = left
        .iter()
        .flat_map(|&(from, to)| queueing::days_of(from, to))
        .collect();
    queueing::runs_of(days)
        .into_iter()
        .map(|(from, to)| {
            let mut next = SyncJob::new(&job.user_id, job.vendor, from, to, job.reason)?;
            next.pull_days = Some(pull_days);
            next.stalls = stalls;
            Ok(next)
        })
        .collect()
}

/// Makes a failed job's message (received `receives` times from the queue
/// `queue_arn` names) visible again when it should be retried — never by
/// sleeping in the Lambda; after the queue's maxReceiveCount it goes to the
/// DLQ. Returns the seconds, or None when the visibility could not be set
/// (the queue's own visibility timeout then applies).
pub async fn schedule_retry(
    app: &App,
    err: &Error,
    queue_arn: Option<&str>,
    receipt_handle: &str,
    receives: u32,
) -> Option<u64> {
    let secs = visibility_after(err, receives, &mut rand::thread_rng());
    let queue_url = app.queue.url_of_arn(queue_arn);
    match app.queue.retry_after(queue_url, receipt_handle, secs).await {
        Ok(()) => Some(secs),
        Err(e) => {
            tracing::warn!(error = %e, "could not set the retry time");
            None
        }
    }
}

/// SQS's longest visibility timeout is 12 hours.
pub const MAX_VISIBILITY_SECS: u64 = 12 * 3600;
/// The first retry after a transient failure waits up to this long...
pub const BACKOFF_BASE_SECS: u64 = 10;
/// ...doubling with each receive, up to this.
pub const BACKOFF_CAP_SECS: u64 = 900;

/// Seconds until the message should be visible again, given the error and
/// how many times the message has been received (1 on the first try).
pub fn visibility_after(err: &Error, receive_count: u32, rng: &mut impl Rng) -> u64 {
    retry_delay(err, receive_count, BACKOFF_BASE_SECS, BACKOFF_CAP_SECS, rng)
}

/// Seconds until a message that failed with `err` on its
/// `receive_count`th receive is tried again: when the vendor (or the app)
/// said; at once for a message that can never succeed, so the redrive
/// policy moves it to the DLQ without delay; else full jitter below a
/// ceiling doubling from `base_secs` per receive up to `cap_secs`.
pub fn retry_delay(
    err: &Error,
    receive_count: u32,
    base_secs: u64,
    cap_secs: u64,
    rng: &mut impl Rng,
) -> u64 {
    match err.disposition() {
        Disposition::RetryAfter(secs) => secs.clamp(1, MAX_VISIBILITY_SECS),
        Disposition::DeadLetter => 0,
        Disposition::BackOff | Disposition::RecordOnConnection => {
            let exp = receive_count.saturating_sub(1).min(16);
            let ceiling = base_secs.saturating_mul(1 << exp).min(cap_secs).max(1);
            // Full jitter: anywhere in [1, ceiling], so retries of a burst spread out.
            rng.gen_range(1..=ceiling)
        }
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn rate_limits_wait_as_the_vendor_says_and_the_rest_back_off() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let limited = Error::RateLimited {
            retry_after_secs: 42,
        };
        assert_eq!(visibility_after(&limited, 1, &mut rng), 42);
        assert_eq!(visibility_after(&limited, 4, &mut rng), 42);
        let huge = Error::RateLimited {
            retry_after_secs: 10 * 86_400,
        };
        assert_eq!(visibility_after(&huge, 1, &mut rng), MAX_VISIBILITY_SECS);
        let transient = Error::Storage("throttled".into());
        for receive in 1..=8u32 {
            let ceiling = (BACKOFF_BASE_SECS << (receive - 1)).min(BACKOFF_CAP_SECS);
            let waits: Vec<u64> = (0..200)
                .map(|_| visibility_after(&transient, receive, &mut rng))
                .collect();
            assert!(waits.iter().all(|w| (1..=ceiling).contains(w)), "{receive}");
            // Jittered: not all the same.
            assert!(waits.iter().any(|w| *w != waits[0]), "{receive}");
        }
        assert!(visibility_after(&transient, 40, &mut rng) <= BACKOFF_CAP_SECS);
        let poison = Error::BadRequest("sync job is malformed".into());
        assert_eq!(visibility_after(&poison, 1, &mut rng), 0);
    }
}

#[cfg(test)]
mod manual_history_tests {
    use super::*;
    use crate::domain::vendor::Vendor;

    #[test]
    fn a_manual_sync_pulls_its_recent_days_live_first_and_its_history_as_backfill() {
        let today = Utc::now().date_naive();
        let day = |n: i64| today - chrono::Duration::days(n);
        let job = SyncJob::new("u", Vendor::Mock, day(29), today, JobReason::Manual).unwrap();
        let windows = recent_first(&job, vec![(day(29), today)]);
        assert_eq!(windows, vec![(day(1), today), (day(29), day(2))]);
        let window = |(from, to)| SyncJob {
            from,
            to,
            ..job.clone()
        };
        assert_eq!(priority_of(&window(windows[0])), Priority::Live);
        assert_eq!(priority_of(&window(windows[1])), Priority::Backfill);
        // Webhook jobs are live whatever days they cover.
        let webhook = SyncJob {
            reason: JobReason::Webhook,
            ..job.clone()
        };
        assert_eq!(recent_first(&webhook, vec![(day(29), today)]).len(), 1);
        assert_eq!(priority_of(&webhook), Priority::Live);
    }
}

#[cfg(test)]
mod hand_on_tests {
    use super::*;
    use crate::domain::vendor::Vendor;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn windows_are_pulled_in_parts_newest_first() {
        let w = [
            (d("2026-11-01"), d("2026-11-30")),
            (d("2026-12-03"), d("2026-12-03")),
        ];
        assert_eq!(
            parts_of(&w, 14),
            vec![
                (d("2026-11-17"), d("2026-11-30")),
                (d("2026-11-03"), d("2026-11-16")),
                (d("2026-11-01"), d("2026-11-02")),
                (d("2026-12-03"), d("2026-12-03")),
            ]
        );
        assert_eq!(parts_of(&w[..1], 30), vec![w[0]]);
        assert_eq!(parts_of(&w[..1], 1).len(), 30);
    }

    #[test]
    fn a_stopped_job_hands_on_what_it_did_not_write_and_halves_its_pulls_when_stuck() {
        let job = SyncJob::new(
            "u",
            Vendor::Strava,
            d("2026-11-17"),
            d("2026-11-30"),
            JobReason::Backfill,
        )
        .unwrap();
        let parts = parts_of(&[(job.from, job.to)], 7);
        assert_eq!(parts.len(), 2);

        // The newest part was written: the rest goes on, at the same size.
        let next = handed_on(&job, &parts[1..], true).unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(
            (next[0].from, next[0].to),
            (d("2026-11-17"), d("2026-11-23"))
        );
        assert_eq!((next[0].pull_days(), next[0].stalls), (14, 0));
        assert_ne!(next[0].job_id, job.job_id);
        assert_eq!(next[0].reason, JobReason::Backfill);

        // Nothing written: the whole window goes on in halves, counted.
        let stuck = handed_on(&job, &parts, false).unwrap();
        assert_eq!((stuck[0].from, stuck[0].to), (job.from, job.to));
        assert_eq!((stuck[0].pull_days(), stuck[0].stalls), (7, 1));
        let mut j = stuck[0].clone();
        for _ in 0..4 {
            j = handed_on(&j, &[(j.from, j.to)], false).unwrap().remove(0);
        }
        assert_eq!((j.pull_days(), j.stalls), (1, 5), "down to a day");
        // The message round-trips.
        assert_eq!(
            SyncJob::parse(&serde_json::to_string(&j).unwrap()).unwrap(),
            j
        );

        // A job stuck too long fails into the queue's retries instead.
        j.stalls = MAX_STALLS;
        assert!(!hand_on_ok(&j, false));
        assert!(hand_on_ok(&j, true), "unless it wrote a part");

        // Days absorbed apart go on as a job per run of days.
        let apart = [
            (d("2026-11-01"), d("2026-11-02")),
            (d("2026-11-05"), d("2026-11-05")),
        ];
        assert_eq!(handed_on(&job, &apart, true).unwrap().len(), 2);
    }
}
