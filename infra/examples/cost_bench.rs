//! Cost per million (issue 19, goal 6): runs the webhook, sync, push and
//! read paths on the local stack and the vendor simulator, counts per path
//! what AWS bills (API Gateway requests, Lambda requests and GB-seconds at
//! each function's `MemorySize` in template.yaml, DynamoDB request units,
//! SQS requests, KMS and Secrets Manager calls, EventBridge events,
//! CloudWatch Logs bytes) and prints the cost per million at list prices,
//! then a month of a user base (`USERS` × `VENDORS_PER_USER` × events a
//! day). Each queue round the pump hands a function is one invocation, as
//! an SQS event source's batch is; its duration is measured here (a debug
//! build against the emulator: longer than in Lambda) plus `VENDOR_MS` per
//! vendor call, the time a real vendor takes to answer that the simulator
//! does not. Prices are parameters (`PRICE_*`, see [`Prices`]). Run with
//! `make bench-cost` (ROUNDS= to vary the repeats).

#[path = "../tests/common/mod.rs"]
mod common;

use chrono::Utc;
use common::*;
use connector_core::Vendor;
use connector_infra::aws_calls::{short, Tally};
use connector_infra::pump::Pump;
use connector_infra::simulator::oura::{deliver_webhook, Event};
use connector_infra::simulator::VendorSim;
use connector_infra::stack::Stack;
use connector_infra::template::Template;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Instant;

/// AWS list prices, US East (N. Virginia), read 2026-12-06 from the
/// services' pricing pages; each can be set with its `PRICE_*` variable.
struct Prices {
    /// API Gateway HTTP API, $ per million requests (first 300 million a month).
    api_per_m: f64,
    /// Lambda, $ per million requests.
    lambda_per_m: f64,
    /// Lambda on arm64, $ per GB-second (first 7.5 billion a month).
    lambda_gb_s: f64,
    /// DynamoDB on-demand, $ per million write request units.
    write_unit_per_m: f64,
    /// DynamoDB on-demand, $ per million read request units.
    read_unit_per_m: f64,
    /// SQS standard queues, $ per million requests (64 KB each).
    sqs_per_m: f64,
    /// KMS, $ per million requests.
    kms_per_m: f64,
    /// Secrets Manager, $ per million API calls.
    secrets_per_m: f64,
    /// EventBridge, $ per million custom events.
    bus_per_m: f64,
    /// CloudWatch Logs, $ per GB ingested.
    logs_per_gb: f64,
}

impl Prices {
    fn from_env() -> Self {
        Self {
            api_per_m: arg("PRICE_API_PER_M", 1.00),
            lambda_per_m: arg("PRICE_LAMBDA_PER_M", 0.20),
            lambda_gb_s: arg("PRICE_LAMBDA_GB_S", 0.000_013_333_4),
            write_unit_per_m: arg("PRICE_WRITE_UNIT_PER_M", 0.625),
            read_unit_per_m: arg("PRICE_READ_UNIT_PER_M", 0.125),
            sqs_per_m: arg("PRICE_SQS_PER_M", 0.40),
            kms_per_m: arg("PRICE_KMS_PER_M", 3.00),
            secrets_per_m: arg("PRICE_SECRETS_PER_M", 5.00),
            bus_per_m: arg("PRICE_BUS_PER_M", 1.00),
            logs_per_gb: arg("PRICE_LOGS_PER_GB", 0.50),
        }
    }
}

/// The bytes of Lambda's own START, END and REPORT lines per invocation,
/// logged besides the function's lines (counted from the harness's log).
const PLATFORM_LOG_BYTES: u64 = 260;

/// What a path's runs cost AWS, summed over the runs.
#[derive(Default)]
struct PathCost {
    name: String,
    runs: u64,
    api_requests: u64,
    /// Per function: (invocations, billed milliseconds, MB).
    invocations: BTreeMap<String, (u64, f64, u64)>,
    calls: Tally,
    vendor_calls: u64,
    log_bytes: u64,
}

/// The dollars of one path's runs, by what AWS bills.
#[derive(Default)]
struct Dollars {
    api: f64,
    lambda: f64,
    dynamodb: f64,
    sqs: f64,
    kms_secrets: f64,
    bus: f64,
    logs: f64,
}

impl Dollars {
    fn total(&self) -> f64 {
        self.api + self.lambda + self.dynamodb + self.sqs + self.kms_secrets + self.bus + self.logs
    }
}

impl PathCost {
    fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            ..Default::default()
        }
    }

    fn invoked(&mut self, function: &str, millis: f64, template: &Template) {
        let mb = template.memory_of(function).expect("the template sizes it");
        let entry = self
            .invocations
            .entry(function.to_string())
            .or_insert((0, 0.0, mb));
        entry.0 += 1;
        // Lambda bills whole milliseconds.
        entry.1 += millis.ceil();
    }

    fn ops(&self, prefix: &str) -> u64 {
        self.calls
            .by_op
            .iter()
            .filter(|(op, _)| op.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// The cost of one run.
    fn per_run(&self, p: &Prices, vendor_ms: f64) -> Dollars {
        let runs = self.runs.max(1) as f64;
        let m = 1e6;
        let invocations: u64 = self.invocations.values().map(|(n, _, _)| n).sum();
        let mut gb_s: f64 = self
            .invocations
            .values()
            .map(|(_, ms, mb)| ms / 1000.0 * *mb as f64 / 1024.0)
            .sum();
        // The vendor's answers, waited for in the sync worker.
        if let Some((_, _, mb)) = self.invocations.get("sync-worker") {
            gb_s += self.vendor_calls as f64 * vendor_ms / 1000.0 * *mb as f64 / 1024.0;
        }
        // Each message a function receives is one receive and one delete
        // by its event source, besides the sends counted.
        let received: u64 = self
            .invocations
            .iter()
            .filter(|(f, _)| matches!(f.as_str(), "sync-worker" | "app-events"))
            .map(|(_, (n, _, _))| n)
            .sum();
        Dollars {
            api: self.api_requests as f64 * p.api_per_m / m / runs,
            lambda: (invocations as f64 * p.lambda_per_m / m + gb_s * p.lambda_gb_s) / runs,
            dynamodb: (self.calls.write_units * p.write_unit_per_m
                + self.calls.read_units * p.read_unit_per_m)
                / m
                / runs,
            sqs: (self.calls.sqs_requests + 2 * received) as f64 * p.sqs_per_m / m / runs,
            kms_secrets: (self.ops("TrentService.") as f64 * p.kms_per_m
                + self.ops("secretsmanager.") as f64 * p.secrets_per_m)
                / m
                / runs,
            bus: self.calls.bus_events as f64 * p.bus_per_m / m / runs,
            logs: (self.log_bytes + invocations * PLATFORM_LOG_BYTES) as f64 / 1e9 * p.logs_per_gb
                / runs,
        }
    }

    fn print(&self, p: &Prices, vendor_ms: f64) {
        let runs = self.runs.max(1) as f64;
        let d = self.per_run(p, vendor_ms);
        let functions: Vec<String> = self
            .invocations
            .iter()
            .map(|(f, (n, ms, mb))| {
                format!(
                    "{f} {}×{} ms@{mb}MB",
                    figure(*n as f64 / runs),
                    figure(ms / *n.max(&1) as f64)
                )
            })
            .collect();
        let calls: u64 = self.calls.by_op.values().sum();
        println!(
            "| {} | {} | {} | {} | {} / {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | **{:.2}** |",
            self.name,
            functions.join(", "),
            figure(calls as f64 / runs),
            figure(self.vendor_calls as f64 / runs),
            figure(self.calls.write_units / runs),
            figure(self.calls.read_units / runs),
            figure(self.log_bytes as f64 / runs),
            self.runs,
            d.api * 1e6,
            d.lambda * 1e6,
            d.dynamodb * 1e6,
            d.sqs * 1e6,
            d.kms_secrets * 1e6,
            d.bus * 1e6,
            d.logs * 1e6,
            d.total() * 1e6,
        );
    }
}

/// Every function's calls since the last look, summed.
fn take_calls(stack: &Stack) -> Tally {
    let mut all = Tally::default();
    for calls in stack.calls.values() {
        all.absorb(calls.take_all());
    }
    all
}

/// One run of a path, from where the logs and the vendor's answers stood
/// when it began.
struct Run {
    logs: usize,
    answered: u32,
}

impl Run {
    fn start(vendor: &VendorSim) -> Self {
        Self {
            logs: captured_logs().len(),
            answered: vendor.stats.api_requests.load(SeqCst),
        }
    }

    /// Adds to `path` what the run cost: every function's AWS calls, the
    /// vendor's answers and the log lines since it began.
    fn end(self, path: &mut PathCost, stack: &Stack, vendor: &VendorSim) {
        path.calls.absorb(take_calls(stack));
        path.vendor_calls += u64::from(vendor.stats.api_requests.load(SeqCst) - self.answered);
        path.log_bytes += (captured_logs().len() - self.logs) as u64;
        path.runs += 1;
    }
}

/// Runs `function` on what `pump` finds until its queue is empty, each
/// round timed as one invocation.
async fn run_queue(
    stack: &Stack,
    pump: &Pump,
    function: &'static str,
    path: &mut PathCost,
    template: &Template,
) {
    loop {
        let started = Instant::now();
        let stats = pump
            .once(stack.function(function), 0)
            .await
            .expect("pump round");
        if stats.received == 0 {
            return;
        }
        assert_eq!(stats.failed, 0, "{function} failed a message");
        path.invoked(function, started.elapsed().as_secs_f64() * 1000.0, template);
    }
}

/// Runs the sync worker and then the app-events function on their queues
/// until both are empty.
async fn run_queues(stack: &Stack, path: &mut PathCost, template: &Template) {
    run_queue(stack, &stack.pump, "sync-worker", path, template).await;
    run_queue(stack, &stack.event_pump, "app-events", path, template).await;
}

/// An HTTP request through the gateway, timed as one invocation of the
/// function the template routes `method` `route` to.
async fn http<F, Fut>(
    path: &mut PathCost,
    template: &Template,
    (method, route): (&str, &str),
    send: F,
) -> (u16, serde_json::Value)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = (u16, serde_json::Value)>,
{
    let bare = route.split('?').next().unwrap_or(route);
    let function = template
        .routes()
        .into_iter()
        .find(|r| r.matches(method, bare).is_some())
        .unwrap_or_else(|| panic!("no function serves {method} {bare}"))
        .binary;
    let started = Instant::now();
    let out = send().await;
    path.api_requests += 1;
    path.invoked(
        &function,
        started.elapsed().as_secs_f64() * 1000.0,
        template,
    );
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: u64 = arg("ROUNDS", 10);
    let vendor_ms: f64 = arg("VENDOR_MS", 150.0);
    let prices = Prices::from_env();
    let template =
        Template::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")).unwrap();
    // Oura's documented quota (the tests raise every vendor's).
    let (oura_quota, documented) = documented_quota(Vendor::Oura);
    let (sim, stack) = sim_stack_with("cost-bench", &[(&oura_quota, &documented)]).await;
    let c = Client::new(&stack);
    let oura = sim.sim(Vendor::Oura).clone();

    // Connected users, their backfills done; then every counter from none.
    let (status, body) = c.post("/v1/connections/mock", "alice", "").await;
    assert_eq!(status, 200, "{body}");
    let back = c.connect_via_sim("oura", "carol").await;
    assert_eq!(back["status"], "connected", "{back:?}");
    let mut warm = PathCost::default();
    run_queues(&stack, &mut warm, &template).await;
    let today = Utc::now().date_naive().to_string();
    let target = format!("{}/v1/webhooks/oura", stack.url());
    let carol = connection(&stack, "carol", Vendor::Oura)
        .await
        .unwrap()
        .vendor_user_id;
    let event = |id: String| Event {
        event_type: "update".into(),
        data_type: "sleep".into(),
        object_id: id,
        event_time: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
    };
    deliver_webhook(&oura, &target, &carol, &event("warm-up".into()), false).await;
    let summary =
        serde_json::json!({"date": today, "generated_at": Utc::now().to_rfc3339(), "steps": 1});
    c.push(&stack, "dave", &summary.to_string()).await;
    run_queues(&stack, &mut warm, &template).await;
    take_calls(&stack);

    let mut webhook = PathCost::new("webhook event (Oura, signed): ack, notice, sync, its event");
    let mut sync = PathCost::new("manual sync (Oura, 7 days): request, job, its event");
    let mut push = PathCost::new("phone push (one day's summary)");
    let mut reports = PathCost::new("API read: `GET /v1/reports?days=14`");
    let mut connections = PathCost::new("API read: `GET /v1/connections`");
    for i in 0..rounds {
        let run = Run::start(&oura);
        let e = event(format!("obj-{i}"));
        let (status, body) = http(
            &mut webhook,
            &template,
            ("POST", "/v1/webhooks/oura"),
            || async {
                let (status, body) = deliver_webhook(&oura, &target, &carol, &e, false).await;
                (status, serde_json::Value::String(body))
            },
        )
        .await;
        assert_eq!(status, 200, "{body}");
        run_queues(&stack, &mut webhook, &template).await;
        run.end(&mut webhook, &stack, &oura);

        let run = Run::start(&oura);
        let (status, body) = http(&mut sync, &template, ("POST", "/v1/sync"), || {
            c.post("/v1/sync", "carol", r#"{"vendor":"oura","days":7}"#)
        })
        .await;
        assert_eq!(status, 202, "{body}");
        run_queues(&stack, &mut sync, &template).await;
        run.end(&mut sync, &stack, &oura);

        let run = Run::start(&oura);
        let summary = serde_json::json!({
            "date": today,
            "generated_at": Utc::now().to_rfc3339(),
            "steps": 9000 + i,
            "hrv": 46.2,
        })
        .to_string();
        let (status, body) = http(&mut push, &template, ("POST", "/v1/health/push"), || {
            c.push(&stack, "dave", &summary)
        })
        .await;
        assert!(status == 200 || status == 201, "{status} {body}");
        run_queues(&stack, &mut push, &template).await;
        run.end(&mut push, &stack, &oura);

        for (path, route) in [
            (&mut reports, "/v1/reports?days=14"),
            (&mut connections, "/v1/connections"),
        ] {
            let run = Run::start(&oura);
            let (status, body) =
                http(path, &template, ("GET", route), || c.get(route, "alice")).await;
            assert_eq!(status, 200, "{route}: {body}");
            run.end(path, &stack, &oura);
        }
    }

    let paths = [&webhook, &sync, &push, &reports, &connections];
    println!(
        "Cost per million at AWS list prices (us-east-1, read 2026-12-06), {rounds} rounds, {}; vendor answers {vendor_ms} ms each",
        Utc::now().format("%Y-%m-%d")
    );
    println!();
    println!("| path | invocations × mean billed duration | AWS calls | vendor calls | DynamoDB write / read units | log bytes | runs | API GW $ | Lambda $ | DynamoDB $ | SQS $ | KMS + Secrets $ | EventBridge $ | Logs $ | total $ per million |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for path in paths {
        path.print(&prices, vendor_ms);
    }
    println!();
    for path in paths {
        let runs = path.runs.max(1) as f64;
        let ops: Vec<String> = short(&path.calls.by_op)
            .iter()
            .map(|(op, n)| format!("{op} {}", figure(*n as f64 / runs)))
            .collect();
        let writes: Vec<String> = path
            .calls
            .write_units_by_table
            .iter()
            .map(|(table, units)| format!("{table} {}", figure(units / runs)))
            .collect();
        println!(
            "- {}: {}; write units by table: {}",
            path.name,
            ops.join(", "),
            writes.join(", ")
        );
    }

    // A month of a user base.
    let users: f64 = arg("USERS", 1_000_000.0);
    let vendors: f64 = arg("VENDORS_PER_USER", 1.5);
    let webhooks_a_day: f64 = arg("WEBHOOKS_PER_VENDOR_DAY", 6.0);
    let syncs_a_day: f64 = arg("MANUAL_SYNCS_PER_USER_DAY", 0.2);
    let pushes_a_day: f64 = arg("PUSHES_PER_USER_DAY", 0.5);
    let reads_a_day: f64 = arg("READS_PER_USER_DAY", 10.0);
    let days = 30.0;
    let month = [
        (
            "webhook events",
            users * vendors * webhooks_a_day * days,
            &webhook,
        ),
        ("manual syncs", users * syncs_a_day * days, &sync),
        ("phone pushes", users * pushes_a_day * days, &push),
        (
            "API reads (reports)",
            users * reads_a_day * days / 2.0,
            &reports,
        ),
        (
            "API reads (connections)",
            users * reads_a_day * days / 2.0,
            &connections,
        ),
    ];
    println!();
    println!(
        "A month (30 days) of {users} users × {vendors} vendors: {webhooks_a_day} webhook events per vendor a day, {syncs_a_day} manual syncs, {pushes_a_day} phone pushes and {reads_a_day} API reads per user a day (half reports, half connections):"
    );
    println!();
    println!("| what | a month | $ a month |");
    println!("|---|---|---|");
    let mut total = 0.0;
    for (what, count, path) in month {
        let dollars = path.per_run(&prices, vendor_ms).total() * count;
        total += dollars;
        println!("| {what} | {:.1} million | {dollars:.0} |", count / 1e6);
    }
    println!(
        "| total | | **{total:.0}** (${:.4} per user) |",
        total / users
    );
}
