//! Events to the app leave the connector: onto the stack's EventBridge bus
//! (read back through a rule, as an app subscribes) and to the app's
//! webhook, signed the Standard Webhooks way and checked with that
//! convention's reference verifier from PyPI, not this project's code. A
//! webhook that keeps failing is retried with backoff, then dead-lettered,
//! and the documented redrive delivers it.

mod common;

use axum::http::{HeaderMap, StatusCode};
use common::*;
use connector_core::domain::app_event::{AppEvent, EventType};
use connector_core::flows::events::tell;
use connector_core::Vendor;
use connector_infra::stack::{start, Stack, LOCAL_APP_WEBHOOK_SECRET};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    headers: BTreeMap<String, String>,
    body: String,
}

/// The app's webhook endpoint: keeps what it is sent, answers `status`.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    async fn start() -> Self {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (g, s) = (got.clone(), status.clone());
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: String| async move {
                let headers = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                    .collect();
                g.lock().unwrap().push(Received {
                    at: Instant::now(),
                    headers,
                    body,
                });
                StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap()
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, got, status }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

/// Whether the Standard Webhooks reference library (PyPI `standardwebhooks`)
/// accepts `r` as signed with `secret`.
fn verified(secret: &str, r: &Received) -> bool {
    use std::io::Write;
    let script = "import json, sys\n\
        from standardwebhooks.webhooks import Webhook\n\
        d = json.load(sys.stdin)\n\
        Webhook(d['secret']).verify(d['body'], d['headers'])\n";
    let python = connector_infra::stack::workspace_root().join(".venv/bin/python");
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the venv's python runs (make test installs it)");
    let input = serde_json::json!({"secret": secret, "body": r.body, "headers": r.headers});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    child.wait().unwrap().success()
}

async fn stack_with_webhook(name: &str, hook: &Receiver, env: &[(&str, &str)]) -> Stack {
    let mut o = options(name);
    o.extra_env
        .insert("CONNECTOR_APP_WEBHOOK_URL".into(), hook.url.clone());
    for (k, v) in env {
        o.extra_env.insert(k.to_string(), v.to_string());
    }
    start(o).await.expect("local stack starts")
}

/// A queue subscribed to the stack's bus by a rule on the connector's
/// source, as an app in the same account subscribes.
async fn subscribe_to_bus(stack: &Stack) -> String {
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let events = aws_sdk_eventbridge::Client::new(&stack.sdk);
    let bus = &stack.provisioned.refs["AppEventBus"];
    let url = sqs
        .create_queue()
        .queue_name(format!("{bus}-app-tap"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    events
        .put_rule()
        .name("app-tap")
        .event_bus_name(bus)
        .event_pattern(r#"{"source": ["wearable-connector"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("app-tap")
        .event_bus_name(bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("tap")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    url
}

/// Every EventBridge event the subscribed queue got so far.
async fn bus_events(stack: &Stack, tap: &str) -> Vec<serde_json::Value> {
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let mut out = Vec::new();
    loop {
        let page = sqs
            .receive_message()
            .queue_url(tap)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if page.is_empty() {
            return out;
        }
        for m in page {
            out.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(tap)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

/// Runs the AppEvents queue's event source until the queue is empty (for
/// now): deliveries made and failed.
async fn deliver_all(stack: &Stack) -> (usize, usize) {
    let (mut received, mut failed) = (0, 0);
    for _ in 0..50 {
        let stats = stack
            .event_pump
            .once(stack.function("app-events"), 0)
            .await
            .expect("pump round");
        received += stats.received;
        failed += stats.failed;
        if stats.received == 0 {
            return (received, failed);
        }
    }
    panic!("the AppEvents queue did not drain");
}

async fn messages_in(stack: &Stack, queue: &str) -> usize {
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&stack.provisioned.refs[queue])
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    attrs[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages]
        .parse()
        .unwrap()
}

fn ids(events: &[serde_json::Value]) -> Vec<String> {
    let mut ids: Vec<String> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn every_event_reaches_the_bus_and_the_webhook_once_signed_the_standard_way() {
    let hook = Receiver::start().await;
    let stack = stack_with_webhook("delivery", &hook, &[]).await;
    let tap = subscribe_to_bus(&stack).await;
    let c = Client::new(&stack);

    // Connect (and its backfill), a storm of one webhook ten times, a
    // disconnect.
    let (status, body) = c.post("/v1/connections/mock", "alice", "").await;
    assert_eq!(status, 200, "{body}");
    drain(&stack).await;
    for _ in 0..10 {
        let w = signed_webhook(&stack, "evt-storm", "alice", &today());
        let (status, body) = c.deliver(&w).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(act_on_notices(&stack).await.len(), 10);
    assert_eq!(drain(&stack).await, (1, 0), "the storm is one job");
    let (status, body) = c
        .call("DELETE", "/v1/connections/mock", Some("alice"), None)
        .await;
    assert_eq!(status, 200, "{body}");

    let feed = feed(&c, "alice", 100).await;
    assert_eq!(
        types_of(&feed),
        [
            "connection.connected",
            "data.updated",
            "backfill.completed",
            "data.updated",
            "connection.disconnected"
        ]
    );
    // One delivery per event and channel, none failed.
    assert_eq!(deliver_all(&stack).await, (2 * feed.len(), 0));

    // The webhook: each event once, its body the feed's event, signed so
    // that the reference verifier accepts it.
    let got = hook.got();
    let bodies: Vec<serde_json::Value> = got
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(ids(&bodies), ids(&feed), "{bodies:#?}");
    for (r, body) in got.iter().zip(&bodies) {
        assert!(feed.contains(body), "{body}");
        assert_eq!(r.headers["webhook-id"], body["id"].as_str().unwrap());
        assert!(r.headers["webhook-signature"].starts_with("v1,"), "{r:?}");
        assert_eq!(r.headers["content-type"], "application/json");
        assert!(verified(LOCAL_APP_WEBHOOK_SECRET, r), "{r:?}");
        let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["data", "id", "timestamp", "type"], "{body}");
    }
    // The verifier is not a rubber stamp: a changed body or another
    // secret fails.
    let mut forged = got[0].clone();
    forged.body = forged.body.replace("alice", "mallory");
    assert!(!verified(LOCAL_APP_WEBHOOK_SECRET, &forged));
    assert!(!verified(
        "whsec_b3RoZXItc2VjcmV0LW9mLTI0LWJ5dGVzISE=",
        &got[0]
    ));

    // The bus: each event once, source and detail-type to match a rule on,
    // the detail the same body.
    let on_bus = bus_events(&stack, &tap).await;
    let details: Vec<serde_json::Value> = on_bus.iter().map(|e| e["detail"].clone()).collect();
    assert_eq!(ids(&details), ids(&feed), "{on_bus:#?}");
    for e in &on_bus {
        assert_eq!(e["source"], "wearable-connector");
        assert_eq!(e["detail-type"], e["detail"]["type"], "{e}");
        assert!(feed.contains(&e["detail"]), "{e}");
    }

    // The same occurrence told again (a writer's retry) is not sent again.
    let first: AppEvent = serde_json::from_value(feed[0].clone()).unwrap();
    tell(&stack.app, &first).await.unwrap();
    assert_eq!(deliver_all(&stack).await, (0, 0));

    // An event kept by a try that failed before queueing it is sent by the
    // retry, once.
    let now = chrono::Utc::now();
    let fresh = AppEvent::connection(EventType::Revoked, "alice", Vendor::Mock, "g2", None, now);
    assert!(stack.app.events.keep(&fresh, now).await.unwrap());
    for _ in 0..2 {
        tell(&stack.app, &fresh).await.unwrap();
    }
    assert_eq!(deliver_all(&stack).await, (2, 0));
    let sent = hook
        .got()
        .iter()
        .filter(|r| r.headers["webhook-id"] == fresh.id)
        .count();
    assert_eq!(sent, 1);
    assert_eq!(bus_events(&stack, &tap).await.len(), 1);
}

#[tokio::test]
async fn a_failing_webhook_is_retried_with_backoff_then_dead_lettered_and_redriven() {
    let hook = Receiver::start().await;
    hook.status.store(500, Ordering::SeqCst);
    let stack = stack_with_webhook(
        "redelivery",
        &hook,
        &[("CONNECTOR_APP_EVENT_BACKOFF_CAP_SECS", "1")],
    )
    .await;
    let tap = subscribe_to_bus(&stack).await;
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let redrive: serde_json::Value = {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&stack.provisioned.refs["AppEventsQueue"])
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        serde_json::from_str(&attrs[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy])
            .unwrap()
    };
    let max: usize = redrive["maxReceiveCount"].to_string().parse().unwrap();
    assert_eq!(max as u32, stack.app.config.app_event_max_receives);

    let event = AppEvent::connection(
        EventType::Connected,
        "carol",
        Vendor::Mock,
        "g1",
        None,
        chrono::Utc::now(),
    );
    tell(&stack.app, &event).await.unwrap();

    // Each round takes what is visible: the bus delivery succeeds at once,
    // the webhook fails every try until the queue dead-letters it.
    let mut rounds = 0;
    while messages_in(&stack, "AppEventsDeadLetterQueue").await == 0 {
        rounds += 1;
        assert!(rounds < 4 * max, "never dead-lettered");
        stack
            .event_pump
            .once(stack.function("app-events"), 2)
            .await
            .unwrap();
    }
    let tries = hook.got();
    assert_eq!(tries.len(), max, "one POST per receive");
    assert!(tries.iter().all(|r| r.headers["webhook-id"] == event.id));
    assert!(tries.iter().all(|r| verified(LOCAL_APP_WEBHOOK_SECRET, r)));
    // Each retry waited its backoff (capped at 1 s here), not the queue's
    // visibility timeout.
    for pair in tries.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= std::time::Duration::from_millis(900), "{gap:?}");
    }
    assert_eq!(bus_events(&stack, &tap).await.len(), 1, "the bus once");
    assert_eq!(messages_in(&stack, "AppEventsQueue").await, 0);

    // The app is back: the documented redrive delivers the event.
    hook.status.store(204, Ordering::SeqCst);
    let prefix = stack.provisioned.refs["AppEventBus"]
        .strip_suffix("-AppEventBus")
        .unwrap()
        .to_string();
    let queues = connector_infra::redrive::local_queues(&sqs, &prefix)
        .await
        .unwrap();
    assert_eq!(
        connector_infra::redrive::redrive_events(&sqs, &queues).await,
        Ok(1)
    );
    assert_eq!(deliver_all(&stack).await, (1, 0));
    let all = hook.got();
    assert_eq!(all.len(), max + 1);
    assert!(verified(LOCAL_APP_WEBHOOK_SECRET, all.last().unwrap()));
    assert_eq!(messages_in(&stack, "AppEventsDeadLetterQueue").await, 0);
    assert_eq!(
        bus_events(&stack, &tap).await.len(),
        0,
        "not on the bus again"
    );
}

#[tokio::test]
async fn an_erased_user_is_told_to_the_app_but_kept_nowhere() {
    let hook = Receiver::start().await;
    let stack = stack_with_webhook(
        "user-deleted",
        &hook,
        &[("CONNECTOR_ERASURE_SWEEP_DELAY_SECS", "0")],
    )
    .await;
    let c = Client::new(&stack);
    let (status, _) = c.post("/v1/connections/mock", "dora", "").await;
    assert_eq!(status, 200);
    drain(&stack).await;
    deliver_all(&stack).await;
    let before = hook.got().len();

    let (status, body) = c.call("DELETE", "/v1/me", Some("dora"), None).await;
    assert!(status == 200 || status == 202, "{body}");
    drain(&stack).await;
    let (status, erasure) = c.get("/v1/me/erasure", "dora").await;
    assert_eq!(
        (status, &erasure["status"]),
        (200, &"done".into()),
        "{erasure}"
    );
    deliver_all(&stack).await;

    let told: Vec<Received> = hook.got()[before..]
        .iter()
        .filter(|r| r.body.contains("user.deleted"))
        .cloned()
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    let body: serde_json::Value = serde_json::from_str(&told[0].body).unwrap();
    assert_eq!(body["type"], "user.deleted");
    assert_eq!(body["data"], serde_json::json!({"user_id": "dora"}));
    assert!(verified(LOCAL_APP_WEBHOOK_SECRET, &told[0]));
    // The erased user's feed stays empty: the event is not kept.
    assert_eq!(feed(&c, "dora", 10).await, Vec::<serde_json::Value>::new());
}
