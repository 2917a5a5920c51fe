//! Scheduled: one tick of the fleet's schedule (`flows::tick`), reported
//! as the function's result.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use connector_core::flows::tick::{self, TickReport};
use connector_core::App;

pub async fn handle(app: &App, _event: EventBridgeEvent) -> TickReport {
    tick::run(app, Utc::now()).await
}
