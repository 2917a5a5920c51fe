use connector_core::http::runtime;
use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    connector_core::flows::app::init_telemetry();
    runtime::run(|req| async move { pages::handle(&req) }).await
}
