//! `make bench-memory` (issue 19, goal 5): each function's duration at
//! 128 MB against 256 MB, estimated from its release binary's warm
//! invocations, and the memory size that follows.
//!
//! The stack serves every HTTP route and both queues through the
//! functions' release binaries (each under its role, against a local
//! Runtime API) while the connect, webhook, sync, push, read and erasure
//! paths run `ROUNDS` times (default 10) on the vendor simulator, Oura
//! under its documented quota, after a warm-up round; the token
//! refresher's binary gets its schedule event each round. Per function it
//! takes the invocations' duration (handed over to answered, as Lambda
//! bills it) and the CPU time the process used meanwhile. Lambda gives a
//! function CPU in proportion to its memory, one vCPU at 1,769 MB, so at
//! `M` MB an invocation takes its waiting time (duration less CPU) plus its
//! CPU time × 1,769 / `M` (`CPU_SCALE` × that, if a Lambda vCPU is slower
//! or faster than a core here).
//!
//! The size: 128 MB costs less wherever a function waits at all (its
//! waiting is billed at half the rate, its CPU time at the same), so a
//! function nobody waits on (a queue's or the schedule's) gets 128 MB, and
//! one that answers an HTTP request gets 128 MB unless that adds more than
//! `LATENCY_MS` (default 20) to its answer; then 256 MB. A function whose
//! peak memory passes half of 128 MB, or with a known larger worst case
//! ([`FLOORS`]), keeps what it needs.

#[path = "../tests/common/mod.rs"]
mod common;

use chrono::Utc;
use common::*;
use connector_core::Vendor;
use connector_infra::lambda::LambdaProcess;
use connector_infra::simulator::oura::{deliver_webhook, Event};
use connector_infra::stack::{workspace_root, Stack};
use connector_infra::template::Template;
use std::collections::BTreeMap;
use std::time::Duration;

/// Memory at which Lambda gives a function one vCPU (MB).
const ONE_VCPU_MB: f64 = 1769.0;
/// Functions whose worst case the benchmark's small pulls do not show,
/// and the least memory they need, with why.
const FLOORS: [(&str, u32, &str); 2] = [
    (
        "sync-worker",
        256,
        "holds up to 24 MiB of one pull's vendor answers and their parse",
    ),
    (
        "token-refresher",
        256,
        "one 60 s tick refreshes every token due within the hour: its work grows with the fleet",
    ),
];

/// Where one function process stood.
#[derive(Clone, Copy)]
struct Mark {
    answered: usize,
    invoked: Duration,
    cpu: Duration,
}

impl Mark {
    fn of(p: &LambdaProcess) -> Self {
        Self {
            answered: p.answered(),
            invoked: p.invoked_for(),
            cpu: p.cpu_time().expect("the process's CPU time"),
        }
    }
}

/// The sync worker's queues, then the app events'.
async fn drain(stack: &Stack) {
    for (pump, function) in [
        (&stack.pump, "sync-worker"),
        (&stack.event_pump, "app-events"),
    ] {
        let (_, failed) = drain_through(pump, &stack.binaries[function]).await;
        assert_eq!(failed, 0, "{function} failed a message");
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = arg("ROUNDS", 10);
    let cpu_scale: f64 = arg("CPU_SCALE", 1.0);
    let latency_ms: f64 = arg("LATENCY_MS", 20.0);
    let template = Template::load(&workspace_root().join("template.yaml")).unwrap();
    let mut opts = options("memory-bench");
    let (oura_quota, documented) = documented_quota(Vendor::Oura);
    opts.extra_env.insert(oura_quota, documented);
    // Served by the release binaries `make bench-memory` builds.
    opts.binaries = true;
    let (sim, stack) = sim_stack_on(opts).await;
    let c = Client::new(&stack);
    let oura = sim.sim(Vendor::Oura).clone();
    let refresher = stack
        .start_binary("token-refresher")
        .await
        .expect("the token refresher's release binary starts");
    let tick = event_file("token-refresher.json");
    let mut processes: BTreeMap<&str, &LambdaProcess> = stack
        .binaries
        .iter()
        .map(|(name, p)| (name.as_str(), p.as_ref()))
        .collect();
    processes.insert("token-refresher", &refresher);
    let served: std::collections::BTreeSet<String> =
        template.routes().into_iter().map(|r| r.binary).collect();

    let (status, body) = c.post("/v1/connections/mock", "alice", "").await;
    assert_eq!(status, 200, "{body}");
    let back = c.connect_via_sim("oura", "carol").await;
    assert_eq!(back["status"], "connected", "{back:?}");
    drain(&stack).await;
    let target = format!("{}/v1/webhooks/oura", stack.url());
    let carol = connection(&stack, "carol", Vendor::Oura)
        .await
        .unwrap()
        .vendor_user_id;
    let today = Utc::now().date_naive().to_string();

    let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
    // Round 0 warms every process up; the rest are measured.
    for round in 0..=rounds {
        if round == 1 {
            marks = processes.iter().map(|(n, p)| (*n, Mark::of(p))).collect();
        }
        // A new user connects Oura (connect, the consent, oauth-callback,
        // its backfill) and erases it all again (account).
        let newcomer = format!("newcomer-{round}");
        let back = c.connect_via_sim("oura", &newcomer).await;
        assert_eq!(back["status"], "connected", "{back:?}");
        drain(&stack).await;
        let (status, body) = c.call("DELETE", "/v1/me", Some(&newcomer), None).await;
        assert!(status == 202 || status == 200, "{status} {body}");
        drain(&stack).await;
        let (status, body) = c.get("/v1/me/erasure", &newcomer).await;
        assert_eq!(status, 200, "{body}");
        refresher
            .invoke(&tick, Duration::from_secs(60))
            .await
            .expect("the token refresher's tick");

        let event = Event {
            event_type: "update".into(),
            data_type: "sleep".into(),
            object_id: format!("obj-{round}"),
            event_time: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        };
        let (status, body) = deliver_webhook(&oura, &target, &carol, &event, false).await;
        assert_eq!(status, 200, "{body}");
        drain(&stack).await;

        let (status, body) = c
            .post("/v1/sync", "carol", r#"{"vendor":"oura","days":7}"#)
            .await;
        assert_eq!(status, 202, "{body}");
        drain(&stack).await;

        let summary = serde_json::json!({
            "date": today,
            "generated_at": Utc::now().to_rfc3339(),
            "steps": 9000 + round,
            "hrv": 46.2,
        });
        let (status, body) = c.push(&stack, "dave", &summary.to_string()).await;
        assert!(status == 200 || status == 201, "{status} {body}");
        drain(&stack).await;

        for (path, user) in [
            ("/v1/reports?days=14", Some("alice")),
            ("/v1/connections", Some("alice")),
            ("/v1/providers", Some("alice")),
            ("/v1/health", None),
            ("/v1/openapi.json", None),
            ("/v1/connect", None),
        ] {
            let (status, body) = c.call("GET", path, user, None).await;
            assert_eq!(status, 200, "{path}: {body}");
        }
        eprintln!("round {round} of {rounds} done");
    }

    println!(
        "Warm invocations of the release binaries, {rounds} rounds, {}, {} cores; CPU_SCALE {cpu_scale}",
        Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!();
    println!("| function | template | invocations | duration | CPU | at 128 MB | at 256 MB | added at 128 | GB-s 128 / 256 | peak RSS | size |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, before) in &marks {
        let p = processes[name];
        let now = Mark::of(p);
        let n = now.answered - before.answered;
        if n == 0 {
            continue;
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / n as f64;
        let duration = ms(now.invoked - before.invoked);
        let cpu = ms(now.cpu - before.cpu);
        let waiting = (duration - cpu).max(0.0);
        let at = |mb: f64| waiting + cpu * cpu_scale * ONE_VCPU_MB / mb;
        let (d128, d256) = (at(128.0), at(256.0));
        let peak_mb = p.peak_rss_kib().unwrap_or(0) as f64 / 1024.0;
        let answers_http = served.contains(*name);
        let size = match FLOORS.iter().find(|f| f.0 == *name) {
            Some((_, mb, why)) => format!("{mb}: {why}"),
            None if peak_mb > 64.0 => "256: its peak memory".into(),
            None if !answers_http => "128: nobody waits on it".into(),
            None if d128 - d256 <= latency_ms => "128".into(),
            None => format!("256: 128 MB adds over {latency_ms} ms"),
        };
        println!(
            "| {name} | {} MB | {n} | {duration:.1} ms | {cpu:.2} ms | {d128:.1} ms | {d256:.1} ms | {:.1} ms | {:.2} | {peak_mb:.1} MB | {size} |",
            template.memory_of(name).unwrap_or(0),
            d128 - d256,
            // Billed GB-seconds at 128 MB relative to 256 MB.
            (d128.ceil() * 128.0) / (d256.ceil() * 256.0),
        );
    }
}
