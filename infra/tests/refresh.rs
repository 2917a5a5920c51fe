//! Token refresh against the Mock vendor (rotating, single-use refresh
//! tokens) through the real store and KMS on the emulator.

mod common;

use common::*;
use connector_core::domain::connection::ConnectionStatus;
use connector_core::domain::vendor::VendorError;
use connector_core::flows::refresh::refresh_connection;
use connector_core::vendors::driver::VendorDriver;
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
    let old = stack.app.envelope().open_tokens(&before).await.unwrap();
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
    let stored = app.envelope().open_tokens(&after).await.unwrap();
    assert!(access.contains(stored.access_token.expose()));
}

#[tokio::test]
async fn rejected_refresh_marks_the_connection_and_stops_syncs() {
    let stack = short_lived_stack("rejected").await;
    let c = Client::new(&stack);
    c.post("/v1/connections/mock", "alice", "").await;
    let conn = connection(&stack, "alice", Vendor::Mock).await.unwrap();
    // The user revoked access at the vendor: both tokens are dead there.
    let tokens = stack.app.envelope().open_tokens(&conn).await.unwrap();
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

/// WHOOP rotates the refresh token, and AWS goes away for a moment right
/// after (sealing and storing the new pair fail): the refresher keeps trying
/// while it holds the lease, so the new single-use token is not lost and
/// the user need not reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_survives_a_storage_outage_right_after_the_refresh() {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;
    let outage = Arc::new(
        connector_infra::outage::Outage::start(&endpoint())
            .await
            .unwrap(),
    );
    let mut sim = connector_infra::simulator::Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    sim.check_logs_on_drop(captured_logs);
    sim.check_shapes_on_drop();
    let mut opts = options("refresh-outage");
    opts.endpoint = outage.endpoint();
    opts.extra_env.extend(sim.env());
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let whoop = sim.sim(Vendor::Whoop).clone();
    let c = Client::new(&stack);
    c.connect_via_sim("whoop", "alice").await;
    drain(&stack).await;
    let conn = connection(&stack, "alice", Vendor::Whoop).await.unwrap();

    let fired = Arc::new(AtomicBool::new(false));
    let (o, f) = (outage.clone(), fired.clone());
    *whoop.after_refresh.lock().unwrap() = Some(Box::new(move || {
        if f.swap(true, SeqCst) {
            return;
        }
        o.go_down();
        let o = o.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            o.come_back();
        });
    }));
    let refreshed = refresh_connection(&stack.app, &conn).await;
    assert!(
        fired.load(SeqCst),
        "the outage came right after WHOOP rotated"
    );
    let (row, tokens) = refreshed.expect("the refresh outlives the outage");
    assert_eq!(row.token_version, conn.token_version + 1);
    // What is stored is the pair WHOOP issued last: the next refresh works.
    let stored = connection(&stack, "alice", Vendor::Whoop).await.unwrap();
    let opened = stack.app.envelope().open_tokens(&stored).await.unwrap();
    assert_eq!(
        opened
            .refresh_token
            .as_ref()
            .map(|t| t.expose().to_string()),
        tokens
            .refresh_token
            .as_ref()
            .map(|t| t.expose().to_string())
    );
    *whoop.after_refresh.lock().unwrap() = None;
    refresh_connection(&stack.app, &stored)
        .await
        .expect("the stored refresh token is the live one");
    assert_eq!(whoop.stats.refresh_reuse.load(SeqCst), 0);
    let after = connection(&stack, "alice", Vendor::Whoop).await.unwrap();
    assert_eq!(after.status, ConnectionStatus::Connected);
}

/// The last resort: a refreshed pair that could not be stored on its
/// connection is kept sealed, and the connection's next refresh (the tick's
/// or a sync's) puts it in place instead of spending the old token again.
#[tokio::test]
async fn kept_refreshed_tokens_are_put_in_place_by_the_next_refresh() {
    use std::sync::atomic::Ordering::SeqCst;
    let (sim, stack) = sim_stack("refresh-kept").await;
    let whoop = sim.sim(Vendor::Whoop).clone();
    let c = Client::new(&stack);
    c.connect_via_sim("whoop", "alice").await;
    drain(&stack).await;
    let conn = connection(&stack, "alice", Vendor::Whoop).await.unwrap();
    let old = stack.app.envelope().open_tokens(&conn).await.unwrap();

    // WHOOP rotated (the old refresh token is spent), and only the kept copy
    // of the new pair was stored.
    let (driver, ctx) = stack.app.driver(Vendor::Whoop).await.unwrap();
    let fresh = driver
        .refresh(
            &ctx,
            &conn.vendor_user_id,
            old.refresh_token.as_ref().unwrap().expose(),
        )
        .await
        .unwrap();
    let sealed = stack
        .app
        .envelope()
        .seal_tokens("alice", Vendor::Whoop, &fresh)
        .await
        .unwrap();
    stack
        .app
        .ephemeral
        .keep_refreshed_tokens("alice", Vendor::Whoop, &sealed, fresh.expires_at)
        .await
        .unwrap();
    let refreshes = whoop.stats.refresh_requests.load(SeqCst);

    let (row, tokens) = refresh_connection(&stack.app, &conn).await.unwrap();
    assert_eq!(
        whoop.stats.refresh_requests.load(SeqCst),
        refreshes,
        "nothing asked of WHOOP"
    );
    assert_eq!(row.token_version, conn.token_version + 1);
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose(),
        fresh.refresh_token.as_ref().unwrap().expose()
    );
    // And that pair is the live one at WHOOP.
    refresh_connection(&stack.app, &row).await.unwrap();
    assert_eq!(whoop.stats.refresh_reuse.load(SeqCst), 0);
    assert_eq!(
        connection(&stack, "alice", Vendor::Whoop)
            .await
            .unwrap()
            .status,
        ConnectionStatus::Connected
    );
}
