//! Running one sync job: open the connection's tokens, refresh them when
//! they expire (or the vendor says they did), pull, normalize and write
//! idempotently (samples by natural key, summaries by user and day).
//!
//! A finished job is marked done (Ephemeral, 24 h) before its message is
//! deleted: when a worker dies after the job but before the delete, or SQS
//! delivers a message twice, the job is not run again. A failed job's
//! message is made visible again when it should be retried: after a
//! vendor's 429, as late as the vendor says; otherwise after a jittered
//! exponential backoff.

use crate::domain::connection::ConnectionStatus;
use crate::domain::error::{Disposition, Error, Result};
use crate::domain::health::DailySummary;
use crate::domain::job::{JobReason, Priority, SyncJob};
use crate::domain::vendor::VendorError;
use crate::flows::app::App;
use crate::flows::queueing;
use crate::flows::refresh::{open_tokens, refresh_connection};
use crate::vendors::driver::FetchRequest;
use chrono::{NaiveDate, Utc};
use rand::Rng;

/// Refresh this long before the access token expires.
pub const EXPIRY_MARGIN_SECS: i64 = 60;

/// How a sync job ended.
#[derive(Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Pulled and written.
    Synced {
        /// Samples written.
        samples: usize,
        /// Daily summaries written.
        days: usize,
    },
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

/// Runs a job. `Err` means "retry later" (the message goes back to the
/// queue); failures that a retry cannot fix are recorded on the connection
/// and end the job.
pub async fn run_job(app: &App, job: &SyncJob) -> Result<JobOutcome> {
    let vendor = job.vendor;
    let Some(mut conn) = app.connections.get(&job.user_id, vendor).await? else {
        return Ok(JobOutcome::Skipped("no connection"));
    };
    if conn.status != ConnectionStatus::Connected && conn.status != ConnectionStatus::Error {
        return Ok(JobOutcome::Skipped(
            "connection needs the user to reconnect",
        ));
    }
    let (driver, mut ctx) = match app.driver(vendor).await {
        Ok(d) => d,
        Err(e) => return unless_permanent(app, job, e).await,
    };
    ctx.budget = ctx.budget.for_job(&job.user_id, priority_of(job));
    if job.reason == JobReason::Webhook && driver.unsigned_webhooks() {
        let next = Utc::now() + chrono::Duration::seconds(app.config.unsigned_pull_gap_secs.into());
        app.ephemeral
            .mark_pulled(&job.user_id, vendor, next)
            .await?;
    }
    let mut tokens = match open_tokens(app, &conn).await {
        Ok(t) => t,
        Err(Error::Corrupt(_)) => {
            return Ok(JobOutcome::Skipped(
                "stored tokens do not open; recorded on the connection",
            ))
        }
        Err(e) => return Err(e),
    };
    if tokens.expires_within(Utc::now(), EXPIRY_MARGIN_SECS) {
        (conn, tokens) = match refresh_connection(app, &conn).await {
            Ok(fresh) => fresh,
            Err(e) => return unless_needs_user(app, job, e).await,
        };
    }
    let mut refreshed_on_401 = false;
    let fetched = loop {
        let req = FetchRequest {
            user_id: &job.user_id,
            vendor_user_id: &conn.vendor_user_id,
            access_token: tokens.access_token.expose(),
            from: job.from,
            to: job.to,
            reason: job.reason,
        };
        match driver.fetch(&ctx, req).await {
            Ok(s) => break s,
            Err(VendorError::Unauthorized) if !refreshed_on_401 => {
                refreshed_on_401 = true;
                (conn, tokens) = match refresh_connection(app, &conn).await {
                    Ok(fresh) => fresh,
                    Err(e) => return unless_needs_user(app, job, e).await,
                };
            }
            Err(e) => return unless_permanent(app, job, Error::vendor(vendor, e)).await,
        }
    };
    let samples = fetched.samples;
    app.health.put_samples(&job.user_id, &samples).await?;
    app.health
        .put_raw(&job.user_id, vendor, &fetched.raw)
        .await?;
    let summaries = DailySummary::from_samples(&samples);
    for summary in &summaries {
        app.health.upsert_summary(&job.user_id, summary).await?;
    }
    app.connections
        .mark_synced(&job.user_id, vendor, Utc::now())
        .await?;
    Ok(JobOutcome::Synced {
        samples: samples.len(),
        days: summaries.len(),
    })
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
    Ok(JobOutcome::Skipped(
        "vendor refused the job; recorded on the connection",
    ))
}

/// Runs a job received from the queue once: a job already marked done (a
/// duplicate delivery, or a worker that died before deleting its message)
/// is dropped; a live job runs every day it absorbed while it waited
/// (`flows::queueing`); a finished one is marked done for a day.
pub async fn run_once(app: &App, job: &SyncJob, message_id: &str) -> Result<()> {
    let done_key = format!("job#{}#done", job.job_id);
    if app.ephemeral.get(&done_key).await?.is_some() {
        tracing::info!(%message_id, job_id = %job.job_id, "job already done; duplicate delivery dropped");
        return Ok(());
    }
    let windows = recent_first(job, queueing::windows_of(app, job).await?);
    let (mut samples, mut days) = (0, 0);
    let mut skipped = None;
    for (i, &(from, to)) in windows.iter().enumerate() {
        let window = SyncJob {
            from,
            to,
            ..job.clone()
        };
        match run_job(app, &window).await {
            Ok(JobOutcome::Synced {
                samples: s,
                days: d,
            }) => {
                samples += s;
                days += d;
            }
            Ok(skip) => {
                skipped = Some(skip);
                break;
            }
            Err(e) => {
                queueing::requeue_absorbed(app, job, &windows[i..]).await?;
                return Err(e);
            }
        }
    }
    let outcome = skipped.unwrap_or(JobOutcome::Synced { samples, days });
    let done_for = Utc::now() + chrono::Duration::hours(24);
    app.ephemeral.claim(&done_key, done_for, None).await?;
    tracing::info!(%message_id, job_id = %job.job_id, user_id = %job.user_id, vendor = %job.vendor, ?outcome, "job done");
    Ok(())
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
    match err.disposition() {
        Disposition::RetryAfter(secs) => secs.clamp(1, MAX_VISIBILITY_SECS),
        // A malformed job never succeeds: let it use up its receives at once
        // so the redrive policy moves it to the DLQ without delay.
        Disposition::DeadLetter => 0,
        Disposition::BackOff | Disposition::RecordOnConnection => {
            let exp = receive_count.saturating_sub(1).min(16);
            let ceiling = BACKOFF_BASE_SECS
                .saturating_mul(1 << exp)
                .min(BACKOFF_CAP_SECS);
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
