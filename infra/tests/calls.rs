//! The AWS calls a webhook acknowledgement costs, counted on the webhook
//! function's own SDK clients (`connector_infra::aws_calls`): a signed
//! delivery is queued with one call, an unsigned vendor's user is looked up
//! first, an unknown one costs no write, and many notices go ten to a
//! call. The lookup and the dedup happen in the sync worker, and a
//! re-delivered event still ingests nothing new. A sync job reads its
//! connection once however many parts it pulls, marks it synced in one
//! write (a backfill's days folded in), and writes each pull's samples
//! and raw records in shared batches.

mod common;

use chrono::Utc;
use common::*;
use connector_core::Vendor;
use connector_infra::aws_calls::short;
use connector_infra::simulator::garmin::{notify_answered, ping, pings};
use connector_infra::stack::Stack;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::SeqCst;

/// The webhook function's calls since the last look, by short name.
fn webhook_calls(stack: &Stack) -> BTreeMap<String, u64> {
    short(&stack.calls["webhook"].take())
}

fn calls(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

#[tokio::test]
async fn a_signed_delivery_is_acknowledged_after_one_aws_call() {
    let stack = stack("calls-signed").await;
    let c = Client::new(&stack);
    let (status, body) = c.post("/v1/connections/mock", "alice", "").await;
    assert_eq!(status, 200, "{body}");
    drain(&stack).await;
    let today = Utc::now().date_naive().to_string();
    // The first delivery may read the vendor's secret; warm ones do not.
    let warm_up = signed_webhook(&stack, "evt-warm-up", "alice", &today);
    assert_eq!(c.deliver(&warm_up).await.0, 200);
    drain(&stack).await;
    webhook_calls(&stack);
    let w = signed_webhook(&stack, "evt-1", "alice", &today);
    assert_eq!(c.deliver(&w).await.0, 200);
    assert_eq!(webhook_calls(&stack), calls(&[("SendMessageBatch", 1)]));
    assert_eq!(queue_depth(&stack).await, 1, "one notice");
    // The worker looks the user up, claims the event id and queues the sync.
    assert_eq!(drain(&stack).await, (2, 0), "the notice, then its sync");
    let stored = all_items(&stack).await.len();

    // Delivered again (the vendor's retry): one call again, and the worker
    // drops it without a pull.
    let worker_before = stack.calls["sync-worker"].take();
    assert!(!worker_before.is_empty());
    assert_eq!(c.deliver(&w).await.0, 200);
    assert_eq!(webhook_calls(&stack), calls(&[("SendMessageBatch", 1)]));
    assert_eq!(drain(&stack).await, (1, 0), "the notice only: no sync");
    let worker = short(&stack.calls["sync-worker"].take());
    assert_eq!(worker.get("Query"), Some(&1), "{worker:?}");
    assert_eq!(
        worker.get("PutItem"),
        Some(&1),
        "the refused claim: {worker:?}"
    );
    assert_eq!(worker.get("SendMessage"), None, "{worker:?}");
    assert_eq!(all_items(&stack).await.len(), stored, "nothing new stored");
    assert!(captured_logs().contains("webhook event seen before; dropped"));

    // An event about someone who is no user here: queued (a signed
    // delivery is the vendor's own), then dropped by the worker unwritten.
    let w = signed_webhook(&stack, "evt-stranger", "nobody-here", &today);
    assert_eq!(c.deliver(&w).await.0, 200);
    assert_eq!(webhook_calls(&stack), calls(&[("SendMessageBatch", 1)]));
    assert_eq!(drain(&stack).await, (1, 0));
    let worker = short(&stack.calls["sync-worker"].take());
    for write in ["PutItem", "UpdateItem", "SendMessage", "BatchWriteItem"] {
        assert_eq!(
            worker.get(write),
            None,
            "{write} for a stranger: {worker:?}"
        );
    }
}

#[tokio::test]
async fn an_unsigned_vendor_is_looked_up_first_and_many_notices_go_ten_to_a_call() {
    let (sim, stack) = sim_stack_with(
        "calls-unsigned",
        &[("CONNECTOR_UNSIGNED_PULL_GAP_SECS", "1")],
    )
    .await;
    let garmin = sim.sim(Vendor::Garmin).clone();
    let c = Client::new(&stack);
    c.connect_via_sim("garmin", "alice").await;
    drain(&stack).await;
    let alice = connection(&stack, "alice", Vendor::Garmin).await.unwrap();
    let target = format!("{}/v1/webhooks/garmin", stack.url());
    let client_id = garmin.app.client_id.clone();
    let now = Utc::now().timestamp();
    let notify = |body: Value| {
        let (target, client_id) = (target.clone(), client_id.clone());
        async move { notify_answered(&target, Some(&client_id), &body).await.0 }
    };
    assert_eq!(
        notify(ping("dailies", &alice.vendor_user_id, now - 90, now - 30)).await,
        200
    );
    drain(&stack).await;
    webhook_calls(&stack);

    // A known user: the lookup, then the notice.
    assert_eq!(
        notify(ping("dailies", &alice.vendor_user_id, now - 60, now)).await,
        200
    );
    assert_eq!(
        webhook_calls(&stack),
        calls(&[("Query", 1), ("SendMessageBatch", 1)])
    );
    drain(&stack).await;
    // The pull gap holds that sync back a second.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    drain(&stack).await;
    assert_eq!(queue_depth(&stack).await, 0);

    // A stranger: the lookup only, nothing queued.
    assert_eq!(
        notify(ping("dailies", "no-such-garmin-user", now - 60, now)).await,
        200
    );
    assert_eq!(webhook_calls(&stack), calls(&[("Query", 1)]));
    assert_eq!(queue_depth(&stack).await, 0);

    // Twenty-five notices about the same user in one body: one lookup,
    // three batches.
    assert_eq!(
        notify(pings("dailies", &alice.vendor_user_id, 25, now)).await,
        200
    );
    assert_eq!(
        webhook_calls(&stack),
        calls(&[("Query", 1), ("SendMessageBatch", 3)])
    );
    assert_eq!(queue_depth(&stack).await, 25);
    // The first notice queues a sync, the rest join it while it waits.
    assert_eq!(act_on_notices(&stack).await.len(), 25);
    // The pull gap may hold that sync back a second.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(drain(&stack).await, (1, 0), "one sync for 25 notices");
}

/// The sync worker's DynamoDB calls since the last look, by operation and
/// table (`GetItem ConnectionsTable`).
fn worker_calls_by_table(stack: &Stack) -> BTreeMap<String, u64> {
    stack.calls["sync-worker"].take_by_table()
}

#[tokio::test]
async fn a_sync_job_reads_its_connection_once_and_writes_its_pulls_in_shared_batches() {
    let (_sim, stack) =
        sim_stack_with("calls-sync", &[("CONNECTOR_MANUAL_SYNC_GAP_SECS", "60")]).await;
    let c = Client::new(&stack);
    worker_calls_by_table(&stack);
    let back = c.connect_via_sim("oura", "alice").await;
    assert_eq!(back["status"], "connected", "{back:?}");
    let asked = connection(&stack, "alice", Vendor::Oura).await.unwrap();
    assert_eq!(asked.backfill.unwrap().days_asked, 14, "one part");

    // The backfill: one part of 14 days.
    assert_eq!(drain(&stack).await, (1, 0));
    let backfill = worker_calls_by_table(&stack);
    let stored = health_items(&stack).await;
    let (samples, raw, days) = (stored["sample#"], stored["raw#"], stored["day#"]);
    assert!(samples > 25 && raw > 0, "{stored:?}");
    let get = |calls: &BTreeMap<String, u64>, key: &str| calls.get(key).copied().unwrap_or(0);
    assert_eq!(
        get(&backfill, "BatchWriteItem HealthDataTable"),
        (samples + raw).div_ceil(25),
        "samples and raw records share batches: {backfill:?}"
    );
    assert_eq!(
        get(&backfill, "UpdateItem HealthDataTable"),
        days,
        "{backfill:?}"
    );
    assert_eq!(
        get(&backfill, "GetItem ConnectionsTable"),
        1,
        "{backfill:?}"
    );
    assert_eq!(
        get(&backfill, "UpdateItem ConnectionsTable"),
        3,
        "running, synced with its days, done: {backfill:?}"
    );
    let conn = connection(&stack, "alice", Vendor::Oura).await.unwrap();
    let progress = conn.backfill.expect("tracked");
    assert_eq!((progress.days_done, progress.days_asked), (14, 14));
    assert!(conn.last_sync_at.is_some());

    // A manual sync of a week: its recent days, then its history, two
    // parts on one read of the connection and one mark.
    let (status, body) = c
        .post("/v1/sync", "alice", r#"{"vendor":"oura","days":7}"#)
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(drain(&stack).await, (1, 0));
    let manual = worker_calls_by_table(&stack);
    assert_eq!(get(&manual, "GetItem ConnectionsTable"), 1, "{manual:?}");
    assert_eq!(get(&manual, "UpdateItem ConnectionsTable"), 1, "{manual:?}");
    assert_eq!(
        get(&manual, "PutItem EphemeralTable"),
        2,
        "the pull gap marked once, and the done marker: {manual:?}"
    );
    // A summary per day with data: the simulated user's clock runs behind
    // UTC, so for some hours of the day its today has none yet.
    assert!(
        (6..=7).contains(&get(&manual, "UpdateItem HealthDataTable")),
        "{manual:?}"
    );
}

#[tokio::test]
async fn a_sync_jobs_calls_book_the_fleet_quota_in_batches() {
    // Oura's documented quota: 62 ms slots, four to a backfill booking
    // (tests/quota.rs checks what a booking gives back).
    let (oura_quota, documented) = documented_quota(Vendor::Oura);
    let (sim, stack) = sim_stack_with("calls-quota", &[(&oura_quota, &documented)]).await;
    let c = Client::new(&stack);
    let oura = sim.sim(Vendor::Oura).clone();
    // Runs the waiting jobs; their vendor calls and quota updates.
    let run_jobs = || async {
        worker_calls_by_table(&stack);
        let before = oura.stats.api_requests.load(SeqCst);
        assert_eq!(drain(&stack).await, (1, 0));
        let booked = worker_calls_by_table(&stack)
            .get("UpdateItem EphemeralTable")
            .copied()
            .unwrap_or(0);
        (
            u64::from(oura.stats.api_requests.load(SeqCst) - before),
            booked,
        )
    };
    let back = c.connect_via_sim("oura", "alice").await;
    assert_eq!(back["status"], "connected", "{back:?}");
    // The connect's backfill: backfill books short batches.
    let (calls, booked) = run_jobs().await;
    assert!(calls >= 20, "{calls}");
    assert!(
        booked * 2 <= calls,
        "backfill: {booked} quota updates for {calls} vendor calls"
    );

    // A manual sync of recent days, live: longer batches.
    let (status, body) = c
        .post("/v1/sync", "alice", r#"{"vendor":"oura","days":2}"#)
        .await;
    assert_eq!(status, 202, "{body}");
    let (calls, booked) = run_jobs().await;
    assert!(calls >= 10, "{calls}");
    assert!(
        booked * 2 <= calls,
        "live: {booked} quota updates for {calls} vendor calls"
    );
}
