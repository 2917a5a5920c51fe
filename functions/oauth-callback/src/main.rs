use connector_core::{http_runtime, App};
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    connector_core::telemetry::init();
    let app = App::from_env().await?;
    let app = &app;
    http_runtime::run(move |req| oauth_callback::handle(app, req)).await
}
