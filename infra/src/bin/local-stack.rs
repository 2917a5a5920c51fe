//! `make run`: the whole connector on this machine.

use connector_infra::simulator::Simulator;
use connector_infra::stack::{start, workspace_root, StackOptions};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn wait_for(addr: &str) -> Result<(), BoxError> {
    for _ in 0..150 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("the AWS emulator did not listen on {addr} within 15 s").into())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    connector_core::flows::app::init_logging();
    let mut _emulator = None;
    let endpoint = match std::env::var("CONNECTOR_AWS_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty())
    {
        Some(e) => e,
        None => {
            let moto = std::env::var("CONNECTOR_MOTO_SERVER").unwrap_or_else(|_| {
                workspace_root()
                    .join(".venv/bin/moto_atomic")
                    .display()
                    .to_string()
            });
            let port = std::env::var("CONNECTOR_EMULATOR_PORT").unwrap_or_else(|_| "4566".into());
            let child = tokio::process::Command::new(&moto)
                .args(["-H", "127.0.0.1", "-p", &port])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot start the AWS emulator {moto}: {e} (run `make run`, which installs it)"))?;
            _emulator = Some(child);
            let addr = format!("127.0.0.1:{port}");
            wait_for(&addr).await?;
            format!("http://{addr}")
        }
    };
    let port: u16 = std::env::var("CONNECTOR_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let mut opts = StackOptions::new(
        &endpoint,
        &std::env::var("CONNECTOR_STACK_NAME").unwrap_or_else(|_| "connector-local".into()),
    );
    opts.bind = ([127, 0, 0, 1], port).into();
    opts.tick = Some(Duration::from_secs(
        std::env::var("CONNECTOR_REFRESH_TICK_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    ));
    // CONNECTOR_SIMULATOR=1 (make run-sim): the vendor simulator, with every
    // simulated vendor's URLs and fake app credentials pointed at it.
    let simulator = if std::env::var("CONNECTOR_SIMULATOR").is_ok_and(|v| v == "1") {
        let sim_port: u16 = std::env::var("CONNECTOR_SIMULATOR_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(3001);
        let sim = Simulator::start(([127, 0, 0, 1], sim_port).into()).await?;
        // CONNECTOR_SIM_CONSENT_PAGES=1: the vendors ask (Allow or Deny)
        // instead of consenting at once.
        if std::env::var("CONNECTOR_SIM_CONSENT_PAGES").is_ok_and(|v| v == "1") {
            sim.show_consent_pages();
        }
        opts.extra_env.extend(sim.env());
        Some(sim)
    } else {
        None
    };
    // CONNECTOR_LOCAL_BINARIES=1: serve through the functions' real
    // binaries against a local Lambda Runtime API instead of in-process.
    if std::env::var("CONNECTOR_LOCAL_BINARIES").is_ok_and(|v| v == "1") {
        connector_infra::lambda::build()?;
        opts.binaries = true;
    }
    let stack = start(opts).await?;
    let url = stack.url();
    if let Some(sim) = &simulator {
        sim.deliver_webhooks_to(&url);
    }
    println!();
    println!("  Wearable connector running at {url}   (AWS emulator: {endpoint})");
    println!();
    // The pages, opened as an app opens them: alice's JWT in the fragment
    // (a day long, for this machine only).
    let alice = connector_infra::dev_jwt::mint(
        &connector_infra::dev_jwt::secret_from_env(),
        "alice",
        86_400,
    );
    println!("  Connect page: {url}/v1/connect#token={alice}");
    println!("  Data page:    {url}/v1/dashboard#token={alice}");
    println!();
    println!("  Dev token:   TOKEN=$(cargo run -q -p connector-infra --bin connector-dev -- token alice)");
    println!("  Providers:   curl -H \"Authorization: Bearer $TOKEN\" {url}/v1/providers");
    println!(
        "  Connect:     curl -X POST -H \"Authorization: Bearer $TOKEN\" {url}/v1/connections/mock"
    );
    println!("  Sync:        curl -X POST -H \"Authorization: Bearer $TOKEN\" -d '{{\"vendor\":\"mock\"}}' {url}/v1/sync");
    println!("  Reports:     curl -H \"Authorization: Bearer $TOKEN\" '{url}/v1/reports?days=14'");
    println!("  Webhook:     cargo run -q -p connector-infra --bin connector-dev -- mock-webhook alice --url {url}");
    // The emulator enforces IAM: each function runs under its own role,
    // and people and tools inspect the stack as the local admin.
    let admin = connector_core::aws::local_admin_credentials();
    println!();
    println!(
        "  IAM is enforced; each function runs as its own role ({} roles).",
        stack.roles.len()
    );
    println!(
        "  Local admin: AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_REGION=us-east-1",
        admin.access_key_id(),
        admin.secret_access_key()
    );
    println!("               aws --endpoint-url {endpoint} dynamodb list-tables");
    if let Some(sim) = &simulator {
        let mut simulated: Vec<_> = sim.vendors.0.keys().map(|v| v.as_str()).collect();
        simulated.sort();
        println!();
        println!(
            "  Vendor simulator at http://{} for: {}",
            sim.addr,
            simulated.join(", ")
        );
        println!("  Connect:     curl -X POST -H \"Authorization: Bearer $TOKEN\" {url}/v1/connections/whoop");
        println!("               then open redirect_url in a browser (or follow it with curl -i)");
        println!("  Webhook:     curl -X POST 'http://{}/whoop/_sim/webhook?user=<whoop user id>&target={url}/v1/webhooks/whoop'", sim.addr);
    }
    println!();
    println!("  Ctrl-C stops everything.");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    // Dropping the stack and the emulator child stops them.
    drop(stack);
    drop(simulator);
    Ok(())
}
