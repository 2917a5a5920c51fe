//! The driver trait a vendor implements to be connected and synced, and
//! what the flows hand a driver and get back.

use crate::aws::store::EphemeralStore;
use crate::domain::connection::TokenSet;
use crate::domain::env::Env;
use crate::domain::error::Result;
use crate::domain::event::WebhookEvent;
use crate::domain::health::Sample;
use crate::domain::vendor::{RawRecord, Vendor, VendorError};
use crate::vendors::client::VendorCtx;
use crate::vendors::signature::{Accepted, Rejection, SignatureScheme};
use crate::vendors::token::Grant;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;

/// What the driver knows about the connection it syncs.
pub struct FetchRequest<'a> {
    /// The app user.
    pub user_id: &'a str,
    /// The user's id at the vendor.
    pub vendor_user_id: &'a str,
    /// The access token, in clear.
    pub access_token: &'a str,
    /// First user-local day to fetch, inclusive.
    pub from: NaiveDate,
    /// Last user-local day to fetch, inclusive.
    pub to: NaiveDate,
    /// Why the job runs: a vendor that pushes history asynchronously (Garmin's
    /// backfill) asks for it on Backfill/Manual and pulls on Webhook.
    pub reason: crate::domain::job::JobReason,
}

/// What one fetch produced: normalized samples and the raw records behind them.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Normalized samples.
    pub samples: Vec<Sample>,
    /// The vendor's records the samples came from.
    pub raw: Vec<RawRecord>,
}

/// A webhook delivery as the webhook function received it.
pub struct WebhookRequest<'a> {
    /// The HTTP method.
    pub method: &'a http::Method,
    /// The request headers.
    pub headers: &'a http::HeaderMap,
    /// The query string's parameters.
    pub query: &'a HashMap<String, String>,
    /// The raw body.
    pub body: &'a [u8],
    /// When the delivery arrived, for freshness checks.
    pub now: DateTime<Utc>,
}

impl WebhookRequest<'_> {
    /// Checks the delivery against an HMAC scheme with the accepted
    /// secrets; a missing secret refuses everything (never "verified by
    /// default").
    pub fn authenticate(
        &self,
        vendor: Vendor,
        scheme: &SignatureScheme,
        secrets: Accepted<'_>,
    ) -> Result<()> {
        if secrets.current.is_none() {
            tracing::warn!(%vendor, "webhook secret not configured; rejecting delivery");
            return Err(Rejection::BadSignature.into());
        }
        secrets
            .verify(vendor.as_str(), |secret| {
                scheme.verify(secret, self.headers, self.body, self.now)
            })
            .map_err(|rejection| {
                tracing::warn!(%vendor, reason = %rejection, bytes = self.body.len(), "webhook rejected");
                rejection.into()
            })
    }
}

/// What a driver made of a webhook delivery.
#[derive(Debug, PartialEq)]
pub enum WebhookReply {
    /// A subscription handshake, answered exactly as the vendor requires.
    Handshake {
        /// The HTTP status to answer with.
        status: u16,
        /// The answer's content type.
        content_type: &'static str,
        /// The answer's body.
        body: String,
    },
    /// Authenticated events to dedup and act on.
    Events(Vec<WebhookEvent>),
    /// An authenticated delivery of an event type the connector does not
    /// sync: acknowledged (vendors retry a 4xx for hours) and counted.
    NotSynced {
        /// The vendor's name of the type, as sent (letters, digits and
        /// `._/-` only, at most 64).
        event_type: String,
    },
}

impl WebhookReply {
    /// The reply to an authenticated delivery of event type `event_type`
    /// that the connector does not sync.
    pub fn not_synced(event_type: &str) -> Self {
        WebhookReply::NotSynced {
            event_type: event_type
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "._/-".contains(*c))
                .take(64)
                .collect(),
        }
    }
}

/// What a vendor implements to be connected, synced and sent webhooks.
#[async_trait]
pub trait VendorDriver: Send + Sync {
    /// The vendor this driver is for.
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
        crate::vendors::token::refresh(&ctx.http, &ctx.creds, refresh_token).await
    }

    /// Revokes the grant at the vendor. Ok(false) when the vendor has no revoke.
    async fn revoke(
        &self,
        ctx: &VendorCtx,
        vendor_user_id: &str,
        tokens: &TokenSet,
    ) -> Result<bool, VendorError>;

    /// How long a connection may go without a sync before the scheduled
    /// tick pulls it unasked: a vendor without webhooks (Dexcom) is polled
    /// this often; for the rest it is a watchdog for webhooks that stopped
    /// arriving. None: never pulled unasked.
    fn quiet_limit(&self) -> Option<chrono::Duration> {
        Some(chrono::Duration::hours(WEBHOOK_WATCHDOG_HOURS))
    }

    /// Whether this vendor's webhooks carry nothing only the vendor could
    /// send (Garmin's public client id, Strava's subscription id): then a
    /// deauthorization is believed only once `grant_is_live` says the grant
    /// is gone.
    fn unsigned_webhooks(&self) -> bool {
        false
    }

    /// Whether the user's grant still works at the vendor: one cheap call
    /// with `access_token`, false when the vendor refuses it (401).
    async fn grant_is_live(
        &self,
        _ctx: &VendorCtx,
        _access_token: &str,
    ) -> Result<bool, VendorError> {
        Err(VendorError::Permanent(
            "this driver has no check of a grant".into(),
        ))
    }

    /// How often the fleet runs this vendor's upkeep (Oura renews its
    /// webhook subscriptions) with this registration; None: it needs none.
    fn upkeep_every(&self, _ctx: &VendorCtx) -> Option<chrono::Duration> {
        None
    }

    /// One upkeep turn, run by one tick of the fleet per `upkeep_every`.
    async fn upkeep(&self, _ctx: &VendorCtx, _now: DateTime<Utc>) -> Result<Upkept, VendorError> {
        Ok(Upkept::default())
    }

    /// A vendor that needs no consent page (Mock) connects `user_id` at
    /// once: its user id for them and their tokens. None: the OAuth (or
    /// hosted) flow.
    async fn connect_at_once(&self, _user_id: &str) -> Result<Option<(String, TokenSet)>> {
        Ok(None)
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

/// How long a webhook vendor may stay silent about a connection before the
/// scheduled tick pulls it anyway.
pub const WEBHOOK_WATCHDOG_HOURS: i64 = 24;

/// What one upkeep turn changed at the vendor.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upkept {
    /// Subscriptions created.
    pub created: usize,
    /// Subscriptions renewed.
    pub renewed: usize,
}

/// What a driver is built from.
pub struct DriverDeps<'a> {
    /// The Ephemeral table (the Mock vendor keeps its side there).
    pub ephemeral: &'a EphemeralStore,
    /// The configuration.
    pub env: &'a Env,
}

/// What a hosted connect flow needs.
pub struct HostedConnect<'a> {
    /// The single-use state to hand the vendor (it comes back on the callback).
    pub state: &'a str,
    /// The connector's callback URL, where the vendor sends the browser back.
    pub callback_url: &'a url::Url,
    /// The provider behind an aggregator the user asked for (Terra), if any.
    pub provider: Option<&'a str>,
}
