//! The connect and data pages as a person uses them: headless Chromium
//! (Debian's), driven by Playwright from infra/browser/journey.py, against
//! the local stack with the vendor simulator showing its consent pages. At a
//! phone width and a desktop width, one user each: open the connect page
//! with a dev JWT, connect Mock, connect WHOOP through the consent page and
//! back, watch each backfill finish, see WHOOP need a reconnect after the
//! person removed the app there and reconnect, disconnect, refuse consent
//! and read the sentence, connect Terra through the wearable it asks for,
//! then check every number on the data page against the API.
//! Any console error, failed request, 4xx/5xx answer or request to another
//! origin fails it; each step's screenshot is kept in
//! target/browser-screenshots.

mod common;

use common::*;
use connector_infra::simulator::Simulator;
use connector_infra::stack::workspace_root;

const STEPS: [&str; 11] = [
    "01-connect",
    "02-mock-connected",
    "03-whoop-consent",
    "04-whoop-connected",
    "05-whoop-needs-reconnect",
    "06-whoop-reconnected",
    "07-whoop-disconnected",
    "08-consent-refused",
    "09-terra-connected",
    "10-dashboard",
    "11-dashboard-30-days",
];

#[tokio::test]
async fn a_person_connects_watches_the_backfill_disconnects_and_reads_their_numbers() {
    let chromium =
        std::env::var("CONNECTOR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "no Chromium at {chromium}: `make test` installs Debian's (or set CONNECTOR_CHROMIUM)"
    );
    let python = workspace_root().join(".venv/bin/python");
    let mut sim = Simulator::start("127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts");
    sim.check_logs_on_drop(captured_logs);
    sim.check_shapes_on_drop();
    sim.show_consent_pages();
    let mut opts = options("browser");
    opts.pump = true;
    opts.extra_env.extend(sim.env());
    let stack = connector_infra::stack::start(opts).await.unwrap();
    sim.deliver_webhooks_to(&stack.url());

    let shots = workspace_root().join("target/browser-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let users = serde_json::json!({
        "phone": token("browser-phone-user"),
        "desktop": token("browser-desktop-user"),
    });
    // Async: the gateway and the pump serve the browser from this runtime.
    let out = tokio::process::Command::new(&python)
        .arg(workspace_root().join("infra/browser/journey.py"))
        .env("BROWSER_BASE", stack.url())
        .env("BROWSER_SIM", format!("http://{}", sim.addr))
        .env("BROWSER_SCREENSHOTS", &shots)
        .env("BROWSER_CHROMIUM", &chromium)
        .env("BROWSER_USERS", users.to_string())
        .output()
        .await
        .expect("the journey runs (Playwright lives in .venv: run `make test`)");
    let printed = String::from_utf8_lossy(&out.stdout);
    println!("{printed}");
    assert!(
        out.status.success(),
        "the journey failed:\n{printed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for kind in ["phone", "desktop"] {
        assert!(
            printed.contains(&format!("{kind}: journey done")),
            "{printed}"
        );
        for step in STEPS {
            let png = std::fs::read(shots.join(format!("{kind}-{step}.png")))
                .unwrap_or_else(|e| panic!("screenshot {kind}-{step}: {e}"));
            assert!(png.starts_with(b"\x89PNG"), "{kind}-{step} is no PNG");
        }
    }
}
