//! Storage of phone pushes: one record per (user, date) with an optimistic
//! version, written in one transaction with the samples and the summary
//! values derived from it, so a failure leaves nothing half-written.

use crate::aws::sdk;
use crate::domain::error::{Error, Result};
use crate::domain::health::{DailySummary, MetricType, Sample};
use crate::domain::push::{DayRecord, Scalar, SOURCE};
use crate::store::HealthStore;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::NaiveDate;
use std::collections::HashMap;

fn push_key(date: NaiveDate) -> String {
    format!("push#{}", date.format("%Y-%m-%d"))
}

/// The normalized samples a day record stands for.
pub fn samples_of(record: &DayRecord) -> Vec<Sample> {
    record
        .scalars
        .iter()
        .map(|(scalar, stamped)| {
            let (metric, value) = match scalar {
                Scalar::Steps => (MetricType::Steps, stamped.value),
                Scalar::RestingHr => (MetricType::RestingHr, stamped.value),
                Scalar::Hrv => (MetricType::Hrv, stamped.value),
                Scalar::SleepHours => (MetricType::SleepDuration, (stamped.value * 60.0).round()),
            };
            Sample::daily(metric, record.date, value, SOURCE)
        })
        .collect()
}

impl HealthStore {
    /// The stored push record of a day and its version.
    pub async fn push_day(
        &self,
        user_id: &str,
        date: NaiveDate,
    ) -> Result<Option<(DayRecord, u64)>> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("user_id", AttributeValue::S(user_id.into()))
            .key("sk", AttributeValue::S(push_key(date)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::storage("GetItem push", sdk(e)))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let bad = || Error::Corrupt("push item is malformed".into());
        let record: DayRecord = item
            .get("record")
            .and_then(|v| v.as_s().ok())
            .and_then(|s| serde_json::from_str(s).ok())
            .ok_or_else(bad)?;
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(bad)?;
        Ok(Some((record, version)))
    }

    /// Writes the record (if its version is still `expected`; None: if none
    /// exists yet) together with its samples and summary values. Returns
    /// false when another writer changed the day first.
    pub async fn save_push_day(
        &self,
        user_id: &str,
        record: &DayRecord,
        expected: Option<u64>,
    ) -> Result<bool> {
        let next = expected.map_or(1, |v| v + 1);
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("user_id", AttributeValue::S(user_id.into()))
            .item("sk", AttributeValue::S(push_key(record.date)))
            .item("date", AttributeValue::S(record.date.to_string()))
            .item(
                "record",
                AttributeValue::S(serde_json::to_string(record).expect("record serializes")),
            )
            .item("version", AttributeValue::N(next.to_string()));
        put = match expected {
            None => put.condition_expression("attribute_not_exists(sk)"),
            Some(v) => put
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
        };
        let mut items = vec![TransactWriteItem::builder()
            .put(put.build().expect("put is complete"))
            .build()];
        let samples = samples_of(record);
        for sample in &samples {
            let item = HashMap::from([
                ("user_id".to_string(), AttributeValue::S(user_id.into())),
                ("sk".to_string(), AttributeValue::S(sample.sort_key())),
                (
                    "metric".to_string(),
                    AttributeValue::S(sample.metric.as_str().into()),
                ),
                (
                    "date".to_string(),
                    AttributeValue::S(sample.date.to_string()),
                ),
                (
                    "value".to_string(),
                    AttributeValue::N(sample.value.to_string()),
                ),
                (
                    "source".to_string(),
                    AttributeValue::S(sample.source.clone()),
                ),
            ]);
            items.push(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(item))
                            .build()
                            .expect("put"),
                    )
                    .build(),
            );
        }
        if let Some(summary) = DailySummary::from_samples(&samples).first() {
            items.push(
                TransactWriteItem::builder()
                    .update(self.summary_update(user_id, summary))
                    .build(),
            );
        }
        match self
            .db
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
                let cancelled_by_condition = match e.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(t)) => t
                        .cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("ConditionalCheckFailed")),
                    _ => false,
                };
                if cancelled_by_condition {
                    Ok(false)
                } else {
                    Err(Error::storage("TransactWriteItems push", sdk(e)))
                }
            }
        }
    }
}
