//! The driver trait a vendor implements to be synced, and the registry of
//! drivers. One file per vendor driver.

pub mod catalog;
pub mod mock;

pub mod client;
pub mod credentials;
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

use crate::domain::connection::TokenSet;
use crate::domain::error::{Error, Result};
use crate::domain::event::WebhookEvent;
use crate::domain::health::Sample;
use crate::domain::vendor::{RawRecord, Vendor, VendorError};
use crate::oauth::Grant;
use crate::vendors::credentials::VendorCredentials;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use std::sync::Arc;

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
    pub reason: crate::domain::job::JobReason,
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
            error: VendorError::Permanent(
                "no data driver for this vendor in this build yet".into(),
            ),
        })
    }
}
