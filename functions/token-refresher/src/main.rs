use aws_lambda_events::eventbridge::EventBridgeEvent;
use connector_core::App;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    connector_core::flows::app::init_logging();
    let app = App::from_env().await?;
    let app = &app;
    run(service_fn(
        move |event: LambdaEvent<EventBridgeEvent>| async move {
            Ok::<_, Error>(token_refresher::handle(app, event.payload).await)
        },
    ))
    .await
}
