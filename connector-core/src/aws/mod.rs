//! Adapters to AWS: the only code that names an AWS SDK type. Above the
//! domain, below the vendors and flows.

pub mod client;
pub mod kms;
pub mod metrics;
pub mod outbox;
pub mod queue;
pub mod secrets;
pub mod store;
pub mod tls;

/// The AWS SDK configuration: the real chain in AWS; against a local
/// emulator (CONNECTOR_AWS_ENDPOINT), its endpoint, signed as the local admin
/// (see [`local_admin_credentials`]) unless running as a Lambda function.
pub async fn aws_config(endpoint: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(tls::https_client());
    if let Some(ep) = endpoint {
        loader = loader.endpoint_url(ep).region(aws_config::Region::new(
            std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
        ));
        // A function binary run as Lambda runs it has its role's session in
        // the environment; anything else signs as the local admin.
        if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_none() {
            loader = loader.credentials_provider(local_admin_credentials());
        }
    }
    loader.load().await
}

/// The local emulator enforces IAM: the local stack's admin identity signs
/// provisioning and inspection, from `CONNECTOR_LOCAL_ADMIN_ACCESS_KEY_ID`
/// and `CONNECTOR_LOCAL_ADMIN_SECRET_ACCESS_KEY`, or fake defaults that the
/// emulator (infra/moto_atomic.py) knows too. Never used in AWS.
pub fn local_admin_credentials() -> aws_sdk_dynamodb::config::Credentials {
    let var = |name: &str, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string())
    };
    aws_sdk_dynamodb::config::Credentials::new(
        var(
            "CONNECTOR_LOCAL_ADMIN_ACCESS_KEY_ID",
            LOCAL_ADMIN_ACCESS_KEY_ID,
        ),
        var(
            "CONNECTOR_LOCAL_ADMIN_SECRET_ACCESS_KEY",
            LOCAL_ADMIN_SECRET,
        ),
        None,
        None,
        "local-admin",
    )
}

/// The local admin's default access key id (fake; only the emulator knows it).
pub const LOCAL_ADMIN_ACCESS_KEY_ID: &str = "AKIALOCALADMIN000000";
const LOCAL_ADMIN_SECRET: &str = "local-admin-secret";

/// Formats an AWS SDK error with its full source chain (the plain Display of
/// an SDK error is only "service error").
pub fn sdk<E: std::error::Error>(err: E) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string()
}
