//! Test harness: a local stack on the shared AWS emulator that `make test`
//! starts (CONNECTOR_TEST_AWS_ENDPOINT), with a unique resource prefix per
//! stack so tests run in parallel without seeing each other's data.
#![allow(dead_code)]

use aws_sdk_sqs::types::QueueAttributeName;
use connector_core::Vendor;
use connector_infra::stack::{start, Stack, StackOptions};
use connector_infra::{dev_jwt, mock_webhook};
use std::time::Duration;

static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogCapture;

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        print!("{}", String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line this test binary has written so far.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).to_string()
}

/// A benchmark's setting: the environment variable `name`, or `default`.
pub fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `x` for a benchmark's table: whole when it is, else two decimals.
pub fn figure(x: f64) -> String {
    if (x - x.round()).abs() < 0.005 {
        format!("{}", x.round())
    } else {
        format!("{x:.2}")
    }
}

pub fn endpoint() -> String {
    std::env::var("CONNECTOR_TEST_AWS_ENDPOINT").expect(
        "integration tests need the AWS emulator: run `make test`, or start moto_server and set CONNECTOR_TEST_AWS_ENDPOINT",
    )
}

pub fn unique_prefix(name: &str) -> String {
    format!(
        "t{}-{name}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

pub fn options(name: &str) -> StackOptions {
    // Log lines go to the test output and to a buffer tests can inspect.
    let _ = tracing_subscriber::fmt()
        .with_writer(|| LogCapture)
        .with_ansi(false)
        .with_env_filter("info")
        .try_init();
    let mut o = StackOptions::new(&endpoint(), &unique_prefix(name));
    // Tests drive the queue themselves so they can see what was queued.
    o.pump = false;
    // The documented quotas pace a fleet (WHOOP: a call every 0.625 s once
    // 2 are spent); suites about other things get a roomy budget, and the
    // quota tests set the vendor's own.
    for v in Vendor::ALL {
        o.extra_env.insert(
            format!("CONNECTOR_{}_QUOTA", v.env_name()),
            "100000/60".into(),
        );
    }
    // Suites about other things sync by hand back to back; the quota tests
    // set the gap between a user's manual pulls.
    o.extra_env
        .insert("CONNECTOR_MANUAL_SYNC_GAP_SECS".into(), "0".into());
    // Every local request comes from 127.0.0.1: the per-source flood guard
    // would otherwise count every suite's webhooks as one source's.
    o.extra_env
        .insert("CONNECTOR_WEBHOOK_PER_SOURCE_PER_SEC".into(), "5000".into());
    o
}

/// `CONNECTOR_<VENDOR>_QUOTA` back at the vendor's documented windows
/// (`options` raises every vendor's), as an environment pair.
pub fn documented_quota(vendor: Vendor) -> (String, String) {
    let windows: Vec<String> = connector_core::vendors::registry::spec(vendor)
        .quota
        .iter()
        .map(|w| {
            let scope = match w.scope {
                connector_core::vendors::quota::Scope::User => "user:",
                connector_core::vendors::quota::Scope::App => "",
            };
            format!("{scope}{}/{}", w.limit, w.per.as_secs())
        })
        .collect();
    (
        format!("CONNECTOR_{}_QUOTA", vendor.env_name()),
        windows.join(","),
    )
}

pub async fn stack(name: &str) -> Stack {
    start(options(name)).await.expect("local stack starts")
}

pub fn token(sub: &str) -> String {
    dev_jwt::mint(&dev_jwt::secret_from_env(), sub, 600)
}

pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

impl Client {
    pub fn new(stack: &Stack) -> Self {
        Self {
            base: stack.url(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        user: Option<&str>,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path));
        if let Some(u) = user {
            req = req.bearer_auth(token(u));
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("gateway answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, json)
    }

    pub async fn get(&self, path: &str, user: &str) -> (u16, serde_json::Value) {
        self.call("GET", path, Some(user), None).await
    }

    pub async fn post(&self, path: &str, user: &str, body: &str) -> (u16, serde_json::Value) {
        self.call("POST", path, Some(user), Some(body)).await
    }

    /// POSTs a JSON body with extra headers (a None value leaves the header
    /// out). A Retry-After header comes back as "retry_after" in the JSON.
    pub async fn post_with(
        &self,
        path: &str,
        user: Option<&str>,
        body: &str,
        headers: &[(&str, Option<&str>)],
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .post(format!("{}{}", self.base, path))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(u) = user {
            req = req.bearer_auth(token(u));
        }
        for (name, value) in headers {
            if let Some(v) = value {
                req = req.header(*name, *v);
            }
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let mut json: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
        if let Some(r) = retry {
            json["retry_after"] = r.into();
        }
        (status, json)
    }

    /// Sends a Mock webhook with the given headers (None leaves one out).
    pub async fn webhook(
        &self,
        body: &str,
        timestamp: Option<&str>,
        signature: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let headers = [
            ("x-mock-timestamp", timestamp),
            ("x-mock-signature", signature),
        ];
        self.post_with("/v1/webhooks/mock", None, body, &headers)
            .await
    }

    /// Sends a signed Mock webhook (`signed_webhook`) as the vendor would.
    pub async fn deliver(&self, w: &mock_webhook::SignedWebhook) -> (u16, serde_json::Value) {
        self.webhook(&w.body, Some(&w.timestamp), Some(&w.signature))
            .await
    }

    /// Sends a phone push with the given envelope (None leaves a header out).
    pub async fn push_with(
        &self,
        user: &str,
        body: &str,
        timestamp: Option<&str>,
        signature: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let headers = [
            ("x-sync-timestamp", timestamp),
            ("x-sync-signature", signature),
        ];
        self.post_with("/v1/health/push", Some(user), body, &headers)
            .await
    }

    /// Sends a phone push signed now with the stack's push secret.
    pub async fn push(&self, stack: &Stack, user: &str, body: &str) -> (u16, serde_json::Value) {
        let s = connector_infra::push_signer::sign(
            &stack.env["CONNECTOR_PUSH_SECRET"],
            &chrono::Utc::now().timestamp().to_string(),
            body.as_bytes(),
        );
        self.push_with(user, body, Some(&s.timestamp), Some(&s.signature))
            .await
    }
}

pub fn signed_webhook(
    stack: &Stack,
    event_id: &str,
    sub: &str,
    date: &str,
) -> mock_webhook::SignedWebhook {
    let secret = &stack.env["CONNECTOR_MOCK_WEBHOOK_SECRET"];
    mock_webhook::sign(secret, event_id, sub, date, chrono::Utc::now().timestamp())
}

/// Messages waiting in the sync queues (live and backfill).
pub async fn queue_depth(stack: &Stack) -> usize {
    let mut depth = 0;
    for queue in &stack.pump.queues {
        depth += messages_in(&stack.pump.sqs, &queue.url).await;
    }
    depth
}

/// Messages (visible, in flight or delayed) in the queue at `url`.
pub async fn messages_in(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap();
    let attrs = out.attributes.unwrap_or_default();
    let n = |a: QueueAttributeName| {
        attrs
            .get(&a)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
    };
    n(QueueAttributeName::ApproximateNumberOfMessages)
        + n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        + n(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
}

/// Pumps the queue into the sync worker until it is empty; returns how many
/// messages were processed and how many failed.
pub async fn drain(stack: &Stack) -> (usize, usize) {
    let (mut received, mut failed) = (0, 0);
    for _ in 0..50 {
        let stats = stack
            .pump
            .once(stack.function("sync-worker"), 0)
            .await
            .expect("pump round");
        received += stats.received;
        failed += stats.failed;
        if stats.received == 0 {
            return (received, failed);
        }
    }
    panic!("queue did not drain");
}

/// Runs `pump` through a function's binary until its queues are empty:
/// the messages received and failed.
pub async fn drain_through(
    pump: &connector_infra::pump::Pump,
    worker: &connector_infra::lambda::LambdaProcess,
) -> (usize, usize) {
    let (mut received, mut failed) = (0, 0);
    for _ in 0..20 {
        let round = pump
            .once_via(connector_infra::pump::Worker::Binary(worker), 0)
            .await
            .unwrap();
        if round.received == 0 {
            return (received, failed);
        }
        received += round.received;
        failed += round.failed;
    }
    panic!("{}'s queues did not empty", worker.binary);
}

/// A file of the repository's events/ (`token-refresher.json`), as JSON.
pub fn event_file(name: &str) -> serde_json::Value {
    let path = connector_infra::stack::workspace_root()
        .join("events")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Has the sync worker act on the webhook notices waiting in the live queue
/// (`flows::webhook::act_on`: lookup, dedup, queue or revoke) and leaves
/// every other message (the syncs they queued) waiting. Returns the
/// notices it acted on; panics when one fails.
pub async fn act_on_notices(stack: &Stack) -> Vec<connector_core::domain::event::WebhookNotice> {
    use connector_core::domain::event::WebhookNotice;
    let (sqs, url) = (&stack.pump.sqs, stack.pump.live_url());
    let worker = stack.function("sync-worker");
    let (mut acted, mut others) = (Vec::new(), Vec::new());
    loop {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(120)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let receipt = m.receipt_handle.clone().unwrap();
            match WebhookNotice::parse(m.body.as_deref().unwrap_or_default()) {
                Ok(notice) => {
                    connector_core::flows::webhook::act_on(worker, &notice)
                        .await
                        .unwrap_or_else(|e| panic!("acting on {notice:?}: {e}"));
                    sqs.delete_message()
                        .queue_url(url)
                        .receipt_handle(receipt)
                        .send()
                        .await
                        .unwrap();
                    acted.push(notice);
                }
                Err(_) => others.push(receipt),
            }
        }
    }
    for receipt in others {
        sqs.change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
    acted
}

pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

pub fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

pub fn days_ago(n: i64) -> String {
    (chrono::Utc::now().date_naive() - chrono::Duration::days(n)).to_string()
}

type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

/// Every item of a table, every page of the scan read.
pub async fn table_items(stack: &Stack, table: &str) -> Vec<Item> {
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .scan()
        .table_name(stack.provisioned.table(table))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap()
}

/// Every item of every table of the stack, as (table, debug text): what a
/// test searches for a value that must not be stored in the clear.
pub async fn all_items(stack: &Stack) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for table in ["ConnectionsTable", "EphemeralTable", "HealthDataTable"] {
        let items = table_items(stack, table).await;
        out.extend(items.iter().map(|item| (table, format!("{item:?}"))));
    }
    out
}

/// HealthData items by kind, the prefix of their sort key: `sample#`,
/// `raw#` (vendor records), `day#` (daily summaries), `push#`.
pub async fn health_items(stack: &Stack) -> std::collections::BTreeMap<&'static str, u64> {
    let mut out = std::collections::BTreeMap::new();
    for item in table_items(stack, "HealthDataTable").await {
        let sk = item["sk"].as_s().expect("a string sort key");
        let kind = ["sample#", "raw#", "day#", "push#"]
            .into_iter()
            .find(|prefix| sk.starts_with(prefix))
            .unwrap_or("other");
        *out.entry(kind).or_default() += 1;
    }
    out
}

/// A vendor simulator and a stack whose vendors point at it.
pub async fn sim_stack(name: &str) -> (connector_infra::simulator::Simulator, Stack) {
    sim_stack_with(name, &[]).await
}

pub async fn sim_stack_with(
    name: &str,
    extra: &[(&str, &str)],
) -> (connector_infra::simulator::Simulator, Stack) {
    let mut opts = options(name);
    for (k, v) in extra {
        opts.extra_env.insert(k.to_string(), v.to_string());
    }
    sim_stack_on(opts).await
}

/// A vendor simulator and a stack of `opts` whose vendors point at it
/// (what `opts` sets already wins).
pub async fn sim_stack_on(
    mut opts: StackOptions,
) -> (connector_infra::simulator::Simulator, Stack) {
    let mut sim = connector_infra::simulator::Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts");
    // Every end-to-end suite on the simulator: no token, code, secret or
    // signature it issued or used may appear in any captured log line.
    sim.check_logs_on_drop(captured_logs);
    // ... and every answer it gave must fit the vendor's own description.
    sim.check_shapes_on_drop();
    for (k, v) in sim.env() {
        opts.extra_env.entry(k).or_insert(v);
    }
    (sim, start(opts).await.expect("local stack starts"))
}

pub fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

impl Client {
    /// `POST /v1/connections/{vendor}` → the vendor's authorize URL (for
    /// Terra, through its Oura).
    pub async fn begin_connect(&self, vendor: &str, user: &str) -> String {
        let body = if vendor == "terra" {
            r#"{"provider":"OURA"}"#
        } else {
            ""
        };
        let (status, body) = self
            .post(&format!("/v1/connections/{vendor}"), user, body)
            .await;
        assert_eq!(status, 200, "{body}");
        body["redirect_url"].as_str().unwrap().to_string()
    }

    /// GETs `url` without following redirects: (status, Location).
    pub async fn visit(&self, url: &str) -> (u16, Option<String>) {
        let resp = self.http.get(url).send().await.expect("answers");
        let loc = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        (resp.status().as_u16(), loc)
    }

    /// The browser's part of a consent: the vendor's authorize URL (which
    /// the simulator answers at once), then the gateway's callback; returns
    /// the query the app's return URL receives.
    pub async fn return_to_app(
        &self,
        authorize_url: &str,
    ) -> std::collections::HashMap<String, String> {
        let (status, callback) = self.visit(authorize_url).await;
        assert_eq!(status, 302, "vendor consent redirects: {callback:?}");
        let callback = callback.unwrap();
        assert!(callback.starts_with(&self.base), "{callback}");
        let (status, back) = self.visit(&callback).await;
        assert_eq!(status, 302);
        query_of(&back.unwrap())
    }

    /// The app's part: `POST /v1/connections/{vendor}/complete` as `user`.
    pub async fn complete(
        &self,
        vendor: &str,
        user: &str,
        completion: &str,
    ) -> (u16, serde_json::Value) {
        let body = serde_json::json!({ "completion": completion }).to_string();
        self.post(&format!("/v1/connections/{vendor}/complete"), user, &body)
            .await
    }

    /// A whole consent by `user`: the browser's part, then the app completes
    /// it as `user`. Returns the outcome as `status` (`connected` or
    /// `error`), `vendor` and, on error, `reason`.
    pub async fn consent(
        &self,
        user: &str,
        authorize_url: &str,
    ) -> std::collections::HashMap<String, String> {
        let mut back = self.return_to_app(authorize_url).await;
        if back.get("status").map(String::as_str) != Some("pending") {
            return back;
        }
        let completion = back.remove("completion").expect("a completion id");
        let (status, body) = self.complete(&back["vendor"], user, &completion).await;
        match status {
            200 => {
                assert_eq!(body["vendor"].as_str(), Some(back["vendor"].as_str()));
                back.insert("status".into(), body["status"].as_str().unwrap().into());
            }
            422 => {
                let detail = body["detail"].as_str().unwrap();
                let reason = detail.split(':').next().unwrap();
                back.insert("status".into(), "error".into());
                back.insert("reason".into(), reason.into());
            }
            other => panic!("completing the consent answered {other}: {body}"),
        }
        back
    }

    /// Connects `user` to `vendor` through the simulator, end to end.
    pub async fn connect_via_sim(
        &self,
        vendor: &str,
        user: &str,
    ) -> std::collections::HashMap<String, String> {
        let url = self.begin_connect(vendor, user).await;
        self.consent(user, &url).await
    }
}

/// The entry of `vendor` in a `GET /v1/providers` answer.
pub fn provider_of(providers: &serde_json::Value, vendor: &str) -> serde_json::Value {
    providers["providers"]
        .as_array()
        .expect("providers list")
        .iter()
        .find(|p| p["id"] == vendor)
        .unwrap_or_else(|| panic!("{vendor} not listed: {providers}"))
        .clone()
}

/// The row for `date` in a `GET /v1/reports` answer.
pub fn report_on(reports: &serde_json::Value, date: chrono::NaiveDate) -> serde_json::Value {
    reports["reports"]
        .as_array()
        .expect("reports list")
        .iter()
        .find(|r| r["date"] == date.to_string())
        .unwrap_or_else(|| panic!("no report for {date}: {reports}"))
        .clone()
}

/// The stored connection of `user` to `vendor`, if any.
pub async fn connection(
    stack: &Stack,
    user: &str,
    vendor: connector_core::Vendor,
) -> Option<connector_core::domain::connection::Connection> {
    stack
        .app
        .connections
        .get(user, vendor)
        .await
        .expect("connection read")
}

/// A fleet of `n` sync workers, each with its own `App` (as separate
/// Lambdas would be), pumping `pump`'s queues until `until` says stop.
pub async fn run_workers<F>(stack: &Stack, pump: &connector_infra::pump::Pump, n: usize, until: F)
where
    F: Fn() -> bool + Send + Sync + 'static,
{
    let until = std::sync::Arc::new(until);
    let mut tasks = Vec::new();
    for _ in 0..n {
        let app = stack
            .function_instance("sync-worker")
            .await
            .expect("worker app");
        let pump = pump.clone();
        let until = until.clone();
        tasks.push(tokio::spawn(async move {
            while !until() {
                if let Err(e) = pump.once(&app, 1).await {
                    panic!("worker round failed: {e}");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
}

/// Messages in the sync queue's dead-letter queue (received, not deleted).
pub async fn dead_letters(stack: &Stack) -> Vec<aws_sdk_sqs::types::Message> {
    stack
        .pump
        .sqs
        .receive_message()
        .queue_url(&stack.provisioned.refs["SyncDeadLetterQueue"])
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

/// Every event of `user`'s change feed, read page by page (`limit` a page)
/// once what was kept so far has settled; each page's cursor is the next
/// one's.
pub async fn feed(client: &Client, user: &str, limit: usize) -> Vec<serde_json::Value> {
    let settle = connector_core::flows::events::FEED_SETTLE.to_std().unwrap();
    tokio::time::sleep(settle + std::time::Duration::from_millis(200)).await;
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("/v1/changes?limit={limit}"),
            Some(c) => format!("/v1/changes?limit={limit}&cursor={c}"),
        };
        let (status, page) = client.get(&path, user).await;
        assert_eq!(status, 200, "{page}");
        let got = page["events"].as_array().unwrap().clone();
        assert!(got.len() <= limit, "{page}");
        cursor = Some(page["cursor"].as_str().unwrap().to_string());
        if got.is_empty() {
            return events;
        }
        events.extend(got);
    }
}

/// The types of `events`, in order.
pub fn types_of(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}
