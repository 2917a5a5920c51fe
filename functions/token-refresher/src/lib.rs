//! Scheduled: refresh every connection whose access token expires within the
//! next hour (a connection the vendor refuses is marked `refresh_failed`),
//! then queue the pulls of vendors that send no webhooks (polling.rs), and
//! run each vendor's upkeep (Oura renews its expiring webhook
//! subscriptions). Both lists come from the sparse schedule indexes; once a day the fleet's first tick also puts
//! connections that older versions wrote on them (a table scan).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use connector_core::refresh::refresh_connection;
use connector_core::App;
use serde::Serialize;

pub const HORIZON_SECS: i64 = 3600;
/// The daily sweep's claim in the Ephemeral table (one tick of the fleet).
pub const SCHEDULE_SWEEP_CLAIM: &str = "upkeep#connections#schedule";

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct RefreshReport {
    pub due: usize,
    pub refreshed: usize,
    pub failed: usize,
    pub polls_queued: usize,
    /// Connections put on the schedule indexes by the daily sweep.
    pub scheduled: usize,
    /// Vendor webhook subscriptions (Oura's) created and renewed by this tick.
    pub subscriptions_created: usize,
    pub subscriptions_renewed: usize,
}

pub async fn handle(app: &App, _event: EventBridgeEvent) -> RefreshReport {
    let scheduled = sweep_unscheduled(app).await;
    let due = match app
        .connections
        .expiring_before(Utc::now() + chrono::Duration::seconds(HORIZON_SECS))
        .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "could not list expiring connections");
            return RefreshReport::default();
        }
    };
    let mut report = RefreshReport {
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
    match connector_core::polling::enqueue_due(app, Utc::now()).await {
        Ok(n) => report.polls_queued = n,
        Err(e) => tracing::error!(error = %e, "could not queue polls"),
    }
    let upkept = connector_core::polling::upkeep_vendors(app, Utc::now()).await;
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
async fn sweep_unscheduled(app: &App) -> usize {
    let until = Utc::now() + chrono::Duration::hours(24);
    match app.ephemeral.claim(SCHEDULE_SWEEP_CLAIM, until, None).await {
        Ok(true) => {}
        Ok(false) => return 0,
        Err(e) => {
            tracing::error!(error = %e, "could not claim the schedule sweep");
            return 0;
        }
    }
    match app.connections.schedule_unscheduled().await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "schedule sweep failed");
            if let Err(e) = app.ephemeral.delete(SCHEDULE_SWEEP_CLAIM).await {
                tracing::warn!(error = %e, "could not release the schedule sweep");
            }
            0
        }
    }
}
