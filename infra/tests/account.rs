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
    let (status, _) = c.deliver(&w).await;
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

/// Connects `user` to `vendor` through the simulator and runs the backfill.
async fn connect_through_sim(
    c: &Client,
    stack: &connector_infra::stack::Stack,
    vendor: &str,
    user: &str,
) {
    let back = c.connect_via_sim(vendor, user).await;
    assert_eq!(back["status"], "connected", "{vendor}: {back:?}");
    drain(stack).await;
}

const SIMULATED: [connector_core::Vendor; 9] = {
    use connector_core::Vendor::*;
    [
        Whoop, Oura, Polar, Fitbit, Garmin, Strava, Withings, Terra, Dexcom,
    ]
};

#[tokio::test]
async fn a_user_who_removed_the_app_at_each_vendor_can_still_leave() {
    let (sim, stack) = sim_stack("leave-after-vendor-revoke").await;
    let c = Client::new(&stack);
    for vendor in SIMULATED {
        let user = format!("gone-at-{vendor}-a81c");
        connect_through_sim(&c, &stack, vendor.as_str(), &user).await;
        let conn = connection(&stack, &user, vendor).await.unwrap();
        sim.sim(vendor).user_removes_app(&conn.vendor_user_id);

        let (status, receipt) = c.call("DELETE", "/v1/me", Some(&user), None).await;
        assert_eq!(status, 200, "{vendor}: {receipt}");
        let entry = &receipt["connections"][0];
        assert_eq!(entry["vendor"], vendor.as_str(), "{receipt}");
        let note = entry["note"].as_str().unwrap_or_default();
        match vendor {
            // Dexcom offers apps no revoke at all.
            connector_core::Vendor::Dexcom => assert!(note.contains("no revoke"), "{receipt}"),
            // Withings answers a revoke of a user it no longer knows with success.
            connector_core::Vendor::Withings => {
                assert_eq!(entry["revoked_at_vendor"], true, "{receipt}")
            }
            _ => {
                assert_eq!(entry["revoked_at_vendor"], false, "{vendor}: {receipt}");
                assert!(note.contains("already gone"), "{vendor}: {receipt}");
            }
        }
        assert_eq!(receipt["deleted"]["connections"], 1, "{receipt}");
        let left = items_naming(&stack, &user).await;
        assert!(
            left.is_empty(),
            "{vendor}: items still name the user: {left:#?}"
        );
    }

    // Disconnecting one vendor whose grant is gone there answers the same way.
    let user = "gone-at-whoop-disconnect-5e0d";
    connect_through_sim(&c, &stack, "whoop", user).await;
    let conn = connection(&stack, user, connector_core::Vendor::Whoop)
        .await
        .unwrap();
    sim.sim(connector_core::Vendor::Whoop)
        .user_removes_app(&conn.vendor_user_id);
    let (status, body) = c
        .call("DELETE", "/v1/connections/whoop", Some(user), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked_at_vendor"], false, "{body}");
    assert!(body["note"].as_str().unwrap().contains("already"), "{body}");
    assert!(connection(&stack, user, connector_core::Vendor::Whoop)
        .await
        .is_none());
}

#[tokio::test]
async fn a_vendor_outage_keeps_only_its_own_connection_for_the_retry() {
    use connector_core::Vendor;
    use std::sync::atomic::Ordering::SeqCst;
    let (sim, stack) = sim_stack("leave-during-outage").await;
    let c = Client::new(&stack);
    let user = "leaves-during-outage-3b7e";
    for vendor in ["whoop", "oura", "strava"] {
        connect_through_sim(&c, &stack, vendor, user).await;
    }
    let oura = sim.sim(Vendor::Oura).clone();
    // Every try at Oura's revoke (GET, then its POST fallback) answers 503.
    oura.faults.fail_next(u32::MAX);

    let (status, body) = c.call("DELETE", "/v1/me", Some(user), None).await;
    assert_eq!(status, 502, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("oura"), "{body}");
    assert!(connection(&stack, user, Vendor::Oura).await.is_some());
    assert!(connection(&stack, user, Vendor::Whoop).await.is_none());
    assert!(connection(&stack, user, Vendor::Strava).await.is_none());
    let conn = connection(&stack, user, Vendor::Oura).await.unwrap();
    assert!(oura.oauth.lock().unwrap().live_tokens(&conn.vendor_user_id) > 0);

    // Disconnecting it alone during the outage keeps it too.
    let (status, body) = c
        .call("DELETE", "/v1/connections/oura", Some(user), None)
        .await;
    assert_eq!(status, 502, "{body}");
    assert!(connection(&stack, user, Vendor::Oura).await.is_some());

    oura.faults.fail_next(0);
    let revocations = oura.stats.revocations.load(SeqCst);
    let (status, receipt) = c.call("DELETE", "/v1/me", Some(user), None).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(
        receipt["connections"],
        serde_json::json!([{"vendor": "oura", "revoked_at_vendor": true}])
    );
    assert_eq!(oura.stats.revocations.load(SeqCst), revocations + 1);
    assert_eq!(
        oura.oauth.lock().unwrap().live_tokens(&conn.vendor_user_id),
        0
    );
    let left = items_naming(&stack, user).await;
    assert!(left.is_empty(), "items still name the user: {left:#?}");
}

/// `n` heart-rate samples 15 s apart, ending now, from the Mock vendor.
fn heart_rate(n: usize) -> Vec<connector_core::domain::health::Sample> {
    let now = chrono::Utc::now();
    (0..n)
        .map(|i| {
            let time = now - chrono::Duration::seconds(15 * i as i64);
            connector_core::domain::health::Sample {
                metric: connector_core::domain::health::MetricType::HeartRate,
                date: time.date_naive(),
                time: Some(time),
                value: 60.0 + (i % 40) as f64,
                source: "mock".into(),
                label: None,
            }
        })
        .collect()
}

async fn erasure_of(c: &Client, user: &str) -> serde_json::Value {
    let (status, body) = c.get("/v1/me/erasure", user).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn a_heavy_user_is_erased_page_by_page_and_the_worker_resumes_where_it_stopped() {
    // One page in the request, one page per worker step, the final sweep at once.
    let mut opts = options("erase-heavy");
    for (k, v) in [
        ("CONNECTOR_ERASURE_INLINE_MS", "0"),
        ("CONNECTOR_ERASURE_PASS_MS", "0"),
        ("CONNECTOR_ERASURE_SWEEP_DELAY_SECS", "0"),
    ] {
        opts.extra_env.insert(k.into(), v.into());
    }
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let c = Client::new(&stack);
    let user = "heavy-user-3c9e";
    c.post("/v1/connections/mock", user, "").await;
    drain(&stack).await;
    stack
        .app
        .health
        .put_samples(user, &heart_rate(2_600))
        .await
        .unwrap();
    stack
        .app
        .health
        .put_samples("bystander-3c9e", &heart_rate(10))
        .await
        .unwrap();
    let before = items_naming(&stack, user).await.len();
    assert!(before > 2_600, "{before}");

    let (status, receipt) = c.call("DELETE", "/v1/me", Some(user), None).await;
    assert_eq!(status, 202, "{receipt}");
    assert_eq!(receipt["erasure"], "in_progress", "{receipt}");
    assert_eq!(receipt["deleted"]["connections"], 1, "{receipt}");
    assert_eq!(
        receipt["deleted"]["health_items"], 1000,
        "one page: {receipt}"
    );
    let polled = erasure_of(&c, user).await;
    assert_eq!(polled["status"], "in_progress", "{polled}");
    assert_eq!(polled["health_items"], 1000, "{polled}");
    // Nothing new is stored while the erasure runs.
    let (status, body) = c.post("/v1/connections/mock", user, "").await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("erasure_in_progress"), "{body}");

    // The worker goes on a page a step until nothing is left...
    for _ in 0..10 {
        if erasure_of(&c, user).await["status"] == "deleted" {
            break;
        }
        stack
            .pump
            .once(stack.function("sync-worker"), 0)
            .await
            .unwrap();
    }
    let polled = erasure_of(&c, user).await;
    assert_eq!(polled["status"], "deleted", "{polled}");
    let steps = captured_logs()
        .lines()
        .filter(|l| l.contains("erasure step done") && l.contains(user))
        .count();
    assert!(
        steps >= 3,
        "2,600 samples took {steps} worker steps of 1,000"
    );

    // ...then a sync job that had loaded the connection before it went writes
    // late, and the final sweep deletes that too.
    stack
        .app
        .health
        .put_samples(user, &heart_rate(5))
        .await
        .unwrap();
    drain(&stack).await;
    let polled = erasure_of(&c, user).await;
    assert_eq!(polled["status"], "done", "{polled}");
    assert!(
        polled["health_items"].as_u64().unwrap() >= 2_605,
        "{polled}"
    );
    let left = items_naming(&stack, user).await;
    assert!(left.is_empty(), "items still name the user: {left:#?}");
    assert_eq!(
        items_naming(&stack, "bystander-3c9e").await.len(),
        10,
        "the bystander keeps every sample"
    );

    // Once it is done, the user may come back.
    let (status, body) = c.post("/v1/connections/mock", user, "").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = c.get("/v1/me/erasure", "never-deleted-3c9e").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_sync_job_queued_before_the_erasure_recreates_nothing() {
    let stack = stack("erase-queued-job").await;
    let c = Client::new(&stack);
    let user = "queued-job-user-81d0";
    c.post("/v1/connections/mock", user, "").await;
    drain(&stack).await;
    let (status, body) = c.post("/v1/sync", user, r#"{"vendor":"mock"}"#).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(queue_depth(&stack).await, 1);

    let (status, receipt) = c.call("DELETE", "/v1/me", Some(user), None).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["erasure"], "deleted", "{receipt}");
    drain(&stack).await;
    let left = items_naming(&stack, user).await;
    assert!(left.is_empty(), "the queued job stored: {left:#?}");
}
