use aws_lambda_events::sqs::SqsEvent;
use connector_core::App;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    connector_core::flows::app::init_logging();
    let app = App::from_env().await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = sync_worker::deadline_of(&event.context);
        Ok::<_, Error>(sync_worker::handle(app, event.payload, deadline).await)
    }))
    .await
}
