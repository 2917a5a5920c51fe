//! Pulls nobody asked for, queued on each scheduled tick: every connected
//! connection that has not synced within its vendor's interval gets a sync
//! job for its last two days. For a vendor without webhooks (Dexcom) that
//! interval is its poll interval; for the others it is a watchdog — if a
//! vendor's webhooks stop arriving (a lapsed subscription, an outage), the
//! connection falls back to a daily pull instead of going quiet.

use crate::app::App;
use crate::domain::error::Result;
use crate::domain::job::{last_days, JobReason, SyncJob};
use crate::domain::vendor::Vendor;
use chrono::{DateTime, Duration, Utc};

/// Days each poll pulls (a reading can arrive hours late).
pub const POLL_DAYS: u32 = 2;
/// How long a webhook vendor may stay silent about a connection.
pub const WEBHOOK_WATCHDOG_HOURS: i64 = 24;

/// How long a connection to `vendor` may go without a sync; None: never polled.
fn interval(app: &App, vendor: Vendor) -> Option<Duration> {
    if vendor == Vendor::Mock {
        return None;
    }
    let driver = app.vendors.get(vendor)?;
    Some(
        driver
            .poll_every()
            .unwrap_or_else(|| Duration::hours(WEBHOOK_WATCHDOG_HOURS)),
    )
}

/// Queues the due polls; returns how many were queued. One scan serves
/// every vendor: it reads the connections quiet for the shortest interval,
/// and each is then held to its own vendor's.
pub async fn enqueue_due(app: &App, now: DateTime<Utc>) -> Result<usize> {
    let Some(shortest) = app
        .vendors
        .all()
        .filter_map(|d| interval(app, d.vendor()))
        .min()
    else {
        return Ok(0);
    };
    let (from, to) = last_days(POLL_DAYS);
    let mut queued = 0;
    for conn in app.connections.stale_since(now - shortest).await? {
        let vendor = conn.vendor;
        let Some(every) = interval(app, vendor) else {
            continue;
        };
        if conn.last_sync_at.is_some_and(|t| t >= now - every) {
            continue;
        }
        let job = SyncJob::new(&conn.user_id, vendor, from, to, JobReason::Poll)?;
        app.queue.send(&job).await?;
        tracing::info!(user_id = %conn.user_id, %vendor, "quiet connection: polling");
        queued += 1;
    }
    Ok(queued)
}
