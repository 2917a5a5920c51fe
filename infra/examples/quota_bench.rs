//! Fleet-quota benchmark (issue 5 item 4): a backlog of WHOOP backfill jobs,
//! ten sync workers on the backfill queue (each its own App, as separate
//! Lambdas), one on the live queue, and the vendor simulator enforcing a
//! quota. Prints the share of the quota used, the
//! 429s, and how long live syncs waited. Run with `make bench-quota`
//! (QUOTA=limit/secs WORKERS= SECS= USERS= to vary it; CONNECTOR_QUOTA=off
//! runs the same fleet without the connector's quota).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use connector_core::domain::job::{JobReason, SyncJob};
use connector_core::Vendor;
use connector_infra::simulator::limits::Window;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let quota: String = arg("QUOTA", "60/3".to_string());
    let workers: usize = arg("WORKERS", 10);
    let secs: u64 = arg("SECS", 30);
    let users: usize = arg("USERS", 10);
    let (limit, per) = quota
        .split_once('/')
        .map(|(l, p)| (l.parse::<u32>().unwrap(), p.parse::<u64>().unwrap()))
        .expect("QUOTA=limit/secs");

    let (sim, stack) = sim_stack_with(
        "quota-bench",
        &[(
            "CONNECTOR_WHOOP_QUOTA",
            &std::env::var("CONNECTOR_QUOTA").unwrap_or(quota.clone()),
        )],
    )
    .await;
    let whoop = sim.sim(Vendor::Whoop).clone();
    whoop
        .limiter
        .set_windows(vec![Window::new(limit, Duration::from_secs(per))]);
    let c = Client::new(&stack);
    let names: Vec<String> = (0..users).map(|i| format!("user{i}")).collect();
    for u in names.iter().chain(std::iter::once(&"live".to_string())) {
        let back = c.connect_via_sim("whoop", u).await;
        assert_eq!(back["status"], "connected", "{back:?}");
    }
    // The connects queued backfills too; add a backlog no run can finish:
    // one job per user-day, four WHOOP collections each.
    let today = chrono::Utc::now().date_naive();
    let backlog = (limit as u64 * secs / per) as usize;
    for i in 0..backlog {
        let day = today - chrono::Duration::days((i / users) as i64 % 300);
        let job = SyncJob::new(
            &names[i % users],
            Vendor::Whoop,
            day,
            day,
            JobReason::Backfill,
        )
        .unwrap();
        stack.app.queue.send(&job).await.unwrap();
    }
    // Let the connects' own calls age out of the simulator's window.
    tokio::time::sleep(Duration::from_secs(per + 1)).await;

    let stop = std::sync::Arc::new(AtomicBool::new(false));
    // A live sync (a webhook's job) every few seconds for a user with no
    // backfill: how long until it is done, behind the backlog?
    let probe = async {
        // Counted from when every worker is up and the queue flows.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let (ok0, limited0) = (
            whoop.stats.api_requests.load(SeqCst),
            whoop.stats.rate_limited.load(SeqCst),
        );
        let started = Instant::now();
        let mut waits = Vec::new();
        while started.elapsed() < Duration::from_secs(secs) {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let before = connection(&stack, "live", Vendor::Whoop)
                .await
                .unwrap()
                .last_sync_at;
            let sent = Instant::now();
            let job =
                SyncJob::new("live", Vendor::Whoop, today, today, JobReason::Webhook).unwrap();
            stack.app.queue.send(&job).await.unwrap();
            while started.elapsed() < Duration::from_secs(secs) {
                let now = connection(&stack, "live", Vendor::Whoop)
                    .await
                    .unwrap()
                    .last_sync_at;
                if now != before {
                    waits.push(sent.elapsed());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let counted = (
            started.elapsed(),
            whoop.stats.api_requests.load(SeqCst) - ok0,
            whoop.stats.rate_limited.load(SeqCst) - limited0,
        );
        stop.store(true, SeqCst);
        (waits, counted)
    };
    // As in AWS, each queue has its own event source: `workers` on the
    // backlog, and the live queue's own worker for the probe's jobs.
    let (halt, halt_live) = (stop.clone(), stop.clone());
    let [live_queue, backfill_queue]: [_; 2] = stack.pump.per_queue().try_into().ok().unwrap();
    let ((mut live_waits, (elapsed, ok, limited)), (), ()) = tokio::join!(
        probe,
        run_workers(&stack, &backfill_queue, workers, move || halt.load(SeqCst)),
        run_workers(&stack, &live_queue, 1, move || halt_live.load(SeqCst))
    );
    let available = f64::from(limit) * elapsed.as_secs_f64() / per as f64;
    live_waits.sort();

    println!("quota benchmark: WHOOP limited to {limit} calls per {per} s; {workers} workers; {users} users; backlog {backlog} backfill jobs");
    println!("  run                {:.1} s", elapsed.as_secs_f64());
    println!("  calls answered     {ok}");
    println!("  quota available    {available:.0}");
    println!(
        "  share of quota     {:.1} %",
        100.0 * ok as f64 / available
    );
    println!("  429s               {limited}");
    if let (Some(first), Some(last)) = (live_waits.first(), live_waits.last()) {
        println!(
            "  live syncs         {} done; waited {:.2}–{:.2} s (median {:.2} s)",
            live_waits.len(),
            first.as_secs_f64(),
            last.as_secs_f64(),
            live_waits[live_waits.len() / 2].as_secs_f64()
        );
    } else {
        println!("  live syncs         none finished");
    }
}
