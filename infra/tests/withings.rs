//! Withings end to end through the local gateway and the vendor simulator:
//! connect (body credentials, wrapped token answers, no PKCE), the userid and
//! sealed tokens stored, notify subscriptions made after a HEAD check of our
//! callback URL, the backfill paged and normalized onto the user's local days
//! (Europe/Paris), unsigned notifications checked by the callback token (and
//! forged ones refused) → pulls, unlink → revoked, refresh with rotation,
//! status 601 → retry later, disconnect → nonce-signed revoke.

mod common;

use chrono::{Duration, Utc};
use common::*;
use connector_core::domain::connection::ConnectionStatus;
use connector_core::vendors::withings::{tz, APPLIS};
use connector_core::Vendor;
use connector_infra::simulator::withings::{
    day, deliver_notification, notification_body, post_notification, subscriptions, TIMEZONE,
};
use std::sync::atomic::Ordering::SeqCst;

fn local_today() -> chrono::NaiveDate {
    tz::local_date(TIMEZONE, Utc::now())
}

#[tokio::test]
async fn withings_connect_backfill_notifications_refresh_and_disconnect() {
    let (sim, stack) = sim_stack("withings").await;
    let w = sim.sim(Vendor::Withings).clone();
    let c = Client::new(&stack);

    let (_, providers) = c.get("/v1/providers", "carol").await;
    let entry = |p: &serde_json::Value| provider_of(p, "withings");
    assert_eq!(entry(&providers)["supported"], true);

    // Connect: comma-separated scopes without user.info; the wrapped token
    // answer names the userid; the user is subscribed to notifications.
    let url = c.begin_connect("withings", "carol").await;
    assert_eq!(query_of(&url)["scope"], "user.metrics,user.activity");
    let back = c.consent("carol", &url).await;
    assert_eq!(back["status"], "connected", "{back:?}");
    let conn = connection(&stack, "carol", Vendor::Withings).await.unwrap();
    let userid = conn.vendor_user_id.clone();
    assert!(userid.starts_with("999"), "{userid}");
    let t = stack.app.envelope().open_tokens(&conn).await.unwrap();
    assert!(!conn.sealed_access_token.contains(t.access_token.expose()));
    let subs = subscriptions(&w, &userid);
    let mut applis: Vec<u32> = subs.iter().map(|(a, _)| *a).collect();
    applis.sort_unstable();
    assert_eq!(applis, APPLIS.to_vec());
    let callback = subs[0].1.clone();
    assert!(
        callback.starts_with(&format!("{}/v1/webhooks/withings?token=", stack.url())),
        "{callback}"
    );

    // The backfill pages through getmeas, getactivity, getsummary (≤ 7 days
    // a call) and getworkouts.
    let before = w.stats.api_requests.load(SeqCst);
    assert_eq!(drain(&stack).await, (1, 0));
    let pulls = w.stats.api_requests.load(SeqCst) - before;
    assert!(pulls >= 7, "{pulls} API calls");

    // Daily values on the user's local day, exactly as sent.
    let date = local_today() - Duration::days(3);
    let d = day(&userid, date);
    let (status, reports) = c.get("/v1/reports?days=14", "carol").await;
    assert_eq!(status, 200, "{reports}");
    let row = report_on(&reports, date);
    assert_eq!(row["steps"], d.steps as f64, "{row}");
    assert_eq!(row["calories"], d.total_kcal);
    assert_eq!(row["sleep_score"], d.sleep_score as f64);
    let hrv = ((d.rmssd_start + d.rmssd_end) / 2.0 * 10.0).round() / 10.0;
    assert_eq!(row["hrv"], hrv);
    assert_eq!(row["sources"]["steps"], "withings");

    // Measures: weight in kg; the 00:20 local pulse is on the local day
    // although its UTC time is on the day before.
    let q = format!(
        "/v1/metrics?types=body_weight,heart_rate,sleep_duration&since={date}&until={date}"
    );
    let (status, m) = c.get(&q, "carol").await;
    assert_eq!(status, 200, "{m}");
    let series = m["series"].as_array().unwrap();
    assert_eq!(series[0]["unit"], "kg");
    assert_eq!(series[0]["points"][0]["value"], d.weight.1 as f64 / 1000.0);
    let pulse = &series[1]["points"][0];
    assert_eq!(pulse["value"], d.pulse.1 as f64);
    assert_eq!(pulse["date"], date.to_string());
    assert_eq!(
        pulse["time"],
        d.pulse.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_ne!(d.pulse.0.date_naive(), date);
    assert_eq!(
        series[2]["points"][0]["value"],
        (d.total_sleep_secs as f64 / 60.0).round()
    );
    let raw = stack
        .app
        .health
        .raw_records("carol", Vendor::Withings)
        .await
        .unwrap();
    for kind in ["measuregrp", "activity", "sleep"] {
        assert!(raw.iter().any(|(k, _, _)| k == kind), "no raw {kind}");
    }

    // The callback check: HEAD (and GET) answer 200.
    for method in [reqwest::Method::HEAD, reqwest::Method::GET] {
        let r = reqwest::Client::new()
            .request(method, &callback)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    // A notification → one pull with the user's own token; its re-delivery
    // → duplicate; one without our callback token → 401; an unknown user →
    // nothing queued.
    let (start, end) = (d.sleep.0.timestamp(), d.sleep.1.timestamp());
    let (status, body) =
        deliver_notification(&w, &userid, 44, Some(start), Some(end), None, false).await;
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "accepted", "{body}");
    assert_eq!(queue_depth(&stack).await, 1);
    let (_, body) =
        deliver_notification(&w, &userid, 44, Some(start), Some(end), None, false).await;
    assert_eq!(
        body, r#"{"status":"accepted"}"#,
        "a duplicate gets the same answer"
    );
    let (status, _) =
        deliver_notification(&w, &userid, 1, Some(start), Some(end), None, true).await;
    assert_eq!(status, 401);
    let (status, body) = post_notification(
        &callback,
        &notification_body("9000000", 1, Some(start), Some(end), None),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body, r#"{"status":"accepted"}"#,
        "an unknown user gets the same answer"
    );
    // The event, its re-delivery and the stranger's: one sync between them.
    assert_eq!(act_on_notices(&stack).await.len(), 3);
    assert_eq!(queue_depth(&stack).await, 1);
    assert_eq!(drain(&stack).await, (1, 0));

    // The access token died: the worker's 401 (in a 200 body) → one refresh;
    // the refresh token rotates.
    w.oauth.lock().unwrap().expire_access(&userid);
    let refreshes = w.stats.refresh_requests.load(SeqCst);
    let (status, _) = c
        .post("/v1/sync", "carol", r#"{"vendor":"withings"}"#)
        .await;
    assert_eq!(status, 202);
    assert_eq!(drain(&stack).await, (1, 0));
    assert_eq!(w.stats.refresh_requests.load(SeqCst), refreshes + 1);
    assert_eq!(w.stats.refresh_reuse.load(SeqCst), 0);
    let after = connection(&stack, "carol", Vendor::Withings).await.unwrap();
    assert_eq!(after.token_version, conn.token_version + 1);
    assert_eq!(after.status, ConnectionStatus::Connected);
    let t2 = stack.app.envelope().open_tokens(&after).await.unwrap();
    assert_ne!(
        t2.refresh_token.as_ref().unwrap().expose(),
        t.refresh_token.as_ref().unwrap().expose()
    );

    // Status 601 (120 a minute per app): retried later, no error recorded.
    w.limiter.force_429(1);
    let (status, _) = c
        .post("/v1/sync", "carol", r#"{"vendor":"withings"}"#)
        .await;
    assert_eq!(status, 202);
    assert_eq!(drain(&stack).await, (1, 0), "handed on, not failed");
    assert_eq!(
        queue_depth(&stack).await,
        1,
        "its days wait in a new message"
    );
    assert_eq!(w.stats.rate_limited.load(SeqCst), 1);
    let (_, providers) = c.get("/v1/providers", "carol").await;
    assert_eq!(entry(&providers)["status"], "connected", "{providers}");

    // The user unlinks the app at Withings (appli 46) → revoked.
    let (status, body) =
        deliver_notification(&w, &userid, 46, None, None, Some("unlink"), false).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    let (_, providers) = c.get("/v1/providers", "carol").await;
    assert_eq!(entry(&providers)["status"], "revoked", "{providers}");

    // Disconnect: nonce + signed revoke at Withings (which also ends the
    // subscriptions), then the tokens are deleted here.
    let (status, body) = c
        .call("DELETE", "/v1/connections/withings", Some("carol"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked_at_vendor"], true);
    assert_eq!(w.stats.revocations.load(SeqCst), 1);
    assert_eq!(w.oauth.lock().unwrap().live_tokens(&userid), 0);
    assert!(subscriptions(&w, &userid).is_empty());
    assert!(connection(&stack, "carol", Vendor::Withings)
        .await
        .is_none());

    // No token or secret reached a log line.
    let logs = captured_logs();
    for secret in [
        t.access_token.expose(),
        t2.access_token.expose(),
        t2.refresh_token.as_ref().unwrap().expose(),
        &w.app.client_secret,
        &w.app.verify_token,
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}
