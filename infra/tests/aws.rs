//! connector-core's AWS-backed parts through the real SDK clients on the
//! emulator: KMS envelope encryption, single-use ephemeral items, and vendor
//! credentials from Secrets Manager.

mod common;

use common::*;
use connector_core::aws::kms::{Binding, CacheLimits, Envelope, KmsKeys};
use connector_core::aws::secrets::Secrets;
use connector_core::domain::connection::{ConsentFlow, PendingConnect};
use connector_core::domain::env::Env;
use connector_core::vendors::credentials::VendorCredentials;
use connector_core::vendors::registry;
use connector_core::Vendor;
use std::collections::HashMap;

fn binding<'a>(user: &'a str, field: &'a str) -> Binding<'a> {
    Binding {
        user_id: user,
        vendor: "mock",
        field,
    }
}

#[tokio::test]
async fn kms_envelope_round_trip_and_context_binding() {
    let stack = stack("kms").await;
    let key = stack.provisioned.refs["TokenKey"].clone();
    let kms = aws_sdk_kms::Client::new(&stack.sdk);
    let envelope = Envelope::new(
        Box::new(KmsKeys::new(kms.clone(), key.clone())),
        "table-a",
        CacheLimits::default(),
    );
    let sealed = envelope
        .seal("fake-access-token-123", binding("alice", "access_token"))
        .await
        .unwrap();
    assert!(!sealed.contains("fake-access-token"));
    let opened = envelope
        .open(&sealed, binding("alice", "access_token"))
        .await
        .unwrap();
    assert_eq!(opened.as_str(), "fake-access-token-123");
    assert!(envelope
        .open(&sealed, binding("bob", "access_token"))
        .await
        .is_err());
    // A fresh process (no cache) opens it through KMS Decrypt...
    let fresh = Envelope::new(
        Box::new(KmsKeys::new(kms.clone(), key.clone())),
        "table-a",
        CacheLimits::default(),
    );
    assert_eq!(
        fresh
            .open(&sealed, binding("alice", "access_token"))
            .await
            .unwrap()
            .as_str(),
        "fake-access-token-123"
    );
    // ...but not when the encryption context names another table: KMS
    // refuses the wrapped key (InvalidCiphertextException), which is stored
    // data that does not open, not an outage to retry.
    let other = Envelope::new(
        Box::new(KmsKeys::new(kms, key)),
        "table-b",
        CacheLimits::default(),
    );
    let err = other
        .open(&sealed, binding("alice", "access_token"))
        .await
        .unwrap_err();
    assert!(matches!(err, connector_core::Error::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("wrapped data key"), "{err}");
}

#[tokio::test]
async fn missing_kms_key_is_a_startup_error() {
    let stack = stack("nokey").await;
    let mut env = stack.env.clone();
    env.remove("CONNECTOR_KMS_KEY_ID");
    let err = connector_core::App::new(Env::with_overrides(env))
        .await
        .err()
        .expect("start-up fails");
    assert!(err.to_string().contains("CONNECTOR_KMS_KEY_ID"), "{err}");
}

#[tokio::test]
async fn ephemeral_items_are_single_use_and_expire_on_read() {
    let stack = stack("ephemeral").await;
    let store = &stack.app.ephemeral;
    let soon = chrono::Utc::now() + chrono::Duration::seconds(60);
    assert!(store.claim("dedup#a", soon, None).await.unwrap());
    assert!(!store.claim("dedup#a", soon, None).await.unwrap());

    let pending = PendingConnect {
        vendor: Vendor::Whoop,
        user_id: "alice".into(),
        redirect_uri: "https://api.example.test/v1/oauth/whoop/callback".into(),
        return_url: "https://app.example.test/connected".into(),
        flow: ConsentFlow::Code {
            sealed_verifier: Some("v1.fake.sealed".into()),
        },
    };
    // Each way a consent comes back is kept as it was started.
    for flow in [
        ConsentFlow::Code {
            sealed_verifier: None,
        },
        ConsentFlow::Hosted,
    ] {
        let other = PendingConnect {
            flow,
            ..pending.clone()
        };
        store
            .put_pending_connect("state-0", &other, soon)
            .await
            .unwrap();
        assert_eq!(
            store.take_pending_connect("state-0").await.unwrap(),
            Some(other)
        );
    }
    store
        .put_pending_connect("state-1", &pending, soon)
        .await
        .unwrap();
    assert_eq!(
        store.take_pending_connect("state-1").await.unwrap(),
        Some(pending.clone())
    );
    assert!(
        store
            .take_pending_connect("state-1")
            .await
            .unwrap()
            .is_none(),
        "second take"
    );

    // Expired items are dead even though TTL deletion has not run.
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    store
        .put_pending_connect("state-2", &pending, past)
        .await
        .unwrap();
    assert!(store
        .take_pending_connect("state-2")
        .await
        .unwrap()
        .is_none());
    assert!(store.claim("state#2", past, None).await.unwrap());
    assert!(store.get("state#2").await.unwrap().is_none());
    assert!(
        store.claim("state#2", soon, None).await.unwrap(),
        "an expired claim can be taken again"
    );
}

#[tokio::test]
async fn credentials_come_from_secrets_manager_with_env_fallback_and_cache() {
    let stack = stack("secrets").await;
    let arn = stack.provisioned.refs["VendorCredentialsSecret"].clone();
    let sm = aws_sdk_secretsmanager::Client::new(&stack.sdk);
    sm.put_secret_value()
        .secret_id(&arn)
        .secret_string(r#"{"CONNECTOR_WHOOP_CLIENT_ID":"fake-whoop-id","CONNECTOR_WHOOP_CLIENT_SECRET":"fake-whoop-secret"}"#)
        .send()
        .await
        .unwrap();
    let env = Env::with_overrides(HashMap::from([
        (
            "CONNECTOR_OURA_CLIENT_ID".to_string(),
            "fake-oura-id".to_string(),
        ),
        (
            "CONNECTOR_OURA_CLIENT_SECRET".to_string(),
            "fake-oura-secret".to_string(),
        ),
        (
            "CONNECTOR_WHOOP_CLIENT_ID".to_string(),
            "env-loses".to_string(),
        ),
    ]));
    let creds = Secrets::new(env, Some((sm.clone().into(), arn.clone())));
    let whoop = VendorCredentials::load(&creds, registry::spec(Vendor::Whoop))
        .await
        .unwrap();
    assert!(whoop.supported());
    assert_eq!(
        whoop.client_id.as_deref(),
        Some("fake-whoop-id"),
        "the secret wins over env"
    );
    assert!(
        VendorCredentials::load(&creds, registry::spec(Vendor::Oura))
            .await
            .unwrap()
            .supported(),
        "env fallback"
    );
    assert!(
        !VendorCredentials::load(&creds, registry::spec(Vendor::Polar))
            .await
            .unwrap()
            .supported()
    );
    // Cached: a change to the secret is not re-read within the TTL.
    sm.put_secret_value()
        .secret_id(&arn)
        .secret_string("{}")
        .send()
        .await
        .unwrap();
    assert!(
        VendorCredentials::load(&creds, registry::spec(Vendor::Whoop))
            .await
            .unwrap()
            .supported()
    );
    let fresh = Secrets::new(Env::default(), Some((sm.into(), arn)));
    assert!(
        !VendorCredentials::load(&fresh, registry::spec(Vendor::Whoop))
            .await
            .unwrap()
            .supported()
    );
}
