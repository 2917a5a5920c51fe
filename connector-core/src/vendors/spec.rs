//! What the connector knows of a vendor, in one value per vendor (each
//! vendor folder's `SPEC`): its name for people, its OAuth endpoints and
//! quirks, its documented API limits and how it signs webhooks.

use crate::domain::vendor::Vendor;
use crate::vendors::quota::QuotaWindow;
use crate::vendors::signature::SignatureScheme;

/// One vendor's facts.
#[derive(Clone, Copy, Debug)]
pub struct VendorSpec {
    /// Which vendor.
    pub vendor: Vendor,
    /// The name shown to people.
    pub display_name: &'static str,
    /// OAuth endpoints and quirks; None for a vendor that connects without
    /// OAuth (Mock).
    pub oauth: Option<OAuthSpec>,
    /// The documented API limits (`docs/vendors/<vendor>.md`); vendors raise
    /// them for approved apps and `CONNECTOR_<VENDOR>_QUOTA` replaces them.
    pub quota: &'static [QuotaWindow],
    /// The HMAC scheme its webhooks are signed with; None where it signs
    /// otherwise or not at all (checked by its driver).
    pub signature: Option<SignatureScheme>,
}

/// How the token endpoint takes the app's credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// client_id + client_secret as HTTP Basic.
    Basic,
    /// client_id + client_secret in the form body.
    Body,
}

/// How the token endpoint shapes its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenResponseShape {
    /// RFC 6749 §5.1 JSON.
    Standard,
    /// `{"status": 0, "body": {…RFC 6749 fields…}}` (Withings).
    StatusBody,
}

/// A vendor's OAuth endpoints and quirks. Every URL can be overridden with
/// `CONNECTOR_<VENDOR>_AUTH_URL`, `_TOKEN_URL` and `_API_BASE`, which is how
/// tests point a vendor at a local simulator.
#[derive(Clone, Copy, Debug)]
pub struct OAuthSpec {
    /// The authorize URL the browser is sent to.
    pub auth_url: &'static str,
    /// The token endpoint.
    pub token_url: &'static str,
    /// The API's base URL.
    pub api_base: &'static str,
    /// The scopes asked for.
    pub scopes: &'static [&'static str],
    /// How the token endpoint takes the app's credentials.
    pub client_auth: ClientAuth,
    /// Extra query parameters the authorize URL needs.
    pub extra_auth_params: &'static [(&'static str, &'static str)],
    /// Extra form parameters every token request needs.
    pub extra_token_params: &'static [(&'static str, &'static str)],
    /// How the token endpoint shapes its answer.
    pub token_response: TokenResponseShape,
    /// Whether a PKCE S256 challenge and verifier go with the code. Off
    /// only where the vendor's description names the token request's
    /// fields without them (Withings); a vendor following RFC 6749 ignores
    /// parameters it does not know.
    pub pkce: bool,
}
