//! Events to the app, read back through the change feed
//! (`GET /v1/changes`): each occurrence kept once, in order, across pages,
//! per user; a duplicate webhook storm is one `data.updated`; a deleted
//! user's feed goes with the user.

mod common;

use common::*;
use connector_core::domain::app_event::{AppEvent, EventType};
use connector_core::Vendor;

#[tokio::test]
async fn each_occurrence_is_one_event_in_order_across_pages() {
    let stack = stack("events").await;
    let c = Client::new(&stack);

    // Connect (and its backfill), a storm of one webhook delivered ten
    // times, a disconnect.
    let (status, _) = c.post("/v1/connections/mock", "alice", "").await;
    assert_eq!(status, 200);
    assert_eq!(drain(&stack).await.1, 0);
    for _ in 0..10 {
        let w = signed_webhook(&stack, "evt-storm", "alice", &today());
        let (status, body) = c.deliver(&w).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(act_on_notices(&stack).await.len(), 10);
    assert_eq!(drain(&stack).await, (1, 0), "the storm is one job");
    let (status, body) = c
        .call("DELETE", "/v1/connections/mock", Some("alice"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    // Bob's connect is his own.
    c.post("/v1/connections/mock", "bob", "").await;

    let events = feed(&c, "alice", 2).await;
    assert_eq!(
        types_of(&events),
        [
            "connection.connected",
            "data.updated",
            "backfill.completed",
            "data.updated",
            "connection.disconnected"
        ],
        "{events:#?}"
    );
    let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    let times: Vec<&str> = events
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap())
        .collect();
    let parsed: Vec<chrono::DateTime<chrono::Utc>> =
        times.iter().map(|t| t.parse().unwrap()).collect();
    assert!(parsed.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    for e in &events {
        assert_eq!(e["data"]["user_id"], "alice", "{e}");
        assert_eq!(e["data"]["vendor"], "mock", "{e}");
    }
    let backfill = &events[1]["data"];
    assert!(backfill["samples"].as_u64().unwrap() > 0, "{backfill}");
    assert!(
        !backfill["days"].as_array().unwrap().is_empty(),
        "{backfill}"
    );
    assert!(
        backfill["metric_types"]
            .as_array()
            .unwrap()
            .contains(&"hrv".into()),
        "{backfill}"
    );
    let storm = &events[3]["data"];
    assert!(
        storm["days"].as_array().unwrap().contains(&today().into()),
        "{storm}"
    );
    // No token or value in any event.
    let text = serde_json::to_string(&events).unwrap();
    for secret in ["mock_at_", "mock_rt_", "\"value\""] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }

    // One page holds the same events; Bob sees only his.
    assert_eq!(feed(&c, "alice", 500).await, events);
    let bobs = feed(&c, "bob", 10).await;
    assert_eq!(types_of(&bobs), ["connection.connected"], "{bobs:#?}");
    assert_eq!(bobs[0]["data"]["user_id"], "bob");

    // The same occurrence told again is not kept again; a new one is, after
    // every event before it.
    let again = AppEvent::connection(
        EventType::Revoked,
        "alice",
        Vendor::Mock,
        "grant-1",
        None,
        chrono::Utc::now(),
    );
    for _ in 0..3 {
        connector_core::flows::events::tell(&stack.app, &again)
            .await
            .unwrap();
    }
    let after = feed(&c, "alice", 3).await;
    assert_eq!(after.len(), 6);
    assert_eq!(after[..5], events[..]);
    assert_eq!(after[5]["id"], again.id.as_str());

    // A cursor resumes after its page: nothing is seen twice.
    let (_, first) = c.get("/v1/changes?limit=4", "alice").await;
    let cursor = first["cursor"].as_str().unwrap();
    let (_, rest) = c
        .get(&format!("/v1/changes?cursor={cursor}"), "alice")
        .await;
    assert_eq!(rest["events"].as_array().unwrap()[..], after[4..]);
    let (_, end) = c
        .get(
            &format!("/v1/changes?cursor={}", rest["cursor"].as_str().unwrap()),
            "alice",
        )
        .await;
    assert_eq!(end["events"], serde_json::json!([]));
    assert_eq!(
        end["cursor"], rest["cursor"],
        "an empty page resumes in place"
    );

    // Bad input is refused, naming what.
    for bad in [
        "/v1/changes?cursor=not-a-cursor",
        "/v1/changes?cursor=aWQjZXZ0XzAw",
        "/v1/changes?limit=0",
        "/v1/changes?limit=501",
    ] {
        let (status, body) = c.get(bad, "alice").await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // Deleting Alice deletes her feed.
    let (status, body) = c.call("DELETE", "/v1/me", Some("alice"), None).await;
    assert!(status == 200 || status == 202, "{body}");
    drain(&stack).await;
    assert_eq!(feed(&c, "alice", 10).await, Vec::<serde_json::Value>::new());
}

#[tokio::test]
async fn a_backfill_is_queued_runs_and_completes_once_and_a_failed_one_says_why() {
    let stack = stack("backfill-status").await;
    let c = Client::new(&stack);
    let asked = stack.app.config.backfill_days;

    let (status, _) = c.post("/v1/connections/mock", "alice", "").await;
    assert_eq!(status, 200);
    let (status, listed) = c.get("/v1/connections", "alice").await;
    assert_eq!(status, 200, "{listed}");
    let conns = listed["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{listed}");
    assert_eq!(conns[0]["vendor"], "mock");
    assert_eq!(
        conns[0]["backfill"],
        serde_json::json!({"state": "queued", "days_asked": asked, "days_done": 0})
    );

    assert_eq!(drain(&stack).await.1, 0);
    let (_, listed) = c.get("/v1/connections", "alice").await;
    assert_eq!(
        listed["connections"][0]["backfill"],
        serde_json::json!({"state": "done", "days_asked": asked, "days_done": asked}),
        "{listed}"
    );
    let (_, providers) = c.get("/v1/providers", "alice").await;
    let mock = providers["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "mock")
        .unwrap()
        .clone();
    assert_eq!(mock["backfill"], listed["connections"][0]["backfill"]);

    // The backfill job delivered again (a duplicate, a retry) ends nothing
    // again: one backfill.completed, after the data it wrote.
    let today = chrono::Utc::now().date_naive();
    let (from, to) = connector_core::domain::job::last_days(asked);
    let again = connector_core::domain::job::SyncJob::new(
        "alice",
        Vendor::Mock,
        from,
        to,
        connector_core::domain::job::JobReason::Backfill,
    )
    .unwrap();
    stack.app.queue.send(&again).await.unwrap();
    assert_eq!(drain(&stack).await, (1, 0));
    let events = feed(&c, "alice", 100).await;
    let types = types_of(&events);
    assert_eq!(
        types.iter().filter(|t| *t == "backfill.completed").count(),
        1,
        "{types:?}"
    );
    let done = types
        .iter()
        .position(|t| t == "backfill.completed")
        .unwrap();
    assert_eq!(types[..done], ["connection.connected", "data.updated"]);
    assert_eq!(
        events[done]["data"],
        serde_json::json!({"user_id": "alice", "vendor": "mock",
            "days_asked": asked, "days_done": asked})
    );

    // Bob's backfill fails for good (its job used its last receive): the
    // connection says why, the app is told once, and a late part does not
    // bring it back.
    c.post("/v1/connections/mock", "bob", "").await;
    let bobs = connector_core::domain::job::SyncJob::new(
        "bob",
        Vendor::Mock,
        today,
        today,
        connector_core::domain::job::JobReason::Backfill,
    )
    .unwrap();
    let err = connector_core::Error::Storage("UpdateItem: throttled".into());
    for _ in 0..2 {
        connector_core::flows::sync::gave_up(&stack.app, &bobs, &err, 5)
            .await
            .unwrap();
    }
    assert_eq!(drain(&stack).await.1, 0);
    let (_, listed) = c.get("/v1/connections", "bob").await;
    let backfill = &listed["connections"][0]["backfill"];
    assert_eq!(backfill["state"], "failed", "{listed}");
    assert!(
        backfill["reason"]
            .as_str()
            .unwrap()
            .starts_with("gave up after 5 tries"),
        "{backfill}"
    );
    let events = feed(&c, "bob", 100).await;
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "backfill.failed")
        .collect();
    assert_eq!(failed.len(), 1, "{events:#?}");
    assert_eq!(failed[0]["data"]["reason"], backfill["reason"]);
    assert!(
        !types_of(&events).contains(&"backfill.completed".to_string()),
        "{events:#?}"
    );
}
