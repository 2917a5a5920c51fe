//! Vendor credentials: from one Secrets Manager secret (a JSON object keyed
//! by the env-var names) cached in-process, with the environment as the
//! local fallback for names the secret does not hold.

use crate::aws::sdk;
use crate::domain::connection::Secret;
use crate::domain::env::Env;
use crate::domain::error::{Error, Result};
use crate::domain::vendor::Vendor;
use crate::vendors::catalog::{oauth_defaults, ClientAuth, TokenResponseShape};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

pub const CACHE_TTL: Duration = Duration::from_secs(300);

type SecretMap = Arc<HashMap<String, Secret>>;

pub struct Credentials {
    env: Env,
    source: Option<(aws_sdk_secretsmanager::Client, String)>,
    ttl: Duration,
    cache: Mutex<Option<(Instant, SecretMap)>>,
}

/// What the connector knows of one vendor's app registration.
#[derive(Clone, Debug)]
pub struct VendorCredentials {
    pub vendor: Vendor,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub webhook_secret: Option<Secret>,
    pub verify_token: Option<Secret>,
    /// The id of the app's webhook subscription at the vendor, where an
    /// unsigned vendor sends it with every event (Strava `subscription_id`).
    pub subscription_id: Option<String>,
    /// This connector's public webhook URL for the vendor, where a vendor
    /// needs it to subscribe a user (Withings notify):
    /// `CONNECTOR_<VENDOR>_WEBHOOK_URL`, else `CONNECTOR_PUBLIC_BASE_URL` +
    /// `/v1/webhooks/<vendor>`.
    pub webhook_url: Option<String>,
    pub auth_url: Option<String>,
    pub token_url: Option<String>,
    pub api_base: Option<String>,
    pub client_auth: ClientAuth,
    pub scopes: Vec<String>,
    pub extra_auth_params: Vec<(String, String)>,
    pub extra_token_params: Vec<(String, String)>,
    pub token_response: TokenResponseShape,
}

impl VendorCredentials {
    /// Mock always; a real vendor once its client id and secret are set.
    pub fn supported(&self) -> bool {
        self.vendor == Vendor::Mock || (self.client_id.is_some() && self.client_secret.is_some())
    }
}

impl Credentials {
    pub fn new(env: Env, source: Option<(aws_sdk_secretsmanager::Client, String)>) -> Self {
        Self {
            env,
            source,
            ttl: CACHE_TTL,
            cache: Mutex::new(None),
        }
    }

    async fn secret_map(&self) -> Result<SecretMap> {
        let Some((client, arn)) = &self.source else {
            return Ok(SecretMap::default());
        };
        let mut cache = self.cache.lock().await;
        if let Some((at, map)) = cache.as_ref() {
            if at.elapsed() < self.ttl {
                return Ok(map.clone());
            }
        }
        let out = client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| Error::storage("GetSecretValue", sdk(e)))?;
        let raw = out.secret_string.unwrap_or_default();
        let parsed: HashMap<String, serde_json::Value> = if raw.trim().is_empty() {
            HashMap::new()
        } else {
            serde_json::from_str(&raw).map_err(|_| {
                Error::Config("vendor credentials secret is not a JSON object".into())
            })?
        };
        let map: SecretMap = Arc::new(
            parsed
                .into_iter()
                .filter_map(|(k, v)| match v {
                    serde_json::Value::String(s) if !s.trim().is_empty() => {
                        Some((k, Secret::new(s)))
                    }
                    _ => None,
                })
                .collect(),
        );
        *cache = Some((Instant::now(), map.clone()));
        Ok(map)
    }

    /// A named value: the secret's first, then the environment's.
    pub async fn value(&self, name: &str) -> Result<Option<Secret>> {
        let map = self.secret_map().await?;
        Ok(map
            .get(name)
            .cloned()
            .or_else(|| self.env.get(name).map(Secret::new)))
    }

    pub async fn vendor(&self, vendor: Vendor) -> Result<VendorCredentials> {
        let p = format!("CONNECTOR_{}", vendor.env_name());
        let get = |suffix: &str| format!("{p}_{suffix}");
        let defaults = oauth_defaults(vendor);
        let url = |suffix: &str, default: Option<&str>| {
            self.env
                .get(&format!("{p}_{suffix}"))
                .or_else(|| default.map(String::from))
        };
        Ok(VendorCredentials {
            vendor,
            client_id: self
                .value(&get("CLIENT_ID"))
                .await?
                .map(|s| s.expose().to_string()),
            client_secret: self.value(&get("CLIENT_SECRET")).await?,
            webhook_secret: self.value(&get("WEBHOOK_SECRET")).await?,
            verify_token: self.value(&get("VERIFY_TOKEN")).await?,
            subscription_id: self
                .value(&get("SUBSCRIPTION_ID"))
                .await?
                .map(|s| s.expose().to_string()),
            webhook_url: self.env.get(&get("WEBHOOK_URL")).or_else(|| {
                self.env.get("CONNECTOR_PUBLIC_BASE_URL").map(|b| {
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let c = Credentials::new(env, None);
        assert!(c.vendor(Vendor::Mock).await.unwrap().supported());
        let whoop = c.vendor(Vendor::Whoop).await.unwrap();
        assert!(whoop.supported());
        assert_eq!(whoop.token_url.as_deref(), Some("http://127.0.0.1:9/token"));
        assert_eq!(
            whoop.auth_url.as_deref(),
            Some("https://api.prod.whoop.com/oauth/oauth2/auth")
        );
        assert!(!c.vendor(Vendor::Oura).await.unwrap().supported());
        assert!(!c.vendor(Vendor::Garmin).await.unwrap().supported());
    }
}
