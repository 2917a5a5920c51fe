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

/// The AWS SDK configuration, from the environment as Lambda sets it
/// (`AWS_REGION`, and the role's session in `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; `sam local invoke` and
/// `cargo lambda` set the same). Against a local emulator
/// (CONNECTOR_AWS_ENDPOINT), its endpoint, signed as the local admin (see
/// [`local_admin_credentials`]) unless running as a Lambda function.
///
/// Not aws-config's default chain: its profile, SSO, web-identity, IMDS and
/// container providers (and the STS client) are never used by a function
/// and were a tenth of every binary.
pub fn aws_config(endpoint: Option<&str>) -> aws_config::SdkConfig {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let region = var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .or_else(|| endpoint.map(|_| "us-east-1".to_string()));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let credentials = match endpoint {
        Some(_) if !in_lambda => {
            aws_sdk_dynamodb::config::SharedCredentialsProvider::new(local_admin_credentials())
        }
        _ => aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        ),
    };
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .http_client(tls::https_client())
        .sleep_impl(aws_smithy_async::rt::sleep::SharedAsyncSleep::new(
            aws_smithy_async::rt::sleep::TokioSleep::new(),
        ))
        .time_source(aws_smithy_async::time::SharedTimeSource::new(
            aws_smithy_async::time::SystemTimeSource::new(),
        ))
        .region(region.map(aws_config::Region::new))
        .credentials_provider(credentials);
    if let Some(ep) = endpoint {
        builder = builder.endpoint_url(ep);
    }
    builder.build()
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
