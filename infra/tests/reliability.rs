//! Reliability against the vendor simulator (issue 5): a rotating,
//! single-use refresh token is spent exactly once however many workers find
//! the access token dead at the same moment.

mod common;

use common::*;
use connector_core::domain::connection::ConnectionStatus;
use connector_core::domain::job::{JobReason, SyncJob};
use connector_core::flows::sync::{run_job, JobOutcome};
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
            let (app, job) = (stack.function("sync-worker").clone(), job.clone());
            tokio::spawn(async move {
                run_job(
                    &app,
                    &job,
                    std::time::Instant::now() + std::time::Duration::from_secs(5),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        let outcome = t.await.unwrap().expect("every sync succeeds");
        assert!(matches!(outcome, JobOutcome::Synced(_)), "{outcome:?}");
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
    assert_eq!(drain(&stack).await, (1, 0), "handed on, not failed");
    assert_eq!(whoop.stats.rate_limited.load(SeqCst), 1);
    // Its days wait in a new message, not visible before the vendor's reset...
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
/// order (they wait as one job), with as many duplicate SQS deliveries of
/// jobs; returns what was stored.
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
    let notices = act_on_notices(&stack).await;
    assert_eq!(notices.len(), events.len() * copies);
    assert_eq!(queue_depth(&stack).await, 1, "the events wait as one job");
    // SQS delivers at least once: every notice again, and the same jobs.
    stack.app.queue.send_notices(&notices).await.unwrap();
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
    assert_eq!((received, failed), (notices.len() + copies, 0));
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
    // Four users, so that their syncs are four jobs (one user's would wait as one).
    let users = ["alice", "bob", "carol", "dave"];
    for user in users {
        let back = c.connect_via_sim("dexcom", user).await;
        assert_eq!(back["status"], "connected", "{back:?}");
        assert_eq!(drain(&stack).await, (1, 0));
    }

    dexcom.faults.drop_next(1);
    dexcom.faults.fail_next(2);
    dexcom.faults.slow_down(100);
    let mut jobs = Vec::new();
    for user in users {
        let (status, body) = c
            .post("/v1/sync", user, r#"{"vendor":"dexcom","days":1}"#)
            .await;
        assert_eq!(status, 202, "{body}");
        jobs.push(body["job_id"].as_str().unwrap().to_string());
    }
    // Failed jobs come back after their jittered backoff (at most 10 s on a
    // first failure); pump until every one is done.
    let started = std::time::Instant::now();
    while queue_depth(&stack).await > 0 {
        assert!(started.elapsed().as_secs() < 45, "jobs still queued");
        stack
            .pump
            .once(stack.function("sync-worker"), 1)
            .await
            .unwrap();
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
    assert!(
        dead_letters(&stack).await.is_empty(),
        "nothing dead-lettered"
    );
    for user in users {
        let conn = connection(&stack, user, Vendor::Dexcom).await.unwrap();
        assert_eq!(conn.status, ConnectionStatus::Connected);
        assert!(
            conn.last_error.is_none(),
            "transient faults are not recorded as errors"
        );
    }
}

/// A worker dies in the middle of a batch (its Lambda times out or is
/// killed): the batch's messages come back after the visibility timeout;
/// the jobs it finished are not run again, the rest run once, nothing is
/// lost and nothing is dead-lettered.
#[tokio::test]
async fn a_worker_killed_mid_batch_loses_nothing_and_repeats_nothing() {
    let stack = stack("killed").await;
    let (c, jobs) = eight_mock_jobs(&stack).await;

    // The worker takes the whole batch and is killed after two jobs.
    let worker = {
        let (pump, app) = (stack.pump.clone(), stack.function("sync-worker").clone());
        tokio::spawn(async move { pump.once(&app, 1).await })
    };
    eventually("two jobs done", || async {
        jobs.iter().filter(|j| done(j) > 0).count() >= 2
    })
    .await;
    worker.abort();
    let finished_before_kill = jobs.iter().filter(|j| done(j) > 0).count();
    assert!(finished_before_kill < jobs.len(), "killed mid-batch");

    // Nothing was deleted; after the visibility timeout another worker
    // takes the batch again.
    assert_eq!(queue_depth(&stack).await, jobs.len());
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let started = std::time::Instant::now();
    while queue_depth(&stack).await > 0 {
        assert!(started.elapsed().as_secs() < 30, "jobs still queued");
        stack
            .pump
            .once(stack.function("sync-worker"), 1)
            .await
            .unwrap();
    }
    for job in &jobs {
        assert!(finished(&stack, job).await, "job {job} lost");
        assert!(done(job) <= 1, "job {job} repeated");
    }
    let dropped = captured_logs()
        .lines()
        .filter(|l| {
            l.contains("duplicate delivery dropped") && jobs.iter().any(|j| l.contains(j.as_str()))
        })
        .count();
    assert!(
        dropped >= finished_before_kill,
        "{dropped} < {finished_before_kill}"
    );
    let (_, reports) = c.get("/v1/reports?days=8", "alice").await;
    assert_eq!(reports["reports"].as_array().unwrap().len(), 8);
    assert!(
        dead_letters(&stack).await.is_empty(),
        "nothing dead-lettered"
    );
}

/// AWS goes away for a few seconds in the middle of a run (every call to
/// DynamoDB, SQS and KMS fails, open connections are cut) and comes back:
/// every job still ends done exactly once, nothing is dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aws_outage_mid_run_loses_nothing_and_repeats_nothing() {
    let outage = connector_infra::outage::Outage::start(&endpoint())
        .await
        .unwrap();
    let mut opts = options("outage");
    opts.endpoint = outage.endpoint();
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let (c, jobs) = eight_mock_jobs(&stack).await;

    // One worker pumps (its rounds fail while AWS is away) and AWS goes
    // down once the first job is done, for 3 s.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Failed rounds and failed jobs: the outage must have been felt.
    let failed_rounds = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let worker = {
        let (pump, app) = (stack.pump.clone(), stack.function("sync-worker").clone());
        let (stop, failed) = (stop.clone(), failed_rounds.clone());
        tokio::spawn(async move {
            while !stop.load(SeqCst) {
                match pump.once(&app, 1).await {
                    Ok(stats) => {
                        failed.fetch_add(stats.failed, SeqCst);
                    }
                    Err(_) => {
                        failed.fetch_add(1, SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    }
                }
            }
        })
    };
    eventually("a job done", || async { jobs.iter().any(|j| done(j) > 0) }).await;
    outage.go_down();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    outage.come_back();
    let started = std::time::Instant::now();
    while !all_finished(&stack, &jobs).await {
        assert!(
            started.elapsed().as_secs() < 90,
            "jobs not done after the outage"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    eventually("queue empty", || async { queue_depth(&stack).await == 0 }).await;
    stop.store(true, SeqCst);
    worker.await.unwrap();
    assert!(failed_rounds.load(SeqCst) > 0, "the outage was felt");
    for job in &jobs {
        assert!(finished(&stack, job).await, "job {job} lost");
        assert!(done(job) <= 1, "job {job} repeated");
    }
    let (_, reports) = c.get("/v1/reports?days=8", "alice").await;
    assert_eq!(reports["reports"].as_array().unwrap().len(), 8);
    assert!(
        dead_letters(&stack).await.is_empty(),
        "nothing dead-lettered"
    );
}

/// Alice connected to Mock, a queue whose abandoned messages come back after
/// 2 s (instead of the template's 6 min), and eight one-day jobs queued.
async fn eight_mock_jobs(stack: &connector_infra::stack::Stack) -> (Client, Vec<String>) {
    let c = Client::new(stack);
    c.post("/v1/connections/mock", "alice", "").await;
    assert_eq!(drain(stack).await, (1, 0));
    // The test's own setting, made as the local admin.
    aws_sdk_sqs::Client::new(&stack.sdk)
        .set_queue_attributes()
        .queue_url(stack.pump.live_url())
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "2",
        )
        .send()
        .await
        .unwrap();
    let today = chrono::Utc::now().date_naive();
    let mut jobs = Vec::new();
    for d in 0..8 {
        let day = today - chrono::Duration::days(d);
        let job = SyncJob::new("alice", Vendor::Mock, day, day, JobReason::Manual).unwrap();
        stack.app.queue.send(&job).await.unwrap();
        jobs.push(job.job_id);
    }
    (c, jobs)
}

/// How many times `job` logged "job done".
/// Whether `job` finished: its done marker, claimed only once its work is
/// stored, exists. A worker cut off between the claim and its log line
/// (killed, or its connection cut by the outage) never logs "job done",
/// and the redelivery is then dropped as a duplicate.
async fn finished(stack: &connector_infra::stack::Stack, job: &str) -> bool {
    let key = format!("job#{job}#done");
    matches!(stack.app.ephemeral.get(&key).await, Ok(Some(_)))
}

async fn all_finished(stack: &connector_infra::stack::Stack, jobs: &[String]) -> bool {
    for job in jobs {
        if !finished(stack, job).await {
            return false;
        }
    }
    true
}

fn done(job: &str) -> usize {
    captured_logs()
        .lines()
        .filter(|l| l.contains("job done") && l.contains(job))
        .count()
}
