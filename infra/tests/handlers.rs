//! The events in events/ (the ones `sam local invoke -e` takes) through each
//! function's handler, against the AWS emulator.

mod common;

use common::*;
use connector_core::vendors::mock::MockVendor;
use connector_core::Vendor;
use lambda_http::{Body, Request};
use std::path::PathBuf;

fn event_path(name: &str) -> PathBuf {
    connector_infra::stack::workspace_root()
        .join("events")
        .join(name)
}

fn http_event(name: &str) -> Request {
    let text = std::fs::read_to_string(event_path(name)).unwrap();
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn json_event<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_value(event_file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn body_json(resp: &lambda_http::Response<Body>) -> serde_json::Value {
    match resp.body() {
        Body::Text(t) => serde_json::from_str(t).unwrap(),
        Body::Empty => serde_json::Value::Null,
        other => panic!("unexpected body {other:?}"),
    }
}

const EVENT_USER: &str = "user-events-1";

#[tokio::test]
async fn http_events_drive_their_handlers() {
    let stack = stack("events").await;
    let app = &stack.app;

    let resp = providers::handle(stack.function("providers"), http_event("providers.json")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body_json(&resp)["providers"].as_array().unwrap().len(), 10);

    let resp = connect::handle(stack.function("connect"), http_event("connect.json")).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.body());
    assert_eq!(body_json(&resp)["status"], "connected");
    assert!(app
        .connections
        .get(EVENT_USER, Vendor::Mock)
        .await
        .unwrap()
        .is_some());

    let resp = data::handle(stack.function("data"), http_event("data.json")).await;
    assert_eq!(resp.status(), 202, "{:?}", resp.body());
    drain(&stack).await;
    let resp = data::handle(stack.function("data"), http_event("data-reports.json")).await;
    assert_eq!(resp.status(), 200);
    let reports = body_json(&resp);
    assert_eq!(reports["reports"][0]["date"], today());

    // A completion id nobody was given: refused like a used or expired one.
    let resp = connect::handle(
        stack.function("connect"),
        http_event("connect-complete.json"),
    )
    .await;
    assert_eq!(resp.status(), 400, "{:?}", resp.body());
    assert!(body_json(&resp)["detail"]
        .as_str()
        .unwrap()
        .contains("unknown, used or expired completion"));

    // The mock has no OAuth: its callback is a clear 400, not a crash.
    let resp = oauth_callback::handle(
        stack.function("oauth-callback"),
        http_event("oauth-callback.json"),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");

    // The webhook event is correctly signed, but its timestamp is from 2025:
    // against the wall clock it is stale (and queues nothing).
    let before = queue_depth(&stack).await;
    let resp = webhook::handle(stack.function("webhook"), http_event("webhook.json")).await;
    assert_eq!(resp.status(), 401);
    assert!(body_json(&resp)["detail"]
        .as_str()
        .unwrap()
        .contains("freshness"));
    assert_eq!(queue_depth(&stack).await, before);
    let req = http_event("webhook.json");
    let at = chrono::DateTime::from_timestamp(1_763_900_000, 0).unwrap();
    let body: &[u8] = req.body().as_ref();
    assert_eq!(
        MockVendor::scheme().verify(b"fake-mock-webhook-secret", req.headers(), body, at),
        Ok(())
    );

    let resp = connect::handle(stack.function("connect"), http_event("connect-delete.json")).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.body());
    assert!(app
        .connections
        .get(EVENT_USER, Vendor::Mock)
        .await
        .unwrap()
        .is_none());

    let resp = account::handle(stack.function("account"), http_event("account.json")).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.body());
    let receipt = body_json(&resp);
    assert_eq!(receipt["user_id"], EVENT_USER);
    assert!(receipt["deleted"]["health_items"].as_u64().unwrap() > 0);
    let (from, to) = ("2000-01-01".parse().unwrap(), "2100-01-01".parse().unwrap());
    assert!(app
        .health
        .summaries(EVENT_USER, from, to)
        .await
        .unwrap()
        .is_empty());
    let resp = account::handle(
        stack.function("account"),
        http_event("account-erasure.json"),
    )
    .await;
    assert_eq!(resp.status(), 200, "{:?}", resp.body());
    let erasure = body_json(&resp);
    assert_eq!(erasure["status"], receipt["erasure"], "{erasure}");
    assert_eq!(
        erasure["health_items"], receipt["deleted"]["health_items"],
        "{erasure}"
    );
}

#[tokio::test]
async fn health_push_event_is_signed_and_its_payload_valid() {
    let stack = stack("push-event").await;
    let req = http_event("health-push.json");
    // Signed with the events' test secret at its fixed time.
    let scheme = connector_core::vendors::signature::SignatureScheme {
        signature_header: "x-sync-signature",
        timestamp: Some(connector_core::vendors::signature::TimestampRule {
            header: "x-sync-timestamp",
            unit: connector_core::vendors::signature::TimestampUnit::SecondsOrRfc3339,
            tolerance_secs: 300,
        }),
        ..MockVendor::scheme()
    };
    let at = chrono::DateTime::from_timestamp(1_771_286_390, 0).unwrap();
    let body: &[u8] = req.body().as_ref();
    assert_eq!(
        scheme.verify(b"fake-push-secret", req.headers(), body, at),
        Ok(())
    );
    let push =
        connector_core::domain::push::Push::parse(body, "2026-02-16".parse().unwrap()).unwrap();
    assert_eq!(push.workouts.len(), 1);
    // Against the wall clock (and another secret) the handler refuses it.
    let resp = health_push::handle(stack.function("health-push"), req).await;
    assert_eq!(resp.status(), 401);
    assert!(stack
        .app
        .health
        .push_day(EVENT_USER, push.date)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn sqs_event_fails_only_the_malformed_record() {
    let stack = stack("sqs-event").await;
    let app = &stack.app;
    connect::handle(stack.function("connect"), http_event("connect.json")).await;
    let event: aws_lambda_events::sqs::SqsEvent = json_event("sync-worker.json");
    let malformed = event.records[1].message_id.clone().unwrap();
    let response = sync_worker::handle(
        stack.function("sync-worker"),
        event,
        std::time::Instant::now() + stack.pump.time_limit,
    )
    .await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, vec![malformed]);
    // The good record was synced: 2025-11-21..=2025-11-23 for the event user.
    let rows = app
        .health
        .summaries(
            EVENT_USER,
            "2025-11-21".parse().unwrap(),
            "2025-11-23".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
}

#[tokio::test]
async fn scheduled_event_runs_the_refresher() {
    let mut opts = options("tick");
    // Tokens that expire at once are due for refresh on every tick.
    opts.extra_env
        .insert("CONNECTOR_MOCK_ACCESS_TTL_SECS".into(), "5".into());
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let app = &stack.app;
    connect::handle(stack.function("connect"), http_event("connect.json")).await;
    let before = app
        .connections
        .get(EVENT_USER, Vendor::Mock)
        .await
        .unwrap()
        .unwrap();
    let event: aws_lambda_events::eventbridge::EventBridgeEvent =
        json_event("token-refresher.json");
    let report = token_refresher::handle(stack.function("token-refresher"), event).await;
    assert_eq!((report.due, report.refreshed, report.failed), (1, 1, 0));
    let after = app
        .connections
        .get(EVENT_USER, Vendor::Mock)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.token_version, before.token_version + 1);
    assert_ne!(after.sealed_refresh_token, before.sealed_refresh_token);
    assert_eq!(
        after.status,
        connector_core::domain::connection::ConnectionStatus::Connected
    );
}

/// The tick reads its work from the sparse schedule indexes: only connected
/// connections are on them, a status change takes one off or back on, a sync
/// moves its quiet time, and a row written without the schedule attributes
/// (an older version's) is put on them by the daily sweep.
#[tokio::test]
async fn the_tick_reads_connected_connections_from_the_schedule_indexes() {
    use connector_core::domain::connection::ConnectionStatus;
    let stack = stack("schedule").await;
    let (app, c) = (&stack.app, Client::new(&stack));
    let users = ["alice", "bob", "carol", "dave"];
    for user in users {
        c.post("/v1/connections/mock", user, "").await;
    }
    let now = chrono::Utc::now();
    let later = now + chrono::Duration::days(30);
    let listed = |conns: Vec<connector_core::domain::connection::Connection>| {
        let mut users: Vec<String> = conns.into_iter().map(|c| c.user_id).collect();
        users.sort();
        users
    };
    let expiring = || async { listed(app.connections.expiring_before(later).await.unwrap()) };
    let quiet = || async { listed(app.connections.stale_since(later).await.unwrap()) };
    assert_eq!(expiring().await, users);
    assert_eq!(quiet().await, users);

    app.connections
        .set_status(
            "bob",
            Vendor::Mock,
            ConnectionStatus::RefreshFailed,
            Some("refused"),
        )
        .await
        .unwrap();
    app.connections
        .mark_synced(
            "dave",
            Vendor::Mock,
            later + chrono::Duration::hours(1),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(expiring().await, ["alice", "carol", "dave"]);
    assert_eq!(quiet().await, ["alice", "carol"], "dave synced since");

    // carol's row as a version before the indexes wrote it.
    let db = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = app.config.connections_table.clone();
    let unschedule = |user: &str| {
        db.update_item()
            .table_name(&table)
            .key(
                "user_id",
                aws_sdk_dynamodb::types::AttributeValue::S(user.into()),
            )
            .key(
                "vendor",
                aws_sdk_dynamodb::types::AttributeValue::S("mock".into()),
            )
            .update_expression("REMOVE sched_shard, quiet_since")
            .send()
    };
    unschedule("carol").await.unwrap();
    assert_eq!(expiring().await, ["alice", "dave"]);

    let tick = || async {
        token_refresher::handle(
            stack.function("token-refresher"),
            json_event("token-refresher.json"),
        )
        .await
    };
    assert_eq!(tick().await.scheduled, 1, "the sweep finds carol");
    assert_eq!(expiring().await, ["alice", "carol", "dave"]);
    assert_eq!(quiet().await, ["alice", "carol"]);
    app.connections
        .set_status("bob", Vendor::Mock, ConnectionStatus::Connected, None)
        .await
        .unwrap();
    assert_eq!(expiring().await, ["alice", "bob", "carol", "dave"]);
    // One sweep a day for the fleet: the next tick leaves alice off.
    unschedule("alice").await.unwrap();
    assert_eq!(tick().await.scheduled, 0);
    assert_eq!(expiring().await, ["bob", "carol", "dave"]);
}

/// The providers function reads no secret (the tick publishes which
/// vendors are configured), and health-push reads only the push secret: each
/// works with every other secret out of reach, as IAM leaves it in AWS.
#[tokio::test]
async fn providers_and_health_push_read_only_the_secrets_they_need() {
    let stack = stack("secret-scopes").await;
    let out_of_reach = "arn:aws:secretsmanager:us-east-1:000000000000:secret:out-of-reach";
    let app_with = |names: &[&str]| {
        let mut env = stack.env.clone();
        for name in names {
            env.insert(name.to_string(), out_of_reach.into());
        }
        connector_core::App::new(connector_core::domain::env::Env::with_overrides(env))
    };

    let providers_app = app_with(&["CONNECTOR_SECRET_ARN", "CONNECTOR_PUSH_SECRET_ARN"])
        .await
        .unwrap();
    let resp = providers::handle(&providers_app, http_event("providers.json")).await;
    assert_eq!(resp.status(), 200, "{:?}", resp.body());
    let mock = body_json(&resp)["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "mock")
        .cloned()
        .unwrap();
    assert_eq!(mock["supported"], true, "{mock}");
    // Reading credentials there fails, so the answer above read none.
    assert!(providers_app
        .vendor_credentials(Vendor::Whoop)
        .await
        .is_err());

    let push_app = app_with(&["CONNECTOR_SECRET_ARN"]).await.unwrap();
    let body = format!(
        r#"{{"date":"{}","steps":4321,"generated_at":"{}"}}"#,
        today(),
        chrono::Utc::now().to_rfc3339()
    );
    let signed = connector_infra::push_signer::sign(
        &stack.env["CONNECTOR_PUSH_SECRET"],
        &chrono::Utc::now().timestamp().to_string(),
        body.as_bytes(),
    );
    let mut headers = http::HeaderMap::new();
    headers.insert("x-sync-timestamp", signed.timestamp.parse().unwrap());
    headers.insert("x-sync-signature", signed.signature.parse().unwrap());
    let mut log = connector_core::flows::push::PushLog::default();
    let accepted = connector_core::flows::push::accept(
        &push_app,
        "push-scope-user",
        &headers,
        body.as_bytes(),
        &mut log,
    )
    .await;
    assert!(accepted.is_ok(), "{accepted:?} {:?}", log.reason);
}
