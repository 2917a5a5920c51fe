//! Reliability against the vendor simulator (issue 5): a rotating,
//! single-use refresh token is spent exactly once however many workers find
//! the access token dead at the same moment.

mod common;

use common::*;
use connector_core::jobs::{JobReason, SyncJob};
use connector_core::sync::{run_job, JobOutcome};
use connector_core::tokens::ConnectionStatus;
use connector_core::Vendor;
use std::sync::atomic::Ordering::SeqCst;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_syncs_on_a_dead_token_refresh_exactly_once() {
    let (sim, stack) = sim_stack("fifty").await;
    // Dexcom: rotating single-use refresh tokens and a quota that 50 syncs fit.
    let dexcom = sim.sim(Vendor::Dexcom).clone();
    let c = Client::new(&stack);
    let back = c.connect_via_sim("dexcom", "alice").await;
    assert_eq!(back["status"], "connected", "{back:?}");
    assert_eq!(drain(&stack).await, (1, 0));
    let before = connection(&stack, "alice", Vendor::Dexcom).await.unwrap();

    // The vendor expires the access token; 50 workers find out at once.
    dexcom
        .oauth
        .lock()
        .unwrap()
        .expire_access(&before.vendor_user_id);
    let refreshes = dexcom.stats.refresh_requests.load(SeqCst);
    let today = chrono::Utc::now().date_naive();
    let job = SyncJob::new("alice", Vendor::Dexcom, today, today, JobReason::Manual).unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (app, job) = (stack.app.clone(), job.clone());
            tokio::spawn(async move { run_job(&app, &job).await })
        })
        .collect();
    for t in tasks {
        let outcome = t.await.unwrap().expect("every sync succeeds");
        assert!(matches!(outcome, JobOutcome::Synced { .. }), "{outcome:?}");
    }
    assert_eq!(
        dexcom.stats.refresh_requests.load(SeqCst) - refreshes,
        1,
        "exactly one refresh reached the vendor"
    );
    assert_eq!(dexcom.stats.refresh_reuse.load(SeqCst), 0);
    let after = connection(&stack, "alice", Vendor::Dexcom).await.unwrap();
    assert_eq!(after.status, ConnectionStatus::Connected);
    assert_eq!(after.token_version, before.token_version + 1);
}

#[tokio::test]
async fn a_vendor_429_retries_when_the_vendor_says_not_at_the_queue_timeout() {
    let (sim, stack) = sim_stack("retry429").await;
    let whoop = sim.sim(Vendor::Whoop).clone();
    let c = Client::new(&stack);
    let back = c.connect_via_sim("whoop", "alice").await;
    assert_eq!(back["status"], "connected", "{back:?}");
    assert_eq!(drain(&stack).await, (1, 0));

    // WHOOP's window resets within 3 s; its 429 says so in X-RateLimit-Reset.
    whoop
        .limiter
        .set_windows(vec![connector_infra::simulator::limits::Window::new(
            100,
            std::time::Duration::from_secs(3),
        )]);
    whoop.limiter.force_429(1);
    let (status, _) = c.post("/v1/sync", "alice", r#"{"vendor":"whoop"}"#).await;
    assert_eq!(status, 202);
    assert_eq!(drain(&stack).await, (1, 1));
    assert_eq!(whoop.stats.rate_limited.load(SeqCst), 1);
    // Not visible before the vendor's reset (the queue's own timeout is 6 min)...
    assert_eq!(drain(&stack).await, (0, 0));
    assert_eq!(queue_depth(&stack).await, 1);
    // ...and back right after it, then done.
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert_eq!(drain(&stack).await, (1, 0));
    assert_eq!(queue_depth(&stack).await, 0);
    let logs = captured_logs();
    assert!(logs.contains("retry_in_secs"), "the retry time is logged");
}

/// Every health item of `user`, without the fetch time, in key order.
async fn stored(stack: &connector_infra::stack::Stack, user: &str) -> Vec<String> {
    let dynamo = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let out = dynamo
        .query()
        .table_name(stack.provisioned.table("HealthDataTable"))
        .key_condition_expression("user_id = :u")
        .expression_attribute_values(
            ":u",
            aws_sdk_dynamodb::types::AttributeValue::S(user.into()),
        )
        .send()
        .await
        .unwrap();
    assert!(out.last_evaluated_key.is_none(), "one page is enough here");
    out.items()
        .iter()
        .map(|item| {
            let sorted: std::collections::BTreeMap<_, _> = item
                .iter()
                .filter(|(k, _)| k.as_str() != "fetched_at")
                .map(|(k, v)| (k.clone(), format!("{v:?}")))
                .collect();
            format!("{sorted:?}")
        })
        .collect()
}

/// Connects alice to WHOOP on a fresh simulator and stack, backfills, then
/// delivers `events` (kind, trace id) `copies` times each in a shuffled
/// order, with as many duplicate SQS deliveries of their jobs; returns
/// what was stored.
async fn ingest(name: &str, events: &[(&str, String)], copies: usize) -> Vec<String> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let (sim, stack) = sim_stack(name).await;
    let whoop = sim.sim(Vendor::Whoop).clone();
    let c = Client::new(&stack);
    let back = c.connect_via_sim("whoop", "alice").await;
    assert_eq!(back["status"], "connected", "{back:?}");
    assert_eq!(drain(&stack).await, (1, 0));
    let user = connection(&stack, "alice", Vendor::Whoop)
        .await
        .unwrap()
        .vendor_user_id;
    let mut deliveries: Vec<&(&str, String)> = events
        .iter()
        .flat_map(|e| std::iter::repeat_n(e, copies))
        .collect();
    deliveries.shuffle(&mut rand::rngs::StdRng::seed_from_u64(5));
    let target = format!("{}/v1/webhooks/whoop", stack.url());
    for (kind, trace) in deliveries {
        // Each delivery is signed anew: timestamps differ by milliseconds.
        let (status, body) = connector_infra::simulator::whoop::deliver_webhook(
            &whoop, &target, &user, kind, trace, false,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(queue_depth(&stack).await, events.len(), "one job per event");
    // SQS delivers at least once: the same jobs again.
    let today = chrono::Utc::now().date_naive();
    for _ in 1..copies {
        let job = SyncJob::new(
            "alice",
            Vendor::Whoop,
            today - chrono::Duration::days(1),
            today,
            JobReason::Webhook,
        )
        .unwrap();
        stack.app.queue.send(&job).await.unwrap();
    }
    let (received, failed) = drain(&stack).await;
    assert_eq!((received, failed), (events.len() + copies - 1, 0));
    stored(&stack, "alice").await
}

#[tokio::test]
async fn a_storm_of_redeliveries_stores_exactly_what_one_clean_delivery_does() {
    let events: Vec<(&str, String)> = ["recovery.updated", "sleep.updated", "workout.updated"]
        .iter()
        .enumerate()
        .flat_map(|(i, kind)| (0..3).map(move |j| (*kind, format!("trace-{i}-{j}"))))
        .collect();
    let clean = ingest("clean", &events, 1).await;
    let storm = ingest("storm", &events, 5).await;
    assert!(
        clean.iter().any(|i| i.contains("sample#hrv")),
        "data was stored"
    );
    assert_eq!(clean.len(), storm.len(), "no duplicates");
    assert_eq!(clean, storm, "the same data");
}

#[tokio::test]
async fn jobs_survive_outages_dropped_connections_and_slowness_exactly_once() {
    let (sim, stack) = sim_stack("faults").await;
    let dexcom = sim.sim(Vendor::Dexcom).clone();
    let c = Client::new(&stack);
    let back = c.connect_via_sim("dexcom", "alice").await;
    assert_eq!(back["status"], "connected", "{back:?}");
    assert_eq!(drain(&stack).await, (1, 0));

    dexcom.faults.drop_next(1);
    dexcom.faults.fail_next(2);
    dexcom.faults.slow_down(100);
    let mut jobs = Vec::new();
    for _ in 0..4 {
        let (status, body) = c
            .post("/v1/sync", "alice", r#"{"vendor":"dexcom","days":1}"#)
            .await;
        assert_eq!(status, 202, "{body}");
        jobs.push(body["job_id"].as_str().unwrap().to_string());
    }
    // Failed jobs come back after their jittered backoff (at most 10 s on a
    // first failure); pump until every one is done.
    let started = std::time::Instant::now();
    while queue_depth(&stack).await > 0 {
        assert!(started.elapsed().as_secs() < 45, "jobs still queued");
        stack.pump.once(&stack.app, 1).await.unwrap();
    }
    assert_eq!(dexcom.faults.injected.load(SeqCst), 3);
    let logs = captured_logs();
    for job in &jobs {
        let done = logs
            .lines()
            .filter(|l| l.contains("job done") && l.contains(job.as_str()))
            .count();
        assert_eq!(done, 1, "job {job} done exactly once");
    }
    let dlq = stack
        .pump
        .sqs
        .receive_message()
        .queue_url(&stack.provisioned.refs["SyncDeadLetterQueue"])
        .send()
        .await
        .unwrap();
    assert!(dlq.messages().is_empty(), "nothing dead-lettered");
    let conn = connection(&stack, "alice", Vendor::Dexcom).await.unwrap();
    assert_eq!(conn.status, ConnectionStatus::Connected);
    assert!(
        conn.last_error.is_none(),
        "transient faults are not recorded as errors"
    );
}
