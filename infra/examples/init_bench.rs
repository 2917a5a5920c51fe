//! `make bench-init` (issue 19, goal 2): how each function binary starts,
//! against two references built with the same release profile: `hello`, a
//! plain lambda_http hello-world, and `sdk-hello`, which also loads the AWS
//! SDK's configuration and builds DynamoDB, SQS and KMS clients at init
//! (infra/init-references). Every binary runs as Lambda runs it, under its
//! role's session against a local Runtime API (infra/src/lambda.rs), ROUNDS
//! times (default 9), interleaved so the machine's load falls on all alike.
//! Per binary it prints the stripped size, the median init (process start
//! to its first request for an invocation), that as a ratio of hello's and
//! of sdk-hello's, the peak resident memory, and the median first request
//! (its events/ file, answered or refused) after the init.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use connector_infra::stack::workspace_root;
use std::time::Duration;

const REFERENCES: [&str; 2] = ["hello", "sdk-hello"];

#[derive(Default)]
struct Runs {
    init_ms: Vec<f64>,
    first_ms: Vec<f64>,
    peak_kib: u64,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = arg("ROUNDS", 9);
    let release = workspace_root().join("target/release");
    let stack = connector_infra::stack::start(options("init-bench"))
        .await
        .unwrap();
    // Every function template.yaml deploys.
    let template =
        connector_infra::template::Template::load(&workspace_root().join("template.yaml")).unwrap();
    let functions: Vec<String> = template.functions().into_iter().map(|(_, b)| b).collect();
    let subjects: Vec<&str> = REFERENCES
        .into_iter()
        .chain(functions.iter().map(String::as_str))
        .collect();
    let event = |name: &str| -> serde_json::Value {
        // The references answer any HTTP event: the connect page's.
        let file = if REFERENCES.contains(&name) {
            "pages"
        } else {
            name
        };
        event_file(&format!("{file}.json"))
    };
    let mut runs: std::collections::HashMap<&str, Runs> = Default::default();
    for round in 0..rounds {
        for &name in &subjects {
            // The references call nothing: any function's role will do.
            let role = if REFERENCES.contains(&name) {
                "pages"
            } else {
                name
            };
            let p = stack
                .start_binary_at(role, &release.join(name))
                .await
                .unwrap_or_else(|e| panic!("{name}: {e} (run `make bench-init`, which builds it)"));
            let init = p
                .init_time(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("{name} did not start: {:?}", p.logs()));
            let started = std::time::Instant::now();
            let _ = p.invoke(&event(name), Duration::from_secs(30)).await;
            let first = started.elapsed();
            let r = runs.entry(name).or_default();
            r.init_ms.push(init.as_secs_f64() * 1e3);
            r.first_ms.push(first.as_secs_f64() * 1e3);
            r.peak_kib = r.peak_kib.max(p.peak_rss_kib().unwrap_or(0));
        }
        eprintln!("round {} of {rounds} done", round + 1);
    }
    let hello = median(&runs["hello"].init_ms);
    let sdk = median(&runs["sdk-hello"].init_ms);
    println!(
        "{} rounds, {} cores, {}",
        rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        chrono::Utc::now().format("%Y-%m-%d")
    );
    println!(
        "| binary | stripped size | init | × hello | × SDK hello | peak RSS | first request |"
    );
    println!("|---|---|---|---|---|---|---|");
    for name in subjects {
        let r = &runs[name];
        let size = std::fs::metadata(release.join(name)).unwrap().len();
        let init = median(&r.init_ms);
        println!(
            "| {name} | {:.2} MB | {init:.1} ms | {:.2} | {:.2} | {:.1} MB | {:.1} ms |",
            size as f64 / 1e6,
            init / hello,
            init / sdk,
            r.peak_kib as f64 / 1024.0,
            median(&r.first_ms),
        );
    }
}
