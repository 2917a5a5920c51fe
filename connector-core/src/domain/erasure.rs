//! Erasing a deleted user's stored data: the queue message that carries the
//! work on, and the record an app polls while it runs.

use crate::domain::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Which pass of an erasure a queued message asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasurePass {
    /// Items are left: delete on from where the last pass stopped.
    Continue,
    /// Everything was deleted; delete once more what a sync job that was
    /// already running may have written since.
    FinalSweep,
}

/// Erase what is left of `erase_user`, a user whose connections are gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureJob {
    /// The deleted app user.
    pub erase_user: String,
    /// Which pass.
    pub pass: ErasurePass,
}

impl ErasureJob {
    /// An erasure message from the queue; refused without a user.
    pub fn parse(body: &str) -> Result<Self> {
        let job: Self = serde_json::from_str(body)
            .map_err(|e| Error::BadRequest(format!("erasure job is malformed: {e}")))?;
        if job.erase_user.is_empty() {
            return Err(Error::BadRequest("erasure job has no user".into()));
        }
        Ok(job)
    }
}

/// Where an erasure stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErasureStatus {
    /// Items are left; the sync worker deletes them page by page.
    InProgress,
    /// Every stored item is deleted; the final sweep is still to come.
    Deleted,
    /// The final sweep ran: nothing of the user is stored.
    Done,
}

impl ErasureStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErasureStatus::InProgress => "in_progress",
            ErasureStatus::Deleted => "deleted",
            ErasureStatus::Done => "done",
        }
    }

    /// Whether the erasure still runs: the user can neither connect nor
    /// push until it is done, so nothing new is mixed with what it deletes.
    pub fn is_running(self) -> bool {
        self != ErasureStatus::Done
    }

    /// The status named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        [
            ErasureStatus::InProgress,
            ErasureStatus::Deleted,
            ErasureStatus::Done,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// The erasure of one user, as `GET /v1/me/erasure` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErasureRecord {
    /// Whose.
    pub user_id: String,
    /// Where it stands.
    pub status: ErasureStatus,
    /// When `DELETE /v1/me` started it (RFC 3339).
    pub started_at: String,
    /// When it last moved (RFC 3339).
    pub updated_at: String,
    /// Health items (samples, summaries, raw and phone-push records) deleted so far.
    pub health_items: u64,
    /// Short-lived items (OAuth state, dedup keys, buckets) deleted so far.
    pub ephemeral_items: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erasure_jobs_parse_from_their_wire_shape_only() {
        let job = ErasureJob::parse(r#"{"erase_user":"u","pass":"final_sweep"}"#).unwrap();
        assert_eq!(job.pass, ErasurePass::FinalSweep);
        assert!(ErasureJob::parse(r#"{"erase_user":"","pass":"continue"}"#).is_err());
        assert!(ErasureJob::parse(r#"{"erase_user":"u","pass":"all"}"#).is_err());
        assert!(ErasureJob::parse(
            r#"{"job_id":"j","user_id":"u","vendor":"mock","from":"2026-11-21","to":"2026-11-23","reason":"manual"}"#
        )
        .is_err());
        for s in ["in_progress", "deleted", "done"] {
            assert_eq!(ErasureStatus::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(ErasureStatus::parse("gone"), None);
    }
}
