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
    pub fn new(s: impl Into<String>) -> Self {
        Self(Zeroizing::new(s.into()))
    }
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Clone, Debug)]
pub struct TokenSet {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
}

impl TokenSet {
    /// True when the access token is gone or goes within `margin_secs`.
    pub fn expires_within(&self, now: DateTime<Utc>, margin_secs: i64) -> bool {
        self.expires_at
            .is_some_and(|t| t <= now + chrono::Duration::seconds(margin_secs))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Connected,
    Disconnected,
    Error,
    RefreshFailed,
    /// The user withdrew the grant at the vendor.
    Revoked,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Connected => "connected",
            ConnectionStatus::Disconnected => "disconnected",
            ConnectionStatus::Error => "error",
            ConnectionStatus::RefreshFailed => "refresh_failed",
            ConnectionStatus::Revoked => "revoked",
        }
    }
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
    /// The PKCE verifier, sealed for the user; None for a vendor's hosted flow.
    pub sealed_verifier: Option<String>,
}

/// One (user, vendor) connection as stored; tokens are sealed strings.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    pub user_id: String,
    pub vendor: Vendor,
    pub status: ConnectionStatus,
    pub vendor_user_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub connected_at: DateTime<Utc>,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub token_version: u64,
    pub sealed_access_token: String,
    pub sealed_refresh_token: Option<String>,
}

pub const ACCESS_TOKEN: &str = "access_token";
pub const REFRESH_TOKEN: &str = "refresh_token";

/// Sealed forms of a token set for one (user, vendor).
pub struct SealedTokens {
    pub access: String,
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
