//! Establishing a connection, whichever way the tokens arrived (Mock's
//! minted pair or an OAuth code exchange): seal and store them, then queue
//! the backfill of the configured number of days; and revoking one.

use crate::domain::connection::{Connection, TokenSet};
use crate::domain::error::{Error, Result};
use crate::domain::job::{last_days, JobReason, SyncJob};
use crate::domain::vendor::Vendor;
use crate::flows::app::App;
use crate::flows::refresh::refresh_connection;
use crate::flows::sync::EXPIRY_MARGIN_SECS;
use chrono::Utc;

pub async fn establish(
    app: &App,
    user_id: &str,
    vendor: Vendor,
    vendor_user_id: &str,
    tokens: &TokenSet,
) -> Result<()> {
    let sealed = app.envelope.seal_tokens(user_id, vendor, tokens).await?;
    app.connections
        .connect(
            user_id,
            vendor,
            vendor_user_id,
            &tokens.scopes,
            tokens.expires_at,
            &sealed,
        )
        .await?;
    let (from, to) = last_days(app.config.backfill_days);
    app.queue
        .send(&SyncJob::new(
            user_id,
            vendor,
            from,
            to,
            JobReason::Backfill,
        )?)
        .await?;
    tracing::info!(user_id, %vendor, "connected");
    Ok(())
}

/// Revokes a connection's grant at the vendor (refreshing an expired access
/// token first, since most revoke endpoints want a live one). Ok(false) when
/// this build cannot revoke at that vendor. An error means the vendor could
/// not be reached: keep the tokens, or the grant would stay alive there with
/// no way left to revoke it.
pub async fn revoke_at_vendor(app: &App, conn: &Connection) -> Result<bool> {
    let vendor = conn.vendor;
    let (driver, ctx) = match app.driver(vendor).await {
        Ok(d) => d,
        Err(Error::Vendor { .. }) => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut tokens = app.envelope.open_tokens(conn).await?;
    if tokens.expires_within(Utc::now(), EXPIRY_MARGIN_SECS) && tokens.refresh_token.is_some() {
        match refresh_connection(app, conn).await {
            Ok((_, fresh)) => tokens = fresh,
            // A refused refresh token leaves the old access token to try.
            Err(e) => {
                tracing::warn!(user_id = %conn.user_id, %vendor, error = %e, "refresh before revoke failed")
            }
        }
    }
    driver
        .revoke(&ctx, &conn.vendor_user_id, &tokens)
        .await
        .map_err(|e| Error::vendor(vendor, e))
}
