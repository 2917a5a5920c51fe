use aws_lambda_events::sqs::SqsEvent;
use connector_core::aws::metrics;
use connector_core::App;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    connector_core::flows::app::init_telemetry();
    let app = App::from_env().await?;
    let app = &app;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = sync_worker::deadline_of(&event.context);
        let answer = sync_worker::handle(app, event.payload, deadline).await;
        let ctx = &event.context;
        metrics::flush(&ctx.request_id, ctx.xray_trace_id.as_deref());
        Ok::<_, Error>(answer)
    }))
    .await
}
