//! End to end through the local gateway, on the AWS emulator, as a user of
//! the API sees it: the acceptance of the walking skeleton.

mod common;

use common::*;
use connector_core::domain::connection::ConnectionStatus;
use connector_core::vendors::driver::VendorDriver;
use connector_core::Vendor;

fn today_row<'a>(reports: &'a serde_json::Value, date: &str) -> Vec<&'a serde_json::Value> {
    reports["reports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["date"] == date)
        .collect()
}

#[tokio::test]
async fn providers_without_keys_list_only_mock_as_supported() {
    let stack = stack("providers").await;
    let c = Client::new(&stack);
    let (status, body) = c.get("/v1/providers", "alice").await;
    assert_eq!(status, 200, "{body}");
    let providers = body["providers"].as_array().unwrap();
    let ids: Vec<&str> = providers
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "mock", "whoop", "garmin", "fitbit", "oura", "polar", "strava", "dexcom", "withings",
            "terra"
        ]
    );
    for p in providers {
        assert_eq!(p["supported"], p["id"] == "mock", "{p}");
        assert_eq!(p["connected"], false);
    }
}

#[tokio::test]
async fn providers_with_keys_are_supported() {
    let mut opts = options("providers-keys");
    opts.extra_env
        .insert("CONNECTOR_OURA_CLIENT_ID".into(), "fake-oura-id".into());
    opts.extra_env.insert(
        "CONNECTOR_OURA_CLIENT_SECRET".into(),
        "fake-oura-secret".into(),
    );
    opts.extra_env.insert(
        "CONNECTOR_GARMIN_CLIENT_ID".into(),
        "fake-garmin-id-only".into(),
    );
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let (_, body) = Client::new(&stack).get("/v1/providers", "alice").await;
    let supported = |id: &str| {
        body["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap()["supported"]
            .clone()
    };
    assert_eq!(supported("oura"), true);
    assert_eq!(
        supported("garmin"),
        false,
        "a client id alone is not enough"
    );
    assert_eq!(supported("mock"), true);
}

#[tokio::test]
async fn user_routes_need_a_valid_jwt_and_public_ones_do_not() {
    let stack = stack("auth").await;
    let c = Client::new(&stack);
    for (method, path) in [
        ("GET", "/v1/providers"),
        ("POST", "/v1/connections/mock"),
        ("DELETE", "/v1/connections/mock"),
        ("POST", "/v1/sync"),
        ("GET", "/v1/reports"),
        ("GET", "/v1/metrics?types=hrv"),
    ] {
        let (status, body) = c.call(method, path, None, None).await;
        assert_eq!(status, 401, "{method} {path}: {body}");
        for bad in [
            "not-a-jwt".to_string(),
            connector_infra::dev_jwt::mint("some-other-secret", "alice", 600),
            connector_infra::dev_jwt::mint(
                &connector_infra::dev_jwt::secret_from_env(),
                "alice",
                -600,
            ),
        ] {
            let resp = c
                .http
                .request(method.parse().unwrap(), format!("{}{}", c.base, path))
                .bearer_auth(bad)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 401, "{method} {path}");
        }
    }
    // Public routes reach their function without a JWT (and fail on their own terms).
    let (status, _) = c
        .call("GET", "/v1/oauth/whoop/callback?code=x&state=y", None, None)
        .await;
    assert_eq!(status, 400);
    let (status, _) = c.call("POST", "/v1/webhooks/mock", None, Some("{}")).await;
    assert_eq!(status, 401);
    let (status, _) = c.call("GET", "/v1/nope", Some("alice"), None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn connect_sync_and_report_without_duplicates() {
    let stack = stack("sync").await;
    let c = Client::new(&stack);
    let (status, body) = c.post("/v1/connections/mock", "alice", "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "connected");
    // The connect enqueued a backfill; drain it.
    assert_eq!(drain(&stack).await, (1, 0));

    let (status, body) = c.post("/v1/sync", "alice", r#"{"vendor":"mock"}"#).await;
    assert_eq!(status, 202, "{body}");
    assert!(body["job_id"].as_str().is_some());
    assert_eq!(drain(&stack).await, (1, 0));

    let (status, first) = c.get("/v1/reports?days=14", "alice").await;
    assert_eq!(status, 200);
    assert_eq!(
        first["reports"].as_array().unwrap().len(),
        14,
        "backfill covers 14 days"
    );
    let rows = today_row(&first, &today());
    assert_eq!(rows.len(), 1, "{first}");
    for field in [
        "hrv",
        "resting_hr",
        "sleep_score",
        "stress",
        "steps",
        "calories",
    ] {
        assert!(rows[0][field].is_number(), "{field} in {}", rows[0]);
        assert_eq!(rows[0]["sources"][field], "mock");
    }

    // Syncing again updates the same rows; never a second row for a day.
    c.post("/v1/sync", "alice", r#"{"vendor":"mock","days":2}"#)
        .await;
    drain(&stack).await;
    let (_, second) = c.get("/v1/reports?days=14", "alice").await;
    assert_eq!(second["reports"].as_array().unwrap().len(), 14);
    assert_eq!(today_row(&second, &today()).len(), 1);
    assert_eq!(
        first, second,
        "deterministic mock data re-synced is unchanged"
    );

    let (_, providers) = c.get("/v1/providers", "alice").await;
    let mock = &providers["providers"][0];
    assert_eq!(mock["connected"], true);
    assert_eq!(mock["status"], "connected");
    assert!(mock["last_sync_at"].is_string());

    let (status, metrics) = c
        .get(
            &format!(
                "/v1/metrics?types=hrv,steps&since={}&until={}",
                days_ago(1),
                today()
            ),
            "alice",
        )
        .await;
    assert_eq!(status, 200, "{metrics}");
    assert_eq!(metrics["series"][0]["type"], "hrv");
    assert_eq!(metrics["series"][0]["unit"], "ms");
    assert_eq!(metrics["series"][0]["points"].as_array().unwrap().len(), 2);
    assert_eq!(metrics["series"][1]["unit"], "count");
}

#[tokio::test]
async fn bad_parameters_are_400_problems() {
    let stack = stack("params").await;
    let c = Client::new(&stack);
    c.post("/v1/connections/mock", "alice", "").await;
    for (method, path, body) in [
        ("GET", "/v1/reports?days=0", None),
        ("GET", "/v1/reports?days=91", None),
        ("GET", "/v1/reports?days=abc", None),
        ("GET", "/v1/metrics", None),
        ("GET", "/v1/metrics?types=hrv,nope", None),
        ("GET", "/v1/metrics?types=hrv&since=2026-13-01", None),
        (
            "GET",
            "/v1/metrics?types=hrv&since=2026-02-01&until=2026-01-01",
            None,
        ),
        ("POST", "/v1/sync", Some("{")),
        ("POST", "/v1/sync", Some("{}")),
        ("POST", "/v1/sync", Some(r#"{"vendor":"apple"}"#)),
        ("POST", "/v1/sync", Some(r#"{"vendor":"mock","days":0}"#)),
        ("POST", "/v1/sync", Some(r#"{"vendor":"mock","extra":1}"#)),
    ] {
        let (status, problem) = c.call(method, path, Some("alice"), body).await;
        assert_eq!(status, 400, "{method} {path} {body:?}: {problem}");
        assert_eq!(problem["status"], 400);
        assert!(problem["title"].is_string() && problem["detail"].is_string());
    }
    let (status, _) = c.post("/v1/connections/apple", "alice", "").await;
    assert_eq!(status, 404);
    let (status, problem) = c.post("/v1/connections/whoop", "alice", "").await;
    assert_eq!(status, 409, "unconfigured vendor: {problem}");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("CONNECTOR_WHOOP_CLIENT_ID"));
    let big = format!(r#"{{"vendor":"mock","pad":"{}"}}"#, "x".repeat(70 * 1024));
    let (status, _) = c.post("/v1/sync", "alice", &big).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn signed_webhook_leads_to_data_once_and_forgeries_queue_nothing() {
    let stack = stack("webhook").await;
    let c = Client::new(&stack);
    c.post("/v1/connections/mock", "alice", "").await;
    drain(&stack).await;
    // A day the backfill did not cover.
    let date = days_ago(30);
    let metrics_path = format!("/v1/metrics?types=hrv&since={date}&until={date}");
    let (_, before) = c.get(&metrics_path, "alice").await;
    assert_eq!(before["series"][0]["points"].as_array().unwrap().len(), 0);

    let w = signed_webhook(&stack, "evt-1", "alice", &date);
    let (status, body) = c.deliver(&w).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "accepted");
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    assert_eq!(queue_depth(&stack).await, 1);

    // The same delivery again is a no-op.
    let (status, body) = c.deliver(&w).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["status"], "accepted",
        "a duplicate gets the same answer"
    );
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    assert_eq!(queue_depth(&stack).await, 1, "the duplicate queued nothing");

    assert_eq!(drain(&stack).await, (1, 0));
    let (_, after) = c.get(&metrics_path, "alice").await;
    assert_eq!(
        after["series"][0]["points"].as_array().unwrap().len(),
        1,
        "{after}"
    );

    // Tampered body, unsigned, stale, wrong secret: 401 and nothing queued.
    let fresh = signed_webhook(&stack, "evt-2", "alice", &date);
    let tampered = fresh.body.replace("evt-2", "evt-3");
    let stale_ts = (chrono::Utc::now().timestamp() - 301).to_string();
    let stale_sig = connector_core::vendors::signature::sign_hex_sha256(
        stack.env["CONNECTOR_MOCK_WEBHOOK_SECRET"].as_bytes(),
        &[stale_ts.as_bytes(), b".", fresh.body.as_bytes()],
    );
    let forged = connector_infra::mock_webhook::sign(
        "not-the-secret",
        "evt-4",
        "alice",
        &date,
        chrono::Utc::now().timestamp(),
    );
    for (body, ts, sig, what) in [
        (
            tampered.as_str(),
            Some(fresh.timestamp.as_str()),
            Some(fresh.signature.as_str()),
            "tampered",
        ),
        (
            fresh.body.as_str(),
            Some(fresh.timestamp.as_str()),
            None,
            "unsigned",
        ),
        (
            fresh.body.as_str(),
            None,
            Some(fresh.signature.as_str()),
            "no timestamp",
        ),
        (
            fresh.body.as_str(),
            Some(stale_ts.as_str()),
            Some(stale_sig.as_str()),
            "stale",
        ),
        (
            forged.body.as_str(),
            Some(forged.timestamp.as_str()),
            Some(forged.signature.as_str()),
            "wrong secret",
        ),
    ] {
        let (status, problem) = c.webhook(body, ts, sig).await;
        assert_eq!(status, 401, "{what}: {problem}");
        assert_eq!(queue_depth(&stack).await, 0, "{what} queued something");
    }
    // A forged delivery did not burn the event id: the real one still works.
    let (status, body) = c
        .webhook(&fresh.body, Some(&fresh.timestamp), Some(&fresh.signature))
        .await;
    assert_eq!((status, body["status"].clone()), (200, "accepted".into()));
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    assert_eq!(queue_depth(&stack).await, 1, "its sync, not a duplicate");
}

#[tokio::test]
async fn users_never_see_each_other() {
    let stack = stack("isolation").await;
    let c = Client::new(&stack);
    c.post("/v1/connections/mock", "alice", "").await;
    drain(&stack).await;
    let (_, alice) = c.get("/v1/reports?days=14", "alice").await;
    assert_eq!(alice["reports"].as_array().unwrap().len(), 14);

    let (_, bob) = c.get("/v1/reports?days=14", "bob").await;
    assert_eq!(bob["reports"].as_array().unwrap().len(), 0);
    let (_, bob_metrics) = c.get("/v1/metrics?types=hrv", "bob").await;
    assert_eq!(
        bob_metrics["series"][0]["points"].as_array().unwrap().len(),
        0
    );
    let (_, bob_providers) = c.get("/v1/providers", "bob").await;
    assert_eq!(bob_providers["providers"][0]["connected"], false);
    let (status, _) = c.post("/v1/sync", "bob", r#"{"vendor":"mock"}"#).await;
    assert_eq!(status, 404);
    let (status, _) = c
        .call("DELETE", "/v1/connections/mock", Some("bob"), None)
        .await;
    assert_eq!(status, 404);
    // Alice is untouched by Bob's attempts.
    let (_, providers) = c.get("/v1/providers", "alice").await;
    assert_eq!(providers["providers"][0]["connected"], true);
}

/// Writes `from`'s sealed tokens into `to`'s row, as someone with write
/// access to the table could.
async fn copy_sealed_tokens(
    app: &connector_core::App,
    from: &connector_core::domain::connection::Connection,
    to: &connector_core::domain::connection::Connection,
) {
    let sealed = connector_core::domain::connection::SealedTokens {
        access: from.sealed_access_token.clone(),
        refresh: from.sealed_refresh_token.clone(),
    };
    assert!(app
        .connections
        .replace_tokens(to, to.token_version, &sealed, to.expires_at)
        .await
        .unwrap());
}

#[tokio::test]
async fn tokens_are_never_stored_in_plaintext_and_do_not_move_between_rows() {
    let stack = stack("sealed").await;
    let c = Client::new(&stack);
    c.post("/v1/connections/mock", "alice", "").await;
    c.post("/v1/connections/mock", "bob", "").await;
    let app = &stack.app;
    let alice = app
        .connections
        .get("alice", Vendor::Mock)
        .await
        .unwrap()
        .unwrap();
    let bob = app
        .connections
        .get("bob", Vendor::Mock)
        .await
        .unwrap()
        .unwrap();
    let alice_tokens = app.envelope().open_tokens(&alice).await.unwrap();
    let secrets = [
        alice_tokens.access_token.expose().to_string(),
        alice_tokens
            .refresh_token
            .clone()
            .unwrap()
            .expose()
            .to_string(),
    ];
    assert!(secrets[0].starts_with("mock_at_") && secrets[1].starts_with("mock_rt_"));

    // Scan every table of this stack: no token, not even the token prefixes.
    let items = all_items(&stack).await;
    let scanned = items.len();
    for (table, text) in &items {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "plaintext token in {table}");
        }
        assert!(
            !text.contains("mock_at_") && !text.contains("mock_rt_"),
            "token in {table}: {text}"
        );
    }
    assert!(scanned >= 4, "scanned {scanned} items");

    // Alice's sealed token copied into Bob's row does not open.
    let mut moved = bob.clone();
    moved.sealed_access_token = alice.sealed_access_token.clone();
    assert!(app.envelope().open_tokens(&moved).await.is_err());
    copy_sealed_tokens(app, &alice, &bob).await;
    // Bob's sync finds tokens that do not open: an integrity failure, not a
    // retry. The job ends, Bob's connection asks for a reconnect, and
    // nothing of Alice's is read.
    c.post("/v1/sync", "bob", r#"{"vendor":"mock"}"#).await;
    let stats = stack.pump.once(app, 0).await.unwrap();
    assert_eq!(stats.failed, 0, "{stats:?}");
    assert_eq!(
        messages_in(&stack.pump.sqs, stack.pump.live_url()).await,
        0,
        "nothing is left to retry"
    );
    let bob_now = connection(&stack, "bob", Vendor::Mock).await.unwrap();
    assert_eq!(bob_now.status, ConnectionStatus::Error);
    let told = types_of(&feed(&c, "bob", 50).await);
    assert_eq!(
        told.iter().filter(|t| *t == "connection.error").count(),
        1,
        "{told:?}"
    );
    assert!(
        bob_now
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("reconnect"),
        "{:?}",
        bob_now.last_error
    );
    let (_, bob_reports) = c.get("/v1/reports?days=3", "bob").await;
    assert_eq!(bob_reports["reports"].as_array().unwrap().len(), 0);
    // Bob can still disconnect: nothing is sent to the vendor, and he is told so.
    let (status, body) = c
        .call("DELETE", "/v1/connections/mock", Some("bob"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked_at_vendor"], false);
    assert!(
        body["note"].as_str().unwrap().contains("do not open"),
        "{body}"
    );
    assert!(connection(&stack, "bob", Vendor::Mock).await.is_none());
    assert!(connection(&stack, "alice", Vendor::Mock).await.is_some());
}

#[tokio::test]
async fn disconnect_revokes_at_the_mock_and_deletes_tokens() {
    let stack = stack("disconnect").await;
    let c = Client::new(&stack);
    c.post("/v1/connections/mock", "alice", "").await;
    let conn = connection(&stack, "alice", Vendor::Mock).await.unwrap();
    let tokens = stack.app.envelope().open_tokens(&conn).await.unwrap();
    let (status, body) = c
        .call("DELETE", "/v1/connections/mock", Some("alice"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked_at_vendor"], true);
    assert!(connection(&stack, "alice", Vendor::Mock).await.is_none());
    // The mock vendor no longer honours the old tokens.
    let (driver, ctx) = stack.app.driver(Vendor::Mock).await.unwrap();
    let d = chrono::Utc::now().date_naive();
    let fetch = driver
        .fetch(
            &ctx,
            connector_core::vendors::driver::FetchRequest {
                user_id: "alice",
                vendor_user_id: &conn.vendor_user_id,
                access_token: tokens.access_token.expose(),
                from: d,
                to: d,
                reason: connector_core::domain::job::JobReason::Manual,
            },
        )
        .await;
    assert!(matches!(
        fetch,
        Err(connector_core::domain::vendor::VendorError::Unauthorized)
    ));
    let refresh = driver
        .refresh(
            &ctx,
            &conn.vendor_user_id,
            tokens.refresh_token.as_ref().unwrap().expose(),
        )
        .await;
    assert!(matches!(
        refresh,
        Err(connector_core::domain::vendor::VendorError::RefreshRejected)
    ));
    // The queued backfill finds no connection and is dropped, not retried.
    assert_eq!(drain(&stack).await, (1, 0));
    let (status, _) = c
        .call("DELETE", "/v1/connections/mock", Some("alice"), None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_latest_value_of_each_metric_is_the_newest_point_of_its_series() {
    use connector_core::domain::health::MetricType;
    let stack = stack("latest").await;
    let c = Client::new(&stack);
    let (status, body) = c.get("/v1/metrics/latest?types=hrv", "alice").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["latest"][0]["point"],
        serde_json::Value::Null,
        "{body}"
    );

    c.post("/v1/connections/mock", "alice", "").await;
    drain(&stack).await;
    let all: Vec<&str> = MetricType::ALL.iter().map(|m| m.as_str()).collect();
    let asked = all[..20].join(",");
    let (status, latest) = c
        .get(&format!("/v1/metrics/latest?types={asked}"), "alice")
        .await;
    assert_eq!(status, 200, "{latest}");
    let (since, until) = (days_ago(89), today());
    let mut found = 0;
    for (i, metric) in all[..20].iter().enumerate() {
        let answer = &latest["latest"][i];
        assert_eq!(answer["type"], *metric, "{answer}");
        let (_, page) = c
            .get(
                &format!("/v1/metrics?types={metric}&since={since}&until={until}&limit=5000"),
                "alice",
            )
            .await;
        let points = page["series"][0]["points"].as_array().unwrap().clone();
        let key = |p: &serde_json::Value| {
            (
                p["date"].as_str().unwrap().to_string(),
                p["time"].as_str().unwrap_or("").to_string(),
            )
        };
        match points.iter().max_by_key(|p| key(p)) {
            None => assert_eq!(answer["point"], serde_json::Value::Null, "{metric}"),
            Some(newest) => {
                found += 1;
                assert_eq!(key(&answer["point"]), key(newest), "{metric}");
                assert_eq!(answer["point"]["value"], newest["value"], "{metric}");
                assert_eq!(answer["unit"], page["series"][0]["unit"], "{metric}");
            }
        }
    }
    assert!(
        found >= 3,
        "the Mock backfill has several metrics: {latest}"
    );

    let too_many = all[..21].join(",");
    for bad in [
        "/v1/metrics/latest".to_string(),
        "/v1/metrics/latest?types=".to_string(),
        "/v1/metrics/latest?types=hrv,nonsense".to_string(),
        format!("/v1/metrics/latest?types={too_many}"),
        // Counted as named (found by schemathesis: 21 times the same type).
        format!("/v1/metrics/latest?types={}", ["hrv"; 21].join(",")),
    ] {
        let (status, body) = c.get(&bad, "alice").await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // Another user's values are not the caller's.
    let (_, bobs) = c.get("/v1/metrics/latest?types=hrv", "bob").await;
    assert_eq!(
        bobs["latest"][0]["point"],
        serde_json::Value::Null,
        "{bobs}"
    );
}

#[tokio::test]
async fn workouts_join_a_vendors_samples_and_list_the_phones() {
    use connector_core::domain::health::{MetricType, Sample};
    let stack = stack("workouts").await;
    let c = Client::new(&stack);
    let day = chrono::Utc::now().date_naive() - chrono::Duration::days(1);
    let start = |h: u32| day.and_hms_opt(h, 0, 0).unwrap().and_utc();
    let at = |metric, h, value: f64, sport: &str| {
        Sample::at(metric, day, start(h), value, "strava").with_label(sport.to_string())
    };
    let samples = [
        at(MetricType::WorkoutDuration, 7, 42.0, "run"),
        at(MetricType::WorkoutDistance, 7, 8000.0, "run"),
        at(MetricType::WorkoutCalories, 7, 500.0, "run"),
        at(MetricType::WorkoutDuration, 18, 30.0, "yoga"),
        at(MetricType::WorkoutCalories, 18, 120.0, "yoga"),
        // Not a workout.
        Sample::daily(MetricType::Steps, day, 9000.0, "strava"),
    ];
    stack
        .app
        .health
        .put_samples("alice", &samples)
        .await
        .unwrap();
    let push = serde_json::json!({
        "date": day.to_string(), "generated_at": chrono::Utc::now(),
        "workouts": [{"type": "swim", "duration": 25, "calories": 200, "start_time": start(12)}]
    });
    let (status, body) = c.push(&stack, "alice", &push.to_string()).await;
    assert_eq!(status, 201, "{body}");

    let (status, list) = c.get("/v1/workouts", "alice").await;
    assert_eq!(status, 200, "{list}");
    let w = list["workouts"].as_array().unwrap();
    let brief: Vec<_> = w
        .iter()
        .map(|w| {
            (
                w["sport"].as_str().unwrap(),
                w["source"].as_str().unwrap(),
                w["duration_min"].as_f64(),
                w["distance_m"].as_f64(),
                w["calories_kcal"].as_f64(),
            )
        })
        .collect();
    assert_eq!(
        brief,
        [
            ("run", "strava", Some(42.0), Some(8000.0), Some(500.0)),
            ("swim", "apple_health", Some(25.0), None, Some(200.0)),
            ("yoga", "strava", Some(30.0), None, Some(120.0)),
        ],
        "{list}"
    );
    assert_eq!(
        w[0]["start"].as_str().unwrap(),
        start(7).format("%Y-%m-%dT%H:%M:%SZ").to_string()
    );

    // Outside the window, nothing; another user, nothing; bad windows 400.
    let old = (day - chrono::Duration::days(30)).to_string();
    let (_, none) = c
        .get(&format!("/v1/workouts?since={old}&until={old}"), "alice")
        .await;
    assert_eq!(none["workouts"], serde_json::json!([]), "{none}");
    let (_, bobs) = c.get("/v1/workouts", "bob").await;
    assert_eq!(bobs["workouts"], serde_json::json!([]), "{bobs}");
    for bad in [
        format!("/v1/workouts?since={}&until={old}", day),
        "/v1/workouts?since=2026-01-01&until=2026-12-01".to_string(),
        "/v1/workouts?since=yesterday".to_string(),
    ] {
        let (status, body) = c.get(&bad, "alice").await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

#[tokio::test]
async fn metrics_paginate_without_loss_or_overlap() {
    let stack = stack("pages").await;
    let c = Client::new(&stack);
    c.post("/v1/connections/mock", "alice", "").await;
    drain(&stack).await;
    let range = format!("since={}&until={}", days_ago(13), today());
    let (_, all) = c
        .get(&format!("/v1/metrics?types=hrv,steps&{range}"), "alice")
        .await;
    assert!(all["next_cursor"].is_null());
    let want: Vec<serde_json::Value> = (0..2)
        .flat_map(|i| all["series"][i]["points"].as_array().unwrap().clone())
        .collect();
    assert_eq!(want.len(), 28);

    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = format!("/v1/metrics?types=hrv,steps&{range}&limit=10");
        if let Some(cur) = &cursor {
            path.push_str(&format!("&cursor={cur}"));
        }
        let (status, page) = c.get(&path, "alice").await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let n: usize = (0..2)
            .map(|i| page["series"][i]["points"].as_array().unwrap().len())
            .sum();
        assert!(n <= 10, "page of {n}");
        for i in 0..2 {
            assert_eq!(page["series"][i]["type"], all["series"][i]["type"]);
            got.extend(page["series"][i]["points"].as_array().unwrap().clone());
        }
        match page["next_cursor"].as_str() {
            Some(cur) => cursor = Some(cur.to_string()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(got, want);
    assert_eq!(pages, 3);

    for bad in [
        "limit=0",
        "limit=5001",
        "cursor=not-a-cursor",
        "cursor=eyJpIjo1fQ",
    ] {
        let (status, _) = c
            .get(&format!("/v1/metrics?types=hrv,steps&{bad}"), "alice")
            .await;
        assert_eq!(status, 400, "{bad}");
    }
}

#[tokio::test]
async fn a_refresh_that_meets_tokens_that_do_not_open_asks_for_a_reconnect_once() {
    let stack = stack("sealed-refresh").await;
    let c = Client::new(&stack);
    c.post("/v1/connections/mock", "alice", "").await;
    c.post("/v1/connections/mock", "bob", "").await;
    let app = &stack.app;
    let alice = connection(&stack, "alice", Vendor::Mock).await.unwrap();
    let bob = connection(&stack, "bob", Vendor::Mock).await.unwrap();
    copy_sealed_tokens(app, &alice, &bob).await;

    // An hour on, both Mock access tokens are due: Alice's refreshes, Bob's
    // do not open, so his connection asks for a reconnect...
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let first = connector_core::flows::tick::run(app, later).await;
    assert_eq!(
        (first.due, first.refreshed, first.failed),
        (2, 1, 1),
        "{first:?}"
    );
    let bob_now = connection(&stack, "bob", Vendor::Mock).await.unwrap();
    assert_eq!(bob_now.status, ConnectionStatus::Error);
    assert!(bob_now
        .last_error
        .as_deref()
        .unwrap_or_default()
        .contains("reconnect"));
    // ...and leaves the schedule: the next tick does not try him again.
    let second = connector_core::flows::tick::run(app, later).await;
    assert_eq!(second.failed, 0, "{second:?}");
}

#[tokio::test]
async fn the_mock_vendor_is_off_unless_turned_on() {
    // The template's default: what a deploy gets without the parameter.
    let template = connector_infra::template::Template::load(
        &connector_infra::stack::workspace_root().join("template.yaml"),
    )
    .unwrap();
    assert_eq!(
        template.parameter_default("EnableMockVendor").as_deref(),
        Some("false")
    );
    let mut opts = options("mock-off");
    opts.extra_env
        .insert("CONNECTOR_MOCK_ENABLED".into(), "false".into());
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let c = Client::new(&stack);
    let (status, body) = c.post("/v1/connections/mock", "alice", "").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("EnableMockVendor"),
        "{body}"
    );
    assert!(connection(&stack, "alice", Vendor::Mock).await.is_none());
    let (_, providers) = c.get("/v1/providers", "alice").await;
    assert_eq!(provider_of(&providers, "mock")["supported"], false);
    let w = signed_webhook(&stack, "evt-off-1", "alice", &today());
    let (status, _) = c.deliver(&w).await;
    assert_eq!(status, 409);
    assert_eq!(queue_depth(&stack).await, 0);
}

/// Rotating the Mock webhook secret and the push secret as the README's
/// runbook says (the new value as the name, the old one as `_PREVIOUS`)
/// refuses no delivery: one signed with the new value is accepted as soon
/// as the cached secret is old enough to be read again, one signed with
/// the old value still is, and one signed with any other value is not.
#[tokio::test]
async fn rotating_the_webhook_and_push_secrets_refuses_no_delivery() {
    use connector_core::aws::secrets::REREAD_FLOOR;
    use connector_infra::stack::{LOCAL_MOCK_WEBHOOK_SECRET, LOCAL_PUSH_SECRET};
    let stack = stack("rotation").await;
    let c = Client::new(&stack);
    c.post("/v1/connections/mock", "alice", "").await;
    drain(&stack).await;
    let date = days_ago(3);
    let webhook = |secret: &str, event: &str| {
        connector_infra::mock_webhook::sign(
            secret,
            event,
            "alice",
            &date,
            chrono::Utc::now().timestamp(),
        )
    };
    let push_body = |steps: u32| {
        serde_json::json!({"date": date, "generated_at": format!("{date}T20:{:02}:00Z", steps % 60), "steps": steps})
            .to_string()
    };
    let push = |secret: &str, body: &str| {
        connector_infra::push_signer::sign(
            secret,
            &chrono::Utc::now().timestamp().to_string(),
            body.as_bytes(),
        )
    };
    let send_webhook = |w: connector_infra::mock_webhook::SignedWebhook| {
        let c = &c;
        async move { c.deliver(&w).await.0 }
    };
    let send_push = |secret: &str, steps: u32| {
        let (c, b) = (&c, push_body(steps));
        let s = push(secret, &b);
        async move {
            c.push_with("alice", &b, Some(&s.timestamp), Some(&s.signature))
                .await
                .0
        }
    };

    // The functions read (and cache) both secrets.
    assert_eq!(
        send_webhook(webhook(LOCAL_MOCK_WEBHOOK_SECRET, "evt-warm")).await,
        200
    );
    assert_eq!(send_push(LOCAL_PUSH_SECRET, 1).await, 201, "created");
    let cached_at = std::time::Instant::now();

    let (new_webhook, new_push) = ("fake-rotated-in-webhook", "fake-rotated-in-push");
    let sm = aws_sdk_secretsmanager::Client::new(&stack.sdk);
    for (secret, value) in [
        (
            "VendorCredentialsSecret",
            serde_json::json!({
                "CONNECTOR_MOCK_WEBHOOK_SECRET": new_webhook,
                "CONNECTOR_MOCK_WEBHOOK_SECRET_PREVIOUS": LOCAL_MOCK_WEBHOOK_SECRET,
            }),
        ),
        (
            "PushSecret",
            serde_json::json!({
                "CONNECTOR_PUSH_SECRET": new_push,
                "CONNECTOR_PUSH_SECRET_PREVIOUS": LOCAL_PUSH_SECRET,
            }),
        ),
    ] {
        sm.put_secret_value()
            .secret_id(&stack.provisioned.refs[secret])
            .secret_string(value.to_string())
            .send()
            .await
            .unwrap();
    }

    // Within the floor a refusal does not read the secret again.
    assert_eq!(send_webhook(webhook(new_webhook, "evt-early")).await, 401);
    assert_eq!(send_push(new_push, 2).await, 401);
    tokio::time::sleep(REREAD_FLOOR.saturating_sub(cached_at.elapsed())).await;

    // The first delivery signed with a new value makes its function read
    // the secret; from then on both values are accepted, and no third.
    assert_eq!(send_webhook(webhook(new_webhook, "evt-new")).await, 200);
    assert_eq!(
        send_webhook(webhook(LOCAL_MOCK_WEBHOOK_SECRET, "evt-old")).await,
        200
    );
    assert_eq!(
        send_webhook(webhook("fake-unknown", "evt-forged")).await,
        401
    );
    assert_eq!(send_push(new_push, 3).await, 200);
    assert_eq!(send_push(LOCAL_PUSH_SECRET, 4).await, 200);
    assert_eq!(send_push("fake-unknown", 5).await, 401);
    let logs = captured_logs();
    for source in ["mock", "push"] {
        assert!(
            logs.lines().any(|l| l
                .contains("delivery authenticated with the previous value of a rotated secret")
                && l.contains(&format!("source=\"{source}\""))),
            "the previous value's use is logged for {source}"
        );
    }
}
