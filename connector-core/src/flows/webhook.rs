//! A vendor's webhook delivery: the vendor's driver authenticates it
//! (signature and freshness, a shared secret, or what an unsigned vendor
//! does send) or answers its subscription handshake; each event is
//! deduplicated on the vendor's event id, then queued as a sync of its days
//! or, for a deauthorization, marks the connection revoked. Nothing waits on
//! the vendor: the answer goes back at once.

use crate::aws::store::EphemeralStore;
use crate::domain::connection::ConnectionStatus;
use crate::domain::error::{Error, Result};
use crate::domain::event::{EventKind, WebhookEvent};
use crate::domain::job::{JobReason, SyncJob};
use crate::domain::vendor::Vendor;
use crate::flows::app::App;
use crate::vendors::driver::{WebhookReply, WebhookRequest};
use chrono::Utc;
use serde::Serialize;

/// How long an event id is remembered (vendors retry for hours to days).
pub const DEDUP_TTL_SECS: i64 = 7 * 86400;

/// What became of a delivery.
#[derive(Debug, PartialEq)]
pub enum Received {
    /// A subscription handshake, to answer exactly as the vendor requires.
    Handshake {
        /// The HTTP status.
        status: u16,
        /// The answer's content type.
        content_type: &'static str,
        /// The answer.
        body: String,
    },
    /// Authenticated events, acted on.
    Accepted(Tally),
}

/// What the events of one delivery did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Syncs queued.
    pub queued: u32,
    /// Connections marked revoked.
    pub revoked: u32,
    /// Events seen before.
    pub duplicates: u32,
    /// Events about a vendor user the connector does not know.
    pub unknown_user: u32,
}

/// Receives a delivery to `vendor`'s webhook.
pub async fn receive(app: &App, vendor: Vendor, delivery: &WebhookRequest<'_>) -> Result<Received> {
    let (driver, ctx) = match app.driver(vendor).await {
        Ok(d) => d,
        Err(Error::Vendor { .. }) => {
            return Err(Error::NotFound(format!("webhook receiver for {vendor}")))
        }
        Err(e) => return Err(e),
    };
    match driver.webhook(&ctx, delivery).await? {
        WebhookReply::Handshake {
            status,
            content_type,
            body,
        } => {
            tracing::info!(%vendor, status, "webhook handshake answered");
            Ok(Received::Handshake {
                status,
                content_type,
                body,
            })
        }
        WebhookReply::Events(events) => accept(app, vendor, events).await.map(Received::Accepted),
    }
}

async fn accept(app: &App, vendor: Vendor, events: Vec<WebhookEvent>) -> Result<Tally> {
    let dedup = Dedup {
        store: &app.ephemeral,
        ttl_secs: DEDUP_TTL_SECS,
    };
    let mut tally = Tally::default();
    for event in events {
        let conn = app
            .connections
            .find_by_vendor_user(vendor, &event.vendor_user_id)
            .await?;
        let owner = conn.as_ref().map(|c| c.user_id.as_str());
        if !dedup.first_delivery(vendor, &event.event_id, owner).await? {
            tally.duplicates += 1;
            continue;
        }
        let Some(conn) = conn else {
            tally.unknown_user += 1;
            continue;
        };
        let outcome = match event.kind {
            EventKind::Deauthorized => app
                .connections
                .set_status(
                    &conn.user_id,
                    vendor,
                    ConnectionStatus::Revoked,
                    Some("access was revoked at the vendor; reconnect"),
                )
                .await
                .map(|()| tally.revoked += 1),
            EventKind::DataChanged => {
                // The day before too: a sleep that ends on `date` began the day before.
                let from = event.date.pred_opt().unwrap_or(event.date);
                let job =
                    SyncJob::new(&conn.user_id, vendor, from, event.date, JobReason::Webhook)?;
                app.queue.send(&job).await.map(|()| tally.queued += 1)
            }
        };
        if let Err(e) = outcome {
            // Forget the event so the vendor's retry is processed, not dropped.
            dedup.release(vendor, &event.event_id).await?;
            return Err(e);
        }
    }
    let Tally {
        queued,
        revoked,
        duplicates,
        unknown_user,
    } = tally;
    tracing::info!(%vendor, queued, revoked, duplicates, unknown_user, "webhook accepted");
    Ok(tally)
}

/// Dedup of webhook deliveries on the vendor's event id.
struct Dedup<'a> {
    store: &'a EphemeralStore,
    ttl_secs: i64,
}

impl Dedup<'_> {
    fn key(vendor: Vendor, event_id: &str) -> String {
        format!("webhook#{}#{}", vendor.as_str(), event_id)
    }

    /// True the first time an event id is seen within the TTL. `owner` is
    /// the user the event is about, so deleting the user deletes the key.
    async fn first_delivery(
        &self,
        vendor: Vendor,
        event_id: &str,
        owner: Option<&str>,
    ) -> Result<bool> {
        self.store
            .claim(
                &Self::key(vendor, event_id),
                Utc::now() + chrono::Duration::seconds(self.ttl_secs),
                owner,
            )
            .await
    }

    /// Undoes a claim when the event could not be queued, so the vendor's
    /// retry is processed rather than dropped as a duplicate.
    async fn release(&self, vendor: Vendor, event_id: &str) -> Result<()> {
        self.store.delete(&Self::key(vendor, event_id)).await
    }
}
