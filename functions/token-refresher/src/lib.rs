//! Scheduled: refresh every connection whose access token expires within the
//! next hour (a connection the vendor refuses is marked `refresh_failed`),
//! then queue the pulls of vendors that send no webhooks (polling.rs), and
//! keep Oura's expiring webhook subscriptions renewed.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use connector_core::refresh::refresh_connection;
use connector_core::App;
use serde::Serialize;

pub const HORIZON_SECS: i64 = 3600;

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct RefreshReport {
    pub due: usize,
    pub refreshed: usize,
    pub failed: usize,
    pub polls_queued: usize,
    /// Oura webhook subscriptions created and renewed by this tick.
    pub subscriptions_created: usize,
    pub subscriptions_renewed: usize,
}

pub async fn handle(app: &App, _event: EventBridgeEvent) -> RefreshReport {
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
    match connector_core::vendors::oura::subscriptions::upkeep(app, Utc::now()).await {
        Ok(Some(r)) => {
            report.subscriptions_created = r.created.len();
            report.subscriptions_renewed = r.renewed.len();
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "could not keep Oura's subscriptions"),
    }
    tracing::info!(
        due = report.due,
        refreshed = report.refreshed,
        failed = report.failed,
        polls_queued = report.polls_queued,
        subscriptions_created = report.subscriptions_created,
        subscriptions_renewed = report.subscriptions_renewed,
        "refresh tick"
    );
    report
}
