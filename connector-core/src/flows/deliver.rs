//! Delivering an event to the app (the app-events function, one queued
//! delivery at a time): onto the EventBridge bus, or as an HTTP POST to
//! `CONNECTOR_APP_WEBHOOK_URL` signed the Standard Webhooks way
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature`, with the secret
//! `CONNECTOR_APP_WEBHOOK_SECRET` in its `whsec_` base64 form). A failed
//! delivery is retried with backoff and, after the queue's maxReceiveCount,
//! dead-lettered for re-delivery by command.

use crate::domain::app_event::{AppEvent, Channel, Delivery};
use crate::domain::error::{Error, Result};
use crate::flows::app::App;
use chrono::Utc;
use rand::Rng;

/// The name of the webhook signing secret (in its own Secrets Manager
/// secret in AWS; the environment locally).
pub const WEBHOOK_SECRET: &str = "CONNECTOR_APP_WEBHOOK_SECRET";
/// The first retry of a failed delivery waits up to this long, as a sync
/// job's does.
pub use crate::flows::sync::BACKOFF_BASE_SECS;

/// Reads a queued delivery; a body that is not one can never be delivered.
pub fn parse(body: &str) -> Result<Delivery> {
    serde_json::from_str(body).map_err(|e| Error::BadRequest(format!("not an event delivery: {e}")))
}

/// Delivers `delivery` to its channel.
pub async fn deliver(app: &App, delivery: &Delivery) -> Result<()> {
    let event = &delivery.event;
    let result = match delivery.channel {
        Channel::Bus => match app.bus() {
            Some(bus) => bus.put(event).await,
            None => Err(Error::Config(
                "an event for the bus, but CONNECTOR_APP_EVENT_BUS is not set".into(),
            )),
        },
        Channel::Webhook => post(app, event).await,
    };
    if result.is_ok() {
        tracing::info!(
            event_id = %event.id,
            event_type = event.kind.as_str(),
            user_id = event.user_id(),
            channel = delivery.channel.as_str(),
            "app event delivered"
        );
    }
    result
}

async fn post(app: &App, event: &AppEvent) -> Result<()> {
    let Some(url) = &app.config.app_webhook_url else {
        return Err(Error::Config(
            "an event for the webhook, but CONNECTOR_APP_WEBHOOK_URL is not set".into(),
        ));
    };
    let secret = app
        .app_webhook_secret
        .value(WEBHOOK_SECRET)
        .await?
        .ok_or_else(|| Error::Config(format!("{WEBHOOK_SECRET} is not set")))?;
    let signer = standardwebhooks::Webhook::new(secret.expose()).map_err(|_| {
        Error::Config(format!(
            "{WEBHOOK_SECRET} is not a secret in its whsec_ base64 form"
        ))
    })?;
    let body = serde_json::to_vec(event).expect("an event serializes");
    let timestamp = Utc::now().timestamp();
    let signature = signer
        .sign(&event.id, timestamp, &body)
        .expect("a JSON body is UTF-8");
    let answer = app
        .http()
        .post(url.clone())
        .header("content-type", "application/json")
        .header("webhook-id", &event.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        // The URL may carry a credential of the app's: never in an error.
        .map_err(|e| Error::Delivery(format!("POST to the app's webhook: {}", e.without_url())))?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = answer
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match (status.as_u16(), retry_after) {
        (429 | 503, Some(secs)) => Err(Error::RateLimited {
            retry_after_secs: secs,
        }),
        _ => Err(Error::Delivery(format!(
            "the app's webhook answered {status}"
        ))),
    }
}

/// Seconds until a delivery that failed with `err` on its
/// `receive_count`th receive is tried again: when the app said, else full
/// jitter below a ceiling doubling from [`BACKOFF_BASE_SECS`] up to
/// `cap_secs`; at once for a body that can never be delivered, so it
/// reaches the dead-letter queue without waiting.
pub fn retry_in(err: &Error, receive_count: u32, cap_secs: u64, rng: &mut impl Rng) -> u64 {
    crate::flows::sync::retry_delay(err, receive_count, BACKOFF_BASE_SECS, cap_secs, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn retries_back_off_to_the_cap_unless_the_app_says_when() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let failed = Error::Delivery("the app's webhook answered 500".into());
        for receive in 1..=12 {
            let ceiling = (BACKOFF_BASE_SECS << (receive - 1)).min(900);
            for _ in 0..50 {
                let secs = retry_in(&failed, receive, 900, &mut rng);
                assert!((1..=ceiling).contains(&secs), "{receive}: {secs}");
            }
        }
        assert_eq!(retry_in(&failed, 9, 1, &mut rng), 1);
        let later = Error::RateLimited {
            retry_after_secs: 120,
        };
        assert_eq!(retry_in(&later, 1, 1, &mut rng), 120);
        let unreadable = parse("{}").unwrap_err();
        assert_eq!(retry_in(&unreadable, 1, 900, &mut rng), 0);
    }
}
