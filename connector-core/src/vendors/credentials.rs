//! What the connector knows of a vendor's app registration: its ids and
//! secrets (from the secret or the environment) and its OAuth endpoints and
//! quirks (its SPEC's, overridable by the environment).

use crate::aws::secrets::Secrets;
use crate::domain::connection::Secret;
use crate::domain::error::Result;
use crate::domain::vendor::Vendor;
use crate::vendors::signature::Accepted;
use crate::vendors::spec::{ClientAuth, TokenResponseShape, VendorSpec};

/// What the connector knows of one vendor's app registration.
#[derive(Clone, Debug)]
pub struct VendorCredentials {
    /// Which vendor.
    pub vendor: Vendor,
    /// The app's OAuth client id.
    pub client_id: Option<String>,
    /// The app's OAuth client secret.
    pub client_secret: Option<Secret>,
    /// The key the vendor's webhooks are signed with.
    pub webhook_secret: Option<Secret>,
    /// Shared token the vendor echoes on handshakes or callbacks (Strava, Oura, Withings).
    pub verify_token: Option<Secret>,
    /// The id of the app's webhook subscription at the vendor, where an
    /// unsigned vendor sends it with every event (Strava `subscription_id`).
    pub subscription_id: Option<String>,
    /// This connector's public webhook URL for the vendor, where a vendor
    /// needs it to subscribe a user (Withings notify):
    /// `CONNECTOR_<VENDOR>_WEBHOOK_URL`, else `CONNECTOR_PUBLIC_BASE_URL` +
    /// `/v1/webhooks/<vendor>`.
    pub webhook_url: Option<String>,
    /// The authorize URL.
    pub auth_url: Option<String>,
    /// The token URL.
    pub token_url: Option<String>,
    /// The API's base URL.
    pub api_base: Option<String>,
    /// How the token endpoint takes the app's credentials.
    pub client_auth: ClientAuth,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// Extra query parameters the authorize URL needs.
    pub extra_auth_params: Vec<(String, String)>,
    /// Extra form parameters every token request needs.
    pub extra_token_params: Vec<(String, String)>,
    /// How the token endpoint shapes its answer.
    pub token_response: TokenResponseShape,
    /// Whether PKCE goes with the code ([`crate::vendors::spec::OAuthSpec::pkce`]).
    pub pkce: bool,
    /// The values being rotated out (`<NAME>_PREVIOUS`), still accepted on
    /// deliveries until they are removed.
    pub previous: PreviousSecrets,
}

/// The previous values of the secrets that authenticate deliveries, set
/// while they are rotated.
#[derive(Clone, Debug, Default)]
pub struct PreviousSecrets {
    /// `CLIENT_SECRET_PREVIOUS` (WHOOP and Oura sign with the client secret).
    pub client_secret: Option<Secret>,
    /// `WEBHOOK_SECRET_PREVIOUS`.
    pub webhook_secret: Option<Secret>,
    /// `VERIFY_TOKEN_PREVIOUS`.
    pub verify_token: Option<Secret>,
}

impl VendorCredentials {
    /// Mock always; a real vendor once its client id and secret are set.
    pub fn supported(&self) -> bool {
        self.vendor == Vendor::Mock || (self.client_id.is_some() && self.client_secret.is_some())
    }

    /// A vendor's registration: its secrets from `secrets`, its endpoints
    /// from the environment or its SPEC.
    pub async fn load(secrets: &Secrets, spec: &VendorSpec) -> Result<Self> {
        let vendor = spec.vendor;
        let env = secrets.env();
        let p = format!("CONNECTOR_{}", vendor.env_name());
        let get = |suffix: &str| format!("{p}_{suffix}");
        let defaults = spec.oauth;
        let url = |suffix: &str, default: Option<&str>| {
            env.get(&format!("{p}_{suffix}"))
                .or_else(|| default.map(String::from))
        };
        Ok(Self {
            vendor,
            client_id: secrets
                .value(&get("CLIENT_ID"))
                .await?
                .map(|s| s.expose().to_string()),
            client_secret: secrets.value(&get("CLIENT_SECRET")).await?,
            webhook_secret: secrets.value(&get("WEBHOOK_SECRET")).await?,
            verify_token: secrets.value(&get("VERIFY_TOKEN")).await?,
            subscription_id: secrets
                .value(&get("SUBSCRIPTION_ID"))
                .await?
                .map(|s| s.expose().to_string()),
            webhook_url: env.get(&get("WEBHOOK_URL")).or_else(|| {
                env.get("CONNECTOR_PUBLIC_BASE_URL").map(|b| {
                    format!(
                        "{}/v1/webhooks/{}",
                        b.trim_end_matches('/'),
                        vendor.as_str()
                    )
                })
            }),
            auth_url: url("AUTH_URL", defaults.map(|d| d.auth_url)),
            token_url: url("TOKEN_URL", defaults.map(|d| d.token_url)),
            api_base: url("API_BASE", defaults.map(|d| d.api_base)),
            client_auth: defaults.map_or(ClientAuth::Body, |d| d.client_auth),
            scopes: defaults
                .map(|d| d.scopes.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
            extra_auth_params: defaults
                .map(|d| {
                    d.extra_auth_params
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            extra_token_params: defaults
                .map(|d| {
                    d.extra_token_params
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            token_response: defaults.map_or(TokenResponseShape::Standard, |d| d.token_response),
            pkce: defaults.is_none_or(|d| d.pkce),
            previous: PreviousSecrets {
                client_secret: secrets.value(&get("CLIENT_SECRET_PREVIOUS")).await?,
                webhook_secret: secrets.value(&get("WEBHOOK_SECRET_PREVIOUS")).await?,
                verify_token: secrets.value(&get("VERIFY_TOKEN_PREVIOUS")).await?,
            },
        })
    }

    /// The client secret's values a delivery signed with it may use
    /// (token calls use the current one only).
    pub fn client_secrets(&self) -> Accepted<'_> {
        Accepted {
            current: self.client_secret.as_ref(),
            previous: self.previous.client_secret.as_ref(),
        }
    }

    /// The webhook secret's accepted values.
    pub fn webhook_secrets(&self) -> Accepted<'_> {
        Accepted {
            current: self.webhook_secret.as_ref(),
            previous: self.previous.webhook_secret.as_ref(),
        }
    }

    /// The verify token's accepted values (subscriptions made from now on
    /// use the current one).
    pub fn verify_tokens(&self) -> Accepted<'_> {
        Accepted {
            current: self.verify_token.as_ref(),
            previous: self.previous.verify_token.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::env::Env;
    use std::collections::HashMap;

    #[tokio::test]
    async fn env_fallback_decides_support() {
        let env = Env::with_overrides(HashMap::from([
            (
                "CONNECTOR_WHOOP_CLIENT_ID".to_string(),
                "fake-id".to_string(),
            ),
            (
                "CONNECTOR_WHOOP_CLIENT_SECRET".to_string(),
                "fake-secret".to_string(),
            ),
            (
                "CONNECTOR_OURA_CLIENT_ID".to_string(),
                "only-id".to_string(),
            ),
            (
                "CONNECTOR_WHOOP_TOKEN_URL".to_string(),
                "http://127.0.0.1:9/token".to_string(),
            ),
        ]));
        let c = Secrets::new(env, None);
        assert!(
            VendorCredentials::load(&c, crate::vendors::registry::spec(Vendor::Mock))
                .await
                .unwrap()
                .supported()
        );
        let whoop = VendorCredentials::load(&c, crate::vendors::registry::spec(Vendor::Whoop))
            .await
            .unwrap();
        assert!(whoop.supported());
        assert_eq!(whoop.token_url.as_deref(), Some("http://127.0.0.1:9/token"));
        assert_eq!(
            whoop.auth_url.as_deref(),
            Some("https://api.prod.whoop.com/oauth/oauth2/auth")
        );
        assert!(
            !VendorCredentials::load(&c, crate::vendors::registry::spec(Vendor::Oura))
                .await
                .unwrap()
                .supported()
        );
        assert!(
            !VendorCredentials::load(&c, crate::vendors::registry::spec(Vendor::Garmin))
                .await
                .unwrap()
                .supported()
        );
    }
}
