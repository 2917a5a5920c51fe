//! The HealthData table: samples by natural key, daily summaries per
//! source, raw vendor records, and the phone's push records.

use super::item::{get_n, get_s, get_time, n, s, Item};
use crate::aws::client::SdkClient;
use crate::aws::sdk;
use crate::domain::error::{Error, Result};
use crate::domain::health::{source_rank, DailySummary, MetricType, Sample, SUMMARY_METRICS};
use crate::domain::push::DayRecord;
use crate::domain::vendor::{RawRecord, Vendor};
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, PutRequest, TransactWriteItem, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use chrono::{NaiveDate, Utc};
use futures_util::future::try_join_all;
use std::collections::HashMap;

/// The HealthData table.
#[derive(Clone)]
pub struct HealthStore {
    pub(crate) db: SdkClient<Client>,
    pub(crate) table: String,
}

/// Summary updates in flight at once.
pub const SUMMARY_WRITES_AT_ONCE: usize = 10;

/// Raw vendor records larger than this keep only their size.
pub const MAX_RAW_BYTES: usize = 32 * 1024;

fn raw_key(vendor: Vendor, r: &RawRecord) -> String {
    format!("raw#{}#{}#{}", vendor.as_str(), r.kind, r.id)
}

/// A sample's item, keyed by its natural key (user, metric, time, source).
fn record_of(item: &Item) -> Result<DayRecord> {
    item.get("record")
        .and_then(|v| v.as_s().ok())
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| Error::Corrupt("push item is malformed".into()))
}

fn sample_of(item: &Item, metric: MetricType) -> Result<Sample> {
    let bad = || Error::Corrupt("sample item is malformed".into());
    Ok(Sample {
        metric,
        date: get_s(item, "date")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .ok_or_else(bad)?,
        time: get_time(item, "time"),
        value: get_n(item, "value").ok_or_else(bad)?,
        source: get_s(item, "source").ok_or_else(bad)?.to_string(),
        label: get_s(item, "label").map(String::from),
    })
}

fn sample_item(user_id: &str, sample: &Sample) -> Item {
    let mut item = HashMap::from([
        ("user_id".to_string(), s(user_id)),
        ("sk".to_string(), s(sample.sort_key())),
        ("metric".to_string(), s(sample.metric.as_str())),
        (
            "date".to_string(),
            s(sample.date.format("%Y-%m-%d").to_string()),
        ),
        ("value".to_string(), n(sample.value)),
        ("source".to_string(), s(&sample.source)),
    ]);
    if let Some(t) = sample.time {
        item.insert("time".into(), n(t.timestamp()));
    }
    if let Some(l) = &sample.label {
        item.insert("label".into(), s(l));
    }
    item
}

fn push_key(date: NaiveDate) -> String {
    format!("push#{}", date.format("%Y-%m-%d"))
}

fn put_request(item: Item) -> WriteRequest {
    WriteRequest::builder()
        .put_request(
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .expect("item set"),
        )
        .build()
}

pub(crate) fn day_key(date: NaiveDate) -> String {
    format!("day#{}", date.format("%Y-%m-%d"))
}

/// Puts of `samples` by natural key, each once.
fn sample_requests(user_id: &str, samples: &[Sample]) -> Vec<WriteRequest> {
    let mut by_key: HashMap<String, &Sample> = HashMap::new();
    for sample in samples {
        by_key.insert(sample.sort_key(), sample);
    }
    by_key
        .into_values()
        .map(|smp| put_request(sample_item(user_id, smp)))
        .collect()
}

/// Puts of vendor records as received, by (source, kind, id): a record
/// fetched again overwrites itself. Bodies over MAX_RAW_BYTES are not
/// kept, only their size, so one huge record cannot fill the table.
fn raw_requests(user_id: &str, vendor: Vendor, raw: &[RawRecord]) -> Vec<WriteRequest> {
    let mut by_key: HashMap<String, &RawRecord> = HashMap::new();
    for r in raw {
        by_key.insert(raw_key(vendor, r), r);
    }
    let now = Utc::now().timestamp();
    by_key
        .into_iter()
        .map(|(sk, r)| {
            let mut item = HashMap::from([
                ("user_id".to_string(), s(user_id)),
                ("sk".to_string(), s(sk)),
                ("date".to_string(), s(r.date.format("%Y-%m-%d").to_string())),
                ("fetched_at".to_string(), n(now)),
                ("bytes".to_string(), n(r.json.len() as i64)),
            ]);
            if r.json.len() <= MAX_RAW_BYTES {
                item.insert("json".into(), s(&r.json));
            } else {
                item.insert("truncated".into(), AttributeValue::Bool(true));
            }
            put_request(item)
        })
        .collect()
}

impl HealthStore {
    /// The store on `table` through `db`.
    pub fn new(db: impl Into<SdkClient<Client>>, table: String) -> Self {
        Self {
            db: db.into(),
            table,
        }
    }

    /// Whether the table answers (for the health route).
    pub async fn answers(&self) -> Result<()> {
        super::table::table_answers(&self.db, &self.table).await
    }

    /// Writes samples by natural key (user, metric, time, source): writing
    /// the same sample again overwrites it.
    pub async fn put_samples(&self, user_id: &str, samples: &[Sample]) -> Result<()> {
        self.batch_write(sample_requests(user_id, samples)).await
    }

    /// Writes what one pull fetched, its samples (as [`Self::put_samples`])
    /// and its raw records, in the same batches: fewer BatchWriteItem calls
    /// than writing each kind on its own.
    pub async fn put_pulled(
        &self,
        user_id: &str,
        vendor: Vendor,
        samples: &[Sample],
        raw: &[RawRecord],
    ) -> Result<()> {
        let mut requests = sample_requests(user_id, samples);
        requests.extend(raw_requests(user_id, vendor, raw));
        self.batch_write(requests).await
    }

    /// The kept raw records of a vendor for a user: (kind, id, json).
    pub async fn raw_records(
        &self,
        user_id: &str,
        vendor: Vendor,
    ) -> Result<Vec<(String, String, Option<String>)>> {
        let prefix = format!("raw#{}#", vendor.as_str());
        let items = self
            .query_range(user_id, prefix.clone(), format!("{prefix}~"))
            .await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let sk = get_s(item, "sk")?.strip_prefix(&prefix)?;
                let (kind, id) = sk.split_once('#')?;
                Some((
                    kind.to_string(),
                    id.to_string(),
                    get_s(item, "json").map(String::from),
                ))
            })
            .collect())
    }

    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<()> {
        super::table::batch_write(&self.db, &self.table, requests).await
    }

    /// The update that records `summary`'s values, each under its source
    /// (`<metric>@<source>`), keeping other sources' values for the day.
    pub(crate) fn summary_update(
        &self,
        user_id: &str,
        summary: &DailySummary,
    ) -> aws_sdk_dynamodb::types::Update {
        let mut set = vec!["#d = :d".to_string()];
        let mut names = HashMap::from([("#d".to_string(), "date".to_string())]);
        let mut values = HashMap::from([(
            ":d".to_string(),
            s(summary.date.format("%Y-%m-%d").to_string()),
        )]);
        for (i, metric) in SUMMARY_METRICS.iter().enumerate() {
            if let Some(v) = summary.get(*metric) {
                let source = summary
                    .sources
                    .get(metric.as_str())
                    .cloned()
                    .unwrap_or_default();
                names.insert(format!("#m{i}"), format!("{}@{}", metric.as_str(), source));
                values.insert(format!(":m{i}"), n(v));
                set.push(format!("#m{i} = :m{i}"));
            }
        }
        aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .key("user_id", s(user_id))
            .key("sk", s(day_key(summary.date)))
            .update_expression(format!("SET {}", set.join(", ")))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .expect("update has table, key and expression")
    }

    /// Records each of `summaries`' values under their sources: an
    /// UpdateItem per day (a partial update; DynamoDB batches those only in
    /// a transaction, at twice the write units), sent
    /// [`SUMMARY_WRITES_AT_ONCE`] at a time, so a part's days cost about
    /// one round trip.
    pub async fn upsert_summaries(&self, user_id: &str, summaries: &[DailySummary]) -> Result<()> {
        for chunk in summaries.chunks(SUMMARY_WRITES_AT_ONCE) {
            try_join_all(chunk.iter().map(|summary| {
                let u = self.summary_update(user_id, summary);
                self.db
                    .update_item()
                    .table_name(u.table_name())
                    .set_key(Some(u.key().clone()))
                    .update_expression(u.update_expression())
                    .set_expression_attribute_names(u.expression_attribute_names().cloned())
                    .set_expression_attribute_values(u.expression_attribute_values().cloned())
                    .send()
            }))
            .await
            .map_err(|e| Error::storage("UpdateItem summary", sdk(e)))?;
        }
        Ok(())
    }

    /// A query of a user's items with `lo <= sk <= hi`.
    fn range_query(
        &self,
        user_id: &str,
        (lo, hi): (&str, &str),
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.db
            .query()
            .table_name(&self.table)
            .key_condition_expression("user_id = :u AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":u", s(user_id))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi))
    }

    /// One page of a user's items with `lo <= sk <= hi`.
    async fn query_page(
        &self,
        user_id: &str,
        (lo, hi): (&str, &str),
        start: Option<Item>,
        limit: Option<i32>,
    ) -> Result<aws_sdk_dynamodb::operation::query::QueryOutput> {
        self.range_query(user_id, (lo, hi))
            .set_exclusive_start_key(start)
            .set_limit(limit)
            .send()
            .await
            .map_err(|e| Error::storage("Query health data", sdk(e)))
    }

    async fn query_range(&self, user_id: &str, lo: String, hi: String) -> Result<Vec<Item>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self.query_page(user_id, (&lo, &hi), start, None).await?;
            out.extend(page.items().iter().cloned());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Daily summaries for `from..=to`, oldest first.
    pub async fn summaries(
        &self,
        user_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailySummary>> {
        let items = self
            .query_range(user_id, day_key(from), day_key(to))
            .await?;
        let mut rows = Vec::with_capacity(items.len());
        for item in &items {
            let date = get_s(item, "date")
                .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                .ok_or_else(|| Error::Corrupt("summary item has no valid date".into()))?;
            let mut row = DailySummary::new(date);
            for metric in SUMMARY_METRICS {
                let prefix = format!("{}@", metric.as_str());
                let best = item
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((
                            k.strip_prefix(&prefix)?,
                            v.as_n().ok()?.parse::<f64>().ok()?,
                        ))
                    })
                    .min_by_key(|(source, _)| (source_rank(metric, source), source.to_string()));
                if let Some((source, value)) = best {
                    row.set(metric, value, source);
                }
            }
            rows.push(row);
        }
        Ok(rows)
    }

    /// One page of samples of a metric on `from..=to` (by their day), oldest
    /// first, starting after the sort key `after`; with the sort key to
    /// continue from when there may be more.
    pub async fn samples_page(
        &self,
        user_id: &str,
        metric: MetricType,
        from: NaiveDate,
        to: NaiveDate,
        after: Option<&str>,
        limit: i32,
    ) -> Result<(Vec<Sample>, Option<String>)> {
        let prefix = format!("sample#{}#", metric.as_str());
        // Intraday keys carry the UTC time, which can fall a day either side
        // of the user-local date: query a day wider, keep the local dates.
        // '~' sorts after every character a time or source uses.
        let lo = format!(
            "{prefix}{}",
            (from - chrono::Duration::days(1)).format("%Y-%m-%d")
        );
        let hi = format!(
            "{prefix}{}~",
            (to + chrono::Duration::days(1)).format("%Y-%m-%d")
        );
        let start = after.map(|sk| {
            HashMap::from([
                ("user_id".to_string(), s(user_id)),
                ("sk".to_string(), s(sk)),
            ])
        });
        let page = self
            .query_page(user_id, (&lo, &hi), start, Some(limit.max(1)))
            .await?;
        let samples = page
            .items()
            .iter()
            .map(|item| sample_of(item, metric))
            .filter(|s| !matches!(s, Ok(x) if x.date < from || x.date > to))
            .collect::<Result<Vec<_>>>()?;
        let next = page
            .last_evaluated_key
            .as_ref()
            .and_then(|k| get_s(k, "sk"))
            .map(String::from);
        Ok((samples, next))
    }

    /// The phone's records of the days `from..=to`, oldest first.
    pub async fn push_days(
        &self,
        user_id: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayRecord>> {
        self.query_range(user_id, push_key(from), push_key(to))
            .await?
            .iter()
            .map(record_of)
            .collect()
    }

    /// The user's newest sample of `metric` (by its day, then its time of
    /// day), from any source.
    pub async fn latest_sample(&self, user_id: &str, metric: MetricType) -> Result<Option<Sample>> {
        let prefix = format!("sample#{}#", metric.as_str());
        let page = self
            .range_query(user_id, (&prefix, &format!("{prefix}~")))
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(|e| Error::storage("Query latest sample", sdk(e)))?;
        page.items()
            .first()
            .map(|item| sample_of(item, metric))
            .transpose()
    }

    /// Deletes up to `limit` health items of a user, the first in key
    /// order, and returns how many: 0 once nothing is left. Only their keys
    /// are read, so a page holds `limit` keys in memory whatever the items
    /// weigh; deleted items are gone from the next page's strongly
    /// consistent read, so pages need no cursor.
    pub async fn delete_page(&self, user_id: &str, limit: i32) -> Result<usize> {
        // Every sort key starts with a lowercase word ("day#", "push#", "sample#").
        let page = self
            .range_query(user_id, ("a", "~"))
            .projection_expression("user_id, sk")
            .consistent_read(true)
            .limit(limit.max(1))
            .send()
            .await
            .map_err(|e| Error::storage("Query health keys", sdk(e)))?;
        let requests: Vec<WriteRequest> = page
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|key| {
                Some(
                    WriteRequest::builder()
                        .delete_request(DeleteRequest::builder().set_key(Some(key)).build().ok()?)
                        .build(),
                )
            })
            .collect();
        let count = requests.len();
        let mut writes = tokio::task::JoinSet::new();
        for chunk in requests.chunks(25 * DELETE_CALLS_PER_TASK) {
            let store = self.clone();
            let chunk = chunk.to_vec();
            writes.spawn(async move { store.batch_write(chunk).await });
        }
        while let Some(done) = writes.join_next().await {
            done.map_err(|e| Error::Storage(format!("a delete task failed: {e}")))??;
        }
        Ok(count)
    }
}

/// A page's deletes run as concurrent tasks of this many BatchWriteItem
/// calls (25 keys each) one after the other.
const DELETE_CALLS_PER_TASK: usize = 5;

/// Phone pushes: one record per (user, date) with an optimistic version,
/// written in one transaction with its samples and the summary values
/// derived from it, so a failure leaves nothing half-written.
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
        let record = record_of(&item)?;
        let bad = || Error::Corrupt("push item is malformed".into());
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
        let samples = record.samples();
        for sample in &samples {
            let item = sample_item(user_id, sample);
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
        super::table::transact_if(&self.db, items, "push").await
    }
}
