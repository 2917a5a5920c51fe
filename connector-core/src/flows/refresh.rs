//! Refreshing a connection's tokens so that a single-use refresh token is
//! spent exactly once across every worker: a refresher first takes a lease
//! in DynamoDB (conditional on the token version); the others wait, re-read
//! and use the winner's tokens. A connection is marked `refresh_failed` only
//! by the lease holder, after a fresh read confirms the vendor rejected the
//! current refresh token. A refreshed pair is never dropped: the lease
//! holder tries again through a passing outage, and as a last resort keeps
//! it sealed for the next refresh of the connection to put in place.

use crate::domain::app_event::EventType;
use crate::domain::connection::{Connection, ConnectionStatus, TokenSet};
use crate::domain::error::{Error, Result};
use crate::domain::metric::{count_vendor, Metric};
use crate::domain::vendor::VendorError;
use crate::flows::app::App;
use crate::flows::events;
use crate::vendors::driver::VendorDriver;
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
    match app.envelope().open_tokens(conn).await {
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
                    Some(TOKENS_DO_NOT_OPEN),
                )
                .await?;
            let occurrence = format!("{}#{}#sealed", events::grant_of(conn), conn.token_version);
            events::connection_changed(
                app,
                EventType::ConnectionError,
                &conn.user_id,
                conn.vendor,
                &occurrence,
                Some(TOKENS_DO_NOT_OPEN),
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
            let counted = match result {
                Ok(_) => Metric::RefreshesDone,
                Err(_) => Metric::RefreshesFailed,
            };
            count_vendor(counted, vendor, 1);
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
    // A refresh whose tokens could not be stored last time: put them in place.
    if let Some((sealed, expires_at)) = app
        .ephemeral
        .take_refreshed_tokens(&conn.user_id, vendor)
        .await?
    {
        let placed = app
            .connections
            .replace_tokens(conn, conn.token_version, &sealed, expires_at)
            .await;
        if placed.is_err() {
            // Still the only copy: keep it for the next try.
            let _ = app
                .ephemeral
                .keep_refreshed_tokens(&conn.user_id, vendor, &sealed, expires_at)
                .await;
        }
        if placed? {
            tracing::info!(user_id = %conn.user_id, %vendor, "kept refreshed tokens put in place");
            let latest = reread(app, conn).await?;
            let t = open_tokens(app, &latest).await?;
            return Ok((latest, t));
        }
    }
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
                Some(NO_REFRESH_TOKEN),
            )
            .await?;
        refresh_failed(app, conn, NO_REFRESH_TOKEN).await?;
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
        Ok(fresh) => store_refreshed(app, conn, fresh).await,
        Err(VendorError::RefreshRejected) => {
            let latest = reread(app, conn).await?;
            if latest.token_version != conn.token_version {
                let t = app.envelope().open_tokens(&latest).await?;
                return Ok((latest, t));
            }
            tracing::warn!(user_id = %conn.user_id, %vendor, "vendor rejected the refresh token");
            app.connections
                .set_status(
                    &conn.user_id,
                    vendor,
                    ConnectionStatus::RefreshFailed,
                    Some(REFRESH_REJECTED),
                )
                .await?;
            refresh_failed(app, conn, REFRESH_REJECTED).await?;
            Err(Error::vendor(vendor, VendorError::RefreshRejected))
        }
        Err(e) => Err(Error::vendor(vendor, e)),
    }
}

const TOKENS_DO_NOT_OPEN: &str =
    "the stored tokens do not open (integrity check failed); reconnect";
const NO_REFRESH_TOKEN: &str =
    "the access token expired or was refused and the vendor issues no refresh token; reconnect";
const REFRESH_REJECTED: &str = "the vendor rejected the refresh token; reconnect";

/// Tells the app the grant `conn` held (at its token version) cannot be renewed.
async fn refresh_failed(app: &App, conn: &Connection, reason: &str) -> Result<()> {
    let occurrence = format!("{}#{}", events::grant_of(conn), conn.token_version);
    events::connection_changed(
        app,
        EventType::RefreshFailed,
        &conn.user_id,
        conn.vendor,
        &occurrence,
        Some(reason),
    )
    .await
}

/// How often the lease holder tries to store a refreshed pair (pauses of
/// 0.25 s doubling: about 8 s in all, well inside the lease). The vendor has
/// spent the old refresh token, so the new one must not be dropped.
const STORE_TRIES: u32 = 6;

/// Seals and stores `fresh`, trying again through a passing outage of KMS or
/// DynamoDB; as a last resort the sealed pair is kept for the next refresh.
async fn store_refreshed(
    app: &App,
    conn: &Connection,
    fresh: TokenSet,
) -> Result<(Connection, TokenSet)> {
    let vendor = conn.vendor;
    let mut pause = Duration::from_millis(250);
    let mut sealed = None;
    let mut tries = 0;
    let outcome = loop {
        tries += 1;
        let attempt = async {
            if sealed.is_none() {
                sealed = Some(
                    app.envelope()
                        .seal_tokens(&conn.user_id, vendor, &fresh)
                        .await?,
                );
            }
            let tokens = sealed.as_ref().expect("sealed above");
            app.connections
                .replace_tokens(conn, conn.token_version, tokens, fresh.expires_at)
                .await
        }
        .await;
        match attempt {
            Err(e @ (Error::Storage(_) | Error::Crypto(_))) if tries < STORE_TRIES => {
                tracing::warn!(user_id = %conn.user_id, %vendor, error = %e, "refreshed tokens not stored yet; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            other => break other,
        }
    };
    match outcome {
        Ok(true) => {
            tracing::info!(user_id = %conn.user_id, %vendor, "tokens refreshed");
            Ok((reread(app, conn).await?, fresh))
        }
        Ok(false) => {
            // Reconnected while we refreshed: the new grant wins.
            let latest = reread(app, conn).await?;
            let t = app.envelope().open_tokens(&latest).await?;
            Ok((latest, t))
        }
        Err(e) => {
            let kept = match &sealed {
                Some(tokens) => app
                    .ephemeral
                    .keep_refreshed_tokens(&conn.user_id, vendor, tokens, fresh.expires_at)
                    .await
                    .is_ok(),
                None => false,
            };
            tracing::error!(user_id = %conn.user_id, %vendor, error = %e, kept, "refreshed tokens could not be stored on the connection");
            Err(e)
        }
    }
}

async fn reread(app: &App, conn: &Connection) -> Result<Connection> {
    app.connections
        .get(&conn.user_id, conn.vendor)
        .await?
        .ok_or_else(|| Error::NotFound(format!("connection to {}", conn.vendor)))
}
