//! Named secrets (vendor credentials; the phone-push secret, in a secret of
//! its own): from a Secrets Manager secret (a JSON object keyed by the
//! env-var names) cached in-process, with the environment as the local
//! fallback for names the secret does not hold.

use crate::aws::client::SdkClient;
use crate::aws::sdk;
use crate::domain::connection::Secret;
use crate::domain::env::Env;
use crate::domain::error::{Error, Result};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long the secret's values are reused before it is read again.
pub const CACHE_TTL: Duration = Duration::from_secs(300);
/// How soon after a read a refused delivery may make the secret be read
/// again (see [`Secrets::expire_for_reread`]): forged deliveries cost at
/// most one read per this long per instance.
pub const REREAD_FLOOR: Duration = Duration::from_secs(10);

type SecretMap = Arc<HashMap<String, Secret>>;

/// Named secrets: the Secrets Manager secret's values, else the environment's.
pub struct Secrets {
    env: Env,
    source: Option<(SdkClient<aws_sdk_secretsmanager::Client>, String)>,
    ttl: Duration,
    cache: Mutex<Option<(Instant, SecretMap)>>,
}

impl Secrets {
    /// Secrets from `source` (client and secret ARN), falling back to `env`; None: `env` only.
    pub fn new(
        env: Env,
        source: Option<(SdkClient<aws_sdk_secretsmanager::Client>, String)>,
    ) -> Self {
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
                Error::Config("the secret is not a JSON object of named values".into())
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

    /// Drops the cached values when they were read at least
    /// [`REREAD_FLOOR`] ago, so that the next lookup reads the secret: a
    /// delivery refused with cached values may be signed with a value
    /// rotated in since. False when there is nothing to read again (no
    /// secret, nothing cached, or read moments ago).
    pub async fn expire_for_reread(&self) -> bool {
        if self.source.is_none() {
            return false;
        }
        let mut cache = self.cache.lock().await;
        match cache.as_ref() {
            Some((at, _)) if at.elapsed() >= REREAD_FLOOR => {
                *cache = None;
                true
            }
            _ => false,
        }
    }

    /// The process environment behind the secret.
    pub fn env(&self) -> &Env {
        &self.env
    }
}
