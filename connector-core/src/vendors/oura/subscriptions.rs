//! Oura webhook subscriptions: app-level, one per (event type, data type),
//! managed with the app's credentials in `x-client-id` / `x-client-secret`
//! headers (docs/vendors/oura.md). Creating one makes Oura call the
//! callback's handshake (`GET ?verification_token=&challenge=`), so the
//! webhook function must already be reachable with the same
//! CONNECTOR_OURA_VERIFY_TOKEN. Subscriptions expire (`expiration_time`;
//! lifetime UNCONFIRMED): [`ensure`] creates the missing ones and renews
//! those that expire soon. The scheduled tick runs it every
//! [`UPKEEP_EVERY_HOURS`] as the Oura driver's upkeep; `connector-dev
//! oura-subscriptions <callback-url>` runs it by hand.

use crate::domain::vendor::VendorError;
use crate::vendors::client::VendorCtx;
use crate::vendors::client::{check_status, send};
use chrono::{DateTime, Duration, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

/// The data types the connector pulls and wants to hear about (heart rate
/// has no webhook: it is pulled with the others).
pub const DATA_TYPES: [&str; 6] = [
    "sleep",
    "daily_sleep",
    "daily_readiness",
    "daily_activity",
    "daily_spo2",
    "workout",
];
/// The event types subscribed to for each data type.
pub const EVENT_TYPES: [&str; 3] = ["create", "update", "delete"];
/// Renew a subscription that expires within this long.
pub const RENEW_WITHIN_DAYS: i64 = 7;
/// The scheduled upkeep checks the subscriptions this often.
pub const UPKEEP_EVERY_HOURS: i64 = 6;

/// `WebhookSubscriptionModel`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// Oura's id of the subscription.
    pub id: String,
    /// Where Oura sends the events.
    pub callback_url: String,
    /// The event type: `create`, `update` or `delete`.
    pub event_type: String,
    /// The data type, e.g. `sleep`.
    pub data_type: String,
    /// When it expires unless renewed.
    pub expiration_time: DateTime<FixedOffset>,
}

/// What [`ensure`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// (event type, data type) of each new subscription.
    pub created: Vec<(String, String)>,
    /// Ids of renewed subscriptions.
    pub renewed: Vec<String>,
    /// Subscriptions left as they were.
    pub kept: usize,
}

fn app_request(
    ctx: &VendorCtx,
    method: reqwest::Method,
    path: &str,
) -> Result<reqwest::RequestBuilder, VendorError> {
    let missing = || VendorError::Permanent("Oura client id and secret are not configured".into());
    let id = ctx.creds.client_id.as_deref().ok_or_else(missing)?;
    let secret = ctx.creds.client_secret.as_ref().ok_or_else(missing)?;
    Ok(ctx
        .http
        .request(method, ctx.api_url(path)?)
        .header("x-client-id", id)
        .header("x-client-secret", secret.expose())
        .header("accept", "application/json"))
}

/// `GET /v2/webhook/subscription`.
pub async fn list(ctx: &VendorCtx) -> Result<Vec<Subscription>, VendorError> {
    let req = app_request(ctx, reqwest::Method::GET, "/v2/webhook/subscription")?;
    let answer = send(ctx, req).await?;
    check_status(&answer, "list subscriptions", Utc::now())?;
    answer.json("list subscriptions")
}

/// `POST /v2/webhook/subscription` (Oura runs the handshake before 201).
pub async fn create(
    ctx: &VendorCtx,
    callback_url: &str,
    event_type: &str,
    data_type: &str,
) -> Result<Subscription, VendorError> {
    let token = ctx.creds.verify_token.as_ref().ok_or_else(|| {
        VendorError::Permanent("CONNECTOR_OURA_VERIFY_TOKEN is not configured".into())
    })?;
    let req = app_request(ctx, reqwest::Method::POST, "/v2/webhook/subscription")?.json(
        &serde_json::json!({
            "callback_url": callback_url,
            "verification_token": token.expose(),
            "event_type": event_type,
            "data_type": data_type,
        }),
    );
    let answer = send(ctx, req).await?;
    check_status(&answer, "create subscription", Utc::now())?;
    answer.json("create subscription")
}

/// `PUT /v2/webhook/subscription/renew/{id}`.
pub async fn renew(ctx: &VendorCtx, id: &str) -> Result<Subscription, VendorError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(VendorError::Permanent(
            "subscription id is not valid".into(),
        ));
    }
    let path = format!("/v2/webhook/subscription/renew/{id}");
    let answer = send(ctx, app_request(ctx, reqwest::Method::PUT, &path)?).await?;
    check_status(&answer, "renew subscription", Utc::now())?;
    answer.json("renew subscription")
}

/// Every (event type, data type) subscribed at `callback_url`, and none
/// expiring within `renew_within` of `now`.
pub async fn ensure(
    ctx: &VendorCtx,
    callback_url: &str,
    now: DateTime<Utc>,
    renew_within: Duration,
) -> Result<Report, VendorError> {
    let existing = list(ctx).await?;
    let mut report = Report::default();
    for data_type in DATA_TYPES {
        for event_type in EVENT_TYPES {
            let found = existing.iter().find(|s| {
                s.callback_url == callback_url
                    && s.event_type == event_type
                    && s.data_type == data_type
            });
            match found {
                Some(s) if s.expiration_time.with_timezone(&Utc) < now + renew_within => {
                    renew(ctx, &s.id).await?;
                    report.renewed.push(s.id.clone());
                }
                Some(_) => report.kept += 1,
                None => {
                    create(ctx, callback_url, event_type, data_type).await?;
                    report
                        .created
                        .push((event_type.to_string(), data_type.to_string()));
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_shapes_parse() {
        let one: Subscription = serde_json::from_str(include_str!(
            "../../../fixtures/vendors/oura/webhook_subscription.json"
        ))
        .unwrap();
        assert_eq!(one.data_type, "sleep");
        let all: Vec<Subscription> = serde_json::from_str(include_str!(
            "../../../fixtures/vendors/oura/webhook_subscription_list.json"
        ))
        .unwrap();
        assert_eq!(all.len(), 2);
        let renewed: Subscription = serde_json::from_str(include_str!(
            "../../../fixtures/vendors/oura/webhook_subscription_renewed.json"
        ))
        .unwrap();
        assert_eq!(renewed.id, one.id);
        assert!(renewed.expiration_time > one.expiration_time);
    }
}
