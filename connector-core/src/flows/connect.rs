//! Connecting a vendor: starting (at once for a vendor without consent,
//! else the vendor's consent page with a single-use state), the browser's
//! return (parked under a one-time completion id, nothing exchanged), the
//! app's completion as the user who started it (code exchanged, vendor user
//! identified), establishing the connection whichever way the tokens
//! arrived (seal and store them, then queue the backfill of the configured
//! number of days), disconnecting (revoke at the vendor, then delete), and
//! the list of vendors with the user's connections.

use crate::aws::kms::Binding;
use crate::aws::store::ephemeral::Bucket;
use crate::domain::app_event::EventType;
use crate::domain::connection::{
    Backfill, Connection, ConnectionStatus, ConsentFlow, ParkedConnect, PendingConnect, TokenSet,
};
use crate::domain::error::{Error, Result};
use crate::domain::job::{last_days, JobReason, SyncJob};
use crate::domain::vendor::Vendor;
use crate::domain::vendor::VendorError;
use crate::flows::app::App;
use crate::flows::erasure;
use crate::flows::events;
use crate::flows::refresh::{open_tokens, refresh_connection};
use crate::flows::sync::EXPIRY_MARGIN_SECS;
use crate::vendors::credentials::VendorCredentials;
use crate::vendors::driver::{HostedConnect, VendorDriver};
use crate::vendors::registry;
use crate::vendors::token::{self, Grant};
use chrono::Utc;
use serde::Serialize;
use std::collections::HashMap;

/// Seals and stores a new connection's tokens, then queues its backfill. A
/// vendor account connected to another app user is refused (409).
pub async fn establish(
    app: &App,
    user_id: &str,
    vendor: Vendor,
    vendor_user_id: &str,
    tokens: &TokenSet,
) -> Result<()> {
    claim_vendor_account(app, user_id, vendor, vendor_user_id).await?;
    let sealed = app.envelope().seal_tokens(user_id, vendor, tokens).await?;
    app.connections
        .connect(
            user_id,
            vendor,
            vendor_user_id,
            &tokens.scopes,
            tokens.expires_at,
            &sealed,
            app.config.backfill_days,
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
    let occurrence = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    events::connection_changed(
        app,
        EventType::Connected,
        user_id,
        vendor,
        &occurrence,
        None,
    )
    .await
}

/// Holds the vendor account for `user`: refused while another app user's
/// connection holds it (a claim whose connection is gone is taken over).
async fn claim_vendor_account(
    app: &App,
    user: &str,
    vendor: Vendor,
    vendor_user_id: &str,
) -> Result<()> {
    let Some(holder) = app
        .ephemeral
        .claim_vendor_account(vendor, vendor_user_id, user)
        .await?
    else {
        return Ok(());
    };
    let held = app
        .connections
        .get(&holder, vendor)
        .await?
        .is_some_and(|c| c.vendor_user_id == vendor_user_id);
    if held {
        tracing::warn!(user_id = user, %vendor, "refused: the vendor account is connected to another user");
        return Err(Error::Conflict(format!(
            "this {} account is already connected to another user of this app; disconnect it there first",
            registry::spec(vendor).display_name
        )));
    }
    app.ephemeral
        .take_over_vendor_account(vendor, vendor_user_id, user)
        .await
}

/// What became of a connection's grant at its vendor when it was removed here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// The vendor revoked the grant.
    Revoked,
    /// The vendor offers no revoke, or this build has no driver for it.
    NotOffered,
    /// The vendor refused the revoke (an answer like 400, 401, 403 or 404,
    /// after a refresh where one could help): the user already removed the
    /// app there, so the grant is gone. Holds the vendor's answer.
    AlreadyGone(String),
    /// The stored tokens do not open, so nothing could be sent to the vendor.
    TokensDoNotOpen,
}

impl Revocation {
    /// Whether the vendor revoked the grant on this request.
    pub fn revoked_at_vendor(&self) -> bool {
        *self == Revocation::Revoked
    }

    /// Why the grant was not revoked here, for the user; None when it was.
    pub fn note(&self) -> Option<String> {
        match self {
            Revocation::Revoked => None,
            Revocation::NotOffered => Some("the vendor offers no revoke to apps (or this build has no driver for it); remove the app in the vendor's app or account settings".into()),
            Revocation::AlreadyGone(answer) => Some(format!("the vendor refused the revoke ({answer}): the grant was already gone there, so nothing is left to revoke")),
            Revocation::TokensDoNotOpen => Some("the stored tokens do not open, so the revoke could not be sent; remove the app in the vendor's app or account settings".into()),
        }
    }
}

/// Revokes a connection's grant at the vendor, refreshing the access token
/// first where it has expired or is refused, since most revoke endpoints
/// want a live one. A refusal means the grant is already gone there. An
/// error means the vendor could not be reached (transport, 5xx, 429): keep
/// the tokens, or the grant would stay alive there with no way left to
/// revoke it.
pub async fn revoke_at_vendor(app: &App, conn: &Connection) -> Result<Revocation> {
    let vendor = conn.vendor;
    if !app.vendor_enabled(vendor) {
        return Ok(Revocation::NotOffered);
    }
    let (driver, ctx) = match app.driver(vendor).await {
        Ok(d) => d,
        Err(Error::Vendor { .. }) => return Ok(Revocation::NotOffered),
        Err(e) => return Err(e),
    };
    let mut tokens = match open_tokens(app, conn).await {
        Ok(t) => t,
        Err(Error::Crypto(_) | Error::Corrupt(_)) => return Ok(Revocation::TokensDoNotOpen),
        Err(e) => return Err(e),
    };
    let mut refreshed = false;
    if tokens.expires_within(Utc::now(), EXPIRY_MARGIN_SECS) && tokens.refresh_token.is_some() {
        refreshed = true;
        match refresh_connection(app, conn).await {
            Ok((_, fresh)) => tokens = fresh,
            // A refused refresh token leaves the old access token to try.
            Err(e) => {
                tracing::warn!(user_id = %conn.user_id, %vendor, error = %e, "refresh before revoke failed")
            }
        }
    }
    loop {
        let error = match driver.revoke(&ctx, &conn.vendor_user_id, &tokens).await {
            Ok(true) => return Ok(Revocation::Revoked),
            Ok(false) => return Ok(Revocation::NotOffered),
            Err(e) => e,
        };
        if matches!(error, VendorError::Unauthorized)
            && !refreshed
            && tokens.refresh_token.is_some()
        {
            refreshed = true;
            match refresh_connection(app, conn).await {
                Ok((_, fresh)) => {
                    tokens = fresh;
                    continue;
                }
                Err(Error::Vendor { error, .. }) if refused(&error) => {
                    return Ok(gone(conn, error))
                }
                Err(e) => return Err(e),
            }
        }
        if refused(&error) {
            return Ok(gone(conn, error));
        }
        return Err(Error::vendor(vendor, error));
    }
}

/// Whether a vendor's answer refuses (rather than fails to handle) a request.
fn refused(error: &VendorError) -> bool {
    match error {
        VendorError::Unauthorized
        | VendorError::RefreshRejected
        | VendorError::Permanent(_)
        | VendorError::BadInput { .. } => true,
        VendorError::Transient(_) | VendorError::RateLimited { .. } => false,
    }
}

fn gone(conn: &Connection, error: VendorError) -> Revocation {
    tracing::info!(user_id = %conn.user_id, vendor = %conn.vendor, answer = %error, "the vendor refused the revoke: the grant is already gone there");
    Revocation::AlreadyGone(error.to_string())
}

/// How long a user has to finish consenting at the vendor.
pub const STATE_TTL_SECS: i64 = 600;

/// What the app asked for when it started a connection.
#[derive(Default)]
pub struct ConnectAsk<'a> {
    /// Where the browser returns; a configured return URL (default: the
    /// first) or the connector's own connect page.
    pub return_url: Option<&'a str>,
    /// For an aggregator (Terra): the wearable to connect through it.
    pub provider: Option<&'a str>,
    /// The domain the request reached, for the OAuth redirect URI when no
    /// public base URL is configured.
    pub request_domain: Option<&'a str>,
}

/// How a connection started.
#[derive(Debug, PartialEq)]
pub enum Started {
    /// Connected at once (Mock).
    Connected,
    /// Send the user's browser here: the vendor's consent page.
    Redirect(url::Url),
}

/// Starts `user`'s connection to `vendor`: at once where the vendor needs
/// no consent, otherwise the vendor's consent page with a single-use state
/// (PKCE S256 where OAuth, or the vendor's hosted flow). A user may start
/// `connect_starts_per_hour` connects an hour (429 past it).
pub async fn start(app: &App, user: &str, vendor: Vendor, ask: ConnectAsk<'_>) -> Result<Started> {
    let rate = Bucket::per_hour(app.config.connect_starts_per_hour);
    if let Err(retry_after_secs) = app
        .ephemeral
        .take_token(&format!("connectstart#{user}"), user, rate)
        .await?
    {
        return Err(Error::RateLimited { retry_after_secs });
    }
    erasure::refuse_while_erasing(app, user).await?;
    let (driver, ctx) = app.driver(vendor).await?;
    if let Some((vendor_user_id, tokens)) = driver.connect_at_once(user).await? {
        establish(app, user, vendor, &vendor_user_id, &tokens).await?;
        return Ok(Started::Connected);
    }
    if !ctx.creds.supported() {
        return Err(Error::VendorNotConfigured(vendor));
    }
    let return_url = app.config.return_url(ask.return_url, ask.request_domain)?;
    let redirect_uri = app.config.callback_url(vendor, ask.request_domain)?;
    if let Some(p) = ask.provider {
        if p.is_empty() || p.len() > 32 || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(Error::InvalidField {
                field: "provider".into(),
                reason: "provider must be 1-32 letters, digits or underscores".into(),
            });
        }
    }
    let state = token::new_state();
    let hosted = driver
        .hosted_connect(
            &ctx,
            &HostedConnect {
                state: &state,
                callback_url: &redirect_uri,
                provider: ask.provider,
            },
        )
        .await
        .map_err(|e| Error::vendor(vendor, e))?;
    let (url, flow) = match hosted {
        Some(url) => (url, ConsentFlow::Hosted),
        None => {
            let (url, verifier) = token::authorize_url(&ctx.creds, &redirect_uri, &state)?;
            let sealed_verifier = match verifier {
                Some(v) => Some(
                    app.envelope()
                        .seal(v.expose(), pkce_binding(user, vendor))
                        .await?,
                ),
                None => None,
            };
            (url, ConsentFlow::Code { sealed_verifier })
        }
    };
    let pending = PendingConnect {
        vendor,
        user_id: user.to_string(),
        redirect_uri: redirect_uri.to_string(),
        return_url: return_url.to_string(),
        flow,
    };
    let expires_at = Utc::now() + chrono::Duration::seconds(STATE_TTL_SECS);
    app.ephemeral
        .put_pending_connect(&state, &pending, expires_at)
        .await?;
    Ok(Started::Redirect(url))
}

/// Disconnects `user` from `vendor`: revokes the grant at the vendor, then
/// deletes the tokens. An unreachable vendor keeps the connection for a retry.
pub async fn disconnect(app: &App, user: &str, vendor: Vendor) -> Result<Revocation> {
    let conn = app
        .connections
        .get(user, vendor)
        .await?
        .ok_or_else(|| Error::NotFound(format!("connection to {vendor}")))?;
    let revocation = revoke_at_vendor(app, &conn).await?;
    app.connections.delete(user, vendor).await?;
    app.ephemeral
        .release_vendor_account(vendor, &conn.vendor_user_id, user)
        .await?;
    let revoked_at_vendor = revocation.revoked_at_vendor();
    tracing::info!(user_id = user, %vendor, revoked_at_vendor, "disconnected");
    events::connection_changed(
        app,
        EventType::Disconnected,
        user,
        vendor,
        &events::grant_of(&conn),
        None,
    )
    .await?;
    Ok(revocation)
}

/// How long the app has to complete a consent once the browser is back. A
/// vendor's code may expire sooner (Withings: 30 s).
pub const COMPLETION_TTL_SECS: i64 = 300;

/// Where the browser goes after the vendor's consent page, and what it tells the app.
#[derive(Debug, PartialEq)]
pub struct Returned {
    /// The app's return URL the connect started with.
    pub return_url: url::Url,
    /// The one-time completion id the app completes the connect with, or why
    /// there is none: the vendor's error code (`access_denied`, …) or
    /// `missing_code`.
    pub outcome: std::result::Result<String, String>,
}

/// What the browser's return carried, sealed while it waits for the app.
#[derive(serde::Deserialize, Serialize)]
struct Callback {
    state: String,
    query: HashMap<String, String>,
}

/// The browser's return from `vendor`'s consent page with `query`: the
/// single-use state taken and the consent parked under a one-time
/// completion id for the app, which completes it as the user who started
/// it (`complete`). Nothing is exchanged or stored for anyone before that:
/// whoever consents in the browser may not be that user (RFC 6749 §10.12).
pub async fn callback(
    app: &App,
    vendor: Vendor,
    query: &HashMap<String, String>,
) -> Result<Returned> {
    if registry::spec(vendor).oauth.is_none() {
        return Err(Error::BadRequest(format!(
            "{vendor} connects without OAuth; POST /v1/connections/{vendor}"
        )));
    }
    // A hosted connect flow (Terra) hands our state back as `reference_id`.
    let state = query
        .get("state")
        .or_else(|| query.get("reference_id"))
        .ok_or_else(|| Error::BadRequest("state is missing".into()))?;
    let pending = app
        .ephemeral
        .take_pending_connect(state)
        .await?
        .ok_or_else(|| Error::BadRequest("unknown, used or expired OAuth state".into()))?;
    if pending.vendor != vendor {
        return Err(Error::BadRequest(
            "OAuth state belongs to another vendor".into(),
        ));
    }
    let return_url = url::Url::parse(&pending.return_url)
        .map_err(|_| Error::Corrupt("stored return URL is invalid".into()))?;
    let back = |outcome: std::result::Result<String, &str>| {
        Ok(Returned {
            return_url: return_url.clone(),
            outcome: outcome.map_err(str::to_string),
        })
    };
    if let Some(err) = query.get("error") {
        // The vendor's error code only (e.g. access_denied), never free text.
        let reason: String = err
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return back(Err(&reason));
    }
    if matches!(pending.flow, ConsentFlow::Code { .. }) && !query.contains_key("code") {
        return back(Err("missing_code"));
    }
    let callback = serde_json::to_string(&Callback {
        state: state.clone(),
        query: query.clone(),
    })
    .map_err(|e| Error::Crypto(format!("callback: {e}")))?;
    let sealed_callback = app
        .envelope()
        .seal(&callback, callback_binding(&pending.user_id, vendor))
        .await?;
    let completion = token::new_state();
    let expires_at = Utc::now() + chrono::Duration::seconds(COMPLETION_TTL_SECS);
    app.ephemeral
        .put_parked_connect(
            &completion,
            &ParkedConnect {
                pending,
                sealed_callback,
            },
            expires_at,
        )
        .await?;
    back(Ok(completion))
}

/// Completes the consent parked under `completion` for `user`, who must be
/// the user who started the connect: the code is exchanged (or the hosted
/// flow confirmed), the vendor user identified, the connection established.
/// The id works once, whoever presents it. Anything else (another user, a
/// used or expired id, another vendor's) is refused alike and stores nothing.
pub async fn complete(app: &App, user: &str, vendor: Vendor, completion: &str) -> Result<()> {
    let refused = || Error::BadRequest("unknown, used or expired completion".into());
    erasure::refuse_while_erasing(app, user).await?;
    let parked = app
        .ephemeral
        .take_parked_connect(completion)
        .await?
        .ok_or_else(refused)?;
    let pending = &parked.pending;
    if pending.user_id != user || pending.vendor != vendor {
        tracing::warn!(
            security_event = "connect_completed_by_another_user",
            user_id = user,
            %vendor,
            "a consent was presented by a user other than the one who started it, or at another vendor; refused"
        );
        return Err(refused());
    }
    let opened = app
        .envelope()
        .open(&parked.sealed_callback, callback_binding(user, vendor))
        .await?;
    let Callback { state, query } = serde_json::from_str(&opened)
        .map_err(|_| Error::Corrupt("parked callback is not readable".into()))?;
    let failed = |reason: &str| {
        Error::Unprocessable(format!(
            "{reason}: the vendor did not confirm the consent; connect again"
        ))
    };
    let (driver, ctx) = app.driver(vendor).await?;
    match driver.hosted_callback(&ctx, &state, &query).await {
        Ok(None) => {}
        Ok(Some((vendor_user_id, tokens))) => {
            return establish(app, user, vendor, &vendor_user_id, &tokens).await;
        }
        Err(e) => {
            tracing::warn!(%vendor, error = %e, "hosted connect could not be confirmed");
            return Err(failed("identify_failed"));
        }
    }
    let code = query
        .get("code")
        .ok_or_else(|| Error::Corrupt("parked callback has no code".into()))?;
    let grant = match exchange(app, &ctx.creds, pending, code).await {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(%vendor, error = %e, "code exchange failed");
            return Err(failed("exchange_failed"));
        }
    };
    let vendor_user_id = match driver.identify_user(&ctx, &grant, user).await {
        Ok(id) if !id.is_empty() => id,
        outcome => {
            let error = outcome.err().map(|e| e.to_string()).unwrap_or_default();
            tracing::warn!(%vendor, error, "could not identify the vendor user");
            return Err(failed("identify_failed"));
        }
    };
    establish(app, user, vendor, &vendor_user_id, &grant.tokens).await
}

/// Exchanges the code, with the PKCE verifier sealed when the connect
/// started where the vendor takes PKCE.
async fn exchange(
    app: &App,
    creds: &VendorCredentials,
    pending: &PendingConnect,
    code: &str,
) -> Result<Grant> {
    let ConsentFlow::Code { sealed_verifier } = &pending.flow else {
        return Err(Error::Corrupt(
            "a hosted connect has no code to exchange".into(),
        ));
    };
    let verifier = match sealed_verifier {
        Some(sealed) => Some(
            app.envelope()
                .open(sealed, pkce_binding(&pending.user_id, pending.vendor))
                .await?,
        ),
        None => None,
    };
    let redirect_uri = url::Url::parse(&pending.redirect_uri)
        .map_err(|_| Error::Corrupt("bad redirect_uri".into()))?;
    token::exchange_code(
        app.http(),
        creds,
        &redirect_uri,
        code,
        verifier.as_ref().map(|v| v.as_str()),
    )
    .await
}

/// The parked callback is sealed for the user and vendor who started the connect.
fn callback_binding(user_id: &str, vendor: Vendor) -> Binding<'_> {
    Binding {
        user_id,
        vendor: vendor.as_str(),
        field: "oauth_callback",
    }
}

/// The PKCE verifier is sealed for the user and vendor who started the connect.
fn pkce_binding(user_id: &str, vendor: Vendor) -> Binding<'_> {
    Binding {
        user_id,
        vendor: vendor.as_str(),
        field: "pkce_verifier",
    }
}

/// A vendor as the app shows it to a user.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Provider {
    /// The vendor.
    pub id: Vendor,
    /// Its name for people.
    pub name: &'static str,
    /// Whether this deployment has its app credentials (Mock always).
    pub supported: bool,
    /// Whether the user's connection is connected.
    pub connected: bool,
    /// The connection's status, if the user has one.
    pub status: Option<ConnectionStatus>,
    /// When it last synced (RFC 3339).
    pub last_sync_at: Option<String>,
    /// Why its last sync failed for good.
    pub error: Option<String>,
    /// The history pulled when it was connected, if the user has a
    /// connection (and it was made since backfills are tracked).
    pub backfill: Option<Backfill>,
}

/// One of the user's connections, as `GET /v1/connections` lists it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectionSummary {
    /// The vendor.
    pub vendor: Vendor,
    /// The connection's status.
    pub status: ConnectionStatus,
    /// When it was (last) connected (RFC 3339).
    pub connected_at: String,
    /// When it last synced (RFC 3339).
    pub last_sync_at: Option<String>,
    /// Why its last sync failed for good.
    pub error: Option<String>,
    /// The history pulled on connect: queued, running (days done of days
    /// asked), done, or failed with why; absent for a connection made
    /// before backfills were tracked.
    pub backfill: Option<Backfill>,
}

/// `user`'s connections, in vendor order.
pub async fn connections(app: &App, user: &str) -> Result<Vec<ConnectionSummary>> {
    let mut list = app.connections.list(user).await?;
    list.sort_by_key(|c| Vendor::ALL.iter().position(|v| *v == c.vendor));
    Ok(list
        .into_iter()
        .map(|c| ConnectionSummary {
            vendor: c.vendor,
            status: c.status,
            connected_at: c.connected_at.to_rfc3339(),
            last_sync_at: c.last_sync_at.map(|t| t.to_rfc3339()),
            error: c.last_error,
            backfill: c.backfill,
        })
        .collect())
}

/// Every vendor, whether it is configured here (as the tick last published:
/// this reads no credentials), and `user`'s connection to it.
pub async fn providers(app: &App, user: &str) -> Result<Vec<Provider>> {
    let connections = app.connections.list(user).await?;
    let supported = app
        .ephemeral
        .published_supported()
        .await?
        .unwrap_or_else(|| {
            tracing::warn!("no supported vendors published yet (the tick publishes them)");
            Vec::new()
        });
    let mut out = Vec::with_capacity(Vendor::ALL.len());
    for vendor in Vendor::ALL {
        let conn = connections.iter().find(|c| c.vendor == vendor);
        out.push(Provider {
            id: vendor,
            name: registry::spec(vendor).display_name,
            supported: app.vendor_enabled(vendor) && supported.contains(&vendor),
            connected: conn.is_some_and(|c| c.status == ConnectionStatus::Connected),
            status: conn.map(|c| c.status),
            last_sync_at: conn.and_then(|c| c.last_sync_at).map(|t| t.to_rfc3339()),
            error: conn.and_then(|c| c.last_error.clone()),
            backfill: conn.and_then(|c| c.backfill.clone()),
        });
    }
    Ok(out)
}
