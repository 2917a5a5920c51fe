//! Strava end to end through the local gateway and the vendor simulator:
//! connect (body credentials; the simulator ignores PKCE as Strava does),
//! the athlete id from the token response and sealed tokens stored, the
//! backfill paged and normalized onto the athlete's local start dates, the
//! subscription validation handshake, unsigned events checked by
//! subscription id (and forged ones refused) → pulls, deauthorization,
//! refresh with rotation, 429 → retry later, disconnect → deauthorize.

mod common;

use chrono::{Duration, FixedOffset, Utc};
use common::*;
use connector_core::domain::connection::ConnectionStatus;
use connector_core::Vendor;
use connector_infra::simulator::strava::{
    activity, deliver_validation, deliver_webhook, event_body, SimActivity, UTC_OFFSET_MINUTES,
};
use std::sync::atomic::Ordering::SeqCst;

fn local_today() -> chrono::NaiveDate {
    Utc::now()
        .with_timezone(&FixedOffset::east_opt(UTC_OFFSET_MINUTES * 60).unwrap())
        .date_naive()
}

fn point(m: &serde_json::Value, i: usize) -> serde_json::Value {
    let pts = m["series"][i]["points"].as_array().unwrap();
    assert_eq!(pts.len(), 1, "{m}");
    pts[0].clone()
}

#[tokio::test]
async fn strava_connect_backfill_webhooks_refresh_and_disconnect() {
    let (sim, stack) = sim_stack("strava").await;
    let strava = sim.sim(Vendor::Strava).clone();
    let c = Client::new(&stack);

    let (_, providers) = c.get("/v1/providers", "bob").await;
    let entry = |p: &serde_json::Value| provider_of(p, "strava");
    assert_eq!(entry(&providers)["supported"], true);

    // Connect: comma-separated scopes; the athlete id comes with the tokens.
    let url = c.begin_connect("strava", "bob").await;
    let q = query_of(&url);
    assert_eq!(q["scope"], "read,activity:read_all");
    assert_eq!(q["client_id"], strava.app.client_id);
    let back = c.consent("bob", &url).await;
    assert_eq!(back["status"], "connected", "{back:?}");
    assert_eq!(strava.stats.pkce_failures.load(SeqCst), 0);
    let conn = connection(&stack, "bob", Vendor::Strava).await.unwrap();
    let athlete = conn.vendor_user_id.clone();
    assert!(athlete.starts_with("12"), "{athlete}");
    assert!(strava.users.lock().unwrap().contains_key(&athlete));
    let t = stack.app.envelope().open_tokens(&conn).await.unwrap();
    assert!(!conn.sealed_access_token.contains(t.access_token.expose()));
    // The identify step made no API call: the id is in the token response.
    assert_eq!(strava.stats.api_requests.load(SeqCst), 0);

    // The backfill: the activity list, then each activity's detail (calories).
    assert_eq!(drain(&stack).await, (1, 0));
    let pulls = strava.stats.api_requests.load(SeqCst);
    let in_backfill: Vec<(chrono::NaiveDate, SimActivity)> = (1..12)
        .map(|n| local_today() - Duration::days(n))
        .filter_map(|d| activity(&athlete, UTC_OFFSET_MINUTES, d).map(|a| (d, a)))
        .collect();
    assert!(!in_backfill.is_empty());
    assert!(
        pulls as usize > in_backfill.len(),
        "{pulls} calls for {} activities",
        in_backfill.len()
    );

    // Each workout is on the athlete's local start date, exactly as sent.
    for (date, a) in &in_backfill {
        let q = format!(
            "/v1/metrics?types=workout_duration,workout_calories,workout_distance&since={date}&until={date}"
        );
        let (status, m) = c.get(&q, "bob").await;
        assert_eq!(status, 200, "{m}");
        let d = point(&m, 0);
        assert_eq!(d["label"], a.sport);
        assert_eq!(d["source"], "strava");
        assert_eq!(d["date"], date.to_string());
        assert_eq!(
            d["time"],
            a.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let minutes = (a.elapsed_s as f64 / 60.0 * 10.0).round() / 10.0;
        assert_eq!(d["value"], minutes);
        assert_eq!(point(&m, 1)["value"], a.calories);
        assert_eq!(point(&m, 2)["value"], a.distance_m);
        assert_eq!(m["series"][2]["unit"], "m");
    }
    // A late ride (00:30 local = 23:30 UTC the day before) sits on the local day.
    if let Some((date, a)) = in_backfill.iter().find(|(_, a)| a.sport == "Ride") {
        assert_ne!(a.start.date_naive(), *date);
    }
    // Strava has no daily summaries: nothing of Strava's in the reports.
    let (status, reports) = c.get("/v1/reports?days=14", "bob").await;
    assert_eq!(status, 200);
    assert!(!reports.to_string().contains("strava"), "{reports}");
    let raw = stack
        .app
        .health
        .raw_records("bob", Vendor::Strava)
        .await
        .unwrap();
    for (_, a) in &in_backfill {
        let id = a.id.to_string();
        assert!(
            raw.iter().any(|(_, key, _)| key.contains(&id)),
            "no raw {id}"
        );
    }
    assert!(raw
        .iter()
        .all(|(k, _, json)| k == "activity" && json.as_ref().unwrap().contains("calories")));

    // The subscription handshake: the simulator creates the push
    // subscription, which Strava validates with a GET echo; a wrong verify
    // token is refused with 403.
    let target = format!("{}/v1/webhooks/strava", stack.url());
    let created = reqwest::Client::new()
        .post(format!(
            "{}/api/v3/push_subscriptions",
            sim.base(Vendor::Strava)
        ))
        .form(&[
            ("client_id", strava.app.client_id.as_str()),
            ("client_secret", strava.app.client_secret.as_str()),
            ("callback_url", target.as_str()),
            ("verify_token", strava.app.verify_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(created["id"].to_string(), strava.app.subscription_id);
    let (status, body, accepted) =
        deliver_validation(&strava, &target, &strava.app.verify_token).await;
    assert!(accepted, "{status} {body}");
    let (status, body, accepted) = deliver_validation(&strava, &target, "wrong-verify-token").await;
    assert_eq!(status, 403, "{body}");
    assert!(!accepted);

    // An event (unsigned; our subscription id) → one pull with the athlete's
    // token; its re-delivery → duplicate; another subscription's → 401.
    let (date, a) = in_backfill[0].clone();
    let event_time = (a.start + Duration::hours(2)).timestamp();
    let body = event_body(&strava, &athlete, "create", a.id, event_time, false);
    let (status, answer) = deliver_webhook(&target, &body).await;
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["status"], "accepted", "{answer}");
    assert_eq!(queue_depth(&stack).await, 1);
    let (_, answer) = deliver_webhook(&target, &body).await;
    assert_eq!(
        answer, r#"{"status":"accepted"}"#,
        "a duplicate gets the same answer"
    );
    assert_eq!(act_on_notices(&stack).await.len(), 2);
    assert_eq!(queue_depth(&stack).await, 1, "the duplicate queued nothing");
    // An event of a kind the connector does not sync: acknowledged.
    let other = event_body(&strava, &athlete, "archive", a.id, event_time + 2, false);
    let (status, answer) = deliver_webhook(&target, &other).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(queue_depth(&stack).await, 1);
    let forged = event_body(&strava, &athlete, "update", a.id, event_time + 1, true);
    let (status, _) = deliver_webhook(&target, &forged).await;
    assert_eq!(status, 401);
    assert_eq!(queue_depth(&stack).await, 1);
    let before = strava.stats.api_requests.load(SeqCst);
    assert_eq!(drain(&stack).await, (1, 0));
    assert!(strava.stats.api_requests.load(SeqCst) > before);
    let (_, m) = c
        .get(
            &format!("/v1/metrics?types=workout_duration&since={date}&until={date}"),
            "bob",
        )
        .await;
    assert_eq!(point(&m, 0)["label"], a.sport);

    // The access token died: the worker's 401 → one refresh; the refresh
    // token rotates and the old one is dead at Strava.
    strava.oauth.lock().unwrap().expire_access(&athlete);
    let refreshes = strava.stats.refresh_requests.load(SeqCst);
    let (status, _) = c.post("/v1/sync", "bob", r#"{"vendor":"strava"}"#).await;
    assert_eq!(status, 202);
    assert_eq!(drain(&stack).await, (1, 0));
    assert_eq!(strava.stats.refresh_requests.load(SeqCst), refreshes + 1);
    assert_eq!(strava.stats.refresh_reuse.load(SeqCst), 0);
    let after = connection(&stack, "bob", Vendor::Strava).await.unwrap();
    assert_eq!(after.token_version, conn.token_version + 1);
    assert_eq!(after.status, ConnectionStatus::Connected);
    let t2 = stack.app.envelope().open_tokens(&after).await.unwrap();
    assert_ne!(
        t2.refresh_token.as_ref().unwrap().expose(),
        t.refresh_token.as_ref().unwrap().expose()
    );
    let old_refresh = reqwest::Client::new()
        .post(format!("{}/api/v3/oauth/token", sim.base(Vendor::Strava)))
        .form(&[
            ("client_id", strava.app.client_id.as_str()),
            ("client_secret", strava.app.client_secret.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", t.refresh_token.as_ref().unwrap().expose()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(old_refresh.status(), 400);
    assert_eq!(strava.stats.refresh_reuse.load(SeqCst), 1);

    // A 429 (no Retry-After): the job goes back to the queue, no error recorded.
    strava.limiter.force_429(1);
    let (status, _) = c.post("/v1/sync", "bob", r#"{"vendor":"strava"}"#).await;
    assert_eq!(status, 202);
    assert_eq!(drain(&stack).await, (1, 0), "handed on, not failed");
    assert_eq!(
        queue_depth(&stack).await,
        1,
        "its days wait in a new message"
    );
    assert_eq!(strava.stats.rate_limited.load(SeqCst), 1);
    let (_, providers) = c.get("/v1/providers", "bob").await;
    assert_eq!(entry(&providers)["status"], "connected", "{providers}");

    // The athlete deauthorizes the app at Strava → Strava refuses the grant
    // and sends the event → the connection is revoked.
    strava.user_removes_app(&athlete);
    let deauth = event_body(
        &strava,
        &athlete,
        "deauthorize",
        0,
        Utc::now().timestamp(),
        false,
    );
    let (status, answer) = deliver_webhook(&target, &deauth).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    let (_, providers) = c.get("/v1/providers", "bob").await;
    assert_eq!(entry(&providers)["status"], "revoked", "{providers}");

    // Connecting the same athlete again makes it connected.
    let url = c.begin_connect("strava", "bob").await;
    let back = c.consent("bob", &format!("{url}&login={athlete}")).await;
    assert_eq!(back["status"], "connected", "{back:?}");
    drain(&stack).await;

    // Disconnect deauthorizes at Strava and deletes the tokens here.
    let (status, body) = c
        .call("DELETE", "/v1/connections/strava", Some("bob"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked_at_vendor"], true);
    assert_eq!(strava.stats.revocations.load(SeqCst), 1);
    assert_eq!(strava.oauth.lock().unwrap().live_tokens(&athlete), 0);
    assert!(connection(&stack, "bob", Vendor::Strava).await.is_none());

    // No token or secret reached a log line.
    let logs = captured_logs();
    for secret in [
        t.access_token.expose(),
        t2.access_token.expose(),
        t2.refresh_token.as_ref().unwrap().expose(),
        &strava.app.client_secret,
        &strava.app.verify_token,
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}
