//! AWS calls per invocation (issue 19, goals 1 and 3): each function's own
//! SDK clients count what they send (`connector_infra::aws_calls`), on the
//! local stack against the vendor simulator. Prints, per path, the mean
//! calls of one invocation by operation: a webhook acknowledged (signed
//! and unsigned vendor, known user, stranger, a re-delivery, a body of 25
//! notices), the sync worker's work on each notice, a webhook's sync job,
//! a manual sync of a week and a connect's backfill (Mock, and Oura on the
//! simulator with its raw records and quota bookings), with the items they
//! stored, the calls per sample and each job's DynamoDB calls by table.
//! Counts do not depend on the build profile; a retried call counts each
//! attempt. Run with `make bench-calls` (ROUNDS= to vary the repeats).

#[path = "../tests/common/mod.rs"]
mod common;

use chrono::Utc;
use common::*;
use connector_core::Vendor;
use connector_infra::aws_calls::{short, Tally};
use connector_infra::simulator::garmin::{notify_answered, ping, pings};
use connector_infra::stack::Stack;
use serde_json::Value;
use std::collections::BTreeMap;

/// A function's calls since the last look.
fn take(stack: &Stack, function: &str) -> Tally {
    stack.calls[function].take_all()
}

fn clear(stack: &Stack) {
    for calls in stack.calls.values() {
        calls.take();
    }
}

/// Items per table, to tell what a path stored.
async fn items(stack: &Stack) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for (table, _) in all_items(stack).await {
        *out.entry(table).or_default() += 1;
    }
    out
}

struct Row {
    path: String,
    function: &'static str,
    per: String,
    runs: u64,
    calls: Tally,
}

impl Row {
    fn new(path: &str, function: &'static str, per: &str) -> Self {
        Self {
            path: path.into(),
            function,
            per: per.into(),
            runs: 0,
            calls: Tally::default(),
        }
    }

    fn add(&mut self, calls: Tally) {
        self.add_many(1, calls);
    }

    /// Calls made over `runs` invocations.
    fn add_many(&mut self, runs: u64, calls: Tally) {
        self.runs += runs;
        self.calls.absorb(calls);
    }

    /// The row's calls by operation's short name.
    fn ops(&self) -> BTreeMap<String, u64> {
        short(&self.calls.by_op)
    }

    /// The row's DynamoDB calls by table, as a line.
    fn print_tables(&self) {
        let runs = self.runs.max(1) as f64;
        let ops: Vec<String> = self
            .calls
            .by_table
            .iter()
            .map(|(op, n)| format!("{op} {}", figure(*n as f64 / runs)))
            .collect();
        println!("- {} ({}): {}", self.path, self.function, ops.join(", "));
    }

    fn print(&self) {
        let runs = self.runs.max(1) as f64;
        let ops = self.ops();
        let total: u64 = ops.values().sum();
        let ops: Vec<String> = ops
            .iter()
            .map(|(op, n)| format!("{op} {}", figure(*n as f64 / runs)))
            .collect();
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            self.path,
            self.function,
            self.per,
            self.runs,
            figure(total as f64 / runs),
            if ops.is_empty() {
                "none".to_string()
            } else {
                ops.join(", ")
            }
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: u64 = arg("ROUNDS", 10);
    // Oura's documented quota (the tests raise every vendor's): how many
    // slots a booking takes depends on it.
    let (oura_quota, documented) = documented_quota(Vendor::Oura);
    let (sim, stack) = sim_stack_with(
        "calls-bench",
        &[
            ("CONNECTOR_UNSIGNED_PULL_GAP_SECS", "1"),
            (&oura_quota, &documented),
        ],
    )
    .await;
    let c = Client::new(&stack);
    let mut rows = Vec::new();
    let mut stored = Vec::new();

    // A connect's backfill (Mock), then a manual sync of a week.
    let before = items(&stack).await;
    clear(&stack);
    let (status, body) = c.post("/v1/connections/mock", "alice", "").await;
    assert_eq!(status, 200, "{body}");
    let mut connect = Row::new("Mock connect", "connect", "request");
    connect.add(take(&stack, "connect"));
    rows.push(connect);
    let (received, failed) = drain(&stack).await;
    assert_eq!(failed, 0);
    let mut backfill = Row::new("its backfill (14 days)", "sync-worker", "job");
    backfill.add_many(received as u64, take(&stack, "sync-worker"));
    rows.push(backfill);
    let mut per_sample = vec![("Mock", rows.len() - 1, health_items(&stack).await)];
    stored.push(("Mock backfill", delta(&before, &items(&stack).await)));

    let mut manual = Row::new("manual sync, 7 days", "data", "request");
    let mut manual_job = Row::new("its sync job", "sync-worker", "job");
    let before = items(&stack).await;
    for _ in 0..rounds {
        let (status, body) = c
            .post("/v1/sync", "alice", r#"{"vendor":"mock","days":7}"#)
            .await;
        assert_eq!(status, 202, "{body}");
        manual.add(take(&stack, "data"));
        assert_eq!(drain(&stack).await, (1, 0));
        manual_job.add(take(&stack, "sync-worker"));
    }
    stored.push((
        "manual syncs (all rounds)",
        delta(&before, &items(&stack).await),
    ));
    rows.extend([manual, manual_job]);

    // Oura on the simulator: real-shaped answers, raw records kept, and
    // every vendor call booked from the fleet quota.
    let before = health_items(&stack).await;
    c.connect_via_sim("oura", "carol").await;
    clear(&stack);
    let (received, failed) = drain(&stack).await;
    assert_eq!(failed, 0);
    let mut oura_backfill = Row::new("Oura connect's backfill (14 days)", "sync-worker", "job");
    oura_backfill.add_many(received as u64, take(&stack, "sync-worker"));
    let oura_new = delta(&before, &health_items(&stack).await);
    rows.push(oura_backfill);
    per_sample.push(("Oura", rows.len() - 1, oura_new));
    let mut oura_manual = Row::new("Oura manual sync, 7 days: its job", "sync-worker", "job");
    for _ in 0..rounds {
        let (status, body) = c
            .post("/v1/sync", "carol", r#"{"vendor":"oura","days":7}"#)
            .await;
        assert_eq!(status, 202, "{body}");
        take(&stack, "data");
        assert_eq!(drain(&stack).await, (1, 0));
        oura_manual.add(take(&stack, "sync-worker"));
    }
    rows.push(oura_manual);

    // Signed webhooks (Mock): new events, each acted on and synced.
    let today = Utc::now().date_naive().to_string();
    let w = signed_webhook(&stack, "evt-warm-up", "alice", &today);
    assert_eq!(c.deliver(&w).await.0, 200);
    drain(&stack).await;
    clear(&stack);
    let mut signed = Row::new("signed webhook, new event", "webhook", "delivery");
    let mut notice = Row::new("its notice", "sync-worker", "notice");
    let mut job = Row::new("its sync job (1 day)", "sync-worker", "job");
    let mut again = Row::new("same event delivered again", "webhook", "delivery");
    let mut again_notice = Row::new("its notice (dropped)", "sync-worker", "notice");
    let mut stranger = Row::new("signed webhook, unknown user", "webhook", "delivery");
    let mut stranger_notice = Row::new("its notice (dropped)", "sync-worker", "notice");
    for i in 0..rounds {
        let w = signed_webhook(&stack, &format!("evt-{i}"), "alice", &today);
        let deliver = || c.deliver(&w);
        assert_eq!(deliver().await.0, 200);
        signed.add(take(&stack, "webhook"));
        assert_eq!(act_on_notices(&stack).await.len(), 1);
        notice.add(take(&stack, "sync-worker"));
        assert_eq!(drain(&stack).await, (1, 0));
        job.add(take(&stack, "sync-worker"));

        assert_eq!(deliver().await.0, 200);
        again.add(take(&stack, "webhook"));
        assert_eq!(act_on_notices(&stack).await.len(), 1);
        again_notice.add(take(&stack, "sync-worker"));
        assert_eq!(queue_depth(&stack).await, 0, "a re-delivery queues no sync");

        let w = signed_webhook(&stack, &format!("evt-stranger-{i}"), "nobody-here", &today);
        assert_eq!(c.deliver(&w).await.0, 200);
        stranger.add(take(&stack, "webhook"));
        assert_eq!(act_on_notices(&stack).await.len(), 1);
        stranger_notice.add(take(&stack, "sync-worker"));
        assert_eq!(queue_depth(&stack).await, 0);
    }
    rows.extend([
        signed,
        notice,
        job,
        again,
        again_notice,
        stranger,
        stranger_notice,
    ]);

    // An unsigned vendor (Garmin): the user is looked up before any write.
    let garmin = sim.sim(Vendor::Garmin).clone();
    c.connect_via_sim("garmin", "bob").await;
    drain(&stack).await;
    let bob = connection(&stack, "bob", Vendor::Garmin).await.unwrap();
    let target = format!("{}/v1/webhooks/garmin", stack.url());
    let client_id = garmin.app.client_id.clone();
    let notify = |body: Value| {
        let (target, client_id) = (target.clone(), client_id.clone());
        async move { notify_answered(&target, Some(&client_id), &body).await.0 }
    };
    clear(&stack);
    let mut known = Row::new("Garmin ping, known user", "webhook", "delivery");
    let mut known_notice = Row::new("its notice", "sync-worker", "notice");
    let mut unknown = Row::new("Garmin ping, unknown user", "webhook", "delivery");
    let mut many = Row::new("Garmin body of 25 pings, one user", "webhook", "delivery");
    for i in 0..rounds as i64 {
        let now = Utc::now().timestamp() - i * 3600;
        assert_eq!(
            notify(ping("dailies", &bob.vendor_user_id, now - 60, now)).await,
            200
        );
        known.add(take(&stack, "webhook"));
        assert_eq!(act_on_notices(&stack).await.len(), 1);
        known_notice.add(take(&stack, "sync-worker"));
        drain(&stack).await;
        take(&stack, "sync-worker");

        assert_eq!(
            notify(ping("dailies", "no-such-garmin-user", now - 60, now)).await,
            200
        );
        unknown.add(take(&stack, "webhook"));

        assert_eq!(
            notify(pings("dailies", &bob.vendor_user_id, 25, now)).await,
            200
        );
        many.add(take(&stack, "webhook"));
        assert_eq!(act_on_notices(&stack).await.len(), 25);
        // The pull gap holds the sync back a second.
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        drain(&stack).await;
        clear(&stack);
    }
    rows.extend([known, known_notice, unknown, many]);

    println!(
        "AWS calls per invocation, counted on each function's SDK clients ({rounds} rounds, {})",
        Utc::now().format("%Y-%m-%d")
    );
    println!();
    println!("| path | function | per | runs | calls | by operation (mean) |");
    println!("|---|---|---|---|---|---|");
    for row in &rows {
        row.print();
    }
    println!();
    for (what, delta) in stored {
        println!("items stored by {what}: {delta:?}");
    }
    println!();
    for (vendor, row, stored) in per_sample {
        let calls: u64 = rows[row].calls.by_op.values().sum();
        let count = |kind| stored.get(kind).copied().unwrap_or(0);
        let samples = count("sample#");
        println!(
            "{vendor} backfill: {calls} sync-worker calls stored {samples} samples, {} raw records and {} daily summaries: {} calls per sample",
            count("raw#"),
            count("day#"),
            figure(calls as f64 / samples.max(1) as f64)
        );
    }
    println!();
    println!("The sync worker's DynamoDB calls per job, by table (mean):");
    println!();
    for row in rows.iter().filter(|r| r.per == "job") {
        row.print_tables();
    }
}

/// What `after` counts beyond `before`, where it counts more.
fn delta(
    before: &BTreeMap<&'static str, u64>,
    after: &BTreeMap<&'static str, u64>,
) -> BTreeMap<&'static str, u64> {
    after
        .iter()
        .map(|(t, n)| (*t, n.saturating_sub(before.get(t).copied().unwrap_or(0))))
        .filter(|(_, d)| *d != 0)
        .collect()
}
