//! Users only ever see and touch their own things: every route is scoped by
//! the JWT's `sub`, so another user's connection, data or account is simply
//! not there (404 or empty), never "forbidden" — which would confirm it exists.

mod common;

use common::*;
use connector_core::Vendor;

#[tokio::test]
async fn another_users_connections_and_data_are_not_there() {
    let stack = stack("isolation").await;
    let c = Client::new(&stack);
    let (status, _) = c.post("/v1/connections/mock", "alice", "").await;
    assert_eq!(status, 200);
    assert_eq!(drain(&stack).await, (1, 0));
    let (_, alice) = c.get("/v1/reports?days=14", "alice").await;
    assert!(!alice["reports"].as_array().unwrap().is_empty());

    // Bob sees none of it...
    let (status, bob) = c.get("/v1/reports?days=14", "bob").await;
    assert_eq!(status, 200);
    assert!(
        bob["reports"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["hrv"].is_null()),
        "{bob}"
    );
    let (_, m) = c.get("/v1/metrics?types=hrv,steps", "bob").await;
    for series in m["series"].as_array().unwrap() {
        assert!(series["points"].as_array().unwrap().is_empty(), "{m}");
    }
    let (_, providers) = c.get("/v1/providers", "bob").await;
    assert_eq!(provider_of(&providers, "mock")["connected"], false);
    // ...and can touch none of it: not found, not forbidden.
    let (status, _) = c.post("/v1/sync", "bob", r#"{"vendor":"mock"}"#).await;
    assert_eq!(status, 404);
    let (status, _) = c
        .call("DELETE", "/v1/connections/mock", Some("bob"), None)
        .await;
    assert_eq!(status, 404);
    let (status, receipt) = c.call("DELETE", "/v1/me", Some("bob"), None).await;
    assert_eq!(status, 200);
    assert_eq!(receipt["deleted"]["connections"], 0, "{receipt}");
    assert_eq!(receipt["deleted"]["health_items"], 0, "{receipt}");

    // Alice's connection and data are untouched.
    assert!(connection(&stack, "alice", Vendor::Mock).await.is_some());
    let (_, again) = c.get("/v1/reports?days=14", "alice").await;
    assert_eq!(again, alice);
}
