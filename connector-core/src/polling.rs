//! Pulls nobody asked for, queued on each scheduled tick: every connected
//! connection that has not synced within its vendor's interval gets a sync
//! job for its last two days. For a vendor without webhooks (Dexcom) that
//! interval is its poll interval; for the others it is a watchdog — if a
//! vendor's webhooks stop arriving (a lapsed subscription, an outage), the
//! connection falls back to a daily pull instead of going quiet.

use crate::app::App;
use crate::domain::error::{Error, Result};
use crate::domain::job::{last_days, JobReason, SyncJob};
use crate::domain::vendor::Vendor;
use crate::vendors::driver::Upkept;
use chrono::{DateTime, Duration, Utc};

/// Days each poll pulls (a reading can arrive hours late).
pub const POLL_DAYS: u32 = 2;
/// How long a connection to `vendor` may go without a sync; None: never polled.
fn interval(app: &App, vendor: Vendor) -> Option<Duration> {
    app.vendors.get(vendor)?.quiet_limit()
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

/// The Ephemeral item that holds a vendor's upkeep turn for the fleet.
pub fn upkeep_claim(vendor: Vendor) -> String {
    format!("upkeep#{vendor}")
}

/// Each vendor's upkeep (Oura's webhook subscriptions), run by one tick of
/// the fleet per the vendor's interval; a failed turn gives its claim back
/// so the next tick tries again. Returns what changed, in all.
pub async fn upkeep_vendors(app: &App, now: DateTime<Utc>) -> Upkept {
    let mut total = Upkept::default();
    for vendor in Vendor::ALL {
        let (driver, ctx) = match app.driver(vendor).await {
            Ok(d) => d,
            Err(Error::VendorNotConfigured(_) | Error::Vendor { .. }) => continue,
            Err(e) => {
                tracing::error!(%vendor, error = %e, "upkeep: could not load the vendor");
                continue;
            }
        };
        let Some(every) = driver.upkeep_every(&ctx) else {
            continue;
        };
        let claim = upkeep_claim(vendor);
        match app.ephemeral.claim(&claim, now + every, None).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::error!(%vendor, error = %e, "upkeep: could not claim the turn");
                continue;
            }
        }
        match driver.upkeep(&ctx, now).await {
            Ok(done) => {
                total.created += done.created;
                total.renewed += done.renewed;
            }
            Err(e) => {
                tracing::error!(%vendor, error = %e, "upkeep failed; the next tick tries again");
                if let Err(e) = app.ephemeral.delete(&claim).await {
                    tracing::warn!(%vendor, error = %e, "upkeep: could not release the turn");
                }
            }
        }
    }
    total
}
