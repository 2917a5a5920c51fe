//! Establishing a connection, whichever way the tokens arrived (Mock's
//! minted pair or an OAuth code exchange): seal and store them, then queue
//! the backfill of the configured number of days.

use crate::app::App;
use crate::error::Result;
use crate::jobs::{last_days, JobReason, SyncJob};
use crate::tokens::{self, TokenSet};
use crate::vendors::Vendor;

pub async fn establish(
    app: &App,
    user_id: &str,
    vendor: Vendor,
    vendor_user_id: &str,
    tokens: &TokenSet,
) -> Result<()> {
    let sealed = tokens::seal(&app.envelope, user_id, vendor, tokens).await?;
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
