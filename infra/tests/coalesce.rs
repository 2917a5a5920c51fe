//! Live sync jobs wait as one job per (user, vendor): a burst of webhooks
//! or a user looping manual syncs queues one pull that covers every day the
//! burst named, and nobody else's jobs are touched.

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
        let (status, body) = c
            .webhook(&w.body, Some(&w.timestamp), Some(&w.signature))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(queue_depth(&stack).await, 1, "one job waits for the burst");
    // Bob's webhook is his own job.
    let w = signed_webhook(&stack, "evt-bob-1", "bob", &days_ago(25));
    c.webhook(&w.body, Some(&w.timestamp), Some(&w.signature))
        .await;
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
    c.webhook(&w.body, Some(&w.timestamp), Some(&w.signature))
        .await;
    assert_eq!(queue_depth(&stack).await, 1);
    assert_eq!(drain(&stack).await, (1, 0));
}

#[tokio::test]
async fn a_user_looping_manual_syncs_queues_one_job() {
    let stack = stack("coalesce-manual").await;
    let c = Client::new(&stack);
    for u in ["alice", "bob"] {
        c.post("/v1/connections/mock", u, "").await;
    }
    drain(&stack).await;
    for _ in 0..20 {
        let (status, body) = c.post("/v1/sync", "alice", r#"{"vendor":"mock"}"#).await;
        assert_eq!(status, 202, "{body}");
    }
    assert_eq!(queue_depth(&stack).await, 1);
    let (status, _) = c.post("/v1/sync", "bob", r#"{"vendor":"mock"}"#).await;
    assert_eq!(status, 202);
    assert_eq!(queue_depth(&stack).await, 2);
    assert_eq!(drain(&stack).await, (2, 0));
}
