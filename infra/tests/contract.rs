//! The contract suite: schemathesis (a tool nobody here wrote) generates
//! requests from docs/openapi.json, sends them to the local stack served by
//! the functions' real binaries, and checks every answer against the same
//! description: status codes, content types, schemas, headers, that no
//! input gives a 5xx, and that the routes the description calls protected
//! refuse a request without the JWT. Configuration and the phone-push
//! signing hook are in infra/contract/.

mod common;

use common::*;
use connector_infra::stack::{workspace_root, LOCAL_PUSH_SECRET};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Generated cases per operation and phase (`CONTRACT_EXAMPLES` to change).
const EXAMPLES: u32 = 50;

/// Operations that must have been answered with a 2xx at least once: the
/// generated inputs reach past validation and authentication there. (The
/// OAuth callback and completion cannot: their ids are never guessable.
/// `GET /v1/openapi.json` is what schemathesis loads the description from.)
const MUST_SUCCEED: &[&str] = &[
    "GET /v1/providers",
    "GET /v1/connections",
    "POST /v1/connections/{vendor}",
    "DELETE /v1/connections/{vendor}",
    "POST /v1/sync",
    "GET /v1/reports",
    "GET /v1/metrics",
    "GET /v1/changes",
    "GET /v1/metrics/latest",
    "GET /v1/workouts",
    "POST /v1/health/push",
    "DELETE /v1/me",
    "GET /v1/me/erasure",
    "GET /v1/webhooks/{vendor}",
    "GET /v1/docs",
    "GET /v1/docs/{file}",
    "GET /v1/health",
    "GET /v1/connect",
    "GET /v1/dashboard",
    "GET /v1/pages/{file}",
];

/// The described operation a request was for, e.g. "POST /v1/sync".
fn operation_of(method: &str, url: &str, described: &[(String, String)]) -> Option<String> {
    let path = url::Url::parse(url).ok()?.path().to_string();
    let got: Vec<&str> = path.split('/').collect();
    described
        .iter()
        .filter(|(m, _)| m.eq_ignore_ascii_case(method))
        .find(|(_, template)| {
            let want: Vec<&str> = template.split('/').collect();
            want.len() == got.len()
                && want
                    .iter()
                    .zip(&got)
                    .all(|(w, g)| w.starts_with('{') || w == g)
        })
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
}

#[tokio::test]
async fn the_api_meets_its_description_under_generated_requests() {
    connector_infra::lambda::build().unwrap();
    let mut opts = options("contract");
    opts.binaries = true;
    opts.pump = true;
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let base = stack.url();

    let python = workspace_root().join(".venv/bin/schemathesis");
    assert!(
        python.exists(),
        "schemathesis lives in .venv: run `make test`"
    );
    let work = std::env::temp_dir().join(format!("contract-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&work).unwrap();
    let examples = arg("CONTRACT_EXAMPLES", EXAMPLES);
    let contract = workspace_root().join("infra/contract");
    // Async: the gateway serves schemathesis from this test's runtime.
    let out = tokio::process::Command::new(&python)
        // Hypothesis keeps its example database in the working directory.
        .current_dir(&work)
        .env("PYTHONPATH", &contract)
        .env("CONNECTOR_PUSH_SECRET", LOCAL_PUSH_SECRET)
        .env("CONTRACT_USER_TOKEN", token("contract-user"))
        .env(
            "CONTRACT_DELETED_USER_TOKEN",
            token("contract-deleted-user"),
        )
        .arg("--config-file")
        .arg(contract.join("schemathesis.toml"))
        .args(["run", &format!("{base}/v1/openapi.json"), "--url", &base])
        .args(["--seed", "1", "--max-examples", &examples.to_string()])
        .args(["--report", "har", "--report-dir"])
        .arg(&work)
        .args(["--no-color"])
        .output()
        .await
        .expect("schemathesis runs");
    let printed = String::from_utf8_lossy(&out.stdout);
    let summary = printed
        .find("SUMMARY")
        .map(|i| &printed[i..])
        .unwrap_or(&printed);
    println!("schemathesis:\n{summary}");
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{printed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What the run reached, from its record of every exchange.
    let description: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("docs/openapi.json")).unwrap(),
    )
    .unwrap();
    let described: Vec<(String, String)> = description["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), p.clone()))
        })
        .collect();
    let har = std::fs::read_dir(&work)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("har-"))
        .expect("a HAR report");
    let har: Value = serde_json::from_str(&std::fs::read_to_string(har).unwrap()).unwrap();
    let mut statuses: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut server_errors = Vec::new();
    for entry in har["log"]["entries"].as_array().unwrap() {
        let (method, url) = (
            entry["request"]["method"].as_str().unwrap(),
            entry["request"]["url"].as_str().unwrap(),
        );
        let status = entry["response"]["status"].as_u64().unwrap();
        if status >= 500 {
            server_errors.push(format!("{status} {method} {url}"));
        }
        if let Some(op) = operation_of(method, url, &described) {
            statuses.entry(op).or_default().insert(status);
        }
    }
    println!("statuses seen per operation: {statuses:?}");
    assert!(server_errors.is_empty(), "5xx answers: {server_errors:#?}");
    for op in MUST_SUCCEED {
        assert!(
            statuses
                .get(*op)
                .is_some_and(|s| s.iter().any(|s| (200..300).contains(s))),
            "{op} never succeeded in the run: {:?}",
            statuses.get(*op)
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}
