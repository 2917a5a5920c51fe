//! Token sets and connection records. Access and refresh tokens only ever
//! leave memory sealed by the envelope (aws/kms.rs), bound to their row.

use crate::domain::vendor::Vendor;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;
use zeroize::Zeroizing;

/// A secret string: redacted in Debug, zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps `s` as a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(Zeroizing::new(s.into()))
    }
    /// The secret in clear.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A vendor grant's tokens, in clear, in memory only.
#[derive(Clone, Debug)]
pub struct TokenSet {
    /// The bearer token for the vendor's API.
    pub access_token: Secret,
    /// The token that renews the access token, if the vendor issued one.
    pub refresh_token: Option<Secret>,
    /// When the access token expires; `None` when the vendor did not say.
    pub expires_at: Option<DateTime<Utc>>,
    /// The scopes granted.
    pub scopes: Vec<String>,
}

impl TokenSet {
    /// True when the access token is gone or goes within `margin_secs`.
    pub fn expires_within(&self, now: DateTime<Utc>, margin_secs: i64) -> bool {
        self.expires_at
            .is_some_and(|t| t <= now + chrono::Duration::seconds(margin_secs))
    }
}

/// Where a stored connection stands; all but `Connected` and `Error` need a reconnect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Connected and usable.
    Connected,
    /// Disconnected; the user must connect again.
    Disconnected,
    /// The vendor refused a sync for good (see `last_error`); off the schedule, jobs still run.
    Error,
    /// The tokens cannot be renewed (refused, or no refresh token); the user must reconnect.
    RefreshFailed,
    /// The user withdrew the grant at the vendor.
    Revoked,
}

impl ConnectionStatus {
    /// The status's snake_case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Connected => "connected",
            ConnectionStatus::Disconnected => "disconnected",
            ConnectionStatus::Error => "error",
            ConnectionStatus::RefreshFailed => "refresh_failed",
            ConnectionStatus::Revoked => "revoked",
        }
    }
    /// The status named by its snake_case name, if any.
    pub fn parse(s: &str) -> Option<Self> {
        [
            ConnectionStatus::Connected,
            ConnectionStatus::Disconnected,
            ConnectionStatus::Error,
            ConnectionStatus::RefreshFailed,
            ConnectionStatus::Revoked,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// A connect waiting for the browser's return from the vendor, kept under
/// its single-use state.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingConnect {
    /// The vendor the state was made for.
    pub vendor: Vendor,
    /// The app user who started the connect.
    pub user_id: String,
    /// The redirect URI the authorization was asked with (the exchange repeats it).
    pub redirect_uri: String,
    /// The app's URL the browser goes back to.
    pub return_url: String,
    /// How the consent comes back.
    pub flow: ConsentFlow,
}

/// How a vendor's consent comes back to the connector.
#[derive(Clone, Debug, PartialEq)]
pub enum ConsentFlow {
    /// The vendor's hosted flow (Terra): nothing to exchange.
    Hosted,
    /// An OAuth authorization code.
    Code {
        /// The PKCE verifier sealed for the user, where the vendor takes PKCE.
        sealed_verifier: Option<String>,
    },
}

/// A consent the vendor sent back, parked under a one-time completion id
/// until the app's user completes it: nothing is exchanged or stored before
/// the user who started the connect is the one who finishes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ParkedConnect {
    /// The connect as it was started.
    pub pending: PendingConnect,
    /// The vendor's callback parameters and the state, sealed for the user.
    pub sealed_callback: String,
}

/// One (user, vendor) connection as stored; tokens are sealed strings.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    /// The app user.
    pub user_id: String,
    /// The vendor connected to.
    pub vendor: Vendor,
    /// Where the connection stands.
    pub status: ConnectionStatus,
    /// The user's id at the vendor.
    pub vendor_user_id: String,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// When the access token expires; `None` when the vendor did not say.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the user last connected (or reconnected).
    pub connected_at: DateTime<Utc>,
    /// When the connection last synced.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// The last failure recorded on the connection.
    pub last_error: Option<String>,
    /// Bumped on every new grant and token refresh; token writes are conditional on it.
    pub token_version: u64,
    /// The access token, sealed.
    pub sealed_access_token: String,
    /// The refresh token, sealed, if there is one.
    pub sealed_refresh_token: Option<String>,
    /// How the history pulled on connect stands; None for a connection
    /// made before backfills were tracked.
    pub backfill: Option<Backfill>,
}

/// Where a connection's first backfill stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackfillState {
    /// Queued, no part pulled yet.
    Queued,
    /// Pulling: some days done.
    Running,
    /// Every day asked was pulled.
    Done,
    /// Stopped for good: `reason` says why.
    Failed,
}

impl BackfillState {
    /// The state's name as stored and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            BackfillState::Queued => "queued",
            BackfillState::Running => "running",
            BackfillState::Done => "done",
            BackfillState::Failed => "failed",
        }
    }

    /// Parses a stored state.
    pub fn parse(s: &str) -> Option<Self> {
        [
            BackfillState::Queued,
            BackfillState::Running,
            BackfillState::Done,
            BackfillState::Failed,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
    }

    /// Whether the backfill has ended (done or failed).
    pub fn is_final(self) -> bool {
        matches!(self, BackfillState::Done | BackfillState::Failed)
    }
}

/// The history pulled when a connection was made: its state and progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Backfill {
    /// Queued, running, done or failed.
    pub state: BackfillState,
    /// Days of history asked (`CONNECTOR_BACKFILL_DAYS` when connected).
    pub days_asked: u32,
    /// Days pulled so far.
    pub days_done: u32,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Name of the access-token field, bound into its seal.
pub const ACCESS_TOKEN: &str = "access_token";
/// Name of the refresh-token field, bound into its seal.
pub const REFRESH_TOKEN: &str = "refresh_token";

/// Sealed forms of a token set for one (user, vendor).
pub struct SealedTokens {
    /// The access token, sealed.
    pub access: String,
    /// The refresh token, sealed, if there is one.
    pub refresh: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_is_redacted() {
        let t = TokenSet {
            access_token: Secret::new("at-very-secret"),
            refresh_token: Some(Secret::new("rt-very-secret")),
            expires_at: None,
            scopes: vec![],
        };
        let dbg = format!("{t:?}");
        assert!(!dbg.contains("very-secret"), "{dbg}");
    }

    #[test]
    fn expiry_margin() {
        let now = Utc::now();
        let mut t = TokenSet {
            access_token: Secret::new("a"),
            refresh_token: None,
            expires_at: Some(now + chrono::Duration::seconds(30)),
            scopes: vec![],
        };
        assert!(t.expires_within(now, 60));
        assert!(!t.expires_within(now, 10));
        t.expires_at = None;
        assert!(!t.expires_within(now, 60));
    }
}
