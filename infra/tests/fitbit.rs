//! Fitbit through the Google Health API, end to end through the local
//! gateway and the vendor simulator: connect, healthUserId stored, the
//! backfill read from data-point lists and daily roll-ups onto the user's
//! local days, subscriber verification (201 with the endpoint secret, 401
//! without), notifications with the secret → a pull, without → 401, refresh
//! keeping the non-rotating refresh token, and disconnect → Google revoke.

mod common;

use chrono::{Duration, Utc};
use common::*;
use connector_core::Vendor;
use connector_infra::simulator::fitbit::{day, notify, verify, OFFSET_SECS};
use std::sync::atomic::Ordering::SeqCst;

#[tokio::test]
async fn fitbit_google_health_connect_backfill_notifications_refresh_and_disconnect() {
    let (sim, stack) = sim_stack("fitbit").await;
    sim.deliver_webhooks_to(&stack.url());
    let google = sim.sim(Vendor::Fitbit).clone();
    let c = Client::new(&stack);

    let url = c.begin_connect("fitbit", "alice").await;
    let params = query_of(&url);
    assert_eq!(params["access_type"], "offline");
    assert!(params["scope"].contains("googlehealth.sleep.readonly"));
    let back = c.consent("alice", &url).await;
    assert_eq!(back["status"], "connected", "{back:?}");
    let conn = connection(&stack, "alice", Vendor::Fitbit).await.unwrap();
    let user = conn.vendor_user_id.clone();
    assert!(user.starts_with("SIMhealthUser"), "{user}");
    let t = stack.app.envelope().open_tokens(&conn).await.unwrap();

    // Backfill: lists and roll-ups, on the user's local day (UTC+1).
    assert_eq!(drain(&stack).await, (1, 0));
    let date = (Utc::now() + Duration::seconds(OFFSET_SECS)).date_naive() - Duration::days(3);
    let d = day(&user, date);
    let (_, reports) = c.get("/v1/reports?days=14", "alice").await;
    let row = report_on(&reports, date);
    assert_eq!(row["steps"], d.steps as f64, "{row}");
    assert_eq!(row["calories"], d.calories);
    assert_eq!(row["resting_hr"], d.resting_hr as f64);
    assert_eq!(row["hrv"], d.hrv);
    assert!(row["sleep_score"].is_null(), "v4 has no sleep score");
    let (_, m) = c
        .get(
            &format!(
                "/v1/metrics?types=sleep_duration,spo2,workout_distance&since={date}&until={date}"
            ),
            "alice",
        )
        .await;
    assert_eq!(
        m["series"][0]["points"][0]["value"],
        d.minutes_asleep as f64
    );
    assert_eq!(m["series"][1]["points"][0]["value"], d.spo2);
    if let Some((_, metres, _)) = d.run {
        assert_eq!(m["series"][2]["points"][0]["value"], metres);
        assert_eq!(m["series"][2]["points"][0]["label"], "running");
    }

    // Subscriber verification, exactly as Google requires.
    let target = format!("{}/v1/webhooks/fitbit", stack.url());
    assert_eq!(verify(&google, &target).await, (201, 401));

    // A notification with the endpoint secret → one pull; again → duplicate;
    // without it, or with another secret → 401 and nothing queued.
    let end = Utc::now();
    let start = end - Duration::minutes(15);
    let secret = google.app.webhook_secret.clone();
    assert_eq!(notify(&target, None, &user, "steps", start, end).await, 401);
    assert_eq!(
        notify(
            &target,
            Some("Bearer not-the-secret"),
            &user,
            "steps",
            start,
            end
        )
        .await,
        401
    );
    assert_eq!(queue_depth(&stack).await, 0);
    assert_eq!(
        notify(&target, Some(&secret), &user, "steps", start, end).await,
        200
    );
    assert_eq!(
        notify(&target, Some(&secret), &user, "steps", start, end).await,
        200
    );
    assert_eq!(
        act_on_notices(&stack).await.len(),
        2,
        "the same notification twice"
    );
    assert_eq!(queue_depth(&stack).await, 1);
    assert_eq!(drain(&stack).await, (1, 0));

    // Refresh: Google does not rotate; the stored refresh token is kept.
    google.oauth.lock().unwrap().expire_access(&user);
    let refreshes = google.stats.refresh_requests.load(SeqCst);
    let (status, _) = c.post("/v1/sync", "alice", r#"{"vendor":"fitbit"}"#).await;
    assert_eq!(status, 202);
    assert_eq!(drain(&stack).await, (1, 0));
    assert_eq!(google.stats.refresh_requests.load(SeqCst), refreshes + 1);
    let after = connection(&stack, "alice", Vendor::Fitbit).await.unwrap();
    let t2 = stack.app.envelope().open_tokens(&after).await.unwrap();
    assert_ne!(t2.access_token.expose(), t.access_token.expose());
    assert_eq!(
        t2.refresh_token.as_ref().unwrap().expose(),
        t.refresh_token.as_ref().unwrap().expose()
    );

    // Disconnect revokes the grant at Google.
    let (status, body) = c
        .call("DELETE", "/v1/connections/fitbit", Some("alice"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked_at_vendor"], true);
    assert_eq!(google.stats.revocations.load(SeqCst), 1);
    assert_eq!(google.oauth.lock().unwrap().live_tokens(&user), 0);

    let logs = captured_logs();
    assert!(!logs.contains(t.access_token.expose()));
    assert!(!logs.contains(&secret));
}
