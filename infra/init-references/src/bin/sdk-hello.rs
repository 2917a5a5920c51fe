//! The hello-world that also loads the AWS SDK's configuration and builds
//! DynamoDB, SQS and KMS clients at init, as a function that builds its
//! clients eagerly does: the SDK's own floor.

use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let clients = std::sync::Arc::new((
        aws_sdk_dynamodb::Client::new(&config),
        aws_sdk_sqs::Client::new(&config),
        aws_sdk_kms::Client::new(&config),
    ));
    run(service_fn(move |_: Request| {
        let _clients = clients.clone();
        async { Ok::<_, Error>("hello") }
    }))
    .await
}
