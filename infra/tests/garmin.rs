//! Garmin end to end through the local gateway and the vendor simulator:
//! connect with PKCE, the Garmin user id stored, the backfill asked of
//! Garmin's backfill endpoints and delivered as pings, unsigned pings
//! checked by `garmin-client-id` and turned into pulls by upload time,
//! refresh with rotation, a user's deregistration at Garmin marking the
//! connection revoked, and disconnect deregistering at Garmin.

mod common;

use chrono::Utc;
use common::*;
use connector_core::domain::connection::ConnectionStatus;
use connector_core::Vendor;
use connector_infra::simulator::garmin::{day, notify_with, ping, GarminState};
use std::sync::atomic::Ordering::SeqCst;

#[tokio::test]
async fn garmin_connect_backfill_pings_refresh_deregistration_and_disconnect() {
    // A one-second gap between a user's pulls (default 5 min), so that a
    // ping right after the backfill's is pulled at once.
    let (sim, stack) = sim_stack_with("garmin", &[("CONNECTOR_UNSIGNED_PULL_GAP_SECS", "1")]).await;
    sim.deliver_webhooks_to(&stack.url());
    let garmin = sim.sim(Vendor::Garmin).clone();
    let state: &GarminState = garmin.extra();
    let c = Client::new(&stack);

    let provider = |p: &serde_json::Value| provider_of(p, "garmin");
    let (_, providers) = c.get("/v1/providers", "alice").await;
    assert_eq!(provider(&providers)["supported"], true);

    // Connect: the simulator requires PKCE; the callback stores Garmin's userId.
    let back = c.connect_via_sim("garmin", "alice").await;
    assert_eq!(back["status"], "connected", "{back:?}");
    let conn = connection(&stack, "alice", Vendor::Garmin).await.unwrap();
    let user = conn.vendor_user_id.clone();
    assert_eq!(user.len(), 32, "{user}");
    assert!(garmin.users.lock().unwrap().contains_key(&user));
    let t = stack.app.envelope().open_tokens(&conn).await.unwrap();

    // The backfill job asks Garmin for history (one request per summary
    // type); Garmin pings as it is ready (while the job may still run);
    // the five pings wait as one pull job.
    let first = stack
        .pump
        .once(stack.function("sync-worker"), 0)
        .await
        .unwrap();
    assert_eq!((first.received, first.failed), (1, 0));
    assert_eq!(state.backfills.lock().unwrap().len(), 5);
    eventually("five pings delivered", || async {
        state.backfill_pings.load(SeqCst) == 5
    })
    .await;
    assert_eq!(act_on_notices(&stack).await.len(), 5);
    assert_eq!(queue_depth(&stack).await, 1);
    assert_eq!(drain(&stack).await, (1, 0));

    // Values land on Garmin's calendarDate, in our units.
    let date = Utc::now().date_naive() - chrono::Duration::days(3);
    let d = day(&user, date);
    let (_, reports) = c.get("/v1/reports?days=14", "alice").await;
    let row = report_on(&reports, date);
    assert_eq!(row["steps"], d.steps as f64, "{row}");
    assert_eq!(row["calories"], (d.active_kcal + d.bmr_kcal) as f64);
    assert_eq!(row["resting_hr"], d.resting_hr as f64);
    assert_eq!(row["stress"], d.stress as f64 / 10.0);
    assert_eq!(row["sleep_score"], d.sleep_score as f64);
    assert_eq!(row["hrv"], d.hrv as f64);
    assert_eq!(row["sources"]["steps"], "garmin");
    let (_, m) = c
        .get(
            &format!("/v1/metrics?types=sleep_duration,spo2&since={date}&until={date}"),
            "alice",
        )
        .await;
    assert_eq!(
        m["series"][0]["points"][0]["value"],
        (d.sleep_secs as f64 / 60.0).round()
    );
    let spo2 = d.spo2.iter().sum::<i64>() as f64 / 3.0;
    assert_eq!(
        m["series"][1]["points"][0]["value"],
        (spo2 * 10.0).round() / 10.0
    );

    // Unsigned pings: without, or with another app's, garmin-client-id → 401
    // and nothing queued; with ours → one pull; the same ping again → duplicate.
    let target = format!("{}/v1/webhooks/garmin", stack.url());
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let now = Utc::now().timestamp();
    let body = ping("dailies", &user, now - 60, now);
    assert_eq!(notify_with(&target, None, &body).await, 401);
    assert_eq!(
        notify_with(&target, Some("someone-elses-client"), &body).await,
        401
    );
    assert_eq!(queue_depth(&stack).await, 0);
    assert_eq!(
        notify_with(&target, Some(&garmin.app.client_id), &body).await,
        200
    );
    assert_eq!(
        notify_with(&target, Some(&garmin.app.client_id), &body).await,
        200
    );
    assert_eq!(act_on_notices(&stack).await.len(), 2);
    assert_eq!(
        queue_depth(&stack).await,
        1,
        "the re-delivery was a duplicate"
    );
    assert_eq!(drain(&stack).await, (1, 0));

    // An expired access token: one refresh, rotated, and the sync goes on.
    garmin.oauth.lock().unwrap().expire_access(&user);
    let refreshes = garmin.stats.refresh_requests.load(SeqCst);
    let (status, _) = c
        .post("/v1/sync", "alice", r#"{"vendor":"garmin","days":2}"#)
        .await;
    assert_eq!(status, 202);
    let (received, failed) = drain(&stack).await;
    assert_eq!((received >= 1, failed), (true, 0));
    assert_eq!(garmin.stats.refresh_requests.load(SeqCst), refreshes + 1);
    assert_eq!(garmin.stats.refresh_reuse.load(SeqCst), 0);
    let after = connection(&stack, "alice", Vendor::Garmin).await.unwrap();
    assert_eq!(after.token_version, conn.token_version + 1);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drain(&stack).await;

    // Bob removes the app in Garmin Connect: the deregistration marks his
    // connection revoked.
    let back = c.connect_via_sim("garmin", "bob").await;
    assert_eq!(back["status"], "connected");
    drain(&stack).await;
    let bob = connection(&stack, "bob", Vendor::Garmin).await.unwrap();
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/_sim/deregister?user={}",
            sim.base(Vendor::Garmin),
            bob.vendor_user_id
        ))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(resp["notification_status"], 200);
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    let (_, providers) = c.get("/v1/providers", "bob").await;
    assert_eq!(provider(&providers)["status"], "revoked", "{providers}");
    assert!(
        provider(&providers)["error"]
            .as_str()
            .unwrap()
            .contains("reconnect"),
        "the reason is shown: {providers}"
    );
    // Revoked connections are not synced; reconnecting makes it connected again.
    let (status, _) = c.post("/v1/sync", "bob", r#"{"vendor":"garmin"}"#).await;
    assert_eq!(status, 409, "a revoked connection needs the user");
    let back = c
        .consent(
            "bob",
            &format!(
                "{}&login={}",
                c.begin_connect("garmin", "bob").await,
                bob.vendor_user_id
            ),
        )
        .await;
    assert_eq!(back["status"], "connected");
    let (_, providers) = c.get("/v1/providers", "bob").await;
    assert_eq!(provider(&providers)["status"], "connected", "{providers}");
    assert!(provider(&providers)["error"].is_null(), "{providers}");
    drain(&stack).await;

    // Alice disconnects: deregistered at Garmin, tokens deleted here.
    let (status, body) = c
        .call("DELETE", "/v1/connections/garmin", Some("alice"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked_at_vendor"], true);
    assert!(state.deregistrations.lock().unwrap().contains(&user));
    assert_eq!(garmin.oauth.lock().unwrap().live_tokens(&user), 0);
    assert!(connection(&stack, "alice", Vendor::Garmin).await.is_none());
    let (_, providers) = c.get("/v1/providers", "alice").await;
    assert_eq!(provider(&providers)["connected"], false);
    assert_ne!(
        provider(&providers)["status"],
        ConnectionStatus::Connected.as_str()
    );

    let logs = captured_logs();
    assert!(!logs.contains(t.access_token.expose()));
    assert!(!logs.contains(&garmin.app.client_secret));
}
