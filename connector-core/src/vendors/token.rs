//! The OAuth 2.0 token protocol through the `oauth2` crate: the authorize
//! URL with a PKCE S256 challenge, the code exchange and the refresh, with
//! each vendor's client authentication and token-response quirks.

use crate::domain::connection::{Secret, TokenSet};
use crate::domain::error::{Error, Result};
use crate::domain::metric::{count_vendor, Metric};
use crate::domain::vendor::{Vendor, VendorError};
use crate::vendors::client::{read_capped, BodyError};
use crate::vendors::credentials::VendorCredentials;
use crate::vendors::spec::{ClientAuth, TokenResponseShape};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::Utc;
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse, TokenResponse,
    TokenUrl,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use url::Url;

/// The fields of a token response beyond RFC 6749's, which vendors use to
/// name the user (Strava `athlete`, Polar `x_user_id`, Withings `userid`).
#[derive(Clone, Default, Deserialize, Serialize)]
pub struct ExtraFields {
    /// Every field beyond RFC 6749's, by name.
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for ExtraFields {
    // Vendors may put an id_token or similar in here: names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.fields.keys()).finish()
    }
}

impl ExtraTokenFields for ExtraFields {}

type VendorTokenResponse = StandardTokenResponse<ExtraFields, BasicTokenType>;

type Client = oauth2::Client<
    BasicErrorResponse,
    VendorTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// A token response: the tokens, and whatever else the vendor sent with them.
#[derive(Debug)]
pub struct Grant {
    /// The tokens.
    pub tokens: TokenSet,
    /// The rest of the token response.
    pub extra: ExtraFields,
}

impl Grant {
    /// A top-level extra field as a string (numbers are written out).
    pub fn extra_str(&self, key: &str) -> Option<String> {
        match self.extra.fields.get(key)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

fn client(creds: &VendorCredentials, redirect_uri: Option<&Url>) -> Result<Client> {
    let vendor = creds.vendor;
    let not_configured = || Error::VendorNotConfigured(vendor);
    let id = creds.client_id.clone().ok_or_else(not_configured)?;
    let secret = creds.client_secret.as_ref().ok_or_else(not_configured)?;
    let bad_url = |what: &str| Error::Config(format!("{what} of {vendor} is not a valid URL"));
    let mut c = oauth2::Client::new(ClientId::new(id))
        .set_client_secret(ClientSecret::new(secret.expose().to_string()))
        .set_auth_uri(
            AuthUrl::new(creds.auth_url.clone().ok_or_else(not_configured)?)
                .map_err(|_| bad_url("authorize URL"))?,
        )
        .set_token_uri(
            TokenUrl::new(creds.token_url.clone().ok_or_else(not_configured)?)
                .map_err(|_| bad_url("token URL"))?,
        )
        .set_auth_type(match creds.client_auth {
            ClientAuth::Basic => AuthType::BasicAuth,
            ClientAuth::Body => AuthType::RequestBody,
        });
    if let Some(r) = redirect_uri {
        c = c.set_redirect_uri(RedirectUrl::from_url(r.clone()));
    }
    Ok(c)
}

/// The HTTP client for vendor calls and token endpoints: no redirects (RFC
/// 6749 §10.6 / SSRF), 10 s timeout, TLS as [`vendor_tls`] sets it.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(vendor_tls())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("reqwest client builds")
}

/// TLS to vendors: rustls on aws-lc-rs, the stack the AWS SDK uses (no
/// second crypto library), trusting Mozilla's root certificates compiled in
/// (webpki-roots): vendors' certificates come from many authorities, and
/// nothing is read from the system's store at start-up.
pub fn vendor_tls() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("aws-lc-rs supports TLS 1.2 and 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth()
}

/// A fresh random state: 32 bytes, URL-safe (WHOOP wants at least 8 chars).
pub fn new_state() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    B64.encode(b)
}

/// The vendor's authorize URL carrying `state`, with a PKCE S256 challenge
/// where the vendor takes PKCE, and then the verifier to keep (sealed)
/// until the code comes back.
pub fn authorize_url(
    creds: &VendorCredentials,
    redirect_uri: &Url,
    state: &str,
) -> Result<(Url, Option<Secret>)> {
    let client = client(creds, Some(redirect_uri))?;
    let state = state.to_string();
    let mut req = client
        .authorize_url(|| CsrfToken::new(state))
        .add_scopes(creds.scopes.iter().cloned().map(Scope::new));
    let mut kept = None;
    if creds.pkce {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        req = req.set_pkce_challenge(challenge);
        kept = Some(Secret::new(verifier.secret().as_str()));
    }
    for (k, v) in &creds.extra_auth_params {
        req = req.add_extra_param(k.clone(), v.clone());
    }
    let (url, _) = req.url();
    Ok((url, kept))
}

/// Exchanges an authorization code (with its PKCE verifier, if one was
/// sent, and the redirect URI it was asked with) for tokens.
pub async fn exchange_code(
    http: &reqwest::Client,
    creds: &VendorCredentials,
    redirect_uri: &Url,
    code: &str,
    verifier: Option<&str>,
) -> Result<Grant> {
    let client = client(creds, Some(redirect_uri))?;
    let mut req = client.exchange_code(AuthorizationCode::new(code.to_string()));
    if let Some(v) = verifier {
        req = req.set_pkce_verifier(PkceCodeVerifier::new(v.to_string()));
    }
    for (k, v) in &creds.extra_token_params {
        req = req.add_extra_param(k.clone(), v.clone());
    }
    let resp = req
        .request_async(&TokenHttp::new(http, creds))
        .await
        .map_err(|e| Error::vendor(creds.vendor, token_error(e)))?;
    Ok(Grant {
        tokens: token_set(&resp, None),
        extra: resp.extra_fields().clone(),
    })
}

/// Refreshes with the vendor's token endpoint. Keeps the old refresh token
/// when the vendor does not send a new one (non-rotating vendors).
pub async fn refresh(
    http: &reqwest::Client,
    creds: &VendorCredentials,
    refresh_token: &str,
) -> Result<TokenSet, VendorError> {
    let client = client(creds, None).map_err(|e| VendorError::Permanent(e.to_string()))?;
    let refresh_token = RefreshToken::new(refresh_token.to_string());
    let mut req = client.exchange_refresh_token(&refresh_token);
    for (k, v) in &creds.extra_token_params {
        req = req.add_extra_param(k.clone(), v.clone());
    }
    let resp = req
        .request_async(&TokenHttp::new(http, creds))
        .await
        .map_err(token_error)?;
    Ok(token_set(&resp, Some(refresh_token.secret())))
}

/// Why the token endpoint could not be used, before any OAuth error body.
#[derive(Debug, thiserror::Error)]
pub enum TokenHttpError {
    /// The request failed or its answer could not be read.
    #[error("token endpoint unreachable")]
    Unreachable,
    /// The endpoint said to slow down (429, Withings 601); retry after this many s.
    #[error("token endpoint rate limited")]
    RateLimited(u64),
    /// The endpoint failed with this 5xx status (500 for a vendor's own internal-error code).
    #[error("token endpoint answered {0}")]
    Unavailable(u16),
    /// The answer is malformed, e.g. a wrapped (Withings) body that is not JSON.
    #[error("token endpoint answered a malformed body")]
    Malformed,
    /// The answer is longer than `MAX_TOKEN_RESPONSE_BYTES` (not read on).
    #[error("token endpoint answered more than 64 KiB")]
    TooLarge,
}

/// Token answers are a few hundred bytes (a few KiB with an ID token);
/// longer ones are refused before they are held.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// The HTTP client of token requests: reqwest, plus what no OAuth library
/// knows — 429 and 5xx become retryable errors, and a vendor that wraps its
/// token response (Withings `{status, body}`) is unwrapped into RFC 6749's.
struct TokenHttp {
    http: reqwest::Client,
    vendor: Vendor,
    shape: TokenResponseShape,
}

impl TokenHttp {
    fn new(http: &reqwest::Client, creds: &VendorCredentials) -> Self {
        Self {
            http: http.clone(),
            vendor: creds.vendor,
            shape: creds.token_response,
        }
    }
}

type TokenHttpFuture<'c> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = std::result::Result<oauth2::HttpResponse, TokenHttpError>>
            + Send
            + 'c,
    >,
>;

impl<'c> oauth2::AsyncHttpClient<'c> for TokenHttp {
    type Error = TokenHttpError;
    type Future = TokenHttpFuture<'c>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(token_http(
            self.http.clone(),
            self.vendor,
            self.shape,
            request,
        ))
    }
}

async fn token_http(
    http: reqwest::Client,
    vendor: Vendor,
    shape: TokenResponseShape,
    req: oauth2::HttpRequest,
) -> std::result::Result<oauth2::HttpResponse, TokenHttpError> {
    let (parts, body) = req.into_parts();
    count_vendor(Metric::VendorCalls, vendor, 1);
    let mut resp = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|_| TokenHttpError::Unreachable)?;
    let status = resp.status();
    if status.as_u16() == 429 {
        count_vendor(Metric::VendorThrottled, vendor, 1);
        return Err(TokenHttpError::RateLimited(
            crate::vendors::client::retry_after(resp.headers(), Utc::now()),
        ));
    }
    if status.is_server_error() {
        return Err(TokenHttpError::Unavailable(status.as_u16()));
    }
    let headers = resp.headers().clone();
    let bytes = read_capped(&mut resp, MAX_TOKEN_RESPONSE_BYTES)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => TokenHttpError::TooLarge,
            BodyError::Interrupted => TokenHttpError::Unreachable,
        })?;
    let (status, bytes) = match shape {
        TokenResponseShape::Standard => (status, bytes.to_vec()),
        TokenResponseShape::StatusBody => unwrap_status_body(&bytes)?,
    };
    let mut out = http::Response::builder().status(status);
    if let Some(ct) = headers.get(http::header::CONTENT_TYPE) {
        out = out.header(http::header::CONTENT_TYPE, ct);
    }
    if shape == TokenResponseShape::StatusBody {
        out = out.header(http::header::CONTENT_TYPE, "application/json");
    }
    out.body(bytes).map_err(|_| TokenHttpError::Malformed)
}

/// `{"status":0,"body":{…tokens…}}` → 200 with the tokens; another status →
/// an OAuth error: 601 (too many requests) is retryable, 5xx-like internal
/// codes are retryable, anything else means the code or token was refused.
fn unwrap_status_body(
    bytes: &[u8],
) -> std::result::Result<(http::StatusCode, Vec<u8>), TokenHttpError> {
    #[derive(Deserialize)]
    struct Wrapped {
        status: i64,
        #[serde(default)]
        body: serde_json::Value,
    }
    let w: Wrapped = serde_json::from_slice(bytes).map_err(|_| TokenHttpError::Malformed)?;
    match w.status {
        0 => {
            let mut body = w.body;
            // Withings sends a token type only sometimes; RFC 6749 needs one.
            if let Some(o) = body.as_object_mut() {
                o.entry("token_type").or_insert("Bearer".into());
            }
            Ok((http::StatusCode::OK, body.to_string().into_bytes()))
        }
        601 => Err(TokenHttpError::RateLimited(60)),
        2554 | 2555 | 522 => Err(TokenHttpError::Unavailable(500)),
        _ => Ok((
            http::StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant"}"#.to_vec(),
        )),
    }
}

fn token_set(resp: &VendorTokenResponse, old_refresh: Option<&str>) -> TokenSet {
    TokenSet {
        access_token: Secret::new(resp.access_token().secret().as_str()),
        refresh_token: resp
            .refresh_token()
            .map(|r| Secret::new(r.secret().as_str()))
            .or_else(|| old_refresh.map(Secret::new)),
        expires_at: resp
            .expires_in()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| Utc::now() + d),
        scopes: resp
            .scopes()
            .map(|s| s.iter().map(|x| x.to_string()).collect())
            .unwrap_or_default(),
    }
}

/// Maps a token-endpoint failure without echoing the response body.
fn token_error(
    e: RequestTokenError<TokenHttpError, oauth2::StandardErrorResponse<BasicErrorResponseType>>,
) -> VendorError {
    match e {
        RequestTokenError::ServerResponse(r) => match r.error() {
            BasicErrorResponseType::InvalidGrant => VendorError::RefreshRejected,
            other => VendorError::Permanent(format!("token endpoint answered {}", other.as_ref())),
        },
        RequestTokenError::Request(TokenHttpError::RateLimited(secs)) => VendorError::RateLimited {
            retry_after_secs: secs,
        },
        RequestTokenError::Request(e) => VendorError::Transient(e.to_string()),
        RequestTokenError::Parse(_, _) => {
            VendorError::Permanent("token endpoint answered malformed JSON".into())
        }
        RequestTokenError::Other(_) => VendorError::Transient("token endpoint failed".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let verifier = PkceCodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
        assert_eq!(
            challenge.as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(challenge.method().as_str(), "S256");
    }

    #[test]
    fn withings_status_body_responses_unwrap_or_become_oauth_errors() {
        let ok =
            include_bytes!("../../fixtures/vendors/withings/oauth2_requesttoken_response.json");
        let (status, body) = unwrap_status_body(ok).unwrap();
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["access_token"], "fake-withings-access-token-0001");
        assert_eq!(v["userid"], 9990001);
        let parsed: VendorTokenResponse = serde_json::from_slice(&body).unwrap();
        let grant = Grant {
            tokens: token_set(&parsed, None),
            extra: parsed.extra_fields().clone(),
        };
        assert_eq!(grant.extra_str("userid").as_deref(), Some("9990001"));
        assert!(!format!("{grant:?}").contains("fake-withings"));

        let refused = include_bytes!("../../fixtures/vendors/withings/error_invalid_token.json");
        let (status, body) = unwrap_status_body(refused).unwrap();
        assert_eq!(status, 400);
        assert_eq!(body, br#"{"error":"invalid_grant"}"#);
        assert!(matches!(
            unwrap_status_body(br#"{"status":601,"body":{}}"#),
            Err(TokenHttpError::RateLimited(_))
        ));
        assert!(matches!(
            unwrap_status_body(b"<html>"),
            Err(TokenHttpError::Malformed)
        ));
    }

    #[test]
    fn state_is_long_and_random() {
        let a = new_state();
        let b = new_state();
        assert_ne!(a, b);
        assert!(a.len() >= 43);
    }

    #[tokio::test]
    async fn the_vendor_client_refuses_a_certificate_no_mozilla_root_signed() {
        use crate::aws::tls::untrusted_server::untrusted_server;
        use std::sync::atomic::Ordering;
        let server = untrusted_server().await;
        let sent = http_client()
            .get(format!(
                "https://localhost:{}/v2/usercollection/heartrate",
                server.port
            ))
            .bearer_auth("fake-access-token")
            .send()
            .await;
        let error = sent.expect_err("an untrusted certificate is refused");
        let text = crate::aws::sdk(&error);
        assert!(error.is_connect(), "{text}");
        assert!(
            text.contains("invalid peer certificate") && text.contains("UnknownIssuer"),
            "{text}"
        );
        assert!(server.connections.load(Ordering::SeqCst) >= 1, "{text}");
    }
}
