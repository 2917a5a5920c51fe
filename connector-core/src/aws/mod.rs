//! Adapters to AWS: the only code that names an AWS SDK type. Above the
//! domain, below the vendors and flows.

pub mod kms;
pub mod queue;
pub mod secrets;
pub mod store;

/// The AWS SDK configuration: the real chain in AWS; against a local
/// emulator (CONNECTOR_AWS_ENDPOINT), its endpoint with dummy credentials.
pub async fn aws_config(endpoint: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(ep) = endpoint {
        loader = loader
            .endpoint_url(ep)
            .region(aws_config::Region::new(
                std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            ))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local",
                "local",
                None,
                None,
                "local-emulator",
            ));
    }
    loader.load().await
}

/// Formats an AWS SDK error with its full source chain (the plain Display of
/// an SDK error is only "service error").
pub fn sdk<E: std::error::Error>(err: E) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string()
}
