//! The scheduled tick (every 15 minutes in AWS): refresh every connection
//! whose access token expires within the next hour (a connection the vendor
//! refuses is marked `refresh_failed`); queue pulls nobody asked for — every
//! connected connection that has not synced within its vendor's interval
//! gets a sync job for its last two days (for a vendor without webhooks,
//! Dexcom, that interval is its poll interval; for the others it is a
//! watchdog: if a vendor's webhooks stop arriving, the connection falls
//! back to a daily pull instead of going quiet); and run each vendor's
//! upkeep (Oura renews its expiring webhook subscriptions). The lists come
//! from the sparse schedule indexes; once a day the fleet's first tick also
//! puts connections that older versions wrote on them (a table scan).

use crate::domain::error::{Error, Result};
use crate::domain::job::{last_days, JobReason, SyncJob};
use crate::domain::metric::{count_vendor, Metric};
use crate::domain::vendor::Vendor;
use crate::flows::app::App;
use crate::flows::queueing::{queue_live, Queued};
use crate::flows::refresh::refresh_connection;
use crate::vendors::driver::{Upkept, VendorDriver};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// Days each poll pulls (a reading can arrive hours late).
pub const POLL_DAYS: u32 = 2;
/// How long a connection to `vendor` may go without a sync; None: never polled.
fn interval(app: &App, vendor: Vendor) -> Option<Duration> {
    app.vendors().ok()?.get(vendor)?.quiet_limit()
}

/// Queues the due polls; returns how many were queued. One scan serves
/// every vendor: it reads the connections quiet for the shortest interval,
/// and each is then held to its own vendor's.
pub async fn enqueue_due(app: &App, now: DateTime<Utc>) -> Result<usize> {
    let Some(shortest) = app
        .vendors()?
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
        if let Queued::Absorbed { .. } = queue_live(app, &job, false).await? {
            continue;
        }
        tracing::info!(user_id = %conn.user_id, %vendor, "quiet connection: polling");
        count_vendor(Metric::WatchdogPolls, vendor, 1);
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
        let upkeep = driver.upkeep(&ctx, now);
        if let Some(done) = fleet_turn(app, &claim, now + every, upkeep).await {
            total.created += done.created;
            total.renewed += done.renewed;
        }
    }
    total
}

/// A tick refreshes tokens that expire within this many seconds.
const HORIZON_SECS: i64 = 3600;
/// The daily sweep's claim in the Ephemeral table (one tick of the fleet).
const SCHEDULE_SWEEP_CLAIM: &str = "upkeep#connections#schedule";

/// What one tick did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct TickReport {
    /// Connections whose access token was due for a refresh.
    pub due: usize,
    /// Of those, refreshed.
    pub refreshed: usize,
    /// Of those, failed.
    pub failed: usize,
    /// Polls queued for quiet connections.
    pub polls_queued: usize,
    /// Connections put on the schedule indexes by the daily sweep.
    pub scheduled: usize,
    /// Vendor webhook subscriptions (Oura's) created and renewed by this tick.
    pub subscriptions_created: usize,
    /// Vendor webhook subscriptions renewed by this tick.
    pub subscriptions_renewed: usize,
}

/// How long a published list of supported vendors holds without a tick.
const SUPPORTED_FOR_HOURS: i64 = 24;

/// Publishes which vendors this deployment can connect (on, with client id
/// and secret), for the providers function, which may not read the
/// credentials secret itself. Each tick does; so does the local stack at start.
pub async fn publish_supported(app: &App, now: DateTime<Utc>) -> Result<Vec<Vendor>> {
    let mut supported = Vec::new();
    for vendor in Vendor::ALL {
        if app.vendor_enabled(vendor) && app.vendor_credentials(vendor).await?.supported() {
            supported.push(vendor);
        }
    }
    app.ephemeral
        .publish_supported(&supported, now + Duration::hours(SUPPORTED_FOR_HOURS))
        .await?;
    Ok(supported)
}

/// One tick: publish the supported vendors, refresh what is due, queue the
/// quiet connections' pulls, run the vendors' upkeep; once a day, the
/// schedule sweep.
pub async fn run(app: &App, now: DateTime<Utc>) -> TickReport {
    // Boxed: inlined, this future's layout is past rustc's query depth
    // limit in the token-refresher binary (without incremental builds).
    if let Err(e) = Box::pin(publish_supported(app, now)).await {
        tracing::error!(error = %e, "could not publish the supported vendors");
    }
    let scheduled = sweep_unscheduled(app, now).await;
    let due = match app
        .connections
        .expiring_before(now + chrono::Duration::seconds(HORIZON_SECS))
        .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "could not list expiring connections");
            return TickReport::default();
        }
    };
    let mut report = TickReport {
        due: due.len(),
        scheduled,
        ..Default::default()
    };
    for conn in &due {
        match refresh_connection(app, conn).await {
            Ok(_) => report.refreshed += 1,
            Err(e) => {
                report.failed += 1;
                tracing::warn!(user_id = %conn.user_id, vendor = %conn.vendor, error = %e, "refresh failed");
            }
        }
    }
    match enqueue_due(app, now).await {
        Ok(n) => report.polls_queued = n,
        Err(e) => tracing::error!(error = %e, "could not queue polls"),
    }
    let upkept = upkeep_vendors(app, now).await;
    report.subscriptions_created = upkept.created;
    report.subscriptions_renewed = upkept.renewed;
    tracing::info!(
        due = report.due,
        refreshed = report.refreshed,
        failed = report.failed,
        polls_queued = report.polls_queued,
        scheduled = report.scheduled,
        subscriptions_created = report.subscriptions_created,
        subscriptions_renewed = report.subscriptions_renewed,
        "refresh tick"
    );
    report
}

/// Once a day for the fleet: connections without the schedule attributes
/// onto the indexes. A failed sweep gives its claim back for the next tick.
async fn sweep_unscheduled(app: &App, now: DateTime<Utc>) -> usize {
    let until = now + chrono::Duration::hours(24);
    let sweep = app.connections.schedule_unscheduled();
    fleet_turn(app, SCHEDULE_SWEEP_CLAIM, until, sweep)
        .await
        .unwrap_or(0)
}

/// Runs `work` as the fleet's one turn under `claim` until `until`: a tick
/// that finds the turn taken skips it, and a failed turn gives the claim
/// back so the next tick tries again. None when skipped or failed.
async fn fleet_turn<T, E: std::fmt::Display>(
    app: &App,
    claim: &str,
    until: DateTime<Utc>,
    work: impl std::future::Future<Output = std::result::Result<T, E>>,
) -> Option<T> {
    match app.ephemeral.claim(claim, until, None).await {
        Ok(true) => {}
        Ok(false) => return None,
        Err(e) => {
            tracing::error!(claim, error = %e, "could not claim the fleet's turn");
            return None;
        }
    }
    match work.await {
        Ok(done) => Some(done),
        Err(e) => {
            tracing::error!(claim, error = %e, "the fleet's turn failed; the next tick tries again");
            if let Err(e) = app.ephemeral.delete(claim).await {
                tracing::warn!(claim, error = %e, "could not release the fleet's turn");
            }
            None
        }
    }
}
