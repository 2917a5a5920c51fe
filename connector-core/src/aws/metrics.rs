//! The connector's metrics (`domain::metric`) as CloudWatch Embedded Metric
//! Format: JSON lines on stdout that CloudWatch Logs turns into metrics, so
//! counting costs no API call. Installed only in a function binary (Lambda
//! sets `AWS_LAMBDA_FUNCTION_NAME`); the in-process local stack and the
//! tests count into nothing.

use crate::domain::metric::Metric;
use metrics_cloudwatch_embedded::{Builder, Collector};
use std::sync::OnceLock;

/// The namespace when `CONNECTOR_METRICS_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "WearableConnector";

static COLLECTOR: OnceLock<Option<&'static Collector>> = OnceLock::new();

/// Installs the EMF recorder once, when running as a Lambda function.
pub fn init() {
    COLLECTOR.get_or_init(|| {
        std::env::var_os("AWS_LAMBDA_FUNCTION_NAME")?;
        let namespace = std::env::var("CONNECTOR_METRICS_NAMESPACE")
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        match Builder::new().cloudwatch_namespace(namespace).init() {
            Ok(collector) => {
                for m in Metric::ALL {
                    metrics::describe_counter!(m.name(), metrics::Unit::Count, m.meaning());
                }
                Some(collector)
            }
            Err(e) => {
                tracing::error!(error = %e, "metrics recorder not installed; no metrics");
                None
            }
        }
    });
}

/// Writes what was counted since the last flush, one EMF line per set of
/// dimension values, each carrying the invocation's request and trace ids.
/// Called after each invocation, before Lambda may freeze the process.
pub fn flush(request_id: &str, xray_trace_id: Option<&str>) {
    let Some(Some(collector)) = COLLECTOR.get() else {
        return;
    };
    collector.set_property("requestId", request_id.to_string());
    match xray_trace_id {
        Some(t) => collector.set_property("xrayTraceId", t.to_string()),
        None => collector.remove_property("xrayTraceId"),
    };
    if let Err(e) = collector.flush(std::io::stdout().lock()) {
        tracing::error!(error = %e, "metrics not written");
    }
}
