//! The progress of the history pulled when a connection is made, kept on
//! the connection (`GET /v1/connections`): queued when connected, running
//! once a backfill job starts, each part's days added as it is written
//! (a set, so a part pulled again counts once), done when every day asked
//! is pulled, failed when a job stops for good; `backfill.completed` or
//! `backfill.failed` tells the app. An end reported again (a retried job)
//! is the same event.

use crate::domain::app_event::AppEvent;
use crate::domain::connection::{BackfillState, Connection};
use crate::domain::error::Result;
use crate::domain::job::{JobReason, SyncJob};
use crate::flows::app::App;
use crate::flows::events;
use crate::flows::queueing;
use chrono::{NaiveDate, Utc};

/// Whether `job` pulls a connection's first history.
pub fn tracks(job: &SyncJob) -> bool {
    job.reason == JobReason::Backfill
}

/// A backfill job of `job`'s connection started.
pub async fn started(app: &App, job: &SyncJob) -> Result<()> {
    app.connections
        .backfill_started(&job.user_id, job.vendor)
        .await
}

/// `job` wrote the days `from..=to`: the connection is marked synced and
/// the days added to its backfill in one write; the connection when that
/// completed its backfill (now or before), for [`tell_ended`].
pub async fn pulled(
    app: &App,
    job: &SyncJob,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Option<Connection>> {
    let days = queueing::days_of(from, to);
    let Some(conn) = app
        .connections
        .mark_synced(&job.user_id, job.vendor, Utc::now(), &days)
        .await?
    else {
        return Ok(None);
    };
    let Some(backfill) = &conn.backfill else {
        return Ok(None);
    };
    if backfill.state == BackfillState::Done {
        return Ok(Some(conn));
    }
    if backfill.state.is_final() || backfill.days_done < backfill.days_asked {
        return Ok(None);
    }
    // Some only when this call ended it (as done).
    app.connections
        .backfill_ended(&job.user_id, job.vendor, BackfillState::Done, None)
        .await
}

/// `job`'s backfill stopped for good, for `reason` (and the connection's
/// last error, when it has one); tells the app.
pub async fn failed(app: &App, job: &SyncJob, reason: &str) -> Result<()> {
    let current = app.connections.get(&job.user_id, job.vendor).await?;
    let why = match current.as_ref().and_then(|c| c.last_error.as_deref()) {
        Some(error) => format!("{reason}: {error}"),
        None => reason.to_string(),
    };
    let ended = app
        .connections
        .backfill_ended(&job.user_id, job.vendor, BackfillState::Failed, Some(&why))
        .await?;
    let now = match ended {
        Some(conn) => Some(conn),
        // Ended before: a retried job tells a failure again (the same event).
        None => app.connections.get(&job.user_id, job.vendor).await?,
    };
    match now {
        Some(conn) if conn.backfill.as_ref().map(|b| b.state) == Some(BackfillState::Failed) => {
            tell_ended(app, &conn).await
        }
        _ => Ok(()),
    }
}

/// Tells the app that `conn`'s backfill ended.
pub async fn tell_ended(app: &App, conn: &Connection) -> Result<()> {
    let Some(backfill) = &conn.backfill else {
        return Ok(());
    };
    tracing::info!(user_id = %conn.user_id, vendor = %conn.vendor, state = backfill.state.as_str(), days_done = backfill.days_done, days_asked = backfill.days_asked, "backfill ended");
    let event = AppEvent::backfill_ended(
        &conn.user_id,
        conn.vendor,
        &events::grant_of(conn),
        backfill,
        Utc::now(),
    );
    events::tell(app, &event).await
}
