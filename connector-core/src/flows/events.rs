//! Telling the app what happened: each event is kept once per occurrence
//! in the user's change feed (`GET /v1/changes`), read page by page with a
//! resumable cursor, and queued once for delivery to the bus and the app's
//! webhook (`flows::deliver`). An event is kept and queued after the change
//! it reports, and a failure to do either fails the flow, so its retry
//! reports it again (at least once; the event's id makes the second one a
//! no-op unless the first was kept but not queued).

use crate::aws::store::events::FeedPosition;
use crate::domain::app_event::{AppEvent, DataWritten, EventType};
use crate::domain::connection::Connection;
use crate::domain::error::{Error, Result};
use crate::domain::vendor::Vendor;
use crate::flows::app::App;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::Utc;

/// An event appears in the feed this long after it was kept, so that a
/// reader past it cannot miss an event another writer kept a moment
/// earlier by its clock but later in fact.
pub const FEED_SETTLE: chrono::Duration = chrono::Duration::seconds(2);

/// Most events one page of the feed holds.
pub const MAX_PAGE: usize = 500;

/// Keeps `event` unless it was kept before, and queues it for delivery
/// unless it was queued before.
pub async fn tell(app: &App, event: &AppEvent) -> Result<()> {
    let kept = app.events.keep(event, Utc::now()).await?;
    let queued = app.outbox.is_on() && (kept || !app.events.was_queued(event).await?);
    if queued {
        app.outbox.send(event).await?;
        app.events.mark_queued(event).await?;
    }
    tracing::info!(
        event_id = %event.id,
        event_type = event.kind.as_str(),
        user_id = event.user_id(),
        kept,
        queued,
        "app event"
    );
    Ok(())
}

/// `conn` was set to the status `kind` reports, for `reason`; `occurrence`
/// tells this change from the connection's others.
pub async fn connection_changed(
    app: &App,
    kind: EventType,
    user_id: &str,
    vendor: Vendor,
    occurrence: &str,
    reason: Option<&str>,
) -> Result<()> {
    let event = AppEvent::connection(kind, user_id, vendor, occurrence, reason, Utc::now());
    tell(app, &event).await
}

/// `user_id`'s erasure (started at `started_at`) is done: the app is told
/// on the bus and the webhook, not in the feed, which was erased with the
/// user. A retried sweep tells it again under the same id.
pub async fn user_deleted(app: &App, user_id: &str, started_at: &str) -> Result<()> {
    let event = AppEvent::user_deleted(user_id, started_at, Utc::now());
    app.outbox.send(&event).await?;
    tracing::info!(
        event_id = %event.id,
        event_type = event.kind.as_str(),
        user_id,
        queued = app.outbox.is_on(),
        "app event (not kept: the user is erased)"
    );
    Ok(())
}

/// What a grant's events tell apart: when it was connected.
pub fn grant_of(conn: &Connection) -> String {
    conn.connected_at.to_rfc3339()
}

/// A sync job wrote `written`.
pub async fn data_updated(
    app: &App,
    user_id: &str,
    vendor: Vendor,
    job_id: &str,
    written: &DataWritten,
) -> Result<()> {
    if written.is_empty() {
        return Ok(());
    }
    let event = AppEvent::data_updated(user_id, vendor, job_id, written, Utc::now());
    tell(app, &event).await
}

/// A page of the change feed.
pub struct Changes {
    /// The events, oldest first.
    pub events: Vec<AppEvent>,
    /// Where the next page starts: pass it back as the cursor.
    pub cursor: String,
}

/// `user_id`'s events after `cursor` (from the oldest kept when None), at
/// most `limit`.
pub async fn changes(
    app: &App,
    user_id: &str,
    cursor: Option<&str>,
    limit: usize,
) -> Result<Changes> {
    let after = match cursor {
        None => FeedPosition::start(),
        Some(text) => parse_cursor(text)?,
    };
    let now = Utc::now();
    let (events, next) = app
        .events
        .page(
            user_id,
            &after,
            now - FEED_SETTLE,
            limit.clamp(1, MAX_PAGE),
            now,
        )
        .await?;
    Ok(Changes {
        events,
        cursor: B64.encode(next.as_str()),
    })
}

fn parse_cursor(text: &str) -> Result<FeedPosition> {
    let bad = || Error::BadRequest("cursor: not a cursor this feed returned".into());
    let decoded = B64.decode(text).map_err(|_| bad())?;
    let position = std::str::from_utf8(&decoded)
        .ok()
        .and_then(FeedPosition::parse)
        .or_else(|| (decoded == b"t#").then(FeedPosition::start))
        .ok_or_else(bad)?;
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cursors_the_feed_returned_are_taken() {
        let start = B64.encode("t#");
        assert_eq!(parse_cursor(&start).unwrap(), FeedPosition::start());
        let id = format!("evt_{}", "ab".repeat(16));
        let position = format!("t#1764930000123#{id}");
        assert_eq!(
            parse_cursor(&B64.encode(&position)).unwrap().as_str(),
            position
        );
        for bad in ["", "%%%", &B64.encode("id#evt_00"), &B64.encode("t#9")] {
            assert!(
                matches!(parse_cursor(bad), Err(Error::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
