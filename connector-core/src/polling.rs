//! Pulls for vendors that send no webhooks (Dexcom): on each scheduled tick,
//! every connected connection to such a vendor that has not synced within
//! the vendor's poll interval gets a sync job for its last two days.

use crate::app::App;
use crate::error::Result;
use crate::jobs::{last_days, JobReason, SyncJob};
use chrono::{DateTime, Utc};

/// Days each poll pulls (a reading can arrive hours late).
pub const POLL_DAYS: u32 = 2;

/// Queues the due polls; returns how many were queued.
pub async fn enqueue_due(app: &App, now: DateTime<Utc>) -> Result<usize> {
    let mut queued = 0;
    for driver in app.vendors.all() {
        let Some(every) = driver.poll_every() else {
            continue;
        };
        let vendor = driver.vendor();
        let (from, to) = last_days(POLL_DAYS);
        for conn in app.connections.stale_of_vendor(vendor, now - every).await? {
            let job = SyncJob::new(&conn.user_id, vendor, from, to, JobReason::Poll)?;
            app.queue.send(&job).await?;
            queued += 1;
        }
    }
    Ok(queued)
}
