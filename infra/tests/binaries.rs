//! The function binaries themselves, the `main.rs` entry points AWS starts:
//! each built by cargo and run as a process of its own against a local
//! Lambda Runtime API (`connector_infra::lambda`), with its function's
//! environment and its role's session in the environment, as Lambda runs
//! it. Fed every file in events/ and events made from the local stack's
//! own traffic (the gateway's HTTP events, the pump's SQS batches).

mod common;

use common::*;
use connector_core::Vendor;
use connector_infra::lambda::{build, LambdaProcess};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

const FUNCTIONS: [&str; 13] = [
    "providers",
    "connect",
    "oauth-callback",
    "webhook",
    "sync-worker",
    "token-refresher",
    "data",
    "health-push",
    "account",
    "api-docs",
    "status",
    "app-events",
    "pages",
];

/// The user the JWT events in events/ carry.
const EVENT_USER: &str = "user-events-1";

/// (status, JSON body, content type) of an HTTP API proxy answer.
fn http(answer: &Value) -> (u64, Value, String) {
    let body = answer["body"].as_str().unwrap_or_default();
    (
        answer["statusCode"].as_u64().unwrap_or_default(),
        serde_json::from_str(body).unwrap_or(Value::Null),
        answer["headers"]["content-type"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

async fn invoke(p: &LambdaProcess, name: &str, fed: &mut BTreeSet<String>) -> Value {
    fed.insert(name.to_string());
    p.invoke(&event_file(name), Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[tokio::test]
async fn every_event_file_through_its_function_binary() {
    build().unwrap();
    let mut opts = options("binaries-events");
    // Tokens that expire at once are due on every tick.
    opts.extra_env
        .insert("CONNECTOR_MOCK_ACCESS_TTL_SECS".into(), "5".into());
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let mut functions = HashMap::new();
    for f in FUNCTIONS {
        functions.insert(f, stack.start_binary(f).await.unwrap());
    }
    let f = |name: &str| &functions[name];
    let mut fed = BTreeSet::new();

    let (status, body, _) = http(&invoke(f("providers"), "providers.json", &mut fed).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["providers"].as_array().unwrap().len(), 10);

    let (status, body, content_type) =
        http(&invoke(f("api-docs"), "api-docs.json", &mut fed).await);
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    assert_eq!(
        body,
        serde_json::from_str::<Value>(api_docs::DESCRIPTION).unwrap()
    );

    let page = invoke(f("pages"), "pages.json", &mut fed).await;
    assert_eq!(page["statusCode"], 200, "{page}");
    assert_eq!(page["headers"]["content-type"], "text/html; charset=utf-8");
    assert!(page["body"].as_str().unwrap().contains("pages/connect.js"));
    assert!(page["headers"]["content-security-policy"]
        .as_str()
        .unwrap()
        .contains("script-src 'self'"));

    let (status, body, _) = http(&invoke(f("status"), "status.json", &mut fed).await);
    assert_eq!((status, &body["status"]), (200, &"ok".into()), "{body}");

    let (status, body, _) = http(&invoke(f("connect"), "connect.json", &mut fed).await);
    assert_eq!(
        (status, &body["status"]),
        (200, &"connected".into()),
        "{body}"
    );

    // Deliveries of events to the app: the bus takes the event, the
    // unreadable body alone comes back.
    let batch = event_file("app-events.json");
    let unreadable = batch["Records"][1]["messageId"].clone();
    let answer = invoke(f("app-events"), "app-events.json", &mut fed).await;
    assert_eq!(
        answer["batchItemFailures"],
        serde_json::json!([{ "itemIdentifier": unreadable }]),
        "{answer}"
    );

    // The SQS batch of a good job and a malformed body: only the malformed
    // one comes back, and the good one's days are stored.
    let batch = event_file("sync-worker.json");
    let malformed = batch["Records"][1]["messageId"].clone();
    let answer = invoke(f("sync-worker"), "sync-worker.json", &mut fed).await;
    assert_eq!(
        answer["batchItemFailures"],
        serde_json::json!([{ "itemIdentifier": malformed }]),
        "{answer}"
    );
    // The malformed one on its fifth receive (the queues' maxReceiveCount):
    // failed for good, on its way to the DLQ.
    let mut last_try = batch.clone();
    last_try["Records"] = serde_json::json!([batch["Records"][1].clone()]);
    last_try["Records"][0]["attributes"]["ApproximateReceiveCount"] = "5".into();
    let answer = f("sync-worker")
        .invoke(&last_try, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(answer["batchItemFailures"][0]["itemIdentifier"], malformed);
    let days = stack
        .app
        .health
        .summaries(
            EVENT_USER,
            "2025-11-21".parse().unwrap(),
            "2025-11-23".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(days.len(), 3);

    // The scheduled run: the connection's tokens are due and refreshed.
    let before = connection(&stack, EVENT_USER, Vendor::Mock).await.unwrap();
    let report = invoke(f("token-refresher"), "token-refresher.json", &mut fed).await;
    assert_eq!(
        (&report["due"], &report["refreshed"], &report["failed"]),
        (&1.into(), &1.into(), &0.into()),
        "{report}"
    );
    let after = connection(&stack, EVENT_USER, Vendor::Mock).await.unwrap();
    assert_eq!(after.token_version, before.token_version + 1);

    let (status, body, _) = http(&invoke(f("data"), "data.json", &mut fed).await);
    assert_eq!(status, 202, "{body}");
    let (received, failed) = drain_through(&stack.pump, f("sync-worker")).await;
    assert!(
        received >= 2,
        "the backfill and the manual sync: {received}"
    );
    assert_eq!(failed, 0);
    let (status, body, _) = http(&invoke(f("data"), "data-reports.json", &mut fed).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reports"][0]["date"], today());

    let (status, body, _) = http(&invoke(f("connect"), "connect-complete.json", &mut fed).await);
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("unknown, used or expired completion"));

    let (status, body, content_type) =
        http(&invoke(f("oauth-callback"), "oauth-callback.json", &mut fed).await);
    assert_eq!(status, 400, "{body}");
    assert_eq!(content_type, "application/problem+json");

    // Signed correctly in 2025: stale against the wall clock.
    let (status, body, _) = http(&invoke(f("webhook"), "webhook.json", &mut fed).await);
    assert_eq!(status, 401, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("freshness"));

    // The same event signed now: accepted; delivered again: a duplicate.
    let signed = connector_infra::mock_webhook::sign(
        connector_infra::stack::LOCAL_MOCK_WEBHOOK_SECRET,
        "evt-fresh-1",
        EVENT_USER,
        &today(),
        chrono::Utc::now().timestamp(),
    );
    let mut fresh = event_file("webhook.json");
    fresh["headers"]["x-mock-signature"] = signed.signature.into();
    fresh["headers"]["x-mock-timestamp"] = signed.timestamp.into();
    fresh["headers"]["content-length"] = signed.body.len().to_string().into();
    fresh["body"] = signed.body.into();
    for _ in 0..2 {
        let answer = f("webhook")
            .invoke(&fresh, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(http(&answer).0, 200, "{answer}");
    }
    // Both were queued as notices; the worker syncs the first and drops
    // the second as a duplicate.
    assert_eq!(drain_through(&stack.pump, f("sync-worker")).await, (3, 0));

    // Signed with the events' test secret in February 2026: refused here.
    let (status, body, _) = http(&invoke(f("health-push"), "health-push.json", &mut fed).await);
    assert_eq!(status, 401, "{body}");

    let (status, body, _) = http(&invoke(f("connect"), "connect-delete.json", &mut fed).await);
    assert_eq!(status, 200, "{body}");
    assert!(stack
        .app
        .connections
        .get(EVENT_USER, Vendor::Mock)
        .await
        .unwrap()
        .is_none());

    let (status, receipt, _) = http(&invoke(f("account"), "account.json", &mut fed).await);
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["user_id"], EVENT_USER);
    assert!(receipt["deleted"]["health_items"].as_u64().unwrap() > 0);
    let (status, erasure, _) = http(&invoke(f("account"), "account-erasure.json", &mut fed).await);
    assert_eq!(status, 200, "{erasure}");
    assert_eq!(erasure["status"], receipt["erasure"], "{erasure}");

    // Every file in events/ went through its function's binary.
    let in_events: BTreeSet<String> =
        std::fs::read_dir(connector_infra::stack::workspace_root().join("events"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".json"))
            .collect();
    assert_eq!(fed, in_events);
    // Every log line a function wrote carries the invocation's request id
    // and X-Ray trace id (from the Runtime API's headers); its metric lines
    // are EMF documents of the declared metrics.
    let mut counted = BTreeMap::new();
    for name in FUNCTIONS {
        for line in f(name).logs() {
            let Ok(entry) = serde_json::from_str::<Value>(&line) else {
                panic!("{name} wrote a line that is not JSON: {line}");
            };
            if entry.get("_aws").is_some() {
                for (metric, values, n) in emf_counts(&entry, "WearableConnector") {
                    *counted.entry((name, metric, values)).or_insert(0) += n;
                }
                continue;
            }
            let carried = entry["spans"].as_array().into_iter().flatten().any(|span| {
                span["requestId"].as_str().is_some_and(|id| id.len() == 36)
                    && span["xrayTraceId"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("Root=1-"))
            });
            assert!(carried, "{name}: {line}");
        }
    }
    // What the invocations above must have counted.
    let of = |function: &str, metric: &str, values: &[&str]| {
        let key = (
            function,
            metric.to_string(),
            values.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
        );
        counted.get(&key).copied().unwrap_or(0)
    };
    let webhook_refused = ["mock", "unauthenticated"];
    assert_eq!(of("webhook", "WebhooksRefused", &webhook_refused), 1);
    assert_eq!(of("webhook", "WebhooksAccepted", &["mock"]), 2);
    assert_eq!(of("sync-worker", "WebhookDuplicates", &["mock"]), 1);
    assert_eq!(of("webhook", "WebhookDuplicates", &["mock"]), 0);
    assert_eq!(of("health-push", "PhonePushes", &["unauthenticated"]), 1);
    assert_eq!(of("token-refresher", "RefreshesDone", &["mock"]), 1);
    let worker = |metric: &str, values: &[&str]| of("sync-worker", metric, values);
    assert_eq!(worker("JobsRetried", &["unreadable"]), 1, "{counted:?}");
    assert_eq!(worker("JobsDeadLettered", &["unreadable"]), 1);
    // The events' job, the backfill, the manual sync and the webhook's.
    assert_eq!(worker("JobsDone", &["mock"]), 4, "{counted:?}");
    assert_eq!(worker("JobsDone", &["webhook"]), 2, "{counted:?}");
    assert!(worker("SamplesWritten", &["mock"]) > 0, "{counted:?}");
    assert_eq!(of("app-events", "EventsDelivered", &["bus"]), 1);
    assert_eq!(of("app-events", "EventsRetried", &["unreadable"]), 1);
}

/// The counts of one EMF document, checked against the declared metrics:
/// (metric, its dimension values in declared order, value).
fn emf_counts(doc: &Value, namespace: &str) -> Vec<(String, Vec<String>, u64)> {
    use connector_core::domain::metric::Metric;
    let directives = doc["_aws"]["CloudWatchMetrics"].as_array().unwrap();
    assert!(doc["_aws"]["Timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    assert!(
        doc["requestId"].as_str().is_some_and(|id| id.len() == 36),
        "{doc}"
    );
    assert!(
        doc["xrayTraceId"]
            .as_str()
            .is_some_and(|t| t.starts_with("Root=1-")),
        "{doc}"
    );
    let mut out = Vec::new();
    for d in directives {
        assert_eq!(d["Namespace"], namespace, "{doc}");
        let dimension_sets = d["Dimensions"].as_array().unwrap();
        assert_eq!(dimension_sets.len(), 1, "{doc}");
        let dims: Vec<&str> = dimension_sets[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        for m in d["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            let declared = Metric::ALL
                .into_iter()
                .find(|x| x.name() == name)
                .unwrap_or_else(|| panic!("undeclared metric {name}: {doc}"));
            let mut want: Vec<&str> = declared.dimensions().iter().map(|x| x.name()).collect();
            let mut got = dims.clone();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "{name}'s dimensions: {doc}");
            assert_eq!(m["Unit"], "Count", "{doc}");
            let values = declared
                .dimensions()
                .iter()
                .map(|x| doc[x.name()].as_str().unwrap().to_string())
                .collect();
            let n = doc[name]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: {doc}"));
            assert!(n > 0, "{doc}");
            out.push((name.to_string(), values, n));
        }
    }
    out
}

#[tokio::test]
async fn the_mock_journey_through_binaries_only() {
    build().unwrap();
    let mut opts = options("binaries-journey");
    opts.binaries = true;
    opts.pump = false;
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let c = Client::new(&stack);
    let worker = &stack.binaries["sync-worker"];

    let (status, body) = c.post("/v1/connections/mock", "alice", "").await;
    assert_eq!(
        (status, &body["status"]),
        (200, &"connected".into()),
        "{body}"
    );
    assert_eq!(
        drain_through(&stack.pump, worker).await,
        (1, 0),
        "the backfill"
    );
    let (status, body) = c.post("/v1/sync", "alice", r#"{"vendor":"mock"}"#).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        drain_through(&stack.pump, worker).await,
        (1, 0),
        "the manual sync"
    );
    let (status, reports) = c.get("/v1/reports?days=14", "alice").await;
    assert_eq!(status, 200, "{reports}");
    assert_eq!(reports["reports"].as_array().unwrap().len(), 14);
    assert_eq!(reports["reports"][0]["date"], today());
    assert_eq!(reports["reports"][0]["sources"]["hrv"], "mock", "{reports}");
    // No JWT: the gateway's authorizer answers before any function.
    let (status, _) = c.call("GET", "/v1/reports", None, None).await;
    assert_eq!(status, 401);

    // The answers came from the binaries' processes.
    let answered = |name: &str| stack.binaries[name].answered();
    assert_eq!(
        (
            answered("connect"),
            answered("data"),
            answered("sync-worker")
        ),
        (1, 2, 2)
    );
}
