//! A vendor's webhook delivery, in two halves. The webhook function's half
//! is what the vendor waits on: the vendor's driver authenticates the
//! delivery (signature and freshness, a shared secret, or what an unsigned
//! vendor does send) or answers its subscription handshake, and its events
//! (at most `MAX_EVENTS_PER_DELIVERY`) are queued for the sync worker as
//! notices, ten to a SendMessageBatch. A signed delivery costs that one
//! call. An unsigned vendor's events are looked up first (once per vendor
//! user): anyone could send them, so an unknown user's costs no write at
//! all. The sync worker's half (`act_on`) looks each notice's user up,
//! drops an event seen before (the vendor's retry, or SQS delivering a
//! notice twice) and queues a sync of its days or, for a deauthorization,
//! marks the connection revoked — for a vendor whose webhooks anyone could
//! forge, only once the vendor refuses the user's grant.

use crate::aws::store::EphemeralStore;
use crate::domain::app_event::EventType;
use crate::domain::connection::{Connection, ConnectionStatus};
use crate::domain::error::{Error, Result};
use crate::domain::event::{EventKind, WebhookEvent, WebhookNotice};
use crate::domain::job::{JobReason, SyncJob};
use crate::domain::metric::{count, count_vendor, Metric};
use crate::domain::vendor::{Vendor, VendorError};
use crate::flows::app::App;
use crate::flows::events;
use crate::flows::queueing::{queue_live, Queued};
use crate::flows::refresh::{open_tokens, refresh_connection};
use crate::flows::sync::EXPIRY_MARGIN_SECS;
use crate::vendors::client::VendorCtx;
use crate::vendors::driver::{VendorDriver, WebhookReply, WebhookRequest};
use crate::vendors::registry::Driver;
use chrono::Utc;
use std::collections::HashMap;

/// How long an event id is remembered (vendors retry for hours to days).
pub const DEDUP_TTL_SECS: i64 = 7 * 86400;

/// The most events one delivery may carry. A body with more is refused
/// whole, before any lookup: one forged Garmin body of 6 MB could carry
/// about 100,000 notices.
pub const MAX_EVENTS_PER_DELIVERY: usize = 1000;

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

/// What became of the events of one delivery in the webhook function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events queued for the sync worker.
    pub queued: u32,
    /// An unsigned vendor's events about a vendor user the connector does
    /// not know (dropped before any write).
    pub unknown_user: u32,
    /// Deliveries of an event type the connector does not sync.
    pub not_synced: u32,
}

/// What the sync worker did with one webhook notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acted {
    /// A sync of its days queued.
    Queued,
    /// Its days added to the sync already waiting for the user.
    Absorbed,
    /// The connection marked revoked.
    Revoked,
    /// An unsigned vendor's deauthorization the vendor does not confirm.
    NotConfirmed,
    /// Seen before: the vendor's retry, or the notice delivered twice.
    Duplicate,
    /// About a vendor user the connector does not know.
    UnknownUser,
}

/// Lets a delivery to `vendor` from `source` (its address) in, unless that
/// source has sent more than its share this second: then the 429 to answer,
/// before any AWS call.
pub fn admit(app: &App, vendor: Vendor, source: &str) -> Result<()> {
    app.deliveries.admit(vendor, source).inspect_err(|_| {
        tracing::warn!(%vendor, %source, "webhook delivery refused: too many from this source");
    })
}

/// Counts a delivery to `vendor` answered with `err`, by its reason.
pub fn count_refused(vendor: Vendor, err: &Error) {
    count(Metric::WebhooksRefused, &[vendor.as_str(), err.reason()], 1);
}

/// Receives a delivery to `vendor`'s webhook.
pub async fn receive(app: &App, vendor: Vendor, delivery: &WebhookRequest<'_>) -> Result<Received> {
    let (mut driver, mut ctx) = match app.driver(vendor).await {
        Ok(d) => d,
        Err(Error::Vendor { .. }) => {
            return Err(Error::NotFound(format!("webhook receiver for {vendor}")))
        }
        Err(e) => return Err(e),
    };
    let reply = match driver.webhook(&ctx, delivery).await {
        // Signed with a value rotated in since the secret was cached?
        Err(Error::Unauthorized(_)) if app.credentials.expire_for_reread().await => {
            tracing::info!(%vendor, "delivery refused with the cached secret; reading it again");
            (driver, ctx) = app.driver(vendor).await?;
            driver.webhook(&ctx, delivery).await?
        }
        other => other?,
    };
    match reply {
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
        WebhookReply::Events(events) => {
            let tally = accept(app, driver.as_ref(), events).await?;
            count_vendor(Metric::WebhooksAccepted, vendor, 1);
            Ok(Received::Accepted(tally))
        }
        WebhookReply::NotSynced { event_type } => {
            tracing::info!(%vendor, event_type, not_synced = 1, "webhook event type not synced; acknowledged");
            count_vendor(Metric::WebhooksAccepted, vendor, 1);
            Ok(Received::Accepted(Tally {
                not_synced: 1,
                ..Tally::default()
            }))
        }
    }
}

async fn accept(app: &App, driver: &Driver, events: Vec<WebhookEvent>) -> Result<Tally> {
    let vendor = driver.vendor();
    if events.len() > MAX_EVENTS_PER_DELIVERY {
        tracing::warn!(%vendor, events = events.len(), "webhook refused: too many events in one delivery");
        return Err(Error::BadRequest(format!(
            "a delivery may carry at most {MAX_EVENTS_PER_DELIVERY} events; this one has {}",
            events.len()
        )));
    }
    let mut tally = Tally::default();
    let mut known: HashMap<String, bool> = HashMap::new();
    let mut notices = Vec::with_capacity(events.len());
    for event in events {
        if driver.unsigned_webhooks() {
            let is_user = match known.get(&event.vendor_user_id) {
                Some(&k) => k,
                None => {
                    let k = app
                        .connections
                        .find_by_vendor_user(vendor, &event.vendor_user_id)
                        .await?
                        .is_some();
                    known.insert(event.vendor_user_id.clone(), k);
                    k
                }
            };
            if !is_user {
                tally.unknown_user += 1;
                continue;
            }
        }
        notices.push(WebhookNotice { vendor, event });
    }
    app.queue.send_notices(&notices).await?;
    tally.queued = notices.len() as u32;
    let Tally {
        queued,
        unknown_user,
        not_synced: _,
    } = tally;
    tracing::info!(%vendor, queued, unknown_user, "webhook accepted");
    Ok(tally)
}

/// Acts on a webhook notice in the sync worker: looks its vendor user up
/// (an unknown one costs no write), drops an event id seen before, and
/// queues a sync of the event's days or revokes the connection. An error
/// forgets the event id, so the notice's retry is acted on, not dropped.
pub async fn act_on(app: &App, notice: &WebhookNotice) -> Result<Acted> {
    let (vendor, event) = (notice.vendor, &notice.event);
    let Some(conn) = app
        .connections
        .find_by_vendor_user(vendor, &event.vendor_user_id)
        .await?
    else {
        tracing::info!(%vendor, "webhook event about no user here; dropped");
        return Ok(Acted::UnknownUser);
    };
    let dedup = Dedup {
        store: &app.ephemeral,
        ttl_secs: DEDUP_TTL_SECS,
    };
    if !dedup
        .first_delivery(vendor, &event.event_id, Some(&conn.user_id))
        .await?
    {
        count_vendor(Metric::WebhookDuplicates, vendor, 1);
        tracing::info!(%vendor, user_id = %conn.user_id, "webhook event seen before; dropped");
        return Ok(Acted::Duplicate);
    }
    let acted = match driver_and_act(app, &conn, event).await {
        Ok(Acted::NotConfirmed) => {
            // Not believed: its event id must not stop the real one.
            dedup.release(vendor, &event.event_id).await?;
            Acted::NotConfirmed
        }
        Ok(acted) => acted,
        Err(e) => {
            dedup.release(vendor, &event.event_id).await?;
            return Err(e);
        }
    };
    tracing::info!(%vendor, user_id = %conn.user_id, ?acted, "webhook event acted on");
    Ok(acted)
}

async fn driver_and_act(app: &App, conn: &Connection, event: &WebhookEvent) -> Result<Acted> {
    let (driver, ctx) = app.driver(conn.vendor).await?;
    match event.kind {
        EventKind::Deauthorized => {
            if deauthorize(app, driver.as_ref(), &ctx, conn).await? {
                Ok(Acted::Revoked)
            } else {
                Ok(Acted::NotConfirmed)
            }
        }
        EventKind::DataChanged => {
            // The day before too: a sleep that ends on `date` began the day before.
            let from = event.date.pred_opt().unwrap_or(event.date);
            let job = SyncJob::new(
                &conn.user_id,
                conn.vendor,
                from,
                event.date,
                JobReason::Webhook,
            )?;
            Ok(
                match queue_live(app, &job, driver.unsigned_webhooks()).await? {
                    Queued::Sent { .. } => Acted::Queued,
                    Queued::Absorbed { .. } => Acted::Absorbed,
                },
            )
        }
    }
}

/// Marks `conn` revoked on its vendor's deauthorization event. For a vendor
/// whose webhooks anyone could forge, only once the vendor refuses the
/// user's grant. True when marked.
async fn deauthorize(
    app: &App,
    driver: &Driver,
    ctx: &VendorCtx,
    conn: &Connection,
) -> Result<bool> {
    if driver.unsigned_webhooks() && grant_is_live(app, driver, ctx, conn).await? {
        tracing::warn!(
            security_event = "deauthorization_not_confirmed",
            user_id = %conn.user_id,
            vendor = %conn.vendor,
            "a deauthorization event the vendor does not confirm (the user's grant still works); ignored"
        );
        return Ok(false);
    }
    app.connections
        .set_status(
            &conn.user_id,
            conn.vendor,
            ConnectionStatus::Revoked,
            Some("access was revoked at the vendor; reconnect"),
        )
        .await?;
    events::connection_changed(
        app,
        EventType::Revoked,
        &conn.user_id,
        conn.vendor,
        &events::grant_of(conn),
        None,
    )
    .await?;
    Ok(true)
}

/// Whether `conn`'s grant still works at the vendor, asked with its access
/// token (refreshed first when it has expired: a refused refresh token
/// means the grant is gone).
async fn grant_is_live(
    app: &App,
    driver: &Driver,
    ctx: &VendorCtx,
    conn: &Connection,
) -> Result<bool> {
    let tokens = match open_tokens(app, conn).await {
        Ok(t) => t,
        // Nothing to ask the vendor with; the connection needs a reconnect anyway.
        Err(Error::Corrupt(_)) => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut access_token = tokens.access_token.clone();
    if tokens.expires_within(Utc::now(), EXPIRY_MARGIN_SECS) && tokens.refresh_token.is_some() {
        match refresh_connection(app, conn).await {
            Ok((_, fresh)) => access_token = fresh.access_token,
            Err(Error::Vendor {
                error: VendorError::RefreshRejected,
                ..
            }) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    driver
        .grant_is_live(ctx, access_token.expose())
        .await
        .map_err(|e| Error::vendor(conn.vendor, e))
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
