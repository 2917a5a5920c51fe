//! What the functions' release build links (issue 19, goal 2): the graph
//! `make bench-init` and `sam build` compile, every function together.

use connector_infra::stack::workspace_root;
use std::collections::BTreeSet;

/// The crates in the normal (non-dev, non-build) dependency graph of every
/// function template.yaml deploys, resolved together as their release build
/// resolves them.
fn function_crates() -> BTreeSet<String> {
    let template =
        connector_infra::template::Template::load(&workspace_root().join("template.yaml")).unwrap();
    let mut cmd = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
    cmd.current_dir(workspace_root()).args([
        "tree",
        "--locked",
        "--offline",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]);
    for (_, binary) in template.functions() {
        cmd.args(["-p", &binary]);
    }
    let out = cmd.output().expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_functions_link_one_tls_stack() {
    let crates = function_crates();
    for wanted in ["rustls", "aws-lc-rs", "webhook", "sync-worker"] {
        assert!(crates.contains(wanted), "{wanted} missing from {crates:?}");
    }
    // reqwest's `rustls-tls` (and oauth2's) would bring ring in beside the
    // SDK's aws-lc-rs: two crypto libraries in every binary.
    assert!(!crates.contains("ring"), "ring is linked again");
}
