//! Oura end to end through the local gateway and the vendor simulator:
//! connect (body client credentials, PKCE checked by the simulator), the
//! user id from personal_info and sealed tokens stored, the paginated
//! backfill normalized onto Oura's own days, the subscription handshake,
//! signed webhooks (and forged ones) → pulls, refresh with a rotating
//! single-use refresh token, 429 → retry later, disconnect → revoke.

mod common;

use chrono::{Duration, FixedOffset, Utc};
use common::*;
use connector_core::domain::connection::ConnectionStatus;
use connector_core::domain::health::MetricType;
use connector_core::domain::vendor::VendorError;
use connector_core::vendors::driver::{FetchRequest, VendorDriver};
use connector_core::vendors::token;
use connector_core::Vendor;
use connector_infra::simulator::oura::{day, deliver_handshake, deliver_webhook, Event};
use std::sync::atomic::Ordering::SeqCst;

fn local_today() -> chrono::NaiveDate {
    Utc::now()
        .with_timezone(&FixedOffset::west_opt(5 * 3600).unwrap())
        .date_naive()
}

fn subscription_count(oura: &connector_infra::simulator::VendorSim) -> usize {
    connector_infra::simulator::oura::state(oura)
        .subscriptions
        .lock()
        .unwrap()
        .len()
}

fn event(object_id: &str, event_time: &str) -> Event {
    Event {
        event_type: "update".into(),
        data_type: "sleep".into(),
        object_id: object_id.into(),
        event_time: event_time.into(),
    }
}

#[tokio::test]
async fn oura_connect_backfill_webhook_refresh_and_disconnect() {
    let (sim, stack) = sim_stack("oura").await;
    let oura = sim.sim(Vendor::Oura).clone();
    let c = Client::new(&stack);

    let (_, providers) = c.get("/v1/providers", "olivia").await;
    let entry = |p: &serde_json::Value| provider_of(p, "oura");
    assert_eq!(entry(&providers)["supported"], true);

    // Connect: the simulator checks the body credentials and PKCE; the
    // callback stores the Oura id from personal_info and sealed tokens.
    let url = c.begin_connect("oura", "olivia").await;
    let params = query_of(&url);
    assert_eq!(params["scope"], "daily heartrate workout spo2Daily");
    let back = c.consent("olivia", &url).await;
    assert_eq!(back["status"], "connected", "{back:?}");
    assert_eq!(oura.stats.pkce_failures.load(SeqCst), 0);
    let conn = connection(&stack, "olivia", Vendor::Oura).await.unwrap();
    let vendor_user = conn.vendor_user_id.clone();
    assert!(vendor_user.starts_with("sim-oura-user-"), "{vendor_user}");
    assert!(oura.users.lock().unwrap().contains_key(&vendor_user));
    let t = stack.app.envelope().open_tokens(&conn).await.unwrap();
    assert!(!conn.sealed_access_token.contains(t.access_token.expose()));
    assert!(t.refresh_token.is_some());

    // The backfill pages through every collection (5 documents a page).
    let before = oura.stats.api_requests.load(SeqCst);
    assert_eq!(drain(&stack).await, (1, 0));
    let pulls = oura.stats.api_requests.load(SeqCst) - before;
    assert!(pulls >= 7 + 6, "{pulls} API calls: every collection, pages");

    // Daily values land on Oura's day (UTC-5 user), exactly as sent.
    let (status, reports) = c.get("/v1/reports?days=14", "olivia").await;
    assert_eq!(status, 200, "{reports}");
    let date = local_today() - Duration::days(3);
    let expected = day(&vendor_user, -300, date);
    let row = report_on(&reports, date);
    assert_eq!(row["hrv"], expected.average_hrv as f64, "{row}");
    assert_eq!(row["resting_hr"], expected.lowest_heart_rate as f64);
    assert_eq!(row["sleep_score"], expected.sleep_score as f64);
    assert_eq!(row["steps"], expected.steps as f64);
    assert_eq!(row["calories"], expected.total_calories as f64);
    assert_eq!(row["sources"]["hrv"], "oura");

    // Series: readiness, sleep minutes (no nap), SpO2, heart rate.
    let q = format!(
        "/v1/metrics?types=readiness,sleep_duration,spo2,heart_rate&since={date}&until={date}"
    );
    let (status, m) = c.get(&q, "olivia").await;
    assert_eq!(status, 200, "{m}");
    let series = m["series"].as_array().unwrap();
    let points = |metric: &str| {
        series
            .iter()
            .find(|s| s["type"] == metric)
            .unwrap_or_else(|| panic!("no {metric}: {m}"))["points"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert_eq!(points("readiness")[0]["value"], expected.readiness as f64);
    let sleep = points("sleep_duration");
    assert_eq!(sleep.len(), 1, "the nap adds nothing: {sleep:?}");
    assert_eq!(sleep[0]["value"], expected.total_sleep_secs as f64 / 60.0);
    assert_eq!(points("spo2")[0]["value"], expected.spo2);
    // Hourly rows: the local day's 24 hours, 05:00Z to 05:00Z.
    let hr = points("heart_rate");
    assert_eq!(hr.len(), 24, "{hr:?}");

    // A workout day: duration, kcal and sport as sent, on its local day.
    let (wdate, w) = (1..14)
        .map(|n| local_today() - Duration::days(n))
        .find_map(|d| day(&vendor_user, -300, d).workout.map(|w| (d, w)))
        .expect("a workout in two weeks");
    let q =
        format!("/v1/metrics?types=workout_duration,workout_calories&since={wdate}&until={wdate}");
    let (_, m) = c.get(&q, "olivia").await;
    let series = m["series"].as_array().unwrap();
    assert_eq!(series[0]["points"][0]["value"], w.2 as f64, "{m}");
    assert_eq!(series[0]["points"][0]["label"], "running");
    assert_eq!(series[1]["points"][0]["value"], w.3);

    // A long window is cut to Oura's limits: heart rate is refused past
    // 30 days by the simulator, yet a 75-day pull goes through.
    let base = sim.base(Vendor::Oura);
    let wide = reqwest::Client::new()
        .get(format!("{base}/v2/usercollection/heartrate"))
        .query(&[
            ("start_datetime", "2026-01-01T00:00:00Z"),
            ("end_datetime", "2026-02-01T00:00:00Z"),
        ])
        .bearer_auth(t.access_token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(wide.status().as_u16(), 400);
    let (driver, ctx) = stack.app.driver(Vendor::Oura).await.unwrap();
    let long = driver
        .fetch(
            &ctx,
            FetchRequest {
                user_id: "olivia",
                vendor_user_id: &vendor_user,
                access_token: t.access_token.expose(),
                from: local_today() - Duration::days(75),
                to: local_today(),
                reason: connector_core::domain::job::JobReason::Manual,
            },
        )
        .await
        .unwrap();
    let days: std::collections::BTreeSet<_> = long
        .samples
        .iter()
        .filter(|s| s.metric == MetricType::HeartRate)
        .map(|s| s.date)
        .collect();
    assert!(days.len() >= 75, "{} days of heart rate", days.len());

    // Raw records are kept for audit and re-processing.
    let raw = stack
        .app
        .health
        .raw_records("olivia", Vendor::Oura)
        .await
        .unwrap();
    for kind in [
        "daily_sleep",
        "sleep",
        "daily_readiness",
        "daily_activity",
        "heartrate",
    ] {
        assert!(raw.iter().any(|(k, _, _)| k == kind), "no raw {kind}");
    }

    // The subscription handshake: the challenge comes back as JSON only
    // for the configured verification token.
    let target = format!("{}/v1/webhooks/oura", stack.url());
    let (status, body, accepted) = deliver_handshake(&target, &oura.app.verify_token).await;
    assert!(accepted, "{status} {body}");
    let (status, _, accepted) = deliver_handshake(&target, "not-the-verify-token").await;
    assert_eq!(status, 401);
    assert!(!accepted);

    // A signed webhook → one pull; its re-delivery → duplicate; a forged
    // one → 401 with nothing queued.
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let (status, body) =
        deliver_webhook(&oura, &target, &vendor_user, &event("obj-1", &now), false).await;
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["status"], "accepted", "{body}");
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    assert_eq!(queue_depth(&stack).await, 1);
    let (_, body) =
        deliver_webhook(&oura, &target, &vendor_user, &event("obj-1", &now), false).await;
    assert_eq!(
        body, r#"{"status":"accepted"}"#,
        "a duplicate gets the same answer"
    );
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    assert_eq!(queue_depth(&stack).await, 1);
    assert_eq!(drain(&stack).await, (1, 0));
    let (status, _) =
        deliver_webhook(&oura, &target, &vendor_user, &event("obj-2", &now), true).await;
    assert_eq!(status, 401);
    assert_eq!(queue_depth(&stack).await, 0);

    // The access token died at Oura: the worker's 401 → one refresh; the
    // refresh token rotated, and the spent one is refused.
    oura.oauth.lock().unwrap().expire_access(&vendor_user);
    let refreshes = oura.stats.refresh_requests.load(SeqCst);
    let (status, _) = c.post("/v1/sync", "olivia", r#"{"vendor":"oura"}"#).await;
    assert_eq!(status, 202);
    assert_eq!(drain(&stack).await, (1, 0));
    assert_eq!(oura.stats.refresh_requests.load(SeqCst), refreshes + 1);
    assert_eq!(oura.stats.refresh_reuse.load(SeqCst), 0);
    let after = connection(&stack, "olivia", Vendor::Oura).await.unwrap();
    assert_eq!(after.token_version, conn.token_version + 1);
    assert_eq!(after.status, ConnectionStatus::Connected);
    let fresh = stack.app.envelope().open_tokens(&after).await.unwrap();
    let old_refresh = t.refresh_token.clone().unwrap();
    assert_ne!(
        fresh.refresh_token.as_ref().unwrap().expose(),
        old_refresh.expose()
    );
    let creds = stack.app.vendor_credentials(Vendor::Oura).await.unwrap();
    let reuse = token::refresh(stack.app.http(), &creds, old_refresh.expose()).await;
    assert!(matches!(reuse, Err(VendorError::RefreshRejected)));
    assert_eq!(oura.stats.refresh_reuse.load(SeqCst), 1);

    // A 429 from Oura: the job is retried later, nothing recorded as an error.
    oura.limiter.force_429(1);
    let (status, _) = c.post("/v1/sync", "olivia", r#"{"vendor":"oura"}"#).await;
    assert_eq!(status, 202);
    assert_eq!(drain(&stack).await, (1, 0), "handed on, not failed");
    assert_eq!(
        queue_depth(&stack).await,
        1,
        "its days wait in a new message"
    );
    assert_eq!(oura.stats.rate_limited.load(SeqCst), 1);
    let (_, providers) = c.get("/v1/providers", "olivia").await;
    assert_eq!(entry(&providers)["status"], "connected", "{providers}");

    // Disconnect revokes at Oura and deletes the tokens here.
    let (status, body) = c
        .call("DELETE", "/v1/connections/oura", Some("olivia"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked_at_vendor"], true);
    assert_eq!(oura.stats.revocations.load(SeqCst), 1);
    assert_eq!(oura.oauth.lock().unwrap().live_tokens(&vendor_user), 0);
    assert!(connection(&stack, "olivia", Vendor::Oura).await.is_none());

    // No token or secret reached a log line.
    let logs = captured_logs();
    for secret in [
        t.access_token.expose(),
        old_refresh.expose(),
        fresh.access_token.expose(),
        fresh.refresh_token.as_ref().unwrap().expose(),
        &oura.app.client_secret,
        &oura.app.verify_token,
    ] {
        assert!(!logs.contains(secret));
    }
}

#[tokio::test]
async fn oura_subscriptions_pass_the_handshake_and_are_renewed() {
    use connector_core::domain::connection::Secret;
    use connector_core::vendors::oura::subscriptions::{self, DATA_TYPES, EVENT_TYPES};
    use connector_infra::simulator::oura::expire_subscriptions;

    let (sim, stack) = sim_stack("oura-subs").await;
    let oura = sim.sim(Vendor::Oura).clone();
    let (_, ctx) = stack.app.driver(Vendor::Oura).await.unwrap();
    let callback = format!("{}/v1/webhooks/oura", stack.url());
    let week = Duration::days(subscriptions::RENEW_WITHIN_DAYS);
    let wanted = DATA_TYPES.len() * EVENT_TYPES.len();

    // Every (event, data type) is created, each after Oura's handshake
    // against the webhook function.
    let r = subscriptions::ensure(&ctx, &callback, Utc::now(), week)
        .await
        .unwrap();
    assert_eq!((r.created.len(), r.renewed.len(), r.kept), (wanted, 0, 0));
    assert_eq!(subscription_count(&oura), wanted);

    // Run again: nothing to do. Two expire in a day: those two are renewed.
    let r = subscriptions::ensure(&ctx, &callback, Utc::now(), week)
        .await
        .unwrap();
    assert_eq!((r.created.len(), r.renewed.len(), r.kept), (0, 0, wanted));
    let soon = expire_subscriptions(&oura, 2, 1);
    let r = subscriptions::ensure(&ctx, &callback, Utc::now(), week)
        .await
        .unwrap();
    assert_eq!(r.renewed, soon);
    assert_eq!(r.kept, wanted - 2);
    let listed = subscriptions::list(&ctx).await.unwrap();
    assert!(listed
        .iter()
        .all(|s| s.expiration_time > Utc::now() + Duration::days(80)));

    // A verification token our webhook does not know fails the handshake,
    // so Oura creates nothing; wrong app credentials are refused.
    let mut wrong_token = ctx.clone();
    wrong_token.creds.verify_token = Some(Secret::new("not-the-verify-token"));
    let err = subscriptions::create(&wrong_token, &callback, "create", "tag")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("400"), "{err}");
    let mut wrong_secret = ctx.clone();
    wrong_secret.creds.client_secret = Some(Secret::new("not-the-client-secret"));
    assert!(matches!(
        subscriptions::list(&wrong_secret).await,
        Err(VendorError::Unauthorized)
    ));
    assert_eq!(subscription_count(&oura), wanted);

    let logs = captured_logs();
    assert!(!logs.contains(&oura.app.client_secret));
    assert!(!logs.contains(&oura.app.verify_token));
}

#[tokio::test]
async fn the_scheduled_tick_renews_oura_subscriptions_before_they_expire() {
    use connector_core::flows::tick::upkeep_claim;
    use connector_core::vendors::oura::subscriptions::{DATA_TYPES, EVENT_TYPES};
    use connector_infra::simulator::oura::expire_subscriptions;

    let (sim, stack) = sim_stack("oura-upkeep").await;
    let oura = sim.sim(Vendor::Oura).clone();
    let wanted = DATA_TYPES.len() * EVENT_TYPES.len();
    let event = || serde_json::from_value(event_file("token-refresher.json")).unwrap();

    // The first tick subscribes this deployment's webhook URL to everything.
    let r = token_refresher::handle(&stack.app, event()).await;
    assert_eq!(
        (r.subscriptions_created, r.subscriptions_renewed),
        (wanted, 0)
    );
    let subs = connector_infra::simulator::oura::state(&oura)
        .subscriptions
        .lock()
        .unwrap()
        .clone();
    assert!(subs
        .iter()
        .all(|s| s["callback_url"] == format!("{}/v1/webhooks/oura", stack.url())));

    // Two subscriptions now expire tomorrow. Ticks within six hours leave
    // Oura alone (one check per six hours across the fleet)...
    let soon = expire_subscriptions(&oura, 2, 1);
    let r = token_refresher::handle(&stack.app, event()).await;
    assert_eq!((r.subscriptions_created, r.subscriptions_renewed), (0, 0));
    // ...and the first tick after them renews exactly those two.
    stack
        .app
        .ephemeral
        .delete(&upkeep_claim(Vendor::Oura))
        .await
        .unwrap();
    let r = token_refresher::handle(&stack.app, event()).await;
    assert_eq!(
        (r.subscriptions_created, r.subscriptions_renewed),
        (0, soon.len())
    );
    let subs = connector_infra::simulator::oura::state(&oura)
        .subscriptions
        .lock()
        .unwrap()
        .clone();
    assert_eq!(subs.len(), wanted);
    for s in subs
        .iter()
        .filter(|s| soon.contains(&s["id"].as_str().unwrap().to_string()))
    {
        let expires: chrono::DateTime<chrono::FixedOffset> =
            s["expiration_time"].as_str().unwrap().parse().unwrap();
        assert!(expires > Utc::now() + Duration::days(80), "{s}");
    }
}
