//! OAuth 2.0 authorization-code flow through the `oauth2` crate: PKCE S256,
//! a single-use state bound to the user (stored with a TTL and taken with a
//! conditional delete), code exchange and refresh.

use crate::credentials::VendorCredentials;
use crate::crypto::{Binding, Envelope};
use crate::error::{Error, Result};
use crate::store::EphemeralStore;
use crate::tokens::{Secret, TokenSet};
use crate::vendors::catalog::ClientAuth;
use crate::vendors::{Vendor, VendorError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::Utc;
use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    Scope, TokenResponse, TokenUrl,
};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use url::Url;

/// How long a user has to finish consenting at the vendor.
pub const STATE_TTL_SECS: i64 = 600;
const PKCE_FIELD: &str = "pkce_verifier";

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn client(creds: &VendorCredentials, redirect_uri: Option<&Url>) -> Result<Client> {
    let vendor = creds.vendor;
    let not_configured = || Error::VendorNotConfigured(vendor);
    let id = creds.client_id.clone().ok_or_else(not_configured)?;
    let secret = creds.client_secret.as_ref().ok_or_else(not_configured)?;
    let bad_url = |what: &str| Error::Config(format!("{what} of {vendor} is not a valid URL"));
    let mut c = BasicClient::new(ClientId::new(id))
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

/// An HTTP client for token endpoints: no redirects (RFC 6749 §10.6 / SSRF).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("reqwest client builds")
}

fn state_key(state: &str) -> String {
    format!("oauth#{}", hex::encode(Sha256::digest(state.as_bytes())))
}

/// A fresh random state: 32 bytes, URL-safe (WHOOP wants at least 8 chars).
pub fn new_state() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    B64.encode(b)
}

/// The vendor's authorize URL for `user_id`, with PKCE and a stored state.
pub async fn begin(
    store: &EphemeralStore,
    envelope: &Envelope,
    creds: &VendorCredentials,
    user_id: &str,
    redirect_uri: &Url,
    return_url: &Url,
) -> Result<Url> {
    let vendor = creds.vendor;
    let client = client(creds, Some(redirect_uri))?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = new_state();
    let mut req = client
        .authorize_url(|| CsrfToken::new(state.clone()))
        .add_scopes(creds.scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge);
    for (k, v) in &creds.extra_auth_params {
        req = req.add_extra_param(k.clone(), v.clone());
    }
    let (url, _) = req.url();
    let sealed_verifier = envelope
        .seal(
            verifier.secret(),
            Binding {
                user_id,
                vendor: vendor.as_str(),
                field: PKCE_FIELD,
            },
        )
        .await?;
    store
        .put(
            &state_key(&state),
            HashMap::from([
                ("user_id".to_string(), user_id.to_string()),
                (crate::store::OWNER.to_string(), user_id.to_string()),
                ("vendor".to_string(), vendor.as_str().to_string()),
                (PKCE_FIELD.to_string(), sealed_verifier),
                ("redirect_uri".to_string(), redirect_uri.to_string()),
                ("return_url".to_string(), return_url.to_string()),
            ]),
            Utc::now() + chrono::Duration::seconds(STATE_TTL_SECS),
        )
        .await?;
    Ok(url)
}

/// A finished authorization: whose it was and where to send the user back.
#[derive(Debug)]
pub struct Completed {
    pub user_id: String,
    pub return_url: String,
    pub tokens: TokenSet,
}

/// The state of a callback, consumed: it works exactly once, within its TTL,
/// and only for the vendor it was made for.
pub async fn take_state(
    store: &EphemeralStore,
    vendor: Vendor,
    state: &str,
) -> Result<HashMap<String, String>> {
    let item = store
        .take(&state_key(state))
        .await?
        .ok_or_else(|| Error::BadRequest("unknown, used or expired OAuth state".into()))?;
    if item.get("vendor").map(String::as_str) != Some(vendor.as_str()) {
        return Err(Error::BadRequest(
            "OAuth state belongs to another vendor".into(),
        ));
    }
    Ok(item)
}

/// Exchanges the code of a callback (state already taken) for tokens.
pub async fn complete(
    http: &reqwest::Client,
    envelope: &Envelope,
    creds: &VendorCredentials,
    state_item: &HashMap<String, String>,
    code: &str,
) -> Result<Completed> {
    let vendor = creds.vendor;
    let field = |k: &str| {
        state_item
            .get(k)
            .cloned()
            .ok_or_else(|| Error::Storage(format!("OAuth state item lacks {k}")))
    };
    let user_id = field("user_id")?;
    let redirect_uri = Url::parse(&field("redirect_uri")?)
        .map_err(|_| Error::Storage("bad redirect_uri".into()))?;
    let verifier = envelope
        .open(
            &field(PKCE_FIELD)?,
            Binding {
                user_id: &user_id,
                vendor: vendor.as_str(),
                field: PKCE_FIELD,
            },
        )
        .await?;
    let resp = client(creds, Some(&redirect_uri))?
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
        .request_async(http)
        .await
        .map_err(|e| token_error(e).into_error(vendor))?;
    Ok(Completed {
        user_id,
        return_url: field("return_url")?,
        tokens: token_set(&resp, None),
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
    let resp = client
        .exchange_refresh_token(&RefreshToken::new(refresh_token.to_string()))
        .request_async(http)
        .await
        .map_err(token_error)?;
    Ok(token_set(&resp, Some(refresh_token)))
}

fn token_set(resp: &BasicTokenResponse, old_refresh: Option<&str>) -> TokenSet {
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
fn token_error<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, oauth2::StandardErrorResponse<BasicErrorResponseType>>,
) -> VendorError {
    match e {
        RequestTokenError::ServerResponse(r) => match r.error() {
            BasicErrorResponseType::InvalidGrant => VendorError::RefreshRejected,
            other => VendorError::Permanent(format!("token endpoint answered {}", other.as_ref())),
        },
        RequestTokenError::Request(_) => {
            VendorError::Transient("token endpoint unreachable".into())
        }
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
    fn state_is_long_random_and_hashed_in_storage() {
        let a = new_state();
        let b = new_state();
        assert_ne!(a, b);
        assert!(a.len() >= 43);
        assert!(!state_key(&a).contains(&a));
    }
}
