//! Dexcom end to end through the local gateway and the vendor simulator:
//! connect, the userId read from dataRange, the backfill's glucose series
//! on the user's display date, no webhooks (404), the schedule polling a
//! connection that has not synced, refresh with rotation, and disconnect
//! saying that Dexcom cannot revoke.

mod common;

use chrono::{Duration, Utc};
use common::*;
use connector_core::Vendor;
use connector_infra::simulator::dexcom::{reading, DISPLAY_OFFSET_HOURS, READING_MINUTES};
use std::sync::atomic::Ordering::SeqCst;

#[tokio::test]
async fn dexcom_connect_backfill_polling_refresh_and_disconnect() {
    let (sim, stack) = sim_stack("dexcom").await;
    let dexcom = sim.sim(Vendor::Dexcom).clone();
    let c = Client::new(&stack);

    let url = c.begin_connect("dexcom", "alice").await;
    assert!(query_of(&url)["scope"].contains("offline_access"));
    let back = c.consent("alice", &url).await;
    assert_eq!(back["status"], "connected", "{back:?}");
    let conn = connection(&stack, "alice", Vendor::Dexcom).await.unwrap();
    let user = conn.vendor_user_id.clone();
    assert!(user.starts_with("simdexcomuser"), "{user}");
    let t = stack.app.envelope().open_tokens(&conn).await.unwrap();

    // Backfill: every reading of a local day, at its UTC time, exact values.
    assert_eq!(drain(&stack).await, (1, 0));
    let date =
        (Utc::now() + Duration::hours(DISPLAY_OFFSET_HOURS)).date_naive() - Duration::days(3);
    let (status, m) = c
        .get(
            &format!("/v1/metrics?types=glucose&since={date}&until={date}"),
            "alice",
        )
        .await;
    assert_eq!(status, 200, "{m}");
    let points = m["series"][0]["points"].as_array().unwrap();
    assert_eq!(points.len() as i64, 24 * 60 / READING_MINUTES, "{m}");
    assert_eq!(m["series"][0]["unit"], "mg_dl");
    for p in points {
        let at: chrono::DateTime<Utc> = p["time"].as_str().unwrap().parse().unwrap();
        assert_eq!(p["value"], reading(&user, at) as f64);
        assert_eq!(
            (at + Duration::hours(DISPLAY_OFFSET_HOURS)).date_naive(),
            date
        );
    }

    // No webhooks: the route answers 404 and nothing is queued.
    let (status, _) = c.post_with("/v1/webhooks/dexcom", None, "{}", &[]).await;
    assert_eq!(status, 404);

    // The schedule polls connections not synced within the poll interval.
    let now = Utc::now();
    assert_eq!(
        connector_core::flows::tick::enqueue_due(&stack.app, now)
            .await
            .unwrap(),
        0,
        "just synced"
    );
    assert_eq!(
        connector_core::flows::tick::enqueue_due(&stack.app, now + Duration::hours(2))
            .await
            .unwrap(),
        1
    );
    assert_eq!(drain(&stack).await, (1, 0));

    // Refresh with rotation.
    dexcom.oauth.lock().unwrap().expire_access(&user);
    let refreshes = dexcom.stats.refresh_requests.load(SeqCst);
    let (status, _) = c.post("/v1/sync", "alice", r#"{"vendor":"dexcom"}"#).await;
    assert_eq!(status, 202);
    assert_eq!(drain(&stack).await, (1, 0));
    assert_eq!(dexcom.stats.refresh_requests.load(SeqCst), refreshes + 1);
    assert_eq!(dexcom.stats.refresh_reuse.load(SeqCst), 0);

    // Disconnect: Dexcom has no revoke; the response says so, tokens go.
    let (status, body) = c
        .call("DELETE", "/v1/connections/dexcom", Some("alice"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked_at_vendor"], false);
    assert!(body["note"].as_str().unwrap().contains("revoke"));
    assert!(connection(&stack, "alice", Vendor::Dexcom).await.is_none());

    let logs = captured_logs();
    assert!(!logs.contains(t.access_token.expose()));
    assert!(!logs.contains(&dexcom.app.client_secret));
}
