//! The phone's HealthKit daily summary: the signed envelope (freshness
//! window, replay refused), a per-user token bucket, strict bounds, and the
//! deterministic merge by (user, date) written in one transaction.

use crate::aws::store::ephemeral::Bucket;
use crate::domain::error::{Error, Result};
use crate::domain::metric::{count, Metric};
use crate::domain::push::{merge, MergeResult, Push};
use crate::flows::app::App;
use crate::flows::erasure;
use crate::vendors::signature::{phone_push, Accepted, Rejection};
use chrono::{NaiveDate, Utc};
use http::HeaderMap;
use sha2::{Digest, Sha256};

/// Bodies larger than this are refused (413).
pub const MAX_PUSH_BYTES: usize = 64 * 1024;
const CONFLICT_RETRIES: usize = 5;

/// What one push did, for its log line (never a body value or signature).
#[derive(Debug)]
pub struct PushLog {
    /// `not_checked`, `ok`, `rejected` or `replay`.
    pub verification: &'static str,
    /// Why it was refused.
    pub reason: Option<String>,
    /// How the day's record changed.
    pub write: Option<MergeResult>,
}

impl Default for PushLog {
    fn default() -> Self {
        Self {
            verification: "not_checked",
            reason: None,
            write: None,
        }
    }
}

/// Counts one push in `PhonePushes` by what became of it: how the day's
/// record changed, `replay`, or why it was refused.
pub fn count_push<T>(log: &PushLog, outcome: &Result<T>) {
    let result = match (outcome, log.write) {
        (Ok(_), Some(MergeResult::Created)) => "created",
        (Ok(_), Some(MergeResult::Merged)) => "merged",
        (Ok(_), Some(MergeResult::Unchanged) | None) => "unchanged",
        (Err(_), _) if log.verification == "replay" => "replay",
        (Err(e), _) => e.reason(),
    };
    count(Metric::PhonePushes, &[result], 1);
}

/// Checks a push's signature with the push secret, or its previous value
/// while it is rotated.
async fn verify(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
    log: &mut PushLog,
) -> Result<std::result::Result<(), Rejection>> {
    let current = app.push_secret.value("CONNECTOR_PUSH_SECRET").await?;
    let previous = app
        .push_secret
        .value("CONNECTOR_PUSH_SECRET_PREVIOUS")
        .await?;
    if current.is_none() {
        log.reason = Some("push secret not configured".into());
        tracing::error!("CONNECTOR_PUSH_SECRET is not configured; rejecting pushes");
        return Ok(Err(Rejection::BadSignature));
    }
    let scheme = phone_push(app.config.push_window_secs);
    let accepted = Accepted {
        current: current.as_ref(),
        previous: previous.as_ref(),
    };
    Ok(accepted.verify("push", |secret| {
        scheme.verify(secret, headers, body, Utc::now())
    }))
}

/// Accepts `user`'s signed push: the day it is about and how its record
/// changed. `log` says what happened, whatever the result.
pub async fn accept(
    app: &App,
    user: &str,
    headers: &HeaderMap,
    body: &[u8],
    log: &mut PushLog,
) -> Result<(NaiveDate, MergeResult)> {
    if body.len() > MAX_PUSH_BYTES {
        return Err(Error::PayloadTooLarge(MAX_PUSH_BYTES));
    }
    let mut verified = verify(app, headers, body, log).await?;
    // Signed with a value rotated in since the secret was cached?
    if verified == Err(Rejection::BadSignature) && app.push_secret.expire_for_reread().await {
        tracing::info!("push refused with the cached secret; reading it again");
        verified = verify(app, headers, body, log).await?;
    }
    if let Err(r) = verified {
        log.verification = "rejected";
        log.reason.get_or_insert_with(|| r.to_string());
        return Err(Error::Unauthorized(format!("push rejected: {r}")));
    }
    log.verification = "ok";
    if let Err(e) = erasure::refuse_while_erasing(app, user).await {
        log.reason = Some("erasure in progress".into());
        return Err(e);
    }

    let rate = app.config.push_rate_per_min;
    if let Err(retry_after_secs) = app
        .ephemeral
        .take_token(&format!("push#{user}"), user, Bucket::per_minute(rate))
        .await?
    {
        log.reason = Some("rate limited".into());
        return Err(Error::RateLimited { retry_after_secs });
    }

    let payload = Push::parse(body, Utc::now().date_naive())?;

    // The same (timestamp, signature) twice is a replay, whatever the body.
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let replay_key = format!(
        "push-replay#{}",
        hex::encode(Sha256::digest(format!(
            "{user}|{}|{}",
            header("x-sync-timestamp"),
            header("x-sync-signature")
        )))
    );
    let keep_until = Utc::now() + chrono::Duration::seconds(2 * app.config.push_window_secs + 60);
    if !app
        .ephemeral
        .claim(&replay_key, keep_until, Some(user))
        .await?
    {
        log.verification = "replay";
        log.reason = Some("timestamp and signature seen before".into());
        return Err(Error::Unauthorized(
            "push rejected: replayed timestamp and signature".into(),
        ));
    }

    match write(app, user, &payload).await {
        Ok(result) => {
            log.write = Some(result);
            Ok((payload.date, result))
        }
        Err(e) => {
            // Nothing was written: let the phone's retry through.
            let _ = app.ephemeral.delete(&replay_key).await;
            Err(e)
        }
    }
}

async fn write(app: &App, user: &str, payload: &Push) -> Result<MergeResult> {
    for _ in 0..CONFLICT_RETRIES {
        let stored = app.health.push_day(user, payload.date).await?;
        let (record, result) = merge(stored.as_ref().map(|(r, _)| r), payload);
        // Derived rows are rewritten even when unchanged, so a retry after a
        // partial failure elsewhere still converges.
        if app
            .health
            .save_push_day(user, &record, stored.as_ref().map(|(_, v)| *v))
            .await?
        {
            return Ok(result);
        }
    }
    Err(Error::Storage(
        "push record kept changing under concurrent writes".into(),
    ))
}
