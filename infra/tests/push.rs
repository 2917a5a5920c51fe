//! Phone pushes end to end through the local gateway.

mod common;

use common::*;
use connector_core::Vendor;
use connector_infra::push_signer;

fn body(date: &str, generated_at: &str, fields: serde_json::Value) -> String {
    let mut v = serde_json::json!({ "date": date, "generated_at": generated_at });
    for (k, val) in fields.as_object().unwrap() {
        v[k] = val.clone();
    }
    v.to_string()
}

async fn record(
    stack: &connector_infra::stack::Stack,
    user: &str,
    date: &str,
) -> Option<connector_core::domain::push::DayRecord> {
    stack
        .app
        .health
        .push_day(user, date.parse().unwrap())
        .await
        .unwrap()
        .map(|(r, _)| r)
}

#[tokio::test]
async fn created_merged_unchanged_with_newest_wins_backfill_and_workout_dedup() {
    let stack = stack("push-merge").await;
    let c = Client::new(&stack);
    let d = days_ago(1);
    let run = serde_json::json!([{"type":"running","duration":42,"calories":418.5,"start_time": format!("{d}T06:22:00Z")}]);
    let first = body(
        &d,
        &format!("{d}T20:00:00Z"),
        serde_json::json!({"steps": 9000, "hrv": 46.2, "workouts": run}),
    );
    let (status, r) = c.push(&stack, "alice", &first).await;
    assert_eq!(
        (status, r["result"].as_str()),
        (201, Some("created")),
        "{r}"
    );
    // The same payload resent later (a new timestamp, so not a replay).
    let later = push_signer::sign(
        &stack.env["CONNECTOR_PUSH_SECRET"],
        &chrono::Utc::now().to_rfc3339(),
        first.as_bytes(),
    );
    let (status, r) = c
        .push_with(
            "alice",
            &first,
            Some(&later.timestamp),
            Some(&later.signature),
        )
        .await;
    assert_eq!(
        (status, r["result"].as_str()),
        (200, Some("unchanged")),
        "identical resubmission"
    );

    let run_again = serde_json::json!([
        {"type":"running","duration":45,"calories":430,"start_time": format!("{d}T06:22:00Z")},
        {"type":"cycling","duration":30,"calories":200,"start_time": format!("{d}T18:00:00Z")}
    ]);
    let newer = body(
        &d,
        &format!("{d}T23:59:45Z"),
        serde_json::json!({"steps": 9234, "workouts": run_again}),
    );
    let (_, r) = c.push(&stack, "alice", &newer).await;
    assert_eq!(r["result"], "merged");
    let older = body(
        &d,
        &format!("{d}T12:00:00Z"),
        serde_json::json!({"steps": 5000, "resting_hr": 58, "hrv": 10}),
    );
    let (_, r) = c.push(&stack, "alice", &older).await;
    assert_eq!(r["result"], "merged", "backfilled resting_hr");

    let rec = record(&stack, "alice", &d).await.unwrap();
    let v = |s: connector_core::domain::push::Scalar| rec.scalars[&s].value;
    use connector_core::domain::push::Scalar::*;
    assert_eq!(v(Steps), 9234.0, "newest generated_at wins");
    assert_eq!(v(Hrv), 46.2, "older payload does not overwrite");
    assert_eq!(
        v(RestingHr),
        58.0,
        "older payload backfills a missing field"
    );
    assert_eq!(rec.workouts.len(), 2, "duplicate running workout collapsed");
    let running = rec
        .workouts
        .values()
        .find(|w| w.workout.kind == "running")
        .unwrap();
    assert_eq!(running.workout.duration, 42.0, "earliest provenance kept");

    let (_, reports) = c.get("/v1/reports?days=3", "alice").await;
    let row = reports["reports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["date"] == d)
        .unwrap()
        .clone();
    assert_eq!(row["steps"], 9234.0);
    assert_eq!(row["sources"]["steps"], "apple_health");
    let (_, metrics) = c
        .get(
            &format!("/v1/metrics?types=sleep_duration,resting_hr&since={d}&until={d}"),
            "alice",
        )
        .await;
    assert_eq!(metrics["series"][1]["points"][0]["source"], "apple_health");
}

#[tokio::test]
async fn pushed_and_vendor_days_merge_with_per_value_provenance() {
    let stack = stack("push-mock").await;
    let c = Client::new(&stack);
    c.post("/v1/connections/mock", "alice", "").await;
    drain(&stack).await;
    let d = today();
    let push = body(
        &d,
        &chrono::Utc::now().to_rfc3339(),
        serde_json::json!({"steps": 4321, "hrv": 99.0}),
    );
    let (status, _) = c.push(&stack, "alice", &push).await;
    assert_eq!(status, 201);
    let (_, reports) = c.get("/v1/reports?days=1", "alice").await;
    let rows = reports["reports"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "one row per day");
    let row = &rows[0];
    assert_eq!(row["steps"], 4321.0);
    assert_eq!(
        row["sources"]["steps"], "apple_health",
        "the phone leads for steps"
    );
    assert_ne!(row["hrv"], 99.0);
    assert_eq!(row["sources"]["hrv"], "mock", "a wearable leads for HRV");
    for f in ["resting_hr", "sleep_score", "stress", "calories"] {
        assert_eq!(row["sources"][f], "mock", "{f}");
    }
    // Both sources' samples stay available.
    let (_, m) = c
        .get(
            &format!("/v1/metrics?types=hrv&since={d}&until={d}"),
            "alice",
        )
        .await;
    let sources: Vec<_> = m["series"][0]["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["source"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sources.len(), 2, "{m}");
    assert!(sources.contains(&"apple_health".to_string()) && sources.contains(&"mock".to_string()));
    assert!(stack
        .app
        .connections
        .get("alice", Vendor::Mock)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn forged_stale_replayed_and_unsigned_pushes_write_nothing() {
    let stack = stack("push-auth").await;
    let c = Client::new(&stack);
    let d = days_ago(2);
    let b = body(
        &d,
        &format!("{d}T20:00:00Z"),
        serde_json::json!({"steps": 100}),
    );
    let secret = stack.env["CONNECTOR_PUSH_SECRET"].clone();
    let now = chrono::Utc::now();
    let good = push_signer::sign(&secret, &now.timestamp().to_string(), b.as_bytes());
    let stale = push_signer::sign(&secret, &(now.timestamp() - 301).to_string(), b.as_bytes());
    let iso = push_signer::sign(&secret, &now.to_rfc3339(), b.as_bytes());
    let forged = push_signer::sign("not-the-secret", &now.timestamp().to_string(), b.as_bytes());
    let tampered = b.replace("100", "101");
    for (what, body, ts, sig) in [
        ("unsigned", b.as_str(), Some(good.timestamp.as_str()), None),
        (
            "no timestamp",
            b.as_str(),
            None,
            Some(good.signature.as_str()),
        ),
        (
            "stale",
            b.as_str(),
            Some(stale.timestamp.as_str()),
            Some(stale.signature.as_str()),
        ),
        (
            "wrong secret",
            b.as_str(),
            Some(forged.timestamp.as_str()),
            Some(forged.signature.as_str()),
        ),
        (
            "tampered",
            tampered.as_str(),
            Some(good.timestamp.as_str()),
            Some(good.signature.as_str()),
        ),
    ] {
        let (status, problem) = c.push_with("alice", body, ts, sig).await;
        assert_eq!(status, 401, "{what}: {problem}");
        assert!(record(&stack, "alice", &d).await.is_none(), "{what} wrote");
    }
    let (status, problem) = c
        .push_with("alice", &b, Some("yesterday"), Some(&good.signature))
        .await;
    assert_eq!(status, 401, "{problem}");

    // ISO-8601 timestamps work; the same (timestamp, signature) again is a replay.
    let (status, _) = c
        .push_with("alice", &b, Some(&iso.timestamp), Some(&iso.signature))
        .await;
    assert_eq!(status, 201);
    let before = record(&stack, "alice", &d).await;
    let (status, problem) = c
        .push_with("alice", &b, Some(&iso.timestamp), Some(&iso.signature))
        .await;
    assert_eq!(status, 401);
    assert!(
        problem["detail"].as_str().unwrap().contains("replay"),
        "{problem}"
    );
    assert_eq!(record(&stack, "alice", &d).await, before);
    // No JWT: the gateway refuses it before the function.
    let resp = c
        .http
        .post(format!("{}/v1/health/push", c.base))
        .body(b.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}

#[tokio::test]
async fn bounds_name_the_field_and_oversize_is_413() {
    let stack = stack("push-bounds").await;
    let c = Client::new(&stack);
    let d = days_ago(1);
    let g = format!("{d}T20:00:00Z");
    let far = (chrono::Utc::now().date_naive() + chrono::Duration::days(3)).to_string();
    for (fields, date, field) in [
        (serde_json::json!({"steps": 100001}), d.as_str(), "steps"),
        (
            serde_json::json!({"resting_hr": 221}),
            d.as_str(),
            "resting_hr",
        ),
        (
            serde_json::json!({"sleep_hours": 25}),
            d.as_str(),
            "sleep_hours",
        ),
        (serde_json::json!({"hrv": 0}), d.as_str(), "hrv"),
        (serde_json::json!({}), far.as_str(), "date"),
        (serde_json::json!({}), "2026-02-30", "date"),
        (
            serde_json::json!({"workouts": [{"type":"run","duration":1441,"calories":1,"start_time":g}]}),
            d.as_str(),
            "workouts[0].duration",
        ),
        (
            serde_json::json!({"workouts": [{"type":"run","duration":1,"calories":10001,"start_time":g}]}),
            d.as_str(),
            "workouts[0].calories",
        ),
        (
            serde_json::json!({"workouts": [{"type":"run","duration":1,"calories":1,"start_time":"2020-01-01T00:00:00Z"}]}),
            d.as_str(),
            "workouts[0].start_time",
        ),
    ] {
        let b = body(date, &g, fields);
        let (status, problem) = c.push(&stack, "alice", &b).await;
        assert_eq!(status, 422, "{b}: {problem}");
        assert_eq!(problem["field"], field, "{problem}");
        assert!(problem["detail"].as_str().unwrap().starts_with(field));
    }
    let big = body(&d, &g, serde_json::json!({"pad": "x".repeat(65 * 1024)}));
    let (status, _) = c.push(&stack, "alice", &big).await;
    assert_eq!(status, 413);
    assert!(record(&stack, "alice", &d).await.is_none());
}

#[tokio::test]
async fn per_user_rate_limit_answers_429_with_retry_after() {
    let mut opts = options("push-rate");
    opts.extra_env
        .insert("CONNECTOR_PUSH_RATE_PER_MIN".into(), "3".into());
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let c = Client::new(&stack);
    let d = days_ago(1);
    for i in 0..3 {
        let b = body(
            &d,
            &format!("{d}T20:00:0{i}Z"),
            serde_json::json!({"steps": 100 + i}),
        );
        let (status, r) = c.push(&stack, "alice", &b).await;
        assert!(status == 200 || status == 201, "{r}");
    }
    let b = body(
        &d,
        &format!("{d}T21:00:00Z"),
        serde_json::json!({"steps": 999}),
    );
    let (status, r) = c.push(&stack, "alice", &b).await;
    assert_eq!(status, 429, "{r}");
    let retry: u64 = r["retry_after"].as_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(
        record(&stack, "alice", &d).await.unwrap().scalars
            [&connector_core::domain::push::Scalar::Steps]
            .value,
        102.0
    );
    // Another user has their own bucket.
    let (status, _) = c.push(&stack, "bob", &b).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn one_log_line_per_push_without_values_or_signature() {
    let stack = stack("push-log").await;
    let c = Client::new(&stack);
    let d = days_ago(1);
    let user = "log-user-3c9d";
    let b = body(
        &d,
        &format!("{d}T20:00:00Z"),
        serde_json::json!({"steps": 87654, "hrv": 123.4}),
    );
    let s = push_signer::sign(
        &stack.env["CONNECTOR_PUSH_SECRET"],
        &chrono::Utc::now().timestamp().to_string(),
        b.as_bytes(),
    );
    let (status, _) = c
        .push_with(user, &b, Some(&s.timestamp), Some(&s.signature))
        .await;
    assert_eq!(status, 201);
    let (status, _) = c
        .push_with(user, &b, Some(&s.timestamp), Some(&s.signature))
        .await;
    assert_eq!(status, 401, "replay");
    let logs = captured_logs();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("health push") && l.contains(user))
        .collect();
    assert_eq!(lines.len(), 2, "{logs}");
    assert!(
        lines[0].contains("verification=\"ok\"") || lines[0].contains("verification=ok"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("payload_bytes=")
            && lines[0].contains("latency_ms=")
            && lines[0].contains("received_at=")
    );
    assert!(lines[0].contains("created"), "{}", lines[0]);
    assert!(lines[1].contains("replay"), "{}", lines[1]);
    for secret in [
        s.signature.as_str(),
        "87654",
        "123.4",
        stack.env["CONNECTOR_PUSH_SECRET"].as_str(),
    ] {
        assert!(!logs.contains(secret), "log leaks {secret}");
    }
}

#[tokio::test]
async fn storage_failure_is_503_with_retry_after_and_the_retry_is_not_a_replay() {
    let mut opts = options("push-503");
    // A health table that does not exist: every write fails.
    opts.extra_env
        .insert("CONNECTOR_HEALTH_TABLE".into(), "no-such-table".into());
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let c = Client::new(&stack);
    let d = days_ago(1);
    let b = body(
        &d,
        &format!("{d}T20:00:00Z"),
        serde_json::json!({"steps": 10}),
    );
    let s = push_signer::sign(
        &stack.env["CONNECTOR_PUSH_SECRET"],
        &chrono::Utc::now().timestamp().to_string(),
        b.as_bytes(),
    );
    for attempt in 0..2 {
        let (status, problem) = c
            .push_with("alice", &b, Some(&s.timestamp), Some(&s.signature))
            .await;
        assert_eq!(status, 503, "attempt {attempt}: {problem}");
        assert!(problem["retry_after"].as_str().is_some(), "{problem}");
        assert!(
            !problem["detail"]
                .as_str()
                .unwrap()
                .contains("no-such-table"),
            "no internals in the body"
        );
    }
}
