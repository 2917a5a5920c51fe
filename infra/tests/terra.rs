//! Terra end to end through the local gateway and the vendor simulator:
//! the hosted connect flow (authenticateUser → provider consent → callback
//! confirmed with userInfo against our state), the backfill pulled with the
//! app's credentials, signed `terra-signature` webhooks (forged ones 401),
//! a `deauth` event marking the connection revoked, and disconnect
//! deauthenticating the Terra user.

mod common;

use chrono::{Duration, Utc};
use common::*;
use connector_core::Vendor;
use connector_infra::simulator::terra::{daily_event, day, deliver, OFFSET_HOURS};
use std::sync::atomic::Ordering::SeqCst;

#[tokio::test]
async fn terra_hosted_connect_backfill_webhooks_deauth_and_disconnect() {
    let (sim, stack) = sim_stack("terra").await;
    sim.deliver_webhooks_to(&stack.url());
    let terra = sim.sim(Vendor::Terra).clone();
    let c = Client::new(&stack);

    // Terra needs the provider to connect through.
    let (status, body) = c.post("/v1/connections/terra", "alice", "").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "provider");
    let (status, body) = c
        .post(
            "/v1/connections/terra",
            "alice",
            r#"{"provider":"../evil"}"#,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["field"], "provider");
    let (status, body) = c
        .post("/v1/connections/terra", "alice", r#"{"provider":"OURA"}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    let back = c
        .consent("alice", body["redirect_url"].as_str().unwrap())
        .await;
    assert_eq!(back["status"], "connected", "{back:?}");
    let conn = connection(&stack, "alice", Vendor::Terra).await.unwrap();
    let user = conn.vendor_user_id.clone();
    assert_eq!(user.len(), 36, "{user}");

    // A Terra user made for someone else's connect request is refused.
    let (status, body) = c
        .post("/v1/connections/terra", "bob", r#"{"provider":"OURA"}"#)
        .await;
    assert_eq!(status, 200);
    let params = query_of(body["redirect_url"].as_str().unwrap());
    let (_, callback) = c.visit(body["redirect_url"].as_str().unwrap()).await;
    let bob_state = query_of(&callback.unwrap())["reference_id"].clone();
    let (status, back) = c
        .visit(&format!(
            "{}/v1/oauth/terra/callback?user_id={user}&reference_id={bob_state}",
            c.base
        ))
        .await;
    assert_eq!(status, 302);
    let back = query_of(&back.unwrap());
    assert_eq!(back["status"], "pending", "{back:?}");
    let (status, body) = c.complete("terra", "bob", &back["completion"]).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .starts_with("identify_failed"));
    assert!(params.contains_key("user_id"));
    assert!(connection(&stack, "bob", Vendor::Terra).await.is_none());

    // The backfill, pulled with the app's credentials.
    assert_eq!(drain(&stack).await, (1, 0));
    let date = (Utc::now() + Duration::hours(OFFSET_HOURS)).date_naive() - Duration::days(3);
    let d = day(&user, date);
    let (_, reports) = c.get("/v1/reports?days=14", "alice").await;
    let row = report_on(&reports, date);
    assert_eq!(row["steps"], d.steps as f64, "{row}");
    assert_eq!(row["calories"], d.calories as f64);
    assert_eq!(row["resting_hr"], d.resting_hr as f64);
    assert_eq!(row["sleep_score"], d.sleep_score as f64);
    assert_eq!(row["hrv"], d.hrv);
    assert_eq!(row["sources"]["steps"], "terra");

    // Signed webhooks: one pull, the re-delivery a duplicate, a forged one 401.
    let event = daily_event(&terra, &user, date).unwrap();
    assert_eq!(deliver(&terra, &event, true).await, 401);
    assert_eq!(queue_depth(&stack).await, 0);
    assert_eq!(deliver(&terra, &event, false).await, 200);
    assert_eq!(deliver(&terra, &event, false).await, 200);
    assert_eq!(act_on_notices(&stack).await.len(), 2);
    assert_eq!(queue_depth(&stack).await, 1);
    assert_eq!(drain(&stack).await, (1, 0));

    // Disconnect: Terra deauthenticates the user and confirms with a deauth
    // event (which then finds no connection).
    let api_calls = terra.stats.api_requests.load(SeqCst);
    let (status, body) = c
        .call("DELETE", "/v1/connections/terra", Some("alice"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked_at_vendor"], true);
    assert_eq!(terra.stats.revocations.load(SeqCst), 1);
    assert!(terra.stats.api_requests.load(SeqCst) > api_calls);
    assert!(connection(&stack, "alice", Vendor::Terra).await.is_none());

    // A user who disconnects at Terra: the deauth event marks it revoked.
    let (_, body) = c
        .post("/v1/connections/terra", "carol", r#"{"provider":"GARMIN"}"#)
        .await;
    let back = c
        .consent("carol", body["redirect_url"].as_str().unwrap())
        .await;
    assert_eq!(back["status"], "connected");
    drain(&stack).await;
    let carol = connection(&stack, "carol", Vendor::Terra).await.unwrap();
    let deauth = serde_json::json!({ "type": "deauth", "status": "success",
        "user": { "user_id": carol.vendor_user_id, "provider": "GARMIN" },
        "message": "User has deauthenticated", "version": "2022-03-16" });
    assert_eq!(deliver(&terra, &deauth, false).await, 200);
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    let (_, providers) = c.get("/v1/providers", "carol").await;
    let entry = providers["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "terra")
        .unwrap()
        .clone();
    assert_eq!(entry["status"], "revoked", "{entry}");
    // Terra sends it again: still one event for the app.
    assert_eq!(deliver(&terra, &deauth, false).await, 200);
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    let revoked = types_of(&feed(&c, "carol", 50).await)
        .into_iter()
        .filter(|t| t == "connection.revoked")
        .count();
    assert_eq!(revoked, 1);

    let logs = captured_logs();
    assert!(!logs.contains(&terra.app.client_secret));
    assert!(!logs.contains(&terra.app.webhook_secret));
}
