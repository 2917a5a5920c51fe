//! Erasure benchmark (issue 14 item 5): a user with SAMPLES stored samples
//! (default 200,000: about two months of a Garmin user's 15-second heart
//! rate) is deleted with `DELETE /v1/me` and the sync-worker steps it
//! hands on, with the deployed budgets (8 s in the request, 40 s a worker
//! step). Prints how long the request and each step took, against the
//! functions' timeouts (HTTP API 30 s, sync worker 60 s), and the peak heap
//! while erasing, beside the peak of holding every item of the user at once
//! (what the account function did before): a ratio in one run.
//! Run with `make bench-erase` (SAMPLES= to vary it).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use connector_core::domain::health::{MetricType, Sample};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Heap bytes now and at their peak, counted on every allocation: unlike
/// the resident set, a peak that frees what it held shows as freed.
static HEAP_NOW: AtomicUsize = AtomicUsize::new(0);
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);

struct CountingAlloc;

// SAFETY: every call goes to the system allocator unchanged; only counts are added.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = HEAP_NOW.fetch_add(layout.size(), Relaxed) + layout.size();
        HEAP_PEAK.fetch_max(now, Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP_NOW.fetch_sub(layout.size(), Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Starts a new peak; returns the heap held now, in MiB.
fn reset_peak() -> f64 {
    let now = HEAP_NOW.load(Relaxed);
    HEAP_PEAK.store(now, Relaxed);
    now as f64 / MIB
}

/// The heap's peak since the last reset, in MiB.
fn peak() -> f64 {
    HEAP_PEAK.load(Relaxed) as f64 / MIB
}

const MIB: f64 = 1024.0 * 1024.0;

fn samples(from: usize, n: usize) -> Vec<Sample> {
    let start = chrono::Utc::now() - chrono::Duration::days(62);
    (from..from + n)
        .map(|i| {
            let time = start + chrono::Duration::seconds(15 * i as i64);
            Sample {
                metric: MetricType::HeartRate,
                date: time.date_naive(),
                time: Some(time),
                value: 55.0 + (i % 60) as f64,
                source: "garmin".into(),
                label: None,
            }
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total: usize = arg("SAMPLES", 200_000);
    let mut opts = options("erase-bench");
    // The final sweep at once, so the run ends with the erasure done.
    opts.extra_env
        .insert("CONNECTOR_ERASURE_SWEEP_DELAY_SECS".into(), "0".into());
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let c = Client::new(&stack);
    let user = "heavy-garmin-user";

    let seeding = Instant::now();
    let chunk = 5_000;
    for from in (0..total).step_by(chunk) {
        let batch = samples(from, chunk.min(total - from));
        stack.app.health.put_samples(user, &batch).await.unwrap();
    }
    println!(
        "seeded {total} samples in {:.0} s",
        seeding.elapsed().as_secs_f64()
    );

    // What holding every item at once costs (the account function's old way).
    let dynamo = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let table = stack.provisioned.table("HealthDataTable");
    let base = reset_peak();
    let mut held = Vec::new();
    let mut start = None;
    loop {
        let page = dynamo
            .query()
            .table_name(table)
            .key_condition_expression("user_id = :u")
            .expression_attribute_values(
                ":u",
                aws_sdk_dynamodb::types::AttributeValue::S(user.into()),
            )
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        held.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    let all_at_once = peak() - base;
    assert!(held.len() >= total, "{} items", held.len());
    drop(held);

    let base = reset_peak();
    let erasing = Instant::now();
    let (status, receipt) = c.call("DELETE", "/v1/me", Some(user), None).await;
    let request = erasing.elapsed();
    assert!(status == 200 || status == 202, "{status}: {receipt}");
    let mut steps = Vec::new();
    loop {
        let (_, polled) = c.get("/v1/me/erasure", user).await;
        if polled["status"] == "done" {
            break;
        }
        let step = Instant::now();
        let round = stack
            .pump
            .once(stack.function("sync-worker"), 0)
            .await
            .unwrap();
        assert_eq!(round.failed, 0, "a worker step failed");
        if round.received > 0 {
            steps.push(step.elapsed());
        }
        assert!(steps.len() < 1_000, "the erasure does not end");
    }
    let whole = erasing.elapsed();
    let erasure_peak = peak() - base;
    let (_, polled) = c.get("/v1/me/erasure", user).await;
    let left = all_items(&stack)
        .await
        .into_iter()
        .filter(|(_, text)| text.contains(user))
        .count();
    assert_eq!(left, 0, "items still name the user");

    let slowest = steps.iter().max().copied().unwrap_or(Duration::ZERO);
    println!("erased {} health items", polled["health_items"]);
    println!(
        "DELETE /v1/me: {:.1} s (HTTP API limit 30 s), answered {status}, {} deleted in the request",
        request.as_secs_f64(),
        receipt["deleted"]["health_items"]
    );
    println!(
        "worker steps: {}, slowest {:.1} s (sync worker timeout 60 s)",
        steps.len(),
        slowest.as_secs_f64()
    );
    println!(
        "whole erasure: {:.0} s, {:.0} items/s",
        whole.as_secs_f64(),
        total as f64 / whole.as_secs_f64()
    );
    println!(
        "heap above the {base:.0} MiB already held: {all_at_once:.1} MiB holding every item at once \
         (the old way), {erasure_peak:.1} MiB erasing page by page (whole stack, all steps): ratio {:.3}",
        erasure_peak / all_at_once
    );
}
