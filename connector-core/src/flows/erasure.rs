//! Erasing a deleted user's stored data, bounded in memory and time.
//!
//! `DELETE /v1/me` (flows::account) deletes the connections, then pages of
//! health items for a short budget. What is left is handed to the sync
//! worker through the live queue: each message deletes pages for its own
//! budget and queues the next, so a heavy user (months of 15-second heart
//! rate) is erased across several invocations, each resuming where the last
//! stopped (deleted items are simply gone from the next page). Once nothing
//! is left, one final sweep runs after the longest a sync job can run, and
//! deletes what a job that had already loaded the connection wrote since.
//! Until it is done, the user can neither connect nor push, so the sweep
//! cannot take anything new. The erasure's record (under a digest of the
//! user id) is what `GET /v1/me/erasure` shows.

use crate::domain::erasure::{ErasureJob, ErasurePass, ErasureRecord, ErasureStatus};
use crate::domain::error::{Error, Result};
use crate::flows::app::App;
use std::time::{Duration, Instant};

/// Health items read (keys only) and deleted per page.
pub const PAGE_ITEMS: i32 = 1000;

/// What one step of an erasure deleted.
#[derive(Debug, Default, Clone, Copy)]
pub struct Step {
    /// Health items: samples, summaries, raw and phone-push records.
    pub health_items: usize,
    /// Short-lived items: OAuth state, dedup keys, buckets, quota windows.
    pub ephemeral_items: usize,
    /// Whether nothing was left when the step ended.
    pub finished: bool,
}

/// Starts erasing `user`, whose connections are gone: deletes for the
/// configured in-request budget, then queues what is left (or the final
/// sweep). Returns what it deleted and where the erasure stands.
pub async fn start(app: &App, user: &str) -> Result<(Step, ErasureStatus)> {
    app.ephemeral
        .advance_erasure(user, ErasureStatus::InProgress, 0, 0)
        .await?;
    let budget = Duration::from_millis(app.config.erasure_inline_ms);
    let step = delete_for(app, user, budget).await?;
    let status = follow_up(app, user, ErasurePass::Continue, step).await?;
    Ok((step, status))
}

/// Runs one queued step of an erasure (the sync worker calls it). `Err`
/// means retry: what was deleted stays deleted, and the retry goes on from
/// there.
pub async fn run_step(app: &App, job: &ErasureJob) -> Result<ErasureStatus> {
    let budget = Duration::from_millis(app.config.erasure_pass_ms);
    let step = delete_for(app, &job.erase_user, budget).await?;
    let status = follow_up(app, &job.erase_user, job.pass, step).await?;
    tracing::info!(
        user_id = %job.erase_user,
        pass = ?job.pass,
        health_items = step.health_items,
        ephemeral_items = step.ephemeral_items,
        status = status.as_str(),
        "erasure step done"
    );
    Ok(status)
}

/// `user`'s erasure, as the app polls it.
pub async fn status(app: &App, user: &str) -> Result<ErasureRecord> {
    app.ephemeral
        .erasure(user)
        .await?
        .ok_or_else(|| Error::NotFound("no erasure of this user".into()))
}

/// Refuses to store anything new for `user` while their erasure runs.
pub async fn refuse_while_erasing(app: &App, user: &str) -> Result<()> {
    match app.ephemeral.erasure(user).await? {
        Some(e) if e.status.is_running() => Err(Error::Conflict(
            "erasure_in_progress: this user's data is still being deleted (GET /v1/me/erasure); try again when it is done".into(),
        )),
        _ => Ok(()),
    }
}

/// Deletes pages of health items until none is left or `budget` is spent
/// (at least one page), then, if none is left, the short-lived items.
async fn delete_for(app: &App, user: &str, budget: Duration) -> Result<Step> {
    let started = Instant::now();
    let mut step = Step::default();
    loop {
        let deleted = app.health.delete_page(user, PAGE_ITEMS).await?;
        step.health_items += deleted;
        if deleted == 0 {
            break;
        }
        if started.elapsed() >= budget {
            return Ok(step);
        }
    }
    // The user's change feed is short-lived like the Ephemeral items, and
    // counted with them.
    step.ephemeral_items = app.events.delete_all(user).await?;
    step.ephemeral_items += app.ephemeral.delete_owned(user).await?;
    step.finished = true;
    Ok(step)
}

/// Queues the next step (if any) and records where the erasure stands.
async fn follow_up(app: &App, user: &str, pass: ErasurePass, step: Step) -> Result<ErasureStatus> {
    let next = |pass| ErasureJob {
        erase_user: user.to_string(),
        pass,
    };
    let status = match (step.finished, pass) {
        (false, _) => {
            app.queue
                .send_erasure(&next(ErasurePass::Continue), 0)
                .await?;
            ErasureStatus::InProgress
        }
        (true, ErasurePass::Continue) => {
            let delay = app.config.erasure_sweep_delay_secs;
            app.queue
                .send_erasure(&next(ErasurePass::FinalSweep), delay.into())
                .await?;
            ErasureStatus::Deleted
        }
        (true, ErasurePass::FinalSweep) => ErasureStatus::Done,
    };
    app.ephemeral
        .advance_erasure(user, status, step.health_items, step.ephemeral_items)
        .await?;
    if status == ErasureStatus::Done {
        let started_at = match app.ephemeral.erasure(user).await? {
            Some(record) => record.started_at,
            None => String::new(),
        };
        crate::flows::events::user_deleted(app, user, &started_at).await?;
    }
    Ok(status)
}
