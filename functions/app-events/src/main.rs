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
        let answer = app_events::handle(app, event.payload).await;
        let ctx = &event.context;
        metrics::flush(&ctx.request_id, ctx.xray_trace_id.as_deref());
        Ok::<_, Error>(answer)
    }))
    .await
}
