//! `POST /v1/connections/{vendor}` starts a connection (OAuth redirect, or at
//! once for Mock); `POST /v1/connections/{vendor}/complete` completes the
//! consent the browser brought back; `DELETE /v1/connections/{vendor}`
//! revokes it at the vendor and deletes the tokens (`flows::connect`).

use connector_core::flows::connect::{self, ConnectAsk, Started};
use connector_core::http::api::{
    json, json_body, path_param, request_domain, respond, route, user_id,
};
use connector_core::http::openapi::{
    BadGateway, BadRequest, Conflict, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized,
    Unavailable, Unprocessable,
};
use connector_core::{App, Error, Result, Vendor};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    respond(dispatch(app, &req).await)
}

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>> {
    let user = user_id(req)?;
    let vendor: Vendor = path_param(req, "vendor")?.parse()?;
    match route(req).as_str() {
        "POST /v1/connections/{vendor}" => start(app, req, &user, vendor).await,
        "POST /v1/connections/{vendor}/complete" => complete(app, req, &user, vendor).await,
        "DELETE /v1/connections/{vendor}" => disconnect(app, &user, vendor).await,
        other => Err(Error::NotFound(format!("route {other:?}"))),
    }
}

/// How to connect; every field is optional.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectBody {
    /// Where the browser goes after the vendor's consent page: one of the
    /// configured return URLs (default: the first), or the connector's own
    /// connect page (`/v1/connect` on its public origin).
    return_url: Option<String>,
    /// For an aggregator (Terra): the wearable to connect through it, e.g. "GARMIN".
    provider: Option<String>,
}

/// Only `connected`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectedStatus {
    Connected,
}

/// The vendor is connected.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Connected {
    pub vendor: Vendor,
    pub status: ConnectedStatus,
}

/// Send the browser to the vendor's consent page.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ConsentRedirect {
    pub vendor: Vendor,
    /// The vendor's consent page (PKCE and a single-use state included).
    pub redirect_url: String,
}

/// What starting a connection did.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ConnectStarted {
    /// Mock connects at once (and queues a backfill).
    Connected(Connected),
    /// A real vendor asks the user first.
    Redirect(ConsentRedirect),
}

/// Start connecting the caller to a vendor.
///
/// A real vendor answers with its consent page's URL; the browser comes
/// back through `GET /v1/oauth/{vendor}/callback` to the return URL with a
/// one-time completion id, which the app completes with
/// `POST /v1/connections/{vendor}/complete`. Mock connects at once.
#[utoipa::path(
    post,
    path = "/v1/connections/{vendor}",
    tag = "connections",
    params(("vendor" = Vendor, Path, description = "The vendor to connect.")),
    request_body(content = Option<ConnectBody>, content_type = "application/json"),
    responses(
        (status = 200, body = ConnectStarted),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
        (status = 502, response = BadGateway),
        (status = 503, response = Unavailable),
    ),
    security(("user_jwt" = []))
)]
pub async fn start(app: &App, req: &Request, user: &str, vendor: Vendor) -> Result<Response<Body>> {
    let body: ConnectBody = json_body(req)?;
    let domain = request_domain(req);
    let ask = ConnectAsk {
        return_url: body.return_url.as_deref(),
        provider: body.provider.as_deref(),
        request_domain: domain.as_deref(),
    };
    let started = match connect::start(app, user, vendor, ask).await? {
        Started::Connected => ConnectStarted::Connected(Connected {
            vendor,
            status: ConnectedStatus::Connected,
        }),
        Started::Redirect(url) => ConnectStarted::Redirect(ConsentRedirect {
            vendor,
            redirect_url: url.into(),
        }),
    };
    Ok(json(200, &started))
}

/// The consent to complete.
#[derive(Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteBody {
    /// The `completion` id the callback put on the return URL.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 128)]
    completion: Option<String>,
}

/// Complete a connection the browser brought back, as the user who started it.
///
/// Only when the JWT's `sub` is the user who started the connect is the
/// code exchanged, the tokens stored and a backfill queued. A vendor account
/// already connected to another user is refused (409). Another user,
/// another vendor, a used or expired id: 400, nothing stored.
#[utoipa::path(
    post,
    path = "/v1/connections/{vendor}/complete",
    tag = "connections",
    params(("vendor" = Vendor, Path, description = "The vendor being connected.")),
    request_body = CompleteBody,
    responses(
        (status = 200, body = Connected),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = Unprocessable),
        (status = 502, response = BadGateway),
        (status = 503, response = Unavailable),
    ),
    security(("user_jwt" = []))
)]
pub async fn complete(
    app: &App,
    req: &Request,
    user: &str,
    vendor: Vendor,
) -> Result<Response<Body>> {
    let body: CompleteBody = json_body(req)?;
    let completion = body
        .completion
        .filter(|c| !c.is_empty() && c.len() <= 128)
        .ok_or_else(|| Error::BadRequest("completion is required".into()))?;
    connect::complete(app, user, vendor, &completion).await?;
    Ok(json(
        200,
        &Connected {
            vendor,
            status: ConnectedStatus::Connected,
        },
    ))
}

/// Only `disconnected`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DisconnectedStatus {
    Disconnected,
}

/// The connection is deleted.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Disconnected {
    pub vendor: Vendor,
    pub status: DisconnectedStatus,
    /// Whether the vendor revoked the grant.
    pub revoked_at_vendor: bool,
    /// Why not, where it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Disconnect the caller from a vendor: revoke the grant there, delete the tokens.
///
/// `revoked_at_vendor` is false, with a `note` saying why, when the vendor
/// offers no revoke, refuses it (the grant is already gone) or the stored
/// tokens do not open; the connection is deleted either way. Only a vendor
/// that cannot be reached keeps the tokens (502), so the revoke can be retried.
#[utoipa::path(
    delete,
    path = "/v1/connections/{vendor}",
    tag = "connections",
    params(("vendor" = Vendor, Path, description = "The vendor to disconnect.")),
    responses(
        (status = 200, body = Disconnected),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 502, response = BadGateway),
        (status = 503, response = Unavailable),
    ),
    security(("user_jwt" = []))
)]
pub async fn disconnect(app: &App, user: &str, vendor: Vendor) -> Result<Response<Body>> {
    let revocation = connect::disconnect(app, user, vendor).await?;
    Ok(json(
        200,
        &Disconnected {
            vendor,
            status: DisconnectedStatus::Disconnected,
            revoked_at_vendor: revocation.revoked_at_vendor(),
            note: revocation.note(),
        },
    ))
}
