//! `GET /v1/health` against the emulator, through the status function's own
//! role: every check answers on a fresh stack; a disabled key and a deleted
//! queue (a job queue or the one events leave by) each turn the answer into
//! a 503 that names the failing part and nothing more, once the few seconds
//! a round of checks answers for have passed.

mod common;

use common::*;
use connector_core::flows::status::StatusCache;
use std::time::{Duration, Instant};

async fn health(client: &Client) -> (u16, serde_json::Value, Option<String>) {
    let resp = client
        .http
        .get(format!("{}/v1/health", client.base))
        .send()
        .await
        .expect("gateway answers");
    let status = resp.status().as_u16();
    let cache = resp
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_string());
    (status, resp.json().await.unwrap(), cache)
}

/// Waits out the round of checks that answered at `since`.
async fn after_the_cached_round(since: Instant) {
    let until = since + StatusCache::TTL + Duration::from_millis(100);
    tokio::time::sleep(until.saturating_duration_since(Instant::now())).await;
}

#[tokio::test]
async fn health_names_the_part_that_fails_and_only_that() {
    let stack = stack("status").await;
    let client = Client::new(&stack);

    // Public: no JWT.
    let checked = Instant::now();
    let (code, body, cache) = health(&client).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], connector_core::flows::status::VERSION);
    assert_eq!(
        body["checks"],
        serde_json::json!({"tables": "ok", "queues": "ok", "key": "ok"})
    );
    assert!(body["checked_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(cache.as_deref(), Some("no-store"));

    // The key is disabled: the answer a moment ago still stands (one round
    // of checks per few seconds, whatever the callers do), then the key
    // check fails.
    let kms = aws_sdk_kms::Client::new(&stack.sdk);
    let key = &stack.provisioned.refs["TokenKey"];
    kms.disable_key().key_id(key).send().await.unwrap();
    let (code, again, _) = health(&client).await;
    assert_eq!((code, &again["checked_at"]), (200, &body["checked_at"]));
    after_the_cached_round(checked).await;
    let checked = Instant::now();
    let (code, body, _) = health(&client).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(
        body["checks"],
        serde_json::json!({"tables": "ok", "queues": "ok", "key": "failing"})
    );
    let text = body.to_string();
    for detail in ["Disabled", "DescribeKey", key.as_str()] {
        assert!(!text.contains(detail), "{detail} in {text}");
    }

    // Enabled again: healthy again; then a queue goes away.
    kms.enable_key().key_id(key).send().await.unwrap();
    after_the_cached_round(checked).await;
    let checked = Instant::now();
    let (code, body, _) = health(&client).await;
    assert_eq!(code, 200, "{body}");

    // The queue events leave by goes away: the queues check fails; made
    // again under its name, healthy again.
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let events_queue = &stack.provisioned.refs["AppEventsQueue"];
    sqs.delete_queue()
        .queue_url(events_queue)
        .send()
        .await
        .unwrap();
    after_the_cached_round(checked).await;
    let checked = Instant::now();
    let (code, body, _) = health(&client).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(
        body["checks"],
        serde_json::json!({"tables": "ok", "queues": "failing", "key": "ok"})
    );
    let name = events_queue.rsplit('/').next().unwrap();
    let made = sqs.create_queue().queue_name(name).send().await.unwrap();
    assert_eq!(made.queue_url(), Some(events_queue.as_str()));
    after_the_cached_round(checked).await;
    let checked = Instant::now();
    let (code, body, _) = health(&client).await;
    assert_eq!(code, 200, "{body}");

    sqs.delete_queue()
        .queue_url(&stack.provisioned.refs["BackfillQueue"])
        .send()
        .await
        .unwrap();
    after_the_cached_round(checked).await;
    let (code, body, _) = health(&client).await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(
        body["checks"],
        serde_json::json!({"tables": "ok", "queues": "failing", "key": "ok"})
    );
}
