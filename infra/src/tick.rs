//! The local EventBridge schedule: invokes the token refresher with a real
//! "Scheduled Event" every period.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use connector_core::App;
use std::time::Duration;

pub fn scheduled_event() -> EventBridgeEvent {
    serde_json::from_value(serde_json::json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/local-token-refresher"],
        "detail": {}
    }))
    .expect("valid scheduled event")
}

pub async fn run(app: &App, period: Duration) {
    let mut every = tokio::time::interval(period);
    loop {
        every.tick().await;
        token_refresher::handle(app, scheduled_event()).await;
    }
}
