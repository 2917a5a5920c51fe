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
/// `AmazonSQS.SendMessageBatch`, …; `other` for a request without a target)
/// and by the DynamoDB table each names.
#[derive(Debug, Default)]
pub struct AwsCalls(Mutex<Counts>);

#[derive(Debug, Default)]
struct Counts {
    by_op: BTreeMap<String, u64>,
    by_table: BTreeMap<String, u64>,
}

impl AwsCalls {
    fn count(&self, request: &HttpRequest) {
        let op = request.headers().get("x-amz-target").unwrap_or("other");
        let table = request.body().bytes().and_then(table_of);
        let mut counts = self.0.lock().unwrap();
        *counts.by_op.entry(op.to_string()).or_default() += 1;
        if let Some(table) = table {
            let name = op.rsplit('.').next().unwrap_or(op);
            *counts
                .by_table
                .entry(format!("{name} {table}"))
                .or_default() += 1;
        }
    }

    /// The counts since the last `take`, and starts again from none.
    pub fn take(&self) -> BTreeMap<String, u64> {
        self.take_both().0
    }

    /// The DynamoDB calls since the last `take`, by short operation and
    /// table (`GetItem ConnectionsTable`), and starts again from none.
    pub fn take_by_table(&self) -> BTreeMap<String, u64> {
        self.take_both().1
    }

    /// Both counts since the last `take`: by operation, and DynamoDB's by
    /// operation and table; starts again from none.
    pub fn take_both(&self) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
        let counts = std::mem::take(&mut *self.0.lock().unwrap());
        (counts.by_op, counts.by_table)
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap().by_op.clone()
    }
}

/// The table a DynamoDB request names (its template name: the part of
/// `TableName` after the stack's prefix), for a one-table request.
fn table_of(body: &[u8]) -> Option<String> {
    let request: serde_json::Value = serde_json::from_slice(body).ok()?;
    let name = match request.get("TableName") {
        Some(name) => name.as_str()?.to_string(),
        None => {
            let tables = request.get("RequestItems")?.as_object()?;
            if tables.len() != 1 {
                return None;
            }
            tables.keys().next()?.clone()
        }
    };
    Some(name.rsplit('-').next().unwrap_or(&name).to_string())
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
