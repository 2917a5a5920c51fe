//! The Mock vendor: works with no vendor keys, yet runs every real path.
//! Connecting mints a random access + refresh token pair (access lives 1 h)
//! that is sealed and stored like any vendor's; the mock's own "vendor side"
//! keeps only SHA-256 hashes of the tokens it issued (in the ephemeral
//! table), so fetches need a valid access token and refresh tokens rotate and
//! work once. Data is plausible and deterministic per (user, day).
//!
//! Webhook contract: `X-Mock-Timestamp` (unix seconds) and `X-Mock-Signature`
//! = lowercase hex HMAC-SHA256(secret, timestamp + "." + raw body); body
//! `{"event_id","user_id":"mock-<sub>","type":"data.updated","date":"YYYY-MM-DD"}`.

use crate::aws::store::EphemeralStore;
use crate::domain::connection::{Secret, TokenSet};
use crate::domain::env::Env;
use crate::domain::error::{Error, Result};
use crate::domain::event::{EventKind, WebhookEvent};
use crate::domain::health::{MetricType, Sample};
use crate::domain::vendor::{Vendor, VendorError};
use crate::vendors::client::VendorCtx;
use crate::vendors::driver::{
    DriverDeps, FetchRequest, Fetched, VendorDriver, WebhookReply, WebhookRequest,
};
use crate::vendors::quota::QuotaWindow;

use crate::vendors::signature::{
    Algorithm, Encoding, SignatureScheme, SignedMessage, TimestampRule, TimestampUnit,
};
use crate::vendors::spec::VendorSpec;
use crate::vendors::token::Grant;
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{NaiveDate, Utc};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Mock (local test vendor): what the connector knows of the vendor.
pub const SPEC: VendorSpec = VendorSpec {
    vendor: Vendor::Mock,
    display_name: "Mock (local test vendor)",
    oauth: None,
    quota: &[QuotaWindow::app(50, 1)],
    signature: Some(MockVendor::scheme()),
};

const DEFAULT_ACCESS_TTL_SECS: i64 = 3600;
const REFRESH_TTL_SECS: i64 = 30 * 86400;
const WEBHOOK_TOLERANCE_SECS: i64 = 300;

/// The Mock driver, with the knobs tests turn: CONNECTOR_MOCK_ACCESS_TTL_SECS
/// (access-token lifetime) and CONNECTOR_MOCK_HIGH_STRESS.
pub fn driver(deps: &DriverDeps<'_>) -> Result<MockVendor> {
    let (access_ttl, high_stress) = knobs(deps.env)?;
    Ok(MockVendor::new(
        deps.ephemeral.clone(),
        access_ttl,
        high_stress,
    ))
}

/// The knobs' values: access-token lifetime and high stress.
pub(crate) fn knobs(env: &Env) -> Result<(i64, bool)> {
    let access_ttl = match env.get("CONNECTOR_MOCK_ACCESS_TTL_SECS") {
        None => DEFAULT_ACCESS_TTL_SECS,
        Some(v) => v
            .parse()
            .map_err(|_| Error::Config("CONNECTOR_MOCK_ACCESS_TTL_SECS must be a number".into()))?,
    };
    let high_stress = env
        .get("CONNECTOR_MOCK_HIGH_STRESS")
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes"));
    Ok((access_ttl, high_stress))
}

/// The Mock driver: deterministic data, tokens checked against its hashes in the Ephemeral table.
pub struct MockVendor {
    store: EphemeralStore,
    access_ttl_secs: i64,
    high_stress: bool,
}

/// The Mock user id of a connector user.
pub fn mock_user_id(user_id: &str) -> String {
    format!("mock-{user_id}")
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn random_token(prefix: &str) -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    format!("{prefix}{}", B64.encode(b))
}

fn transient(e: Error) -> VendorError {
    VendorError::Transient(e.to_string())
}

impl MockVendor {
    /// `access_ttl_secs` is the access-token lifetime (1 h unless a test
    /// shortens it); `high_stress` forces stress 8–10 on every day.
    pub fn new(store: EphemeralStore, access_ttl_secs: i64, high_stress: bool) -> Self {
        Self {
            store,
            access_ttl_secs,
            high_stress,
        }
    }

    /// Issues a fresh token pair for `vendor_user_id`, as the mock vendor.
    pub async fn issue_tokens(&self, vendor_user_id: &str) -> Result<TokenSet> {
        let access = random_token("mock_at_");
        let refresh = random_token("mock_rt_");
        let now = Utc::now();
        let access_exp = now + chrono::Duration::seconds(self.access_ttl_secs);
        self.store
            .record_mock_grant(
                vendor_user_id,
                (&token_hash(&access), access_exp),
                (
                    &token_hash(&refresh),
                    now + chrono::Duration::seconds(REFRESH_TTL_SECS),
                ),
            )
            .await?;
        Ok(TokenSet {
            access_token: Secret::new(access),
            refresh_token: Some(Secret::new(refresh)),
            expires_at: Some(access_exp),
            scopes: vec!["daily".into()],
        })
    }

    async fn check_access(
        &self,
        vendor_user_id: &str,
        access_token: &str,
    ) -> Result<(), VendorError> {
        let holder = self
            .store
            .mock_access_holder(&token_hash(access_token))
            .await
            .map_err(transient)?;
        match holder {
            Some(holder) if holder == vendor_user_id => Ok(()),
            _ => Err(VendorError::Unauthorized),
        }
    }

    /// The deterministic daily values of a Mock user.
    pub fn day(&self, vendor_user_id: &str, date: NaiveDate) -> Vec<Sample> {
        let seed = Sha256::digest(format!("{vendor_user_id}|{date}").as_bytes());
        // Eight independent fractions in [0, 1) from the seed's bytes.
        let f = |i: usize| {
            f64::from(u32::from_be_bytes([
                seed[4 * i],
                seed[4 * i + 1],
                seed[4 * i + 2],
                seed[4 * i + 3],
            ])) / 4_294_967_296.0
        };
        let round1 = |x: f64| (x * 10.0).round() / 10.0;
        let stress = if self.high_stress {
            8.0 + (f(3) * 2.0).round()
        } else {
            1.0 + (f(3) * 5.0).round()
        };
        let src = Vendor::Mock.as_str();
        vec![
            Sample::daily(MetricType::Hrv, date, round1(25.0 + f(0) * 70.0), src),
            Sample::daily(
                MetricType::RestingHr,
                date,
                (48.0 + f(1) * 24.0).round(),
                src,
            ),
            Sample::daily(
                MetricType::SleepScore,
                date,
                (55.0 + f(2) * 40.0).round(),
                src,
            ),
            Sample::daily(MetricType::Stress, date, stress, src),
            Sample::daily(
                MetricType::Steps,
                date,
                (3000.0 + f(4) * 12000.0).round(),
                src,
            ),
            Sample::daily(
                MetricType::Calories,
                date,
                (1800.0 + f(5) * 1400.0).round(),
                src,
            ),
        ]
    }

    /// The Mock webhook signature: hex HMAC-SHA256 of timestamp "." body, fresh within 5 min.
    pub const fn scheme() -> SignatureScheme {
        SignatureScheme {
            algorithm: Algorithm::HmacSha256,
            encoding: Encoding::Hex,
            message: SignedMessage::TimestampDotBody,
            signature_header: "x-mock-signature",
            timestamp: Some(TimestampRule {
                header: "x-mock-timestamp",
                unit: TimestampUnit::Seconds,
                tolerance_secs: WEBHOOK_TOLERANCE_SECS,
            }),
        }
    }
}

#[derive(Deserialize)]
struct MockWebhook {
    event_id: String,
    user_id: String,
    #[serde(rename = "type")]
    kind: String,
    date: NaiveDate,
}

#[async_trait]
impl VendorDriver for MockVendor {
    fn vendor(&self) -> Vendor {
        Vendor::Mock
    }

    /// The mock's "consent" is the request itself: it issues tokens at once.
    async fn connect_at_once(&self, user_id: &str) -> Result<Option<(String, TokenSet)>> {
        let vendor_user_id = mock_user_id(user_id);
        let tokens = self.issue_tokens(&vendor_user_id).await?;
        Ok(Some((vendor_user_id, tokens)))
    }

    /// Mock data appears when asked for; nothing to watch.
    fn quiet_limit(&self) -> Option<chrono::Duration> {
        None
    }

    async fn identify(&self, _ctx: &VendorCtx, _grant: &Grant) -> Result<String, VendorError> {
        Err(VendorError::Permanent(
            "mock connects without OAuth; POST /v1/connections/mock".into(),
        ))
    }

    async fn webhook(&self, ctx: &VendorCtx, req: &WebhookRequest<'_>) -> Result<WebhookReply> {
        if req.method != http::Method::POST {
            return Err(Error::NotFound("mock has no subscription handshake".into()));
        }
        req.authenticate(Vendor::Mock, &Self::scheme(), ctx.creds.webhook_secrets())?;
        Self::parse_webhook(req.body)
    }

    async fn fetch(&self, _ctx: &VendorCtx, req: FetchRequest<'_>) -> Result<Fetched, VendorError> {
        self.check_access(req.vendor_user_id, req.access_token)
            .await?;
        Ok(Fetched {
            samples: req
                .from
                .iter_days()
                .take_while(|d| *d <= req.to)
                .flat_map(|d| self.day(req.vendor_user_id, d))
                .collect(),
            raw: Vec::new(),
        })
    }

    async fn refresh(
        &self,
        _ctx: &VendorCtx,
        vendor_user_id: &str,
        refresh_token: &str,
    ) -> Result<TokenSet, VendorError> {
        // Taking the refresh token's record is atomic: a second use fails.
        let holder = self
            .store
            .take_mock_refresh(&token_hash(refresh_token))
            .await
            .map_err(transient)?;
        match holder {
            Some(holder) if holder == vendor_user_id => {
                self.issue_tokens(vendor_user_id).await.map_err(transient)
            }
            _ => Err(VendorError::RefreshRejected),
        }
    }

    /// Revokes the whole grant: every token the mock ever issued to this
    /// vendor user, expired or not.
    async fn revoke(
        &self,
        _ctx: &VendorCtx,
        vendor_user_id: &str,
        _tokens: &TokenSet,
    ) -> Result<bool, VendorError> {
        self.store
            .delete_owned(vendor_user_id)
            .await
            .map_err(transient)?;
        Ok(true)
    }
}

impl MockVendor {
    /// The events of an authenticated Mock webhook body.
    pub fn parse_webhook(body: &[u8]) -> Result<WebhookReply> {
        let w: MockWebhook = serde_json::from_slice(body)
            .map_err(|e| Error::BadRequest(format!("mock webhook body: {e}")))?;
        if w.kind != "data.updated" {
            return Ok(WebhookReply::not_synced(&w.kind));
        }
        if w.event_id.is_empty() || w.event_id.len() > 128 {
            return Err(Error::BadRequest(
                "mock webhook event_id must be 1..=128 characters".into(),
            ));
        }
        Ok(WebhookReply::Events(vec![WebhookEvent {
            event_id: w.event_id,
            vendor_user_id: w.user_id,
            date: w.date,
            kind: EventKind::DataChanged,
        }]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline_mock(high_stress: bool) -> MockVendor {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build();
        let store = EphemeralStore::new(aws_sdk_dynamodb::Client::from_conf(conf), "unused".into());
        MockVendor::new(store, DEFAULT_ACCESS_TTL_SECS, high_stress)
    }

    fn value(samples: &[Sample], m: MetricType) -> f64 {
        samples.iter().find(|s| s.metric == m).unwrap().value
    }

    #[test]
    fn days_are_deterministic_plausible_and_distinct() {
        let mock = offline_mock(false);
        let d: NaiveDate = "2026-11-23".parse().unwrap();
        assert_eq!(mock.day("mock-alice", d), mock.day("mock-alice", d));
        assert_ne!(mock.day("mock-alice", d), mock.day("mock-bob", d));
        assert_ne!(
            mock.day("mock-alice", d),
            mock.day("mock-alice", d.pred_opt().unwrap())
        );
        for i in 0..200 {
            let day = mock.day(&format!("mock-u{i}"), d);
            assert_eq!(day.len(), 6);
            assert!((25.0..=95.0).contains(&value(&day, MetricType::Hrv)));
            assert!((48.0..=72.0).contains(&value(&day, MetricType::RestingHr)));
            assert!((55.0..=95.0).contains(&value(&day, MetricType::SleepScore)));
            assert!((1.0..=6.0).contains(&value(&day, MetricType::Stress)));
            assert!((3000.0..=15000.0).contains(&value(&day, MetricType::Steps)));
            assert!((1800.0..=3200.0).contains(&value(&day, MetricType::Calories)));
            assert!(day
                .iter()
                .all(|s| s.source == "mock" && s.date == d && s.time.is_none()));
        }
    }

    #[test]
    fn high_stress_flag_forces_stress_8_to_10() {
        let mock = offline_mock(true);
        let d: NaiveDate = "2026-11-23".parse().unwrap();
        for i in 0..100 {
            let s = value(&mock.day(&format!("mock-u{i}"), d), MetricType::Stress);
            assert!((8.0..=10.0).contains(&s), "{s}");
        }
    }

    #[test]
    fn webhook_body_is_parsed_strictly() {
        let Ok(WebhookReply::Events(ev)) = MockVendor::parse_webhook(br#"{"event_id":"e1","user_id":"mock-alice","type":"data.updated","date":"2026-11-23"}"#) else {
            panic!("events expected");
        };
        assert_eq!(ev[0].vendor_user_id, "mock-alice");
        assert_eq!(ev[0].date.to_string(), "2026-11-23");
        // A type it does not sync is acknowledged, not refused.
        assert_eq!(
            MockVendor::parse_webhook(
                br#"{"event_id":"e1","user_id":"mock-alice","type":"other","date":"2026-11-23"}"#
            )
            .unwrap(),
            WebhookReply::not_synced("other")
        );
        for bad in [
            &br#"{"event_id":"e1","user_id":"mock-alice","type":"data.updated","date":"2026-13-23"}"#[..],
            br#"{"event_id":"","user_id":"mock-alice","type":"data.updated","date":"2026-11-23"}"#,
            b"not json",
        ] {
            assert_eq!(MockVendor::parse_webhook(bad).unwrap_err().status(), 400);
        }
    }
}
