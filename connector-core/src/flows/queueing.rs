//! Queueing live sync jobs (webhook, manual, poll) so that at most one waits
//! per (user, vendor): while one waits, a new request only adds its days to
//! it, and the job runs every day it absorbed. A burst of webhooks, or a
//! user looping manual syncs, costs one pull. For a vendor whose webhooks
//! anyone could forge, a new webhook job also waits out the gap since the
//! user's last webhook-driven pull there began, so such a vendor's user is
//! pulled on webhooks at most once per gap.

use crate::domain::config::MAX_WINDOW_DAYS;
use crate::domain::error::{Error, Result};
use crate::domain::job::{JobReason, SyncJob};
use crate::flows::app::App;
use chrono::{NaiveDate, Utc};

/// How long a waiting job's record lives. Past it, a request queues a new
/// job: a job held up in retries this long is not waited for.
const WAITING_TTL_SECS: i64 = 3600;

/// What became of a request for a live job.
#[derive(Debug, PartialEq, Eq)]
pub enum Queued {
    /// Sent as a new job, visible after `delay_secs`.
    Sent {
        /// Seconds before the queue shows it.
        delay_secs: u64,
    },
    /// A job for the same user and vendor was waiting; it absorbed the days.
    Absorbed {
        /// The waiting job's id.
        into: String,
    },
}

/// Queues live `job`, or adds its days to the job waiting for its user and
/// vendor. `gapped`: a new job waits until the gap after the user's last
/// pull of its kind at this vendor has passed (`mark_pulled`).
pub async fn queue_live(app: &App, job: &SyncJob, gapped: bool) -> Result<Queued> {
    let days = days_of(job.from, job.to);
    let (user, vendor) = (job.user_id.as_str(), job.vendor);
    for _ in 0..3 {
        if let Some(into) = app
            .ephemeral
            .merge_into_waiting_job(user, vendor, &days)
            .await?
        {
            return Ok(Queued::Absorbed { into });
        }
        let expires_at = Utc::now() + chrono::Duration::seconds(WAITING_TTL_SECS);
        if !app
            .ephemeral
            .put_waiting_job(user, vendor, &job.job_id, &days, expires_at)
            .await?
        {
            // Another request made the waiting job in between: join it.
            continue;
        }
        let delay_secs = if gapped {
            app.ephemeral
                .pull_gap_left(user, vendor, job.reason)
                .await?
        } else {
            0
        };
        if let Err(e) = app.queue.send_delayed(job, delay_secs).await {
            // No message carries the record: let the next request queue one.
            app.ephemeral
                .take_waiting_job(user, vendor, &job.job_id)
                .await?;
            return Err(e);
        }
        return Ok(Queued::Sent { delay_secs });
    }
    Err(Error::Storage("waiting job contention".into()))
}

/// The windows `job` runs: when it is the live job waiting for its user and
/// vendor, every day it absorbed (its own included), as runs of consecutive
/// days; otherwise its own window.
pub async fn windows_of(app: &App, job: &SyncJob) -> Result<Vec<(NaiveDate, NaiveDate)>> {
    if job.reason == JobReason::Backfill {
        return Ok(vec![(job.from, job.to)]);
    }
    let Some(mut days) = app
        .ephemeral
        .take_waiting_job(&job.user_id, job.vendor, &job.job_id)
        .await?
    else {
        return Ok(vec![(job.from, job.to)]);
    };
    days.extend(days_of(job.from, job.to));
    Ok(runs_of(days))
}

/// Queues again the windows a failed job had absorbed beyond its own (its
/// own comes back with its message).
pub async fn requeue_absorbed(
    app: &App,
    job: &SyncJob,
    windows: &[(NaiveDate, NaiveDate)],
) -> Result<()> {
    for &(from, to) in windows {
        if from >= job.from && to <= job.to {
            continue;
        }
        let again = SyncJob::new(&job.user_id, job.vendor, from, to, job.reason)?;
        queue_live(app, &again, false).await?;
    }
    Ok(())
}

pub(crate) fn days_of(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    from.iter_days().take_while(|d| *d <= to).collect()
}

/// Runs of consecutive days, each at most `MAX_WINDOW_DAYS` long.
pub(crate) fn runs_of(mut days: Vec<NaiveDate>) -> Vec<(NaiveDate, NaiveDate)> {
    days.sort_unstable();
    days.dedup();
    let mut out: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for day in days {
        match out.last_mut() {
            Some((from, to))
                if day.pred_opt() == Some(*to)
                    && (day - *from).num_days() < i64::from(MAX_WINDOW_DAYS) =>
            {
                *to = day
            }
            _ => out.push((day, day)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn absorbed_days_run_as_runs_of_consecutive_days() {
        let days = vec![
            d("2026-11-03"),
            d("2026-11-01"),
            d("2026-11-02"),
            d("2026-11-02"),
            d("2026-11-10"),
        ];
        assert_eq!(
            runs_of(days),
            vec![
                (d("2026-11-01"), d("2026-11-03")),
                (d("2026-11-10"), d("2026-11-10"))
            ]
        );
        let long = days_of(d("2026-01-01"), d("2026-12-31"));
        let w = runs_of(long);
        assert_eq!(w.len(), 5, "{w:?}");
        assert!(w
            .iter()
            .all(|(f, t)| (*t - *f).num_days() < i64::from(MAX_WINDOW_DAYS)));
        assert_eq!(w[0].0, d("2026-01-01"));
        assert_eq!(w[4].1, d("2026-12-31"));
    }
}
