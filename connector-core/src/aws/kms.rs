//! Envelope encryption for tokens: a KMS data key (GenerateDataKey, with an
//! encryption context naming purpose and table) encrypts each value with
//! AES-256-GCM, and the AAD binds the ciphertext to (user, vendor, field), so a
//! sealed value copied to another row does not open. Plain data keys are
//! cached for a bounded time and use count on both sides and zeroized on drop.

use crate::aws::client::SdkClient;
use crate::aws::sdk;
use crate::domain::connection::{
    Connection, SealedTokens, Secret, TokenSet, ACCESS_TOKEN, REFRESH_TOKEN,
};
use crate::domain::error::{Error, Result};
use crate::domain::vendor::Vendor;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use rand::RngCore;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use zeroize::{Zeroize, Zeroizing};

const SEAL_PREFIX: &str = "v1";

/// A plaintext AES-256 data key; zeroized when dropped.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    /// A data key from its 32 plaintext bytes; any other length is an error.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::Crypto(format!("data key has {} bytes, want 32", bytes.len())))?;
        Ok(Self(Zeroizing::new(arr)))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(self.0.as_ref()).expect("32-byte key")
    }
}

/// The key-management service: hands out data keys and unwraps them.
#[async_trait]
pub trait KeyService: Send + Sync {
    /// A fresh data key: the plaintext and its wrapped (encrypted) form.
    async fn generate_data_key(&self, context: &[(&str, &str)]) -> Result<(DataKey, Vec<u8>)>;
    /// Unwraps a data key; the context must be the one it was made with.
    async fn decrypt_data_key(&self, wrapped: &[u8], context: &[(&str, &str)]) -> Result<DataKey>;
    /// Whether the key answers and may be used (for the health route).
    async fn key_answers(&self) -> Result<()>;
}

/// AWS KMS (or the local emulator's KMS).
pub struct KmsKeys {
    client: SdkClient<aws_sdk_kms::Client>,
    key_id: String,
}

impl KmsKeys {
    /// KMS through `client`, with the key `key_id`.
    pub fn new(client: impl Into<SdkClient<aws_sdk_kms::Client>>, key_id: String) -> Self {
        Self {
            client: client.into(),
            key_id,
        }
    }
}

fn context_map(context: &[(&str, &str)]) -> HashMap<String, String> {
    context
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[async_trait]
impl KeyService for KmsKeys {
    async fn key_answers(&self) -> Result<()> {
        let out = self
            .client
            .describe_key()
            .key_id(&self.key_id)
            .send()
            .await
            .map_err(|e| Error::Crypto(format!("DescribeKey: {}", sdk(e))))?;
        match out.key_metadata() {
            Some(key) if key.enabled() => Ok(()),
            key => Err(Error::Crypto(format!(
                "the key is {:?}",
                key.and_then(|k| k.key_state())
            ))),
        }
    }

    async fn generate_data_key(&self, context: &[(&str, &str)]) -> Result<(DataKey, Vec<u8>)> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .set_encryption_context(Some(context_map(context)))
            .send()
            .await
            .map_err(|e| Error::Crypto(format!("GenerateDataKey: {}", sdk(e))))?;
        let mut plain = out
            .plaintext
            .ok_or_else(|| Error::Crypto("GenerateDataKey returned no plaintext".into()))?
            .into_inner();
        let key = DataKey::from_slice(&plain);
        plain.zeroize();
        let wrapped = out
            .ciphertext_blob
            .ok_or_else(|| Error::Crypto("GenerateDataKey returned no ciphertext".into()))?
            .into_inner();
        Ok((key?, wrapped))
    }

    async fn decrypt_data_key(&self, wrapped: &[u8], context: &[(&str, &str)]) -> Result<DataKey> {
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(wrapped.to_vec()))
            .set_encryption_context(Some(context_map(context)))
            .send()
            .await
            .map_err(|e| {
                // A wrapped key KMS refuses is stored data that does not
                // open (tampered or from another context), not an outage.
                if e.as_service_error()
                    .is_some_and(|s| s.is_invalid_ciphertext_exception())
                {
                    Error::Corrupt("the wrapped data key does not decrypt".into())
                } else {
                    Error::Crypto(format!("Decrypt: {}", sdk(e)))
                }
            })?;
        let mut plain = out
            .plaintext
            .ok_or_else(|| Error::Crypto("Decrypt returned no plaintext".into()))?
            .into_inner();
        let key = DataKey::from_slice(&plain);
        plain.zeroize();
        key
    }
}

/// How long and how often a plain data key may be reused.
#[derive(Clone, Copy, Debug)]
pub struct CacheLimits {
    /// How long a plain data key may be reused.
    pub max_age: Duration,
    /// How many values one plain data key may seal or open.
    pub max_uses: u32,
    /// Most unwrapped keys kept for opening; the oldest goes first.
    pub max_open_entries: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(300),
            max_uses: 1_000,
            max_open_entries: 64,
        }
    }
}

struct CachedKey {
    key: DataKey,
    wrapped: Vec<u8>,
    born: Instant,
    uses: u32,
}

impl CachedKey {
    fn usable(&self, limits: &CacheLimits) -> bool {
        self.born.elapsed() < limits.max_age && self.uses < limits.max_uses
    }
}

/// Seals and opens small secrets (tokens) under KMS envelope encryption.
pub struct Envelope {
    keys: Box<dyn KeyService>,
    context: Vec<(String, String)>,
    limits: CacheLimits,
    seal_key: Mutex<Option<CachedKey>>,
    open_keys: Mutex<HashMap<Vec<u8>, CachedKey>>,
}

/// What a sealed value is bound to.
#[derive(Clone, Copy, Debug)]
pub struct Binding<'a> {
    /// The app user.
    pub user_id: &'a str,
    /// The vendor's wire name.
    pub vendor: &'a str,
    /// Which token: `access_token` or `refresh_token`.
    pub field: &'a str,
}

impl Binding<'_> {
    /// Length-prefixed so that no two bindings produce the same AAD.
    fn aad(&self) -> Vec<u8> {
        let mut out = b"connector-token/v1".to_vec();
        for part in [self.user_id, self.vendor, self.field] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

impl Envelope {
    /// `table` goes into the KMS encryption context: a wrapped key made for
    /// one table does not unwrap for another.
    pub fn new(keys: Box<dyn KeyService>, table: &str, limits: CacheLimits) -> Self {
        Self {
            keys,
            context: vec![
                ("purpose".into(), "connector-token".into()),
                ("table".into(), table.into()),
            ],
            limits,
            seal_key: Mutex::new(None),
            open_keys: Mutex::new(HashMap::new()),
        }
    }

    fn context(&self) -> Vec<(&str, &str)> {
        self.context
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Whether the key service and its key answer (for the health route).
    pub async fn key_answers(&self) -> Result<()> {
        self.keys.key_answers().await
    }

    /// Encrypts `plaintext`; the result is `v1.<wrapped key>.<nonce+ciphertext>`.
    pub async fn seal(&self, plaintext: &str, binding: Binding<'_>) -> Result<String> {
        let cached = self.take_seal_key();
        let mut cached = match cached {
            Some(c) => c,
            None => {
                let (key, wrapped) = self.keys.generate_data_key(&self.context()).await?;
                CachedKey {
                    key,
                    wrapped,
                    born: Instant::now(),
                    uses: 0,
                }
            }
        };
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = cached
            .key
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &binding.aad(),
                },
            )
            .map_err(|_| Error::Crypto("AES-GCM encryption failed".into()))?;
        cached.uses += 1;
        let mut body = nonce.to_vec();
        body.extend_from_slice(&ct);
        let sealed = format!(
            "{SEAL_PREFIX}.{}.{}",
            B64.encode(&cached.wrapped),
            B64.encode(body)
        );
        self.put_seal_key(cached);
        Ok(sealed)
    }

    /// Decrypts a value sealed for exactly this binding.
    pub async fn open(&self, sealed: &str, binding: Binding<'_>) -> Result<Zeroizing<String>> {
        let mut parts = sealed.split('.');
        let (Some(SEAL_PREFIX), Some(wrapped), Some(body), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Corrupt("sealed value is not in v1 format".into()));
        };
        let wrapped = B64
            .decode(wrapped)
            .map_err(|_| Error::Corrupt("sealed value: bad key encoding".into()))?;
        let body = B64
            .decode(body)
            .map_err(|_| Error::Corrupt("sealed value: bad body encoding".into()))?;
        if body.len() < 12 + 16 {
            return Err(Error::Corrupt("sealed value is truncated".into()));
        }
        let cipher = match self.take_open_key(&wrapped) {
            Some(c) => c,
            None => CachedKey {
                key: self
                    .keys
                    .decrypt_data_key(&wrapped, &self.context())
                    .await?,
                wrapped: wrapped.clone(),
                born: Instant::now(),
                uses: 0,
            },
        };
        let (nonce, ct) = body.split_at(12);
        let plain = cipher.key.cipher().decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ct,
                aad: &binding.aad(),
            },
        );
        self.put_open_key(cipher);
        let plain = Zeroizing::new(plain.map_err(|_| {
            Error::Corrupt(format!(
                "sealed {} does not open for this user and vendor",
                binding.field
            ))
        })?);
        String::from_utf8(plain.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| Error::Corrupt("sealed value is not UTF-8".into()))
    }

    /// Seals a token set for the connection row of (`user_id`, `vendor`).
    pub async fn seal_tokens(
        &self,
        user_id: &str,
        vendor: Vendor,
        tokens: &TokenSet,
    ) -> Result<SealedTokens> {
        let bind = |field| Binding {
            user_id,
            vendor: vendor.as_str(),
            field,
        };
        let access = self
            .seal(tokens.access_token.expose(), bind(ACCESS_TOKEN))
            .await?;
        let refresh = match &tokens.refresh_token {
            Some(r) => Some(self.seal(r.expose(), bind(REFRESH_TOKEN)).await?),
            None => None,
        };
        Ok(SealedTokens { access, refresh })
    }

    /// Opens the token set sealed on a connection row.
    pub async fn open_tokens(&self, conn: &Connection) -> Result<TokenSet> {
        let bind = |field| Binding {
            user_id: &conn.user_id,
            vendor: conn.vendor.as_str(),
            field,
        };
        let access = self
            .open(&conn.sealed_access_token, bind(ACCESS_TOKEN))
            .await?;
        let refresh = match &conn.sealed_refresh_token {
            Some(r) => Some(Secret::new(
                self.open(r, bind(REFRESH_TOKEN)).await?.as_str(),
            )),
            None => None,
        };
        Ok(TokenSet {
            access_token: Secret::new(access.as_str()),
            refresh_token: refresh,
            expires_at: conn.expires_at,
            scopes: conn.scopes.clone(),
        })
    }

    fn take_seal_key(&self) -> Option<CachedKey> {
        let mut slot = self.seal_key.lock().expect("seal key lock");
        slot.take().filter(|c| c.usable(&self.limits))
    }

    fn put_seal_key(&self, key: CachedKey) {
        if key.usable(&self.limits) {
            *self.seal_key.lock().expect("seal key lock") = Some(key);
        }
    }

    fn take_open_key(&self, wrapped: &[u8]) -> Option<CachedKey> {
        let mut map = self.open_keys.lock().expect("open key lock");
        map.remove(wrapped).filter(|c| c.usable(&self.limits))
    }

    fn put_open_key(&self, mut key: CachedKey) {
        key.uses += 1;
        if !key.usable(&self.limits) {
            return;
        }
        let mut map = self.open_keys.lock().expect("open key lock");
        map.retain(|_, c| c.usable(&self.limits));
        if map.len() >= self.limits.max_open_entries {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, c)| c.born)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(key.wrapped.clone(), key);
    }
}

#[cfg(test)]
pub(crate) mod test_keys {
    //! An in-memory key service for unit tests only: wraps data keys with a
    //! random master key, the context as AAD, and counts calls.
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[derive(Default)]
    pub struct Calls {
        pub generate: AtomicU32,
        pub decrypt: AtomicU32,
    }

    pub struct LocalKeys {
        master: [u8; 32],
        pub calls: Arc<Calls>,
    }

    impl LocalKeys {
        pub fn new() -> Self {
            let mut master = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut master);
            Self {
                master,
                calls: Arc::default(),
            }
        }

        fn aad(context: &[(&str, &str)]) -> Vec<u8> {
            let mut c: Vec<_> = context.to_vec();
            c.sort();
            format!("{c:?}").into_bytes()
        }
    }

    #[async_trait]
    impl KeyService for LocalKeys {
        async fn generate_data_key(&self, context: &[(&str, &str)]) -> Result<(DataKey, Vec<u8>)> {
            self.calls.generate.fetch_add(1, Ordering::SeqCst);
            let mut plain = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut plain);
            let mut nonce = [0u8; 12];
            rand::thread_rng().fill_bytes(&mut nonce);
            let ct = Aes256Gcm::new_from_slice(&self.master)
                .unwrap()
                .encrypt(
                    Nonce::from_slice(&nonce),
                    Payload {
                        msg: &plain,
                        aad: &Self::aad(context),
                    },
                )
                .unwrap();
            let mut wrapped = nonce.to_vec();
            wrapped.extend_from_slice(&ct);
            Ok((DataKey::from_slice(&plain)?, wrapped))
        }

        async fn decrypt_data_key(
            &self,
            wrapped: &[u8],
            context: &[(&str, &str)],
        ) -> Result<DataKey> {
            self.calls.decrypt.fetch_add(1, Ordering::SeqCst);
            let (nonce, ct) = wrapped.split_at(12);
            let plain = Aes256Gcm::new_from_slice(&self.master)
                .unwrap()
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ct,
                        aad: &Self::aad(context),
                    },
                )
                .map_err(|_| Error::Corrupt("InvalidCiphertextException".into()))?;
            DataKey::from_slice(&plain)
        }

        async fn key_answers(&self) -> Result<()> {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_keys::LocalKeys;
    use super::*;
    use std::sync::atomic::Ordering;

    /// The AES key schedule a seal or open expands from the data key is
    /// wiped when the cipher is dropped (the `aes` crate's `zeroize`).
    #[test]
    fn the_expanded_key_is_wiped_when_the_cipher_goes() {
        fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        wiped_on_drop::<aes_gcm::aes::Aes256>();
    }

    fn b<'a>(user: &'a str, field: &'a str) -> Binding<'a> {
        Binding {
            user_id: user,
            vendor: "mock",
            field,
        }
    }

    #[tokio::test]
    async fn seal_open_round_trip_and_no_plaintext() {
        let env = Envelope::new(Box::new(LocalKeys::new()), "t", CacheLimits::default());
        let sealed = env
            .seal("mock_at_supersecret", b("alice", "access_token"))
            .await
            .unwrap();
        assert!(!sealed.contains("supersecret"));
        assert!(sealed.starts_with("v1."));
        let opened = env.open(&sealed, b("alice", "access_token")).await.unwrap();
        assert_eq!(opened.as_str(), "mock_at_supersecret");
    }

    #[tokio::test]
    async fn sealed_value_is_bound_to_user_vendor_and_field() {
        let env = Envelope::new(Box::new(LocalKeys::new()), "t", CacheLimits::default());
        let sealed = env
            .seal("zq-secret-value", b("alice", "access_token"))
            .await
            .unwrap();
        assert!(env.open(&sealed, b("bob", "access_token")).await.is_err());
        assert!(env
            .open(&sealed, b("alice", "refresh_token"))
            .await
            .is_err());
        let other_vendor = Binding {
            user_id: "alice",
            vendor: "whoop",
            field: "access_token",
        };
        let err = env.open(&sealed, other_vendor).await.unwrap_err();
        assert!(!err.to_string().contains("zq-secret"), "{err}");
    }

    #[tokio::test]
    async fn wrapped_key_is_bound_to_table() {
        let keys = LocalKeys::new();
        let (_, wrapped) = keys
            .generate_data_key(&[("purpose", "connector-token"), ("table", "a")])
            .await
            .unwrap();
        assert!(keys
            .decrypt_data_key(&wrapped, &[("purpose", "connector-token"), ("table", "b")])
            .await
            .is_err());
    }

    #[tokio::test]
    async fn data_key_cache_bounds_kms_calls() {
        let keys = LocalKeys::new();
        let calls = keys.calls.clone();
        let limits = CacheLimits {
            max_age: Duration::from_secs(60),
            max_uses: 10,
            max_open_entries: 4,
        };
        let env = Envelope::new(Box::new(keys), "t", limits);
        let mut sealed = Vec::new();
        for i in 0..25 {
            sealed.push(
                env.seal(&format!("token-{i}"), b("u", "access_token"))
                    .await
                    .unwrap(),
            );
        }
        // 25 seals with at most 10 uses per key: 3 keys.
        assert_eq!(calls.generate.load(Ordering::SeqCst), 3);
        for (i, s) in sealed.iter().enumerate() {
            let o = env.open(s, b("u", "access_token")).await.unwrap();
            assert_eq!(o.as_str(), format!("token-{i}"));
        }
        // 25 opens across 3 wrapped keys: one Decrypt per key (uses stay < 10 each).
        assert_eq!(calls.decrypt.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn expired_cache_entries_are_not_reused() {
        let keys = LocalKeys::new();
        let calls = keys.calls.clone();
        let limits = CacheLimits {
            max_age: Duration::from_millis(0),
            max_uses: 1000,
            max_open_entries: 4,
        };
        let env = Envelope::new(Box::new(keys), "t", limits);
        env.seal("a", b("u", "f")).await.unwrap();
        env.seal("b", b("u", "f")).await.unwrap();
        assert_eq!(calls.generate.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn malformed_sealed_values_are_rejected() {
        let env = Envelope::new(Box::new(LocalKeys::new()), "t", CacheLimits::default());
        for bad in [
            "",
            "plaintext-token",
            "v1.abc",
            "v2.a.b",
            "v1.!!.??",
            "v1.AAAA.AAAA",
        ] {
            assert!(env.open(bad, b("u", "f")).await.is_err(), "{bad}");
        }
    }
}
