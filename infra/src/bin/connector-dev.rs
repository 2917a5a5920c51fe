//! Developer commands for the local stack.
//!
//!   connector-dev token <sub> [--ttl SECS]          print a dev JWT for user <sub>
//!   connector-dev mock-webhook <sub> [--date YYYY-MM-DD] [--url URL] [--event-id ID]
//!                                                   send a signed Mock webhook
//!   connector-dev sign-push <file>                  print TS=… and SIG=… for a phone push body
//!                                                   (secret: CONNECTOR_PUSH_SECRET or the local default)
//!   connector-dev oura-subscriptions <callback-url> [--renew-days N]
//!                                                   create missing Oura webhook subscriptions, renew
//!                                                   those expiring within N days (default 7); reads
//!                                                   CONNECTOR_OURA_CLIENT_ID/_CLIENT_SECRET/_VERIFY_TOKEN
//!                                                   (and _API_BASE) from the environment
//!   connector-dev openapi                           print the API's OpenAPI description (what
//!                                                   `make openapi` writes to docs/openapi.json)
//!   connector-dev redrive-dlq [--events] [--endpoint URL] [--stack NAME]
//!                                                   move the local stack's dead-lettered sync jobs
//!                                                   back onto the sync queue (--events: the
//!                                                   undelivered events to the app back onto the
//!                                                   AppEvents queue) (defaults: the emulator of
//!                                                   `make run`, stack connector-local)
//!   connector-dev events-tail <sub> [--url URL] [--from-start]
//!                                                   print user <sub>'s events to the app as they
//!                                                   come, one JSON line each, from the change feed

use connector_infra::stack::{LOCAL_MOCK_WEBHOOK_SECRET, LOCAL_PUSH_SECRET};
use connector_infra::{dev_jwt, mock_webhook, push_signer};

fn usage() -> ! {
    eprintln!("usage: connector-dev token <sub> [--ttl SECS]");
    eprintln!(
        "       connector-dev mock-webhook <sub> [--date YYYY-MM-DD] [--url URL] [--event-id ID]"
    );
    eprintln!("       connector-dev sign-push <file>");
    eprintln!("       connector-dev oura-subscriptions <callback-url> [--renew-days N]");
    eprintln!("       connector-dev openapi");
    eprintln!("       connector-dev redrive-dlq [--events] [--endpoint URL] [--stack NAME]");
    eprintln!("       connector-dev events-tail <sub> [--url URL] [--from-start]");
    std::process::exit(2)
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("openapi"), None) => print!("{}", connector_infra::openapi::description()),
        (Some("redrive-dlq"), _) => {
            let endpoint =
                flag(&args, "--endpoint").unwrap_or_else(|| "http://127.0.0.1:4566".into());
            let stack = flag(&args, "--stack").unwrap_or_else(|| "connector-local".into());
            let sdk = connector_core::aws::aws_config(Some(&endpoint));
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            let events = args.iter().any(|a| a == "--events");
            let moved = async {
                let queues = connector_infra::redrive::local_queues(&sqs, &stack).await?;
                if events {
                    connector_infra::redrive::redrive_events(&sqs, &queues).await
                } else {
                    connector_infra::redrive::redrive(&sqs, &queues).await
                }
            }
            .await
            .unwrap_or_else(|e| {
                eprintln!("redrive failed: {e}");
                std::process::exit(1)
            });
            let queue = if events { "AppEvents" } else { "sync" };
            println!(
                "moved {moved} message(s) from the dead-letter queue back to the {queue} queue"
            );
        }
        (Some("events-tail"), Some(sub)) => {
            let url = flag(&args, "--url").unwrap_or_else(|| "http://127.0.0.1:3000".into());
            let from_start = args.iter().any(|a| a == "--from-start");
            if let Err(e) = connector_infra::events_tail::tail(&url, sub, from_start).await {
                eprintln!("events-tail: {e}");
                std::process::exit(1)
            }
        }
        (Some("token"), Some(sub)) => {
            let ttl = flag(&args, "--ttl")
                .and_then(|t| t.parse().ok())
                .unwrap_or(3600);
            println!("{}", dev_jwt::mint(&dev_jwt::secret_from_env(), sub, ttl));
        }
        (Some("mock-webhook"), Some(sub)) => {
            let secret = std::env::var("CONNECTOR_MOCK_WEBHOOK_SECRET")
                .unwrap_or_else(|_| LOCAL_MOCK_WEBHOOK_SECRET.into());
            let date = flag(&args, "--date")
                .unwrap_or_else(|| chrono::Utc::now().date_naive().to_string());
            let url = flag(&args, "--url").unwrap_or_else(|| "http://127.0.0.1:3000".into());
            let event_id =
                flag(&args, "--event-id").unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let w = mock_webhook::sign(
                &secret,
                &event_id,
                sub,
                &date,
                chrono::Utc::now().timestamp(),
            );
            let status = tokio::process::Command::new("curl")
                .args(["-sS", "-X", "POST", "-H", "content-type: application/json"])
                .args(["-H", &format!("x-mock-timestamp: {}", w.timestamp)])
                .args(["-H", &format!("x-mock-signature: {}", w.signature)])
                .args(["--data-binary", &w.body, &format!("{url}/v1/webhooks/mock")])
                .status()
                .await;
            println!();
            if !status.is_ok_and(|s| s.success()) {
                std::process::exit(1);
            }
        }
        (Some("sign-push"), Some(file)) => {
            let body = std::fs::read(file).unwrap_or_else(|e| {
                eprintln!("cannot read {file}: {e}");
                std::process::exit(2)
            });
            let secret =
                std::env::var("CONNECTOR_PUSH_SECRET").unwrap_or_else(|_| LOCAL_PUSH_SECRET.into());
            let signed =
                push_signer::sign(&secret, &chrono::Utc::now().timestamp().to_string(), &body);
            println!("TS={}", signed.timestamp);
            println!("SIG={}", signed.signature);
        }
        (Some("oura-subscriptions"), Some(callback)) => {
            use connector_core::vendors::oura::subscriptions;
            let days = flag(&args, "--renew-days")
                .and_then(|d| d.parse().ok())
                .unwrap_or(subscriptions::RENEW_WITHIN_DAYS);
            let secrets = connector_core::aws::secrets::Secrets::new(
                connector_core::domain::env::Env::process(),
                None,
            );
            let oura = connector_core::vendors::credentials::VendorCredentials::load(
                &secrets,
                connector_core::vendors::registry::spec(connector_core::Vendor::Oura),
            );
            let ctx = connector_core::vendors::client::VendorCtx::new(
                reqwest::Client::new(),
                oura.await.unwrap_or_else(|e| {
                    eprintln!("oura credentials: {e}");
                    std::process::exit(2)
                }),
                connector_core::vendors::budget::CallBudget::unmetered(
                    connector_core::Vendor::Oura,
                ),
            );
            let now = chrono::Utc::now();
            match subscriptions::ensure(&ctx, callback, now, chrono::Duration::days(days)).await {
                Ok(r) => {
                    for (event, data) in &r.created {
                        println!("created {event} {data}");
                    }
                    for id in &r.renewed {
                        println!("renewed {id}");
                    }
                    println!("kept {}", r.kept);
                }
                Err(e) => {
                    eprintln!("oura subscriptions: {e}");
                    std::process::exit(1)
                }
            }
        }
        _ => usage(),
    }
}
