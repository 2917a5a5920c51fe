//! WHOOP end to end through the local gateway and the vendor simulator:
//! connect (PKCE checked by the simulator), the vendor user id and sealed
//! tokens stored, the backfill paginated and normalized onto the user's
//! local days, signed webhooks (and forged ones) → pulls, refresh on an
//! expired token with rotation, 429 → retry later, disconnect → revoke.

mod common;

use chrono::{Duration, FixedOffset, Utc};
use common::*;
use connector_core::domain::connection::ConnectionStatus;
use connector_core::Vendor;
use connector_infra::simulator::whoop::{day, deliver_webhook};
use std::sync::atomic::Ordering::SeqCst;

fn local_today() -> chrono::NaiveDate {
    Utc::now()
        .with_timezone(&FixedOffset::west_opt(5 * 3600).unwrap())
        .date_naive()
}

#[tokio::test]
async fn whoop_connect_backfill_webhook_refresh_and_disconnect() {
    let (sim, stack) = sim_stack("whoop").await;
    let whoop = sim.sim(Vendor::Whoop).clone();
    let c = Client::new(&stack);

    let (_, providers) = c.get("/v1/providers", "alice").await;
    let entry = |p: &serde_json::Value| provider_of(p, "whoop");
    assert_eq!(entry(&providers)["supported"], true);

    // Connect: the simulator checks PKCE; the callback stores the WHOOP
    // user id from /v2/user/profile/basic and the sealed tokens.
    let back = c.connect_via_sim("whoop", "alice").await;
    assert_eq!(back["status"], "connected", "{back:?}");
    let conn = connection(&stack, "alice", Vendor::Whoop).await.unwrap();
    let vendor_user = conn.vendor_user_id.clone();
    assert!(whoop.users.lock().unwrap().contains_key(&vendor_user));
    let t = stack.app.envelope().open_tokens(&conn).await.unwrap();
    assert!(!conn.sealed_access_token.contains(t.access_token.expose()));

    // The backfill (14 days) pages through every collection (25 a page).
    let before = whoop.stats.api_requests.load(SeqCst);
    assert_eq!(drain(&stack).await, (1, 0));
    let pulls = whoop.stats.api_requests.load(SeqCst) - before;
    assert!(pulls >= 4, "{pulls} API calls");

    // Daily values land on the user's local day (UTC-5), exactly as sent.
    let (status, reports) = c.get("/v1/reports?days=14", "alice").await;
    assert_eq!(status, 200, "{reports}");
    let date = local_today() - Duration::days(3);
    let expected = day(&vendor_user, -300, date);
    let row = report_on(&reports, date);
    assert_eq!(row["hrv"], expected.hrv_ms, "{row}");
    assert_eq!(row["resting_hr"], expected.resting_hr);
    assert_eq!(row["sleep_score"], expected.sleep_performance);
    let kcal = (expected.kilojoule / 4.184 * 10.0).round() / 10.0;
    assert_eq!(row["calories"], kcal);
    assert_eq!(row["sources"]["hrv"], "whoop");

    // Series: recovery and sleep minutes; workouts keep their sport.
    let q = format!(
        "/v1/metrics?types=recovery,sleep_duration,workout_duration&since={date}&until={date}"
    );
    let (status, m) = c.get(&q, "alice").await;
    assert_eq!(status, 200, "{m}");
    let series = m["series"].as_array().unwrap();
    assert_eq!(series[0]["points"][0]["value"], expected.recovery_score);
    let asleep = (expected.light_ms + expected.sws_ms + expected.rem_ms) as f64 / 60_000.0;
    assert_eq!(series[1]["points"][0]["value"], asleep.round());
    if let Some((sport, _, minutes, _, _)) = &expected.workout {
        assert_eq!(series[2]["points"][0]["label"], sport.as_str());
        assert_eq!(series[2]["points"][0]["value"], *minutes as f64);
    }

    // Raw records are kept for audit and re-processing.
    let raw = stack
        .app
        .health
        .raw_records("alice", Vendor::Whoop)
        .await
        .unwrap();
    for kind in ["cycle", "recovery", "sleep"] {
        assert!(raw.iter().any(|(k, _, _)| k == kind), "no raw {kind}");
    }
    assert!(raw.iter().all(|(_, _, json)| json.is_some()));

    // A signed webhook → one pull; its re-delivery → duplicate; a forged
    // one → 401 with nothing queued.
    let target = format!("{}/v1/webhooks/whoop", stack.url());
    let (status, body) = deliver_webhook(
        &whoop,
        &target,
        &vendor_user,
        "recovery.updated",
        "trace-1",
        false,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "accepted");
    assert_eq!(queue_depth(&stack).await, 1);
    let (_, body) = deliver_webhook(
        &whoop,
        &target,
        &vendor_user,
        "recovery.updated",
        "trace-1",
        false,
    )
    .await;
    assert_eq!(
        body, r#"{"status":"accepted"}"#,
        "a duplicate gets the same answer"
    );
    assert_eq!(act_on_notices(&stack).await.len(), 2);
    assert_eq!(queue_depth(&stack).await, 1, "the duplicate queued nothing");
    let (status, _) = deliver_webhook(
        &whoop,
        &target,
        &vendor_user,
        "sleep.updated",
        "trace-2",
        true,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(queue_depth(&stack).await, 1);
    // A signed event of a type the connector does not sync: acknowledged
    // (WHOOP would retry a 4xx), nothing queued.
    let (status, body) = deliver_webhook(
        &whoop,
        &target,
        &vendor_user,
        "body_measurement.updated",
        "trace-3",
        false,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(queue_depth(&stack).await, 1);
    assert!(captured_logs().contains("webhook event type not synced"));
    assert_eq!(drain(&stack).await, (1, 0));

    // The access token died at the vendor: the worker's 401 → one refresh
    // (the refresh token rotates) → the pull succeeds.
    whoop.oauth.lock().unwrap().expire_access(&vendor_user);
    let refreshes = whoop.stats.refresh_requests.load(SeqCst);
    let (status, _) = c.post("/v1/sync", "alice", r#"{"vendor":"whoop"}"#).await;
    assert_eq!(status, 202);
    assert_eq!(drain(&stack).await, (1, 0));
    assert_eq!(whoop.stats.refresh_requests.load(SeqCst), refreshes + 1);
    assert_eq!(whoop.stats.refresh_reuse.load(SeqCst), 0);
    let after = connection(&stack, "alice", Vendor::Whoop).await.unwrap();
    assert_eq!(after.token_version, conn.token_version + 1);
    assert_eq!(after.status, ConnectionStatus::Connected);

    // A 429 from WHOOP: the job is retried later, nothing recorded as an error.
    whoop.limiter.force_429(1);
    let (status, _) = c.post("/v1/sync", "alice", r#"{"vendor":"whoop"}"#).await;
    assert_eq!(status, 202);
    assert_eq!(drain(&stack).await, (1, 0), "handed on, not failed");
    assert_eq!(
        queue_depth(&stack).await,
        1,
        "its days wait in a new message"
    );
    assert_eq!(whoop.stats.rate_limited.load(SeqCst), 1);
    let (_, providers) = c.get("/v1/providers", "alice").await;
    assert_eq!(entry(&providers)["status"], "connected", "{providers}");

    // The watchdog: a day without a sync (webhooks stopped) → one pull.
    let now = chrono::Utc::now();
    assert_eq!(
        connector_core::flows::tick::enqueue_due(&stack.app, now)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        connector_core::flows::tick::enqueue_due(&stack.app, now + chrono::Duration::hours(25))
            .await
            .unwrap(),
        1
    );
    assert_eq!(drain(&stack).await, (1, 0));

    // Disconnect revokes at WHOOP and deletes the tokens here.
    let (status, body) = c
        .call("DELETE", "/v1/connections/whoop", Some("alice"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked_at_vendor"], true);
    assert_eq!(whoop.stats.revocations.load(SeqCst), 1);
    assert_eq!(whoop.oauth.lock().unwrap().live_tokens(&vendor_user), 0);
    assert!(connection(&stack, "alice", Vendor::Whoop).await.is_none());

    // No token or secret reached a log line.
    let logs = captured_logs();
    assert!(!logs.contains(t.access_token.expose()));
    assert!(!logs.contains(&whoop.app.client_secret));
}
