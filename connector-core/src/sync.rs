//! Running one sync job: open the connection's tokens, refresh them when
//! they expire (or the vendor says they did), pull, normalize and write
//! idempotently (samples by natural key, summaries by user and day).

use crate::app::App;
use crate::domain::connection::ConnectionStatus;
use crate::domain::error::{Disposition, Error, Result};
use crate::domain::health::DailySummary;
use crate::domain::job::SyncJob;
use crate::domain::vendor::VendorError;
use crate::refresh::refresh_connection;
use crate::vendors::driver::FetchRequest;
use chrono::Utc;

/// Refresh this long before the access token expires.
pub const EXPIRY_MARGIN_SECS: i64 = 60;

#[derive(Debug, PartialEq, Eq)]
pub enum JobOutcome {
    Synced {
        samples: usize,
        days: usize,
    },
    /// Nothing to do: the connection is gone or needs the user.
    Skipped(&'static str),
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
    ctx.budget = ctx.budget.for_job(&job.user_id, job.reason.priority());
    let mut tokens = app.envelope.open_tokens(&conn).await?;
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
