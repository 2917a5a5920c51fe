//! Refreshing a connection's tokens so that a single-use refresh token is
//! spent exactly once across every worker: a refresher first takes a lease
//! in DynamoDB (conditional on the token version); the others wait, re-read
//! and use the winner's tokens. A connection is marked `refresh_failed` only
//! by the lease holder, after a fresh read confirms the vendor rejected the
//! current refresh token.

use crate::domain::connection::{Connection, ConnectionStatus, TokenSet};
use crate::domain::error::{Error, Result};
use crate::domain::vendor::VendorError;
use crate::flows::app::App;
use chrono::Utc;
use std::time::{Duration, Instant};

/// How long a lease holder may take before others may take over.
pub const LEASE_SECS: i64 = 30;
/// How long a waiter waits for another refresher before giving up (retry later).
const WAIT_FOR_OTHERS: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);

/// The connection's tokens, opened. Sealed tokens that do not open (moved
/// from another row, tampered, or under another key) are an integrity
/// failure: retrying cannot help and the tokens must not be used, so the
/// connection is marked `error` (reconnect; it leaves the schedule) and a
/// security event is logged, without the ciphertext. The `Corrupt` error is
/// returned either way.
pub async fn open_tokens(app: &App, conn: &Connection) -> Result<TokenSet> {
    match app.envelope.open_tokens(conn).await {
        Err(Error::Corrupt(reason)) => {
            tracing::error!(
                security_event = "sealed_tokens_do_not_open",
                user_id = %conn.user_id,
                vendor = %conn.vendor,
                reason,
                "stored tokens failed their integrity check; the connection needs a reconnect"
            );
            app.connections
                .set_status(
                    &conn.user_id,
                    conn.vendor,
                    ConnectionStatus::Error,
                    Some("the stored tokens do not open (integrity check failed); reconnect"),
                )
                .await?;
            Err(Error::Corrupt(reason))
        }
        other => other,
    }
}

/// Fresh tokens and row for `conn`: refreshed under the lease, or another worker's.
pub async fn refresh_connection(app: &App, conn: &Connection) -> Result<(Connection, TokenSet)> {
    let vendor = conn.vendor;
    let owner = uuid::Uuid::new_v4().to_string();
    let started = Instant::now();
    loop {
        let latest = reread(app, conn).await?;
        if latest.token_version != conn.token_version {
            // Refreshed (or reconnected) since the caller read it: use that.
            let t = open_tokens(app, &latest).await?;
            return Ok((latest, t));
        }
        let until = Utc::now() + chrono::Duration::seconds(LEASE_SECS);
        if app
            .connections
            .take_refresh_lease(&latest, latest.token_version, &owner, until)
            .await?
        {
            let result = refresh_holding_lease(app, &latest).await;
            if result.is_err() {
                app.connections
                    .release_refresh_lease(&latest, &owner)
                    .await?;
            }
            return result;
        }
        if started.elapsed() > WAIT_FOR_OTHERS {
            return Err(Error::vendor(
                vendor,
                VendorError::Transient("another refresh is still in progress".into()),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn refresh_holding_lease(app: &App, conn: &Connection) -> Result<(Connection, TokenSet)> {
    let vendor = conn.vendor;
    let (driver, ctx) = app.driver(vendor).await?;
    let current = open_tokens(app, conn).await?;
    let Some(refresh_token) = current.refresh_token.clone() else {
        // A vendor without refresh tokens (Polar) or a grant without one:
        // nothing can renew it, so the user has to reconnect.
        tracing::warn!(user_id = %conn.user_id, %vendor, "access token expired or refused and there is no refresh token");
        app.connections
            .set_status(
                &conn.user_id,
                vendor,
                ConnectionStatus::RefreshFailed,
                Some("the access token expired or was refused and the vendor issues no refresh token; reconnect"),
            )
            .await?;
        return Err(Error::Vendor {
            vendor,
            error: VendorError::Permanent(
                "connection has no refresh token; the user must reconnect".into(),
            ),
        });
    };
    match driver
        .refresh(&ctx, &conn.vendor_user_id, refresh_token.expose())
        .await
    {
        Ok(fresh) => {
            let sealed = app
                .envelope
                .seal_tokens(&conn.user_id, vendor, &fresh)
                .await?;
            if app
                .connections
                .replace_tokens(conn, conn.token_version, &sealed, fresh.expires_at)
                .await?
            {
                tracing::info!(user_id = %conn.user_id, %vendor, "tokens refreshed");
                return Ok((reread(app, conn).await?, fresh));
            }
            // Reconnected while we refreshed: the new grant wins.
            let latest = reread(app, conn).await?;
            let t = app.envelope.open_tokens(&latest).await?;
            Ok((latest, t))
        }
        Err(VendorError::RefreshRejected) => {
            let latest = reread(app, conn).await?;
            if latest.token_version != conn.token_version {
                let t = app.envelope.open_tokens(&latest).await?;
                return Ok((latest, t));
            }
            tracing::warn!(user_id = %conn.user_id, %vendor, "vendor rejected the refresh token");
            app.connections
                .set_status(
                    &conn.user_id,
                    vendor,
                    ConnectionStatus::RefreshFailed,
                    Some("the vendor rejected the refresh token; reconnect"),
                )
                .await?;
            Err(Error::vendor(vendor, VendorError::RefreshRejected))
        }
        Err(e) => Err(Error::vendor(vendor, e)),
    }
}

async fn reread(app: &App, conn: &Connection) -> Result<Connection> {
    app.connections
        .get(&conn.user_id, conn.vendor)
        .await?
        .ok_or_else(|| Error::NotFound(format!("connection to {}", conn.vendor)))
}
