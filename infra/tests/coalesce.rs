//! No one user can spend the app's vendor quota: live sync jobs wait as one
//! job per (user, vendor), so a burst of webhooks or a user looping manual
//! syncs queues one pull that covers every day the burst named, and manual
//! syncs and connect starts are limited per user. Nobody else is touched.

mod common;

use common::*;

#[tokio::test]
async fn a_burst_of_webhooks_for_one_user_waits_as_one_job_that_covers_every_day() {
    let stack = stack("coalesce-webhooks").await;
    let c = Client::new(&stack);
    for u in ["alice", "bob"] {
        c.post("/v1/connections/mock", u, "").await;
    }
    drain(&stack).await;
    let (_, reports) = c.get("/v1/reports?days=40", "alice").await;
    let backfilled = reports["reports"].as_array().unwrap().len();

    // Ten days the backfill did not cover, one webhook each.
    for n in 20..30 {
        let w = signed_webhook(&stack, &format!("evt-burst-{n}"), "alice", &days_ago(n));
        let (status, body) = c.deliver(&w).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(act_on_notices(&stack).await.len(), 10);
    assert_eq!(queue_depth(&stack).await, 1, "one job waits for the burst");
    // Bob's webhook is his own job.
    let w = signed_webhook(&stack, "evt-bob-1", "bob", &days_ago(25));
    c.deliver(&w).await;
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    assert_eq!(queue_depth(&stack).await, 2);

    assert_eq!(drain(&stack).await, (2, 0));
    let (_, reports) = c.get("/v1/reports?days=40", "alice").await;
    let dates: Vec<String> = reports["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["date"].as_str().unwrap().to_string())
        .collect();
    // Each webhook pulls its day and the day before: 20..=30 days ago.
    assert_eq!(dates.len(), backfilled + 11, "{dates:?}");
    for n in 20..=30 {
        assert!(
            dates.contains(&days_ago(n)),
            "day {n} ago missing: {dates:?}"
        );
    }

    // Once the job has run, the next webhook queues a new one.
    let w = signed_webhook(&stack, "evt-after", "alice", &days_ago(35));
    c.deliver(&w).await;
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    assert_eq!(queue_depth(&stack).await, 1);
    assert_eq!(drain(&stack).await, (1, 0));
}

#[tokio::test]
async fn a_user_looping_manual_syncs_queues_one_job_and_is_then_refused() {
    let stack = stack("coalesce-manual").await;
    let c = Client::new(&stack);
    for u in ["alice", "bob"] {
        c.post("/v1/connections/mock", u, "").await;
    }
    drain(&stack).await;
    // Twelve an hour (the default) are accepted, and all wait as one job;
    // past that, 429 with the time to wait.
    let mut job_ids = std::collections::BTreeSet::new();
    for i in 0..20 {
        let (status, body) = c.post("/v1/sync", "alice", r#"{"vendor":"mock"}"#).await;
        if i < 12 {
            assert_eq!(status, 202, "{body}");
            job_ids.insert(body["job_id"].as_str().unwrap().to_string());
        } else {
            assert_eq!(status, 429, "{body}");
            assert!(
                body["detail"].as_str().unwrap().contains("retry in"),
                "{body}"
            );
        }
    }
    assert_eq!(job_ids.len(), 1, "every answer names the waiting job");
    assert_eq!(queue_depth(&stack).await, 1);
    let (status, _) = c.post("/v1/sync", "bob", r#"{"vendor":"mock"}"#).await;
    assert_eq!(status, 202);
    assert_eq!(queue_depth(&stack).await, 2);
    assert_eq!(drain(&stack).await, (2, 0));
}

#[tokio::test]
async fn connect_starts_are_limited_per_user() {
    let mut opts = options("connect-starts");
    opts.extra_env
        .insert("CONNECTOR_WHOOP_CLIENT_ID".into(), "fake-whoop-id".into());
    opts.extra_env.insert(
        "CONNECTOR_WHOOP_CLIENT_SECRET".into(),
        "fake-whoop-secret".into(),
    );
    opts.extra_env
        .insert("CONNECTOR_CONNECT_STARTS_PER_HOUR".into(), "5".into());
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let c = Client::new(&stack);
    for _ in 0..5 {
        let (status, body) = c.post("/v1/connections/whoop", "alice", "").await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = c.post("/v1/connections/whoop", "alice", "").await;
    assert_eq!(status, 429, "{body}");
    let (status, _) = c.post("/v1/connections/whoop", "bob", "").await;
    assert_eq!(status, 200, "another user is not limited by alice");
}
