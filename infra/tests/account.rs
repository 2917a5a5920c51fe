//! DELETE /v1/me: revoke everywhere, delete everything, idempotent.

mod common;

use common::*;

async fn items_naming(stack: &connector_infra::stack::Stack, needle: &str) -> Vec<String> {
    all_items(stack)
        .await
        .into_iter()
        .filter(|(_, text)| text.contains(needle))
        .map(|(table, text)| format!("{table}: {text}"))
        .collect()
}

#[tokio::test]
async fn delete_me_removes_every_trace_and_is_idempotent() {
    let mut opts = options("delete-me");
    opts.extra_env
        .insert("CONNECTOR_WHOOP_CLIENT_ID".into(), "fake-whoop-id".into());
    opts.extra_env.insert(
        "CONNECTOR_WHOOP_CLIENT_SECRET".into(),
        "fake-whoop-secret".into(),
    );
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let c = Client::new(&stack);
    let user = "user-to-delete-7f3a";
    for u in [user, "bystander"] {
        c.post("/v1/connections/mock", u, "").await;
        let d = today();
        let body = format!(
            r#"{{"date":"{d}","steps":1234,"generated_at":"{}"}}"#,
            chrono::Utc::now().to_rfc3339()
        );
        assert_eq!(c.push(&stack, u, &body).await.0, 201);
        // An OAuth flow left unfinished (state item).
        let (status, _) = c.post("/v1/connections/whoop", u, "").await;
        assert_eq!(status, 200);
    }
    drain(&stack).await;
    // A webhook (dedup key) and a refresh (rotated mock tokens).
    let w = signed_webhook(&stack, "evt-del-1", user, &days_ago(40));
    let (status, _) = c
        .webhook(&w.body, Some(&w.timestamp), Some(&w.signature))
        .await;
    assert_eq!(status, 200);
    drain(&stack).await;
    let conn = stack
        .app
        .connections
        .get(user, connector_core::Vendor::Mock)
        .await
        .unwrap()
        .unwrap();
    connector_core::flows::refresh::refresh_connection(&stack.app, &conn)
        .await
        .unwrap();
    assert!(items_naming(&stack, user).await.len() > 20);

    let (status, receipt) = c.call("DELETE", "/v1/me", Some(user), None).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["user_id"], user);
    assert_eq!(
        receipt["connections"],
        serde_json::json!([{"vendor": "mock", "revoked_at_vendor": true}])
    );
    assert_eq!(receipt["deleted"]["connections"], 1);
    assert!(
        receipt["deleted"]["health_items"].as_u64().unwrap() > 14 * 7,
        "{receipt}"
    );
    assert!(
        receipt["deleted"]["ephemeral_items"].as_u64().unwrap() >= 4,
        "{receipt}"
    );
    let left = items_naming(&stack, user).await;
    assert!(left.is_empty(), "items still name the user: {left:#?}");

    // Again: nothing to delete, still a success.
    let (status, receipt) = c.call("DELETE", "/v1/me", Some(user), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        receipt["deleted"],
        serde_json::json!({"connections": 0, "health_items": 0, "ephemeral_items": 0})
    );
    let (_, reports) = c.get("/v1/reports?days=14", user).await;
    assert_eq!(reports["reports"].as_array().unwrap().len(), 0);

    // The bystander keeps everything.
    let (_, reports) = c.get("/v1/reports?days=14", "bystander").await;
    assert_eq!(reports["reports"].as_array().unwrap().len(), 14);
    let (_, providers) = c.get("/v1/providers", "bystander").await;
    assert_eq!(providers["providers"][0]["connected"], true);
    // Without a JWT there is nothing to delete.
    let (status, _) = c.call("DELETE", "/v1/me", None, None).await;
    assert_eq!(status, 401);
}
