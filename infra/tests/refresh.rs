//! Token refresh against the Mock vendor (rotating, single-use refresh
//! tokens) through the real store and KMS on the emulator.

mod common;

use common::*;
use connector_core::domain::connection::ConnectionStatus;
use connector_core::domain::vendor::VendorError;
use connector_core::flows::refresh::refresh_connection;
use connector_core::Vendor;

async fn short_lived_stack(name: &str) -> connector_infra::stack::Stack {
    let mut opts = options(name);
    // Within the worker's 60 s margin: every sync refreshes first.
    opts.extra_env
        .insert("CONNECTOR_MOCK_ACCESS_TTL_SECS".into(), "30".into());
    connector_infra::stack::start(opts).await.unwrap()
}

#[tokio::test]
async fn expiring_token_is_refreshed_and_rotated_before_sync() {
    let stack = short_lived_stack("rotate").await;
    let c = Client::new(&stack);
    c.post("/v1/connections/mock", "alice", "").await;
    let before = connection(&stack, "alice", Vendor::Mock).await.unwrap();
    let old = stack.app.envelope.open_tokens(&before).await.unwrap();
    assert_eq!(drain(&stack).await, (1, 0));
    let after = connection(&stack, "alice", Vendor::Mock).await.unwrap();
    assert_eq!(after.token_version, before.token_version + 1, "one refresh");
    assert!(after.last_sync_at.is_some());
    // The old refresh token was single-use.
    let (driver, ctx) = stack.app.driver(Vendor::Mock).await.unwrap();
    let reuse = driver
        .refresh(
            &ctx,
            &before.vendor_user_id,
            old.refresh_token.unwrap().expose(),
        )
        .await;
    assert!(matches!(reuse, Err(VendorError::RefreshRejected)));
    let (_, reports) = c.get("/v1/reports?days=14", "alice").await;
    assert_eq!(reports["reports"].as_array().unwrap().len(), 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_spend_the_token_once_and_all_succeed() {
    let stack = short_lived_stack("race").await;
    Client::new(&stack)
        .post("/v1/connections/mock", "alice", "")
        .await;
    let conn = connection(&stack, "alice", Vendor::Mock).await.unwrap();
    let app = &stack.app;
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (app, conn) = (app.clone(), conn.clone());
            tokio::spawn(async move { refresh_connection(&app, &conn).await })
        })
        .collect();
    let mut access = std::collections::HashSet::new();
    for r in racers {
        let (c, t) = r
            .await
            .unwrap()
            .expect("every racer ends with usable tokens");
        assert_eq!(c.status, ConnectionStatus::Connected);
        access.insert(t.access_token.expose().to_string());
    }
    assert_eq!(access.len(), 1, "losers use the winner's tokens");
    let after = app
        .connections
        .get("alice", Vendor::Mock)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.token_version,
        conn.token_version + 1,
        "exactly one refresh was stored"
    );
    assert_eq!(after.status, ConnectionStatus::Connected);
    // And the stored token is the one every racer got.
    let stored = app.envelope.open_tokens(&after).await.unwrap();
    assert!(access.contains(stored.access_token.expose()));
}

#[tokio::test]
async fn rejected_refresh_marks_the_connection_and_stops_syncs() {
    let stack = short_lived_stack("rejected").await;
    let c = Client::new(&stack);
    c.post("/v1/connections/mock", "alice", "").await;
    let conn = connection(&stack, "alice", Vendor::Mock).await.unwrap();
    // The user revoked access at the vendor: both tokens are dead there.
    let tokens = stack.app.envelope.open_tokens(&conn).await.unwrap();
    let (driver, ctx) = stack.app.driver(Vendor::Mock).await.unwrap();
    assert!(driver
        .revoke(&ctx, &conn.vendor_user_id, &tokens)
        .await
        .unwrap());

    let err = refresh_connection(&stack.app, &conn).await.unwrap_err();
    assert!(err.to_string().contains("refresh token rejected"), "{err}");
    let after = connection(&stack, "alice", Vendor::Mock).await.unwrap();
    assert_eq!(after.status, ConnectionStatus::RefreshFailed);
    let (_, providers) = c.get("/v1/providers", "alice").await;
    let mock = &providers["providers"][0];
    assert_eq!(mock["status"], "refresh_failed");
    assert_eq!(mock["connected"], false);
    assert!(mock["error"].as_str().unwrap().contains("reconnect"));
    // Queued jobs are dropped (not retried forever); a manual sync says why.
    assert_eq!(drain(&stack).await, (1, 0));
    let (status, _) = c.post("/v1/sync", "alice", r#"{"vendor":"mock"}"#).await;
    assert_eq!(status, 409);
    // Reconnecting heals it.
    c.post("/v1/connections/mock", "alice", "").await;
    let (_, providers) = c.get("/v1/providers", "alice").await;
    assert_eq!(providers["providers"][0]["status"], "connected");
}
