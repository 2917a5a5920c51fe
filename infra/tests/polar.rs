//! Polar AccessLink end to end through the local gateway and the vendor
//! simulator: connect (HTTP Basic client credentials checked by the
//! simulator), registration under a hashed member id (and 409 on
//! reconnect), the x_user_id and sealed long-lived token stored, the
//! backfill normalized onto the user's local days, the unsigned PING,
//! signed webhooks (and forged ones) → pulls, a refused token with no
//! refresh token → `refresh_failed` without retries, disconnect →
//! deregistration.

mod common;

use chrono::{Duration, FixedOffset, Utc};
use common::*;
use connector_core::domain::connection::ConnectionStatus;
use connector_core::domain::health::MetricType;
use connector_core::vendors::driver::{FetchRequest, VendorDriver};
use connector_core::vendors::polar::member_id;
use connector_core::Vendor;
use connector_infra::simulator::polar::{day, deliver_ping, deliver_webhook, payload};
use std::sync::atomic::Ordering::SeqCst;

fn local_today() -> chrono::NaiveDate {
    Utc::now()
        .with_timezone(&FixedOffset::east_opt(3600).unwrap())
        .date_naive()
}

#[tokio::test]
async fn polar_connect_register_backfill_webhook_expiry_and_disconnect() {
    let (sim, stack) = sim_stack("polar").await;
    let polar = sim.sim(Vendor::Polar).clone();
    let c = Client::new(&stack);

    let (_, providers) = c.get("/v1/providers", "paula").await;
    let entry = |p: &serde_json::Value| provider_of(p, "polar");
    assert_eq!(entry(&providers)["supported"], true);

    // The simulated token endpoint takes client credentials only as Basic.
    let refused = reqwest::Client::new()
        .post(format!("{}/v2/oauth2/token", sim.base(Vendor::Polar)))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", polar.app.client_id.as_str()),
            ("client_secret", polar.app.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);

    // Connect: Basic client auth; the callback registers the user under a
    // hashed member id and stores x_user_id and the sealed token.
    let url = c.begin_connect("polar", "paula").await;
    assert_eq!(query_of(&url)["scope"], "accesslink.read_all");
    let back = c.consent("paula", &url).await;
    assert_eq!(back["status"], "connected", "{back:?}");
    let conn = connection(&stack, "paula", Vendor::Polar).await.unwrap();
    let vendor_user = conn.vendor_user_id.clone();
    assert!(vendor_user.parse::<i64>().is_ok(), "{vendor_user}");
    let member = connector_infra::simulator::polar::state(&polar)
        .registrations
        .lock()
        .unwrap()
        .get(&vendor_user)
        .cloned();
    assert_eq!(member, Some(member_id("paula")));
    assert!(!member.unwrap().contains("paula"));
    let t = stack.app.envelope().open_tokens(&conn).await.unwrap();
    assert!(!conn.sealed_access_token.contains(t.access_token.expose()));
    assert!(t.refresh_token.is_none(), "Polar issues no refresh token");
    assert!(t.expires_at.unwrap() > Utc::now() + Duration::days(3650 - 2));

    // The backfill: exercises, sleep, recharge, activities, daily HR.
    assert_eq!(drain(&stack).await, (1, 0));
    let (status, reports) = c.get("/v1/reports?days=14", "paula").await;
    assert_eq!(status, 200, "{reports}");
    let date = local_today() - Duration::days(3);
    let expected = day(&vendor_user, date);
    let row = report_on(&reports, date);
    assert_eq!(row["hrv"], expected.hrv as f64, "{row}");
    assert_eq!(row["sleep_score"], expected.sleep_score as f64);
    assert_eq!(row["steps"], expected.steps as f64);
    assert_eq!(row["calories"], expected.calories as f64);
    assert!(
        row["resting_hr"].is_null(),
        "Polar has no resting HR: {row}"
    );
    assert_eq!(row["sources"]["hrv"], "polar");

    let q = format!("/v1/metrics?types=sleep_duration,heart_rate&since={date}&until={date}");
    let (_, m) = c.get(&q, "paula").await;
    let series = m["series"].as_array().unwrap();
    let (light, deep, rem, unrec) = expected.stages;
    assert_eq!(
        series[0]["points"][0]["value"],
        (light + deep + rem + unrec) as f64 / 60.0,
        "{m}"
    );
    let hr = series[1]["points"].as_array().unwrap();
    assert_eq!(hr.len(), 24, "{hr:?}");
    // 00:05 device time on `date` in UTC+1 is 23:05Z the day before.
    let first = hr
        .iter()
        .map(|p| p["time"].as_str().unwrap().to_string())
        .min()
        .unwrap();
    let prev = date - Duration::days(1);
    assert!(first.starts_with(&format!("{prev}T23:05:00")), "{first}");

    // An exercise: duration (to 0.1 min), kcal and sport, on its local day.
    let (xdate, x) = (1..14)
        .map(|n| local_today() - Duration::days(n))
        .find_map(|d| day(&vendor_user, d).exercise.map(|x| (d, x)))
        .expect("an exercise in two weeks");
    let q =
        format!("/v1/metrics?types=workout_duration,workout_calories&since={xdate}&until={xdate}");
    let (_, m) = c.get(&q, "paula").await;
    let series = m["series"].as_array().unwrap();
    let minutes = (x.2 as f64 / 60.0 * 10.0).round() / 10.0;
    assert_eq!(series[0]["points"][0]["value"], minutes, "{m}");
    assert_eq!(series[0]["points"][0]["label"], "RUNNING");
    assert_eq!(series[1]["points"][0]["value"], x.3 as f64);

    // Activities are refused past 28 days a request or 365 days back; a
    // 400-day pull is cut to fit.
    let base = sim.base(Vendor::Polar);
    for (from, to) in [
        (local_today() - Duration::days(28), local_today()),
        (
            local_today() - Duration::days(370),
            local_today() - Duration::days(360),
        ),
    ] {
        let r = reqwest::Client::new()
            .get(format!("{base}/v3/users/activities"))
            .query(&[("from", from.to_string()), ("to", to.to_string())])
            .bearer_auth(t.access_token.expose())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{from}..{to}");
    }
    let (driver, ctx) = stack.app.driver(Vendor::Polar).await.unwrap();
    let long = driver
        .fetch(
            &ctx,
            FetchRequest {
                user_id: "paula",
                vendor_user_id: &vendor_user,
                access_token: t.access_token.expose(),
                from: local_today() - Duration::days(400),
                to: local_today(),
                reason: connector_core::domain::job::JobReason::Manual,
            },
        )
        .await
        .unwrap();
    let step_days = long
        .samples
        .iter()
        .filter(|s| s.metric == MetricType::Steps)
        .count();
    assert!(step_days >= 360, "{step_days} days of steps");

    let raw = stack
        .app
        .health
        .raw_records("paula", Vendor::Polar)
        .await
        .unwrap();
    for kind in [
        "exercise",
        "sleep",
        "nightly_recharge",
        "activity",
        "continuous_heart_rate",
    ] {
        assert!(raw.iter().any(|(k, _, _)| k == kind), "no raw {kind}");
    }

    // The PING (unsigned: sent before the secret exists) → 200, nothing queued.
    let target = format!("{}/v1/webhooks/polar", stack.url());
    let (status, body) = deliver_ping(&polar, &target).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(queue_depth(&stack).await, 0);

    // A signed SLEEP event → one pull; its re-delivery → duplicate; a
    // forged one → 401 with nothing queued.
    let body = payload("SLEEP", &vendor_user, &date.to_string(), Utc::now());
    let (status, answer) = deliver_webhook(&polar, &target, &body, false).await;
    assert_eq!(status, 200, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["status"], "accepted", "{answer}");
    assert_eq!(queue_depth(&stack).await, 1);
    let (_, answer) = deliver_webhook(&polar, &target, &body, false).await;
    assert_eq!(
        answer, r#"{"status":"accepted"}"#,
        "a duplicate gets the same answer"
    );
    assert_eq!(act_on_notices(&stack).await.len(), 2);
    assert_eq!(queue_depth(&stack).await, 1, "the duplicate queued nothing");
    let before = polar.stats.api_requests.load(SeqCst);
    assert_eq!(drain(&stack).await, (1, 0));
    assert!(polar.stats.api_requests.load(SeqCst) > before);
    let forged = payload("EXERCISE", &vendor_user, "forged01", Utc::now());
    let (status, _) = deliver_webhook(&polar, &target, &forged, true).await;
    assert_eq!(status, 401);
    assert_eq!(queue_depth(&stack).await, 0);

    // Reconnecting the same Polar account: registration answers 409
    // (already registered), which is fine.
    let url = c.begin_connect("polar", "paula").await;
    let back = c
        .consent("paula", &format!("{url}&login={vendor_user}"))
        .await;
    assert_eq!(back["status"], "connected", "{back:?}");
    assert_eq!(
        connector_infra::simulator::polar::state(&polar)
            .registrations
            .lock()
            .unwrap()
            .len(),
        1
    );
    let again = connection(&stack, "paula", Vendor::Polar).await.unwrap();
    assert_eq!(again.vendor_user_id, vendor_user);
    assert_eq!(drain(&stack).await, (1, 0));

    // Polar refuses the token (revoked or expired) and there is no refresh
    // token: the job ends, the connection says "reconnect", no retries.
    polar.oauth.lock().unwrap().expire_access(&vendor_user);
    let (status, _) = c.post("/v1/sync", "paula", r#"{"vendor":"polar"}"#).await;
    assert_eq!(status, 202);
    assert_eq!(drain(&stack).await, (1, 0));
    assert_eq!(queue_depth(&stack).await, 0);
    assert_eq!(polar.stats.refresh_requests.load(SeqCst), 0);
    let stored = connection(&stack, "paula", Vendor::Polar).await.unwrap();
    assert_eq!(stored.status, ConnectionStatus::RefreshFailed);
    let (_, providers) = c.get("/v1/providers", "paula").await;
    let p = entry(&providers);
    assert_eq!(p["status"], "refresh_failed", "{p}");
    let told = feed(&c, "paula", 50).await;
    let failed: Vec<_> = told
        .iter()
        .filter(|e| e["type"] == "connection.refresh_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{told:#?}");
    assert!(failed[0]["data"]["reason"]
        .as_str()
        .unwrap()
        .contains("reconnect"));
    assert!(p["error"].as_str().unwrap().contains("reconnect"), "{p}");
    let (status, _) = c.post("/v1/sync", "paula", r#"{"vendor":"polar"}"#).await;
    assert_eq!(status, 409);

    // Reconnecting heals it; disconnect deregisters the user at Polar
    // (which revokes the token) and deletes the tokens here.
    let url = c.begin_connect("polar", "paula").await;
    let back = c
        .consent("paula", &format!("{url}&login={vendor_user}"))
        .await;
    assert_eq!(back["status"], "connected", "{back:?}");
    drain(&stack).await;
    let (status, body) = c
        .call("DELETE", "/v1/connections/polar", Some("paula"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked_at_vendor"], true);
    assert_eq!(polar.stats.revocations.load(SeqCst), 1);
    assert!(connector_infra::simulator::polar::state(&polar)
        .registrations
        .lock()
        .unwrap()
        .is_empty());
    assert_eq!(polar.oauth.lock().unwrap().live_tokens(&vendor_user), 0);
    assert!(connection(&stack, "paula", Vendor::Polar).await.is_none());

    let logs = captured_logs();
    for secret in [
        t.access_token.expose(),
        &polar.app.client_secret,
        &polar.app.webhook_secret,
    ] {
        assert!(!logs.contains(secret));
    }
}
