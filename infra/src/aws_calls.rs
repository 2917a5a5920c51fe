//! Counts the AWS calls a function makes: its SDK configuration's HTTP
//! client, wrapped, tallies every request by the operation its
//! `X-Amz-Target` header names (DynamoDB, SQS, KMS, Secrets Manager and
//! EventBridge all speak JSON protocols that carry it). A retried call
//! counts each attempt, as AWS bills it.

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The calls counted so far (see [`Tally`]).
#[derive(Debug, Default)]
pub struct AwsCalls(Mutex<Tally>);

/// What a function's AWS calls came to: counted by operation
/// (`DynamoDB_20120810.Query`, `AmazonSQS.SendMessageBatch`, …; `other`
/// for a request without a target) and DynamoDB's by operation and table,
/// with the units DynamoDB, SQS and EventBridge bill for them.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Calls by operation.
    pub by_op: BTreeMap<String, u64>,
    /// DynamoDB calls by short operation and table (`GetItem ConnectionsTable`).
    pub by_table: BTreeMap<String, u64>,
    /// DynamoDB write request units, estimated from the requests: a put by
    /// its item's size in whole KB (its JSON, a little over DynamoDB's
    /// count), an update or delete as one, twice that in a transaction.
    pub write_units: f64,
    /// DynamoDB read request units, estimated from the requests: one per
    /// strongly consistent read, half per eventually consistent one, each
    /// read or page taken as under 4 KB.
    pub read_units: f64,
    /// The write request units by table (`HealthDataTable`; `several` for
    /// a transaction across tables).
    pub write_units_by_table: BTreeMap<String, f64>,
    /// SQS requests as billed: one per started 64 KB of each call's body.
    pub sqs_requests: u64,
    /// EventBridge events put.
    pub bus_events: u64,
}

impl Tally {
    /// Adds `other`'s counts and units to these.
    pub fn absorb(&mut self, other: Tally) {
        for (op, n) in other.by_op {
            *self.by_op.entry(op).or_default() += n;
        }
        for (op, n) in other.by_table {
            *self.by_table.entry(op).or_default() += n;
        }
        for (table, units) in other.write_units_by_table {
            *self.write_units_by_table.entry(table).or_default() += units;
        }
        self.write_units += other.write_units;
        self.read_units += other.read_units;
        self.sqs_requests += other.sqs_requests;
        self.bus_events += other.bus_events;
    }

    fn add(&mut self, op: &str, body: Option<&[u8]>) {
        *self.by_op.entry(op.to_string()).or_default() += 1;
        let (service, name) = op.rsplit_once('.').unwrap_or(("", op));
        let request: Option<serde_json::Value> = body.and_then(|b| serde_json::from_slice(b).ok());
        match service {
            "AmazonSQS" => {
                self.sqs_requests += body.map_or(1, |b| b.len().div_ceil(64 * 1024).max(1)) as u64;
            }
            "AWSEvents" if name == "PutEvents" => {
                self.bus_events += request
                    .as_ref()
                    .and_then(|r| r.get("Entries")?.as_array().map(Vec::len))
                    .unwrap_or(0) as u64;
            }
            "DynamoDB_20120810" => {
                let Some(request) = request else { return };
                let table = table_of(&request);
                if let Some(table) = &table {
                    *self.by_table.entry(format!("{name} {table}")).or_default() += 1;
                }
                let (write, read) = dynamodb_units(name, &request);
                self.write_units += write;
                self.read_units += read;
                if write > 0.0 {
                    let table = table.unwrap_or_else(|| "several".into());
                    *self.write_units_by_table.entry(table).or_default() += write;
                }
            }
            _ => {}
        }
    }
}

impl AwsCalls {
    fn count(&self, request: &HttpRequest) {
        let op = request.headers().get("x-amz-target").unwrap_or("other");
        self.0.lock().unwrap().add(op, request.body().bytes());
    }

    /// The counts by operation since the last `take`, and starts again
    /// from none.
    pub fn take(&self) -> BTreeMap<String, u64> {
        self.take_all().by_op
    }

    /// The DynamoDB calls since the last `take`, by short operation and
    /// table (`GetItem ConnectionsTable`), and starts again from none.
    pub fn take_by_table(&self) -> BTreeMap<String, u64> {
        self.take_all().by_table
    }

    /// Everything counted since the last `take`, and starts again from none.
    pub fn take_all(&self) -> Tally {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    /// The counts by operation so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap().by_op.clone()
    }
}

/// The write and read request units of one DynamoDB call (see [`Tally`]).
fn dynamodb_units(op: &str, request: &serde_json::Value) -> (f64, f64) {
    let kb = |item: Option<&serde_json::Value>| {
        item.map_or(1, |i| i.to_string().len().div_ceil(1024).max(1)) as f64
    };
    let read = |r: &serde_json::Value| {
        if r.get("ConsistentRead").and_then(|c| c.as_bool()) == Some(true) {
            1.0
        } else {
            0.5
        }
    };
    let write_request = |w: &serde_json::Value| match w.get("PutRequest") {
        Some(put) => kb(put.get("Item")),
        None => 1.0,
    };
    match op {
        "PutItem" => (kb(request.get("Item")), 0.0),
        "UpdateItem" | "DeleteItem" => (1.0, 0.0),
        "BatchWriteItem" => {
            let writes = request
                .get("RequestItems")
                .and_then(|t| t.as_object())
                .into_iter()
                .flat_map(|tables| tables.values())
                .filter_map(|w| w.as_array())
                .flatten();
            (writes.map(write_request).sum(), 0.0)
        }
        "TransactWriteItems" => {
            let items = request.get("TransactItems").and_then(|t| t.as_array());
            let units: f64 = items
                .into_iter()
                .flatten()
                .map(|i| match i.get("Put") {
                    Some(put) => kb(put.get("Item")),
                    None => 1.0,
                })
                .sum();
            (2.0 * units, 0.0)
        }
        "GetItem" | "Query" | "Scan" => (0.0, read(request)),
        _ => (0.0, 0.0),
    }
}

/// The table a DynamoDB request names (its template name: the part of
/// `TableName` after the stack's prefix), for a one-table request.
fn table_of(request: &serde_json::Value) -> Option<String> {
    let mut names: Vec<&str> = match (request.get("TableName"), request.get("RequestItems")) {
        (Some(name), _) => vec![name.as_str()?],
        (None, Some(tables)) => tables.as_object()?.keys().map(String::as_str).collect(),
        (None, None) => request
            .get("TransactItems")?
            .as_array()?
            .iter()
            .filter_map(|item| {
                item.as_object()?
                    .values()
                    .next()?
                    .get("TableName")?
                    .as_str()
            })
            .collect(),
    };
    names.sort_unstable();
    names.dedup();
    match names[..] {
        [name] => Some(name.rsplit('-').next().unwrap_or(name).to_string()),
        _ => None,
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
    let inner = sdk
        .http_client()
        .unwrap_or_else(connector_core::aws::tls::https_client);
    sdk.to_builder()
        .http_client(http_client_fn(move |settings, components| {
            SharedHttpConnector::new(Counting {
                inner: inner.http_connector(settings, components),
                calls: calls.clone(),
            })
        }))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn units_follow_item_sizes_consistency_and_transactions() {
        let small = json!({"user_id": {"S": "u"}, "sk": {"S": "k"}});
        let big = json!({"user_id": {"S": "u"}, "blob": {"S": "x".repeat(1500)}});
        assert_eq!(
            dynamodb_units("PutItem", &json!({ "Item": small })),
            (1.0, 0.0)
        );
        assert_eq!(
            dynamodb_units("PutItem", &json!({ "Item": big })),
            (2.0, 0.0)
        );
        assert_eq!(dynamodb_units("UpdateItem", &json!({})), (1.0, 0.0));
        let batch = json!({"RequestItems": {"t-HealthDataTable": [
            {"PutRequest": {"Item": small}},
            {"PutRequest": {"Item": big}},
            {"DeleteRequest": {"Key": small}},
        ]}});
        assert_eq!(dynamodb_units("BatchWriteItem", &batch), (4.0, 0.0));
        assert_eq!(table_of(&batch).as_deref(), Some("HealthDataTable"));
        let transaction = json!({"TransactItems": [
            {"Put": {"Item": small}},
            {"Update": {"Key": small}},
        ]});
        assert_eq!(
            dynamodb_units("TransactWriteItems", &transaction),
            (4.0, 0.0)
        );
        assert_eq!(
            dynamodb_units("GetItem", &json!({"ConsistentRead": true})),
            (0.0, 1.0)
        );
        assert_eq!(dynamodb_units("Query", &json!({})), (0.0, 0.5));

        let mut tally = Tally::default();
        let events = json!({"Entries": [{}, {}]}).to_string();
        tally.add("AWSEvents.PutEvents", Some(events.as_bytes()));
        let large = vec![b' '; 70 * 1024];
        tally.add("AmazonSQS.SendMessageBatch", Some(&large));
        tally.add("TrentService.Decrypt", None);
        assert_eq!((tally.bus_events, tally.sqs_requests), (2, 2));
        assert_eq!(tally.by_op.values().sum::<u64>(), 3);

        let mut both = tally.clone();
        both.absorb(tally);
        assert_eq!((both.bus_events, both.sqs_requests), (4, 4));
        assert_eq!(both.by_op["AmazonSQS.SendMessageBatch"], 2);
    }
}
