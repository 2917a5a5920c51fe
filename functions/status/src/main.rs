use connector_core::http::runtime;
use connector_core::App;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    connector_core::flows::app::init_telemetry();
    let app = App::from_env().await?;
    let app = &app;
    runtime::run(move |req| status::handle(app, req)).await
}
