//! The vendors the connector knows, what each needs for OAuth, and the driver
//! trait a vendor implements to be synced. One file per vendor driver.

pub mod catalog;
pub mod mock;

pub mod client;
pub mod dexcom;
pub mod fitbit;
pub mod garmin;
pub mod oura;
pub mod polar;
pub mod strava;
pub mod terra;
#[cfg(test)]
pub mod testing;
pub mod whoop;
pub mod withings;

use crate::credentials::VendorCredentials;
use crate::error::{Error, Result};
use crate::model::Sample;
use crate::oauth::Grant;
use crate::tokens::TokenSet;
use crate::webhooks::WebhookEvent;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Mock,
    Whoop,
    Garmin,
    Fitbit,
    Oura,
    Polar,
    Strava,
    Dexcom,
    Withings,
    Terra,
}

impl Vendor {
    pub const ALL: [Vendor; 10] = [
        Vendor::Mock,
        Vendor::Whoop,
        Vendor::Garmin,
        Vendor::Fitbit,
        Vendor::Oura,
        Vendor::Polar,
        Vendor::Strava,
        Vendor::Dexcom,
        Vendor::Withings,
        Vendor::Terra,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Mock => "mock",
            Vendor::Whoop => "whoop",
            Vendor::Garmin => "garmin",
            Vendor::Fitbit => "fitbit",
            Vendor::Oura => "oura",
            Vendor::Polar => "polar",
            Vendor::Strava => "strava",
            Vendor::Dexcom => "dexcom",
            Vendor::Withings => "withings",
            Vendor::Terra => "terra",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Vendor::Mock => "Mock (local test vendor)",
            Vendor::Whoop => "WHOOP",
            Vendor::Garmin => "Garmin",
            Vendor::Fitbit => "Fitbit (Google Health API)",
            Vendor::Oura => "Oura",
            Vendor::Polar => "Polar",
            Vendor::Strava => "Strava",
            Vendor::Dexcom => "Dexcom",
            Vendor::Withings => "Withings",
            Vendor::Terra => "Terra",
        }
    }

    /// The VENDOR part of `CONNECTOR_<VENDOR>_CLIENT_ID` and friends.
    pub fn env_name(self) -> &'static str {
        match self {
            Vendor::Mock => "MOCK",
            Vendor::Whoop => "WHOOP",
            Vendor::Garmin => "GARMIN",
            Vendor::Fitbit => "FITBIT",
            Vendor::Oura => "OURA",
            Vendor::Polar => "POLAR",
            Vendor::Strava => "STRAVA",
            Vendor::Dexcom => "DEXCOM",
            Vendor::Withings => "WITHINGS",
            Vendor::Terra => "TERRA",
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Vendor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Vendor::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| Error::NotFound(format!("vendor {s:?}")))
    }
}

/// Why a call to a vendor failed, in the terms the sync worker acts on.
#[derive(Debug, thiserror::Error)]
pub enum VendorError {
    #[error("access token rejected")]
    Unauthorized,
    #[error("refresh token rejected")]
    RefreshRejected,
    #[error("rate limited; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("transient: {0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
    /// The request to the connector lacks what this vendor needs.
    #[error("{field}: {reason}")]
    BadInput { field: &'static str, reason: String },
}

impl VendorError {
    pub fn into_error(self, vendor: Vendor) -> Error {
        match self {
            VendorError::RateLimited { retry_after_secs } => {
                Error::RateLimited { retry_after_secs }
            }
            VendorError::BadInput { field, reason } => Error::InvalidField {
                field: field.to_string(),
                reason,
            },
            other => Error::Vendor {
                vendor,
                detail: other.to_string(),
            },
        }
    }
}

/// What a driver needs to call its vendor: the shared HTTP client and the
/// app's registration with the vendor (ids, secrets, URLs).
#[derive(Clone)]
pub struct VendorCtx {
    pub http: reqwest::Client,
    pub creds: VendorCredentials,
    /// The fleet's quota every API call takes a slot from.
    pub budget: crate::quota::CallBudget,
}

impl VendorCtx {
    /// The vendor's API origin with `path` appended exactly as documented.
    pub fn api_url(&self, path: &str) -> Result<url::Url, VendorError> {
        let base = self
            .creds
            .api_base
            .as_deref()
            .ok_or_else(|| VendorError::Permanent("API base URL is not configured".into()))?;
        url::Url::parse(&format!("{}{path}", base.trim_end_matches('/')))
            .map_err(|_| VendorError::Permanent("API base URL is not a valid URL".into()))
    }
}

/// What the driver knows about the connection it syncs.
pub struct FetchRequest<'a> {
    pub user_id: &'a str,
    pub vendor_user_id: &'a str,
    pub access_token: &'a str,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Why the job runs: a vendor that pushes history asynchronously (Garmin's
    /// backfill) asks for it on Backfill/Manual and pulls on Webhook.
    pub reason: crate::jobs::JobReason,
}

/// One vendor record as received, kept (bounded) for audit and re-processing.
#[derive(Clone, Debug, PartialEq)]
pub struct RawRecord {
    /// The vendor's record type, e.g. "recovery" or "sleep".
    pub kind: String,
    /// The vendor's id of the record (or its date where it has none).
    pub id: String,
    /// The user-local date the record belongs to.
    pub date: NaiveDate,
    pub json: String,
}

/// What one fetch produced: normalized samples and the raw records behind them.
#[derive(Debug, Default)]
pub struct Fetched {
    pub samples: Vec<Sample>,
    pub raw: Vec<RawRecord>,
}

/// A webhook delivery as the webhook function received it.
pub struct WebhookRequest<'a> {
    pub method: &'a http::Method,
    pub headers: &'a http::HeaderMap,
    pub query: &'a HashMap<String, String>,
    pub body: &'a [u8],
    pub now: DateTime<Utc>,
}

/// What a driver made of a webhook delivery.
#[derive(Debug, PartialEq)]
pub enum WebhookReply {
    /// A subscription handshake, answered exactly as the vendor requires.
    Handshake {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// Authenticated events to dedup and act on.
    Events(Vec<WebhookEvent>),
}

#[async_trait]
pub trait VendorDriver: Send + Sync {
    fn vendor(&self) -> Vendor;

    /// The vendor's id of the user who just granted access, after any
    /// registration the vendor requires once a token is issued.
    async fn identify(&self, ctx: &VendorCtx, grant: &Grant) -> Result<String, VendorError>;

    /// Authenticates a webhook delivery (signature, freshness, or what an
    /// unsigned vendor does send) and reads its events, or answers a
    /// subscription handshake.
    async fn webhook(&self, ctx: &VendorCtx, req: &WebhookRequest<'_>) -> Result<WebhookReply>;

    /// Samples for the user-local dates `from..=to`, with their raw records.
    async fn fetch(&self, ctx: &VendorCtx, req: FetchRequest<'_>) -> Result<Fetched, VendorError>;

    /// A new token set for a refresh token (which may rotate).
    async fn refresh(
        &self,
        ctx: &VendorCtx,
        _vendor_user_id: &str,
        refresh_token: &str,
    ) -> Result<TokenSet, VendorError> {
        crate::oauth::refresh(&ctx.http, &ctx.creds, refresh_token).await
    }

    /// Revokes the grant at the vendor. Ok(false) when the vendor has no revoke.
    async fn revoke(
        &self,
        ctx: &VendorCtx,
        vendor_user_id: &str,
        tokens: &TokenSet,
    ) -> Result<bool, VendorError>;

    /// How often to pull without being told, for a vendor that sends no
    /// webhooks (Dexcom); None for vendors that notify.
    fn poll_every(&self) -> Option<chrono::Duration> {
        None
    }

    /// A vendor with its own hosted connect flow instead of an OAuth code
    /// flow (Terra) returns the URL to send the user to; `state` is stored
    /// and comes back on the callback. None: the standard OAuth flow.
    async fn hosted_connect(
        &self,
        _ctx: &VendorCtx,
        _req: &HostedConnect<'_>,
    ) -> Result<Option<url::Url>, VendorError> {
        Ok(None)
    }

    /// Completes a hosted connect flow from the callback's query (the state
    /// already taken): the vendor user id and the tokens to keep, after
    /// checking with the vendor that the user is the one the state was made
    /// for. None: the standard code exchange.
    async fn hosted_callback(
        &self,
        _ctx: &VendorCtx,
        _state: &str,
        _query: &HashMap<String, String>,
    ) -> Result<Option<(String, TokenSet)>, VendorError> {
        Ok(None)
    }

    /// `identify` for the connector's user `user_id`: what the OAuth
    /// callback calls. Vendors that register the user under the partner's
    /// own id for them (Polar `member-id`) override it; the rest identify.
    async fn identify_user(
        &self,
        ctx: &VendorCtx,
        grant: &Grant,
        _user_id: &str,
    ) -> Result<String, VendorError> {
        self.identify(ctx, grant).await
    }
}

/// What a hosted connect flow needs.
pub struct HostedConnect<'a> {
    /// The single-use state to hand the vendor (it comes back on the callback).
    pub state: &'a str,
    pub callback_url: &'a url::Url,
    /// The provider behind an aggregator the user asked for (Terra), if any.
    pub provider: Option<&'a str>,
}

/// The drivers available in this build, by vendor.
#[derive(Clone, Default)]
pub struct Registry {
    drivers: HashMap<Vendor, Arc<dyn VendorDriver>>,
}

impl Registry {
    /// Every real vendor's driver in this build (Mock needs its store: add it with `with`).
    pub fn real_vendors() -> Self {
        Self::default()
            .with(Arc::new(whoop::Whoop))
            .with(Arc::new(garmin::Garmin))
            .with(Arc::new(fitbit::Fitbit))
            .with(Arc::new(dexcom::Dexcom))
            .with(Arc::new(strava::Strava))
            .with(Arc::new(withings::Withings))
            .with(Arc::new(terra::Terra))
            .with(Arc::new(oura::Oura))
            .with(Arc::new(polar::Polar))
    }

    pub fn with(mut self, driver: Arc<dyn VendorDriver>) -> Self {
        self.drivers.insert(driver.vendor(), driver);
        self
    }

    pub fn get(&self, vendor: Vendor) -> Option<&Arc<dyn VendorDriver>> {
        self.drivers.get(&vendor)
    }

    /// Every driver in this build.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn VendorDriver>> {
        self.drivers.values()
    }

    pub fn driver(&self, vendor: Vendor) -> Result<&Arc<dyn VendorDriver>, Error> {
        self.get(vendor).ok_or_else(|| Error::Vendor {
            vendor,
            detail: "no data driver for this vendor in this build yet".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_names_round_trip() {
        for v in Vendor::ALL {
            assert_eq!(v.as_str().parse::<Vendor>().unwrap(), v);
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                format!("\"{}\"", v.as_str())
            );
        }
        assert!("apple".parse::<Vendor>().is_err());
    }
}
