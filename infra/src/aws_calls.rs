//! Counts the AWS calls a function makes: its SDK configuration's HTTP
//! client, wrapped, tallies every request by the operation its
//! `X-Amz-Target` header names (DynamoDB, SQS, KMS, Secrets Manager and
//! EventBridge all speak JSON protocols that carry it). A retried call
//! counts each attempt, as AWS bills it.

use aws_config::SdkConfig;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The calls counted so far, by operation (`DynamoDB_20120810.Query`,
/// `AmazonSQS.SendMessageBatch`, …; `other` for a request without a target).
#[derive(Debug, Default)]
pub struct AwsCalls(Mutex<BTreeMap<String, u64>>);

impl AwsCalls {
    fn count(&self, request: &HttpRequest) {
        let op = request.headers().get("x-amz-target").unwrap_or("other");
        *self.0.lock().unwrap().entry(op.to_string()).or_default() += 1;
    }

    /// The counts since the last `take`, and starts again from none.
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap().clone()
    }
}

/// The operations' short names (`Query`, `SendMessageBatch`) with their
/// counts, for messages and tables.
pub fn short(calls: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (op, n) in calls {
        let name = op.rsplit('.').next().unwrap_or(op).to_string();
        *out.entry(name).or_default() += n;
    }
    out
}

#[derive(Debug)]
struct Counting {
    inner: SharedHttpConnector,
    calls: Arc<AwsCalls>,
}

impl HttpConnector for Counting {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        self.calls.count(&request);
        self.inner.call(request)
    }
}

/// `sdk` with its HTTP client counting into `calls`.
pub fn counting(sdk: &SdkConfig, calls: Arc<AwsCalls>) -> SdkConfig {
    let inner = sdk.http_client().unwrap_or_else(|| {
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https()
    });
    sdk.to_builder()
        .http_client(http_client_fn(move |settings, components| {
            SharedHttpConnector::new(Counting {
                inner: inner.http_connector(settings, components),
                calls: calls.clone(),
            })
        }))
        .build()
}
