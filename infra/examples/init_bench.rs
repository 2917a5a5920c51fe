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
//! (its events/ file, answered or refused) after the init. ONLY=a,b
//! limits the functions to those (the references always run); BASELINE=dir
//! also runs each function's binary found in dir (another commit's release
//! build), in the same rounds, as "name@baseline".

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
    let only = std::env::var("ONLY").unwrap_or_default();
    let functions: Vec<String> = template
        .functions()
        .into_iter()
        .map(|(_, b)| b)
        .filter(|b| only.is_empty() || only.split(',').any(|o| o == b))
        .collect();
    // (label, binary, role, events/ file): the references call nothing,
    // so any function's role will do, and answer any HTTP event.
    let mut subjects: Vec<(String, std::path::PathBuf, &str, &str)> = REFERENCES
        .iter()
        .map(|r| (r.to_string(), release.join(r), "pages", "pages"))
        .collect();
    let baseline = std::env::var("BASELINE").ok().filter(|d| !d.is_empty());
    for f in &functions {
        subjects.push((f.clone(), release.join(f), f, f));
        if let Some(dir) = &baseline {
            subjects.push((
                format!("{f}@baseline"),
                std::path::Path::new(dir).join(f),
                f,
                f,
            ));
        }
    }
    let mut runs: std::collections::HashMap<String, Runs> = Default::default();
    for round in 0..rounds {
        for (label, binary, role, event) in &subjects {
            let p = stack
                .start_binary_at(role, binary)
                .await
                .unwrap_or_else(|e| {
                    panic!("{label}: {e} (run `make bench-init`, which builds it)")
                });
            let init = p
                .init_time(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("{label} did not start: {:?}", p.logs()));
            let started = std::time::Instant::now();
            let _ = p
                .invoke(
                    &event_file(&format!("{event}.json")),
                    Duration::from_secs(30),
                )
                .await;
            let first = started.elapsed();
            let r = runs.entry(label.clone()).or_default();
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
    for (name, binary, _, _) in &subjects {
        let r = &runs[name];
        let size = std::fs::metadata(binary).unwrap().len();
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
