//! Body size limits on every route that reads a body: 64 KiB for user
//! routes, 6 MB for vendor webhooks (vendors push whole summaries; a 413
//! would make them retry and finally drop the notification); request
//! headers lambda_http cannot take; what a vendor's answers may make a
//! function hold; and the per-source flood guard of webhook routes.

mod common;

use common::*;
use connector_core::http::api::{MAX_BODY_BYTES, MAX_WEBHOOK_BODY_BYTES};
use connector_core::Vendor;
use connector_infra::simulator::terra::deliver;

#[tokio::test]
async fn every_body_is_bounded_and_webhooks_take_vendor_sized_payloads() {
    let (sim, stack) = sim_stack("limits").await;
    sim.deliver_webhooks_to(&stack.url());
    let c = Client::new(&stack);
    let pad = |n: usize| format!(r#"{{"vendor":"mock","pad":"{}"}}"#, "x".repeat(n));
    for path in ["/v1/sync", "/v1/connections/mock", "/v1/health/push"] {
        let (status, body) = c.post(path, "alice", &pad(MAX_BODY_BYTES)).await;
        assert_eq!(status, 413, "{path}: {body}");
        assert_eq!(body["status"], 413);
    }

    // A Terra daily event with a large sample series is accepted...
    let terra = sim.sim(Vendor::Terra).clone();
    let samples: Vec<serde_json::Value> = (0..4000)
        .map(|i| serde_json::json!({ "timestamp": format!("2026-11-21T10:{:02}:{:02}.000000-05:00", i / 60 % 60, i % 60), "bpm": 60 + i % 40 }))
        .collect();
    let big = serde_json::json!({ "type": "daily", "version": "2022-03-16",
        "user": { "user_id": "00000000-0000-4000-8000-0000000000aa", "provider": "GARMIN" },
        "data": [{ "metadata": { "start_time": "2026-11-21T00:00:00.000000-05:00" },
                   "heart_rate_data": { "detailed": { "hr_samples": samples } } }] });
    assert!(big.to_string().len() > MAX_BODY_BYTES);
    assert_eq!(deliver(&terra, &big, false).await, 200);
    // ...and one over Lambda's 6 MB is refused before any other work.
    let (status, body) = c
        .post_with(
            "/v1/webhooks/terra",
            None,
            &"x".repeat(MAX_WEBHOOK_BODY_BYTES + 1),
            &[("terra-signature", Some("t=1,v1=00"))],
        )
        .await;
    assert_eq!(status, 413, "{body}");
}

/// lambda_http panics building the request URI from a client's
/// `X-Forwarded-Proto` that is not a scheme; the functions drop the header
/// first (`http::runtime`), so the route answers as without it.
#[tokio::test]
async fn a_hostile_forwarding_header_gets_the_normal_answer() {
    let stack = stack("hostile-headers").await;
    let c = Client::new(&stack);
    let body = r#"{"vendor":"mock"}"#;
    let plain = c.post_with("/v1/sync", Some("alice"), body, &[]).await;
    assert!(plain.0 < 500, "{plain:?}");
    for proto in ["ht#tps", "https://", "x y"] {
        let hostile = c
            .post_with(
                "/v1/sync",
                Some("alice"),
                body,
                &[("x-forwarded-proto", Some(proto))],
            )
            .await;
        assert_eq!(hostile, plain, "X-Forwarded-Proto: {proto}");
    }
}

#[tokio::test]
async fn a_flood_at_one_vendors_webhook_is_refused_before_it_costs_anything() {
    use connector_infra::simulator::garmin::{notify_answered, ping};
    let (_sim, stack) = sim_stack_with(
        "webhook-flood",
        &[("CONNECTOR_WEBHOOK_PER_SOURCE_PER_SEC", "5")],
    )
    .await;
    let c = Client::new(&stack);
    c.post("/v1/connections/mock", "alice", "").await;
    drain(&stack).await;
    let target = format!("{}/v1/webhooks/garmin", stack.url());
    let now = chrono::Utc::now().timestamp();
    let forged = ping("dailies", "forged-user", now - 60, now);

    // Forged Garmin deliveries from one source, as fast as it can send: a
    // burst of twice the rate is let in (and fails authentication, which
    // reads the app's credentials); the rest is refused before that.
    let started = std::time::Instant::now();
    let (mut unauthorized, mut refused) = (0, 0);
    for _ in 0..60 {
        let (status, answer) = notify_answered(&target, Some("not-our-client-id"), &forged).await;
        match status {
            401 => unauthorized += 1,
            429 => refused += 1,
            other => panic!("{other}: {answer}"),
        }
    }
    let let_in = 10.0 + 5.0 * started.elapsed().as_secs_f64();
    assert!(
        f64::from(unauthorized) <= let_in.ceil(),
        "{unauthorized} let in"
    );
    assert!(refused >= 60 - let_in.ceil() as u32, "{refused} refused");

    // Another vendor's real delivery from the same source is not held back.
    let w = signed_webhook(&stack, "evt-flood-1", "alice", &today());
    let (status, body) = c.deliver(&w).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(queue_depth(&stack).await, 1);
}

#[tokio::test]
async fn a_vendor_answering_too_much_cannot_fill_the_workers_memory() {
    use connector_core::domain::connection::ConnectionStatus;
    use connector_core::vendors::client::{MAX_PULL_BYTES, MAX_RESPONSE_BYTES};
    use connector_core::vendors::token::MAX_TOKEN_RESPONSE_BYTES;
    let (sim, stack) = sim_stack("vendor-answer-bounds").await;
    let whoop = sim.sim(Vendor::Whoop).clone();
    let c = Client::new(&stack);
    let back = c.connect_via_sim("whoop", "alice").await;
    assert_eq!(back["status"], "connected", "{back:?}");
    drain(&stack).await;

    // Every answer just under the cap of one answer: a one-day pull reads
    // WHOOP's four collections, more than one pull may hold in all.
    let each = (MAX_RESPONSE_BYTES - 64 * 1024) as u64;
    assert!(4 * each > MAX_PULL_BYTES as u64);
    whoop.faults.pad_api_answers(each);
    let (status, body) = c
        .post("/v1/sync", "alice", r#"{"vendor":"whoop","days":1}"#)
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(drain(&stack).await, (1, 0), "ended, not retried");
    let conn = connection(&stack, "alice", Vendor::Whoop).await.unwrap();
    assert_eq!(conn.status, ConnectionStatus::Error);
    let reason = conn.last_error.unwrap_or_default();
    assert!(reason.contains("passed 24 MiB"), "{reason}");
    whoop.faults.pad_api_answers(0);

    // A token answer past 64 KiB is not read: the refresh fails as a retry,
    // and the connection is not taken for refused.
    whoop
        .faults
        .pad_token_answers(MAX_TOKEN_RESPONSE_BYTES as u64);
    let err =
        connector_core::flows::refresh::refresh_connection(&stack.app, &conn_now(&stack).await)
            .await
            .unwrap_err();
    assert!(err.to_string().contains("64 KiB"), "{err}");
    assert!(
        matches!(
            err.disposition(),
            connector_core::domain::error::Disposition::BackOff
        ),
        "{err}"
    );
    assert_ne!(
        conn_now(&stack).await.status,
        ConnectionStatus::RefreshFailed
    );
}

async fn conn_now(
    stack: &connector_infra::stack::Stack,
) -> connector_core::domain::connection::Connection {
    connection(stack, "alice", Vendor::Whoop).await.unwrap()
}
