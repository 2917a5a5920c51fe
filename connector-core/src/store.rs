//! DynamoDB storage: connections (with sealed tokens), health data (samples
//! and daily summaries) and short-lived items (OAuth state, dedup keys).
//! Every update names the full primary key; expiry is checked on read because
//! TTL deletion is lazy.

use crate::aws::sdk;
use crate::domain::connection::{Connection, ConnectionStatus, SealedTokens};
use crate::domain::error::{Error, Result};
use crate::domain::health::{source_rank, DailySummary, MetricType, Sample, SUMMARY_METRICS};
use crate::domain::vendor::{RawRecord, Vendor};
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, PutRequest, ReturnValue, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
fn get_s<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}
fn get_n<T: std::str::FromStr>(item: &Item, k: &str) -> Option<T> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}
fn get_time(item: &Item, k: &str) -> Option<DateTime<Utc>> {
    get_n::<i64>(item, k).and_then(|t| Utc.timestamp_opt(t, 0).single())
}
/// The output of a conditional write, or None when its condition failed.
fn conditional<T, E, R>(
    res: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
    op: &str,
) -> Result<Option<T>>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match res {
        Ok(out) => Ok(Some(out)),
        Err(e)
            if e.as_service_error().and_then(|s| s.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::storage(op, sdk(e))),
    }
}

/// `vendor#vendor_user_id`, the key of the by-vendor-user index.
pub fn vendor_user_key(vendor: Vendor, vendor_user_id: &str) -> String {
    format!("{}#{}", vendor.as_str(), vendor_user_id)
}

/// Shards of the schedule indexes (`by-expiry`, `by-quiet`): the scheduled
/// tick queries every shard; writes spread over them so no index partition
/// carries the whole fleet.
pub const SCHEDULE_SHARDS: u8 = 16;

/// The schedule shard of a connection (stable: a digest of its key).
pub fn schedule_shard(user_id: &str, vendor: Vendor) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{user_id}#{}", vendor.as_str()));
    (digest[0] % SCHEDULE_SHARDS).to_string()
}

#[derive(Clone)]
pub struct ConnectionStore {
    db: Client,
    table: String,
}

impl ConnectionStore {
    pub const VENDOR_USER_INDEX: &'static str = "by-vendor-user";
    /// Connected connections by access-token expiry (sparse: only connected
    /// items carry `sched_shard`).
    pub const EXPIRY_INDEX: &'static str = "by-expiry";
    /// Connected connections by `quiet_since`: their last sync, or when they
    /// were connected if they never synced.
    pub const QUIET_INDEX: &'static str = "by-quiet";

    pub fn new(db: Client, table: String) -> Self {
        Self { db, table }
    }

    fn key(user_id: &str, vendor: Vendor) -> Item {
        HashMap::from([
            ("user_id".to_string(), s(user_id)),
            ("vendor".to_string(), s(vendor.as_str())),
        ])
    }

    fn from_item(item: &Item) -> Result<Connection> {
        let bad = |f: &str| Error::Corrupt(format!("connection item has no valid {f}"));
        Ok(Connection {
            user_id: get_s(item, "user_id")
                .ok_or_else(|| bad("user_id"))?
                .to_string(),
            vendor: get_s(item, "vendor")
                .ok_or_else(|| bad("vendor"))?
                .parse()
                .map_err(|_| bad("vendor"))?,
            status: get_s(item, "status")
                .and_then(ConnectionStatus::parse)
                .ok_or_else(|| bad("status"))?,
            vendor_user_id: get_s(item, "vendor_user_id")
                .unwrap_or_default()
                .to_string(),
            scopes: get_s(item, "scopes")
                .map(|s| {
                    s.split(' ')
                        .filter(|x| !x.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            expires_at: get_time(item, "expires_at"),
            connected_at: get_time(item, "connected_at").ok_or_else(|| bad("connected_at"))?,
            last_sync_at: get_time(item, "last_sync_at"),
            last_error: get_s(item, "last_error").map(String::from),
            token_version: get_n(item, "token_version").unwrap_or(0),
            sealed_access_token: get_s(item, "access_token").unwrap_or_default().to_string(),
            sealed_refresh_token: get_s(item, "refresh_token").map(String::from),
        })
    }

    /// Stores a new or renewed connection; bumps the token version so that
    /// any refresh in flight for the old grant loses its conditional write.
    pub async fn connect(
        &self,
        user_id: &str,
        vendor: Vendor,
        vendor_user_id: &str,
        scopes: &[String],
        expires_at: Option<DateTime<Utc>>,
        tokens: &SealedTokens,
    ) -> Result<()> {
        let names = HashMap::from([("#s".to_string(), "status".to_string())]);
        let mut values = HashMap::from([
            (":st".to_string(), s(ConnectionStatus::Connected.as_str())),
            (":vu".to_string(), s(vendor_user_id)),
            (
                ":vk".to_string(),
                s(vendor_user_key(vendor, vendor_user_id)),
            ),
            (":sc".to_string(), s(scopes.join(" "))),
            (":now".to_string(), n(Utc::now().timestamp())),
            (":at".to_string(), s(&tokens.access)),
            (":zero".to_string(), n(0)),
            (":one".to_string(), n(1)),
            (":sh".to_string(), s(schedule_shard(user_id, vendor))),
        ]);
        let mut set = vec![
            "#s = :st",
            "sched_shard = :sh",
            "quiet_since = if_not_exists(last_sync_at, :now)",
            "vendor_user_id = :vu",
            "vendor_user_key = :vk",
            "scopes = :sc",
            "connected_at = :now",
            "access_token = :at",
            "token_version = if_not_exists(token_version, :zero) + :one",
        ];
        let mut remove = vec!["last_error"];
        match expires_at {
            Some(t) => {
                values.insert(":ex".into(), n(t.timestamp()));
                set.push("expires_at = :ex");
            }
            None => remove.push("expires_at"),
        }
        match &tokens.refresh {
            Some(r) => {
                values.insert(":rt".into(), s(r));
                set.push("refresh_token = :rt");
            }
            None => remove.push("refresh_token"),
        }
        self.db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(user_id, vendor)))
            .update_expression(format!(
                "SET {} REMOVE {}",
                set.join(", "),
                remove.join(", ")
            ))
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|e| Error::storage("UpdateItem connection", sdk(e)))?;
        Ok(())
    }

    pub async fn get(&self, user_id: &str, vendor: Vendor) -> Result<Option<Connection>> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(user_id, vendor)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::storage("GetItem connection", sdk(e)))?;
        out.item.as_ref().map(Self::from_item).transpose()
    }

    pub async fn list(&self, user_id: &str) -> Result<Vec<Connection>> {
        let query = self
            .db
            .query()
            .table_name(&self.table)
            .key_condition_expression("user_id = :u")
            .expression_attribute_values(":u", s(user_id))
            .consistent_read(true);
        Self::every_page(query, "Query connections").await
    }

    /// The connections of every page of `query`.
    async fn every_page(
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        op: &str,
    ) -> Result<Vec<Connection>> {
        let items = query
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| Error::storage(op, sdk(e)))?;
        items.iter().map(Self::from_item).collect()
    }

    /// The connection a vendor's user id belongs to (webhooks name vendor ids).
    pub async fn find_by_vendor_user(
        &self,
        vendor: Vendor,
        vendor_user_id: &str,
    ) -> Result<Option<Connection>> {
        let page = self
            .db
            .query()
            .table_name(&self.table)
            .index_name(Self::VENDOR_USER_INDEX)
            .key_condition_expression("vendor_user_key = :k")
            .expression_attribute_values(":k", s(vendor_user_key(vendor, vendor_user_id)))
            .send()
            .await
            .map_err(|e| Error::storage("Query by-vendor-user", sdk(e)))?;
        page.items().first().map(Self::from_item).transpose()
    }

    /// Replaces the tokens only if nobody else did since `expected_version`
    /// was read. Returns false when another writer won.
    pub async fn replace_tokens(
        &self,
        conn: &Connection,
        expected_version: u64,
        tokens: &SealedTokens,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let mut values = HashMap::from([
            (":v".to_string(), n(expected_version)),
            (":nv".to_string(), n(expected_version + 1)),
            (":at".to_string(), s(&tokens.access)),
            (":st".to_string(), s(ConnectionStatus::Connected.as_str())),
            (
                ":sh".to_string(),
                s(schedule_shard(&conn.user_id, conn.vendor)),
            ),
        ]);
        let mut set = vec![
            "token_version = :nv",
            "access_token = :at",
            "#s = :st",
            "sched_shard = :sh",
        ];
        let mut remove = vec!["last_error", "refresh_lease_owner", "refresh_lease_until"];
        if let Some(r) = &tokens.refresh {
            values.insert(":rt".into(), s(r));
            set.push("refresh_token = :rt");
        }
        match expires_at {
            Some(t) => {
                values.insert(":ex".into(), n(t.timestamp()));
                set.push("expires_at = :ex");
            }
            None => remove.push("expires_at"),
        }
        let res = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&conn.user_id, conn.vendor)))
            .update_expression(format!(
                "SET {} REMOVE {}",
                set.join(", "),
                remove.join(", ")
            ))
            .condition_expression("token_version = :v")
            .expression_attribute_names("#s", "status")
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        Ok(conditional(res, "UpdateItem tokens")?.is_some())
    }

    /// Takes the refresh lease of a connection at `version`: only one
    /// refresher at a time may spend a (single-use) refresh token. Fails if
    /// the tokens changed or an unexpired lease is held by someone else.
    pub async fn take_refresh_lease(
        &self,
        conn: &Connection,
        version: u64,
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let res = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&conn.user_id, conn.vendor)))
            .update_expression("SET refresh_lease_owner = :o, refresh_lease_until = :u")
            .condition_expression(
                "token_version = :v AND (attribute_not_exists(refresh_lease_until) OR refresh_lease_until < :now)",
            )
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":u", n(until.timestamp()))
            .expression_attribute_values(":v", n(version))
            .expression_attribute_values(":now", n(Utc::now().timestamp()))
            .send()
            .await;
        Ok(conditional(res, "UpdateItem refresh lease")?.is_some())
    }

    /// Gives the lease back (only if `owner` still holds it).
    pub async fn release_refresh_lease(&self, conn: &Connection, owner: &str) -> Result<()> {
        let res = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&conn.user_id, conn.vendor)))
            .update_expression("REMOVE refresh_lease_owner, refresh_lease_until")
            .condition_expression("refresh_lease_owner = :o")
            .expression_attribute_values(":o", s(owner))
            .send()
            .await;
        conditional(res, "UpdateItem refresh lease").map(|_| ())
    }

    /// Sets status and last error (None clears it) of an existing connection.
    pub async fn set_status(
        &self,
        user_id: &str,
        vendor: Vendor,
        status: ConnectionStatus,
        error: Option<&str>,
    ) -> Result<()> {
        let mut req = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(user_id, vendor)))
            .condition_expression("attribute_exists(user_id)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":st", s(status.as_str()));
        // Only connected connections are on the schedule indexes.
        let (mut set, mut remove) = (vec!["#s = :st"], vec![]);
        if status == ConnectionStatus::Connected {
            set.push("sched_shard = :sh");
            req = req.expression_attribute_values(":sh", s(schedule_shard(user_id, vendor)));
        } else {
            remove.push("sched_shard");
        }
        match error {
            Some(e) => {
                set.push("last_error = :e");
                req = req.expression_attribute_values(":e", s(e));
            }
            None => remove.push("last_error"),
        }
        let remove = match remove.is_empty() {
            true => String::new(),
            false => format!(" REMOVE {}", remove.join(", ")),
        };
        req = req.update_expression(format!("SET {}{remove}", set.join(", ")));
        conditional(req.send().await, "UpdateItem status").map(|_| ())
    }

    pub async fn mark_synced(
        &self,
        user_id: &str,
        vendor: Vendor,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let res = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(user_id, vendor)))
            .condition_expression("attribute_exists(user_id)")
            .update_expression("SET last_sync_at = :t, quiet_since = :t REMOVE last_error")
            .expression_attribute_values(":t", n(at.timestamp()))
            .send()
            .await;
        conditional(res, "UpdateItem last_sync_at").map(|_| ())
    }

    pub async fn delete(&self, user_id: &str, vendor: Vendor) -> Result<bool> {
        let out = self
            .db
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(user_id, vendor)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| Error::storage("DeleteItem connection", sdk(e)))?;
        Ok(out.attributes.is_some())
    }

    /// Connected connections quiet since before `before`: not synced since
    /// (or, never synced, connected before it).
    pub async fn stale_since(&self, before: DateTime<Utc>) -> Result<Vec<Connection>> {
        self.scheduled_before(Self::QUIET_INDEX, "quiet_since", before)
            .await
    }

    /// Connected connections whose access token expires before `before`.
    pub async fn expiring_before(&self, before: DateTime<Utc>) -> Result<Vec<Connection>> {
        self.scheduled_before(Self::EXPIRY_INDEX, "expires_at", before)
            .await
    }

    /// Connected connections whose `attribute` is before `before`, read from
    /// the sparse schedule `index` shard by shard: the tick's cost follows
    /// the connections due, not the table's size.
    async fn scheduled_before(
        &self,
        index: &str,
        attribute: &str,
        before: DateTime<Utc>,
    ) -> Result<Vec<Connection>> {
        let mut out = Vec::new();
        for shard in 0..SCHEDULE_SHARDS {
            let query = self
                .db
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("sched_shard = :sh AND #a < :b")
                // The index is eventually consistent: skip a connection whose
                // status changed a moment ago.
                .filter_expression("#s = :st")
                .expression_attribute_names("#a", attribute)
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":sh", s(shard.to_string()))
                .expression_attribute_values(":b", n(before.timestamp()))
                .expression_attribute_values(":st", s(ConnectionStatus::Connected.as_str()));
            out.extend(Self::every_page(query, &format!("Query {index}")).await?);
        }
        Ok(out)
    }

    /// Puts connected connections written without the schedule attributes
    /// (by a version before the schedule indexes) on them; returns how many.
    /// A full scan: the token-refresher runs it once a day, not per tick.
    pub async fn schedule_unscheduled(&self) -> Result<usize> {
        let mut fixed = 0;
        let mut start = None;
        loop {
            let page = self
                .db
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "#s = :st AND (attribute_not_exists(sched_shard) OR attribute_not_exists(quiet_since))",
                )
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":st", s(ConnectionStatus::Connected.as_str()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| Error::storage("Scan connections", sdk(e)))?;
            for item in page.items() {
                let conn = Self::from_item(item)?;
                let quiet = conn.last_sync_at.unwrap_or(conn.connected_at);
                let res = self
                    .db
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(&conn.user_id, conn.vendor)))
                    .update_expression(
                        "SET sched_shard = :sh, quiet_since = if_not_exists(quiet_since, :q)",
                    )
                    .condition_expression("#s = :st")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":st", s(ConnectionStatus::Connected.as_str()))
                    .expression_attribute_values(
                        ":sh",
                        s(schedule_shard(&conn.user_id, conn.vendor)),
                    )
                    .expression_attribute_values(":q", n(quiet.timestamp()))
                    .send()
                    .await;
                if conditional(res, "UpdateItem schedule")?.is_some() {
                    fixed += 1;
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(fixed);
            }
        }
    }
}

#[derive(Clone)]
pub struct HealthStore {
    pub(crate) db: Client,
    pub(crate) table: String,
}

/// Raw vendor records larger than this keep only their size.
pub const MAX_RAW_BYTES: usize = 32 * 1024;

fn raw_key(vendor: Vendor, r: &RawRecord) -> String {
    format!("raw#{}#{}#{}", vendor.as_str(), r.kind, r.id)
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

impl HealthStore {
    pub fn new(db: Client, table: String) -> Self {
        Self { db, table }
    }

    /// Writes samples by natural key (user, metric, time, source): writing
    /// the same sample again overwrites it.
    pub async fn put_samples(&self, user_id: &str, samples: &[Sample]) -> Result<()> {
        let mut by_key: HashMap<String, &Sample> = HashMap::new();
        for sample in samples {
            by_key.insert(sample.sort_key(), sample);
        }
        let requests: Vec<WriteRequest> = by_key
            .into_iter()
            .map(|(sk, smp)| {
                let mut item = HashMap::from([
                    ("user_id".to_string(), s(user_id)),
                    ("sk".to_string(), s(sk)),
                    ("metric".to_string(), s(smp.metric.as_str())),
                    (
                        "date".to_string(),
                        s(smp.date.format("%Y-%m-%d").to_string()),
                    ),
                    ("value".to_string(), n(smp.value)),
                    ("source".to_string(), s(&smp.source)),
                ]);
                if let Some(t) = smp.time {
                    item.insert("time".into(), n(t.timestamp()));
                }
                if let Some(l) = &smp.label {
                    item.insert("label".into(), s(l));
                }
                put_request(item)
            })
            .collect();
        self.batch_write(requests).await
    }

    /// Keeps vendor records as received, by (source, kind, id): a record
    /// fetched again overwrites itself. Bodies over MAX_RAW_BYTES are not
    /// kept, only their size, so one huge record cannot fill the table.
    pub async fn put_raw(&self, user_id: &str, vendor: Vendor, raw: &[RawRecord]) -> Result<()> {
        let mut by_key: HashMap<String, &RawRecord> = HashMap::new();
        for r in raw {
            by_key.insert(raw_key(vendor, r), r);
        }
        let now = Utc::now().timestamp();
        let requests = by_key
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
            .collect();
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
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            for attempt in 0..8u32 {
                let out = self
                    .db
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| Error::storage("BatchWriteItem", sdk(e)))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt == 7 {
                    return Err(Error::Storage(format!(
                        "{} writes stayed unprocessed",
                        pending.len()
                    )));
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
        }
        Ok(())
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

    /// Records the values of `summary` under their sources.
    pub async fn upsert_summary(&self, user_id: &str, summary: &DailySummary) -> Result<()> {
        let u = self.summary_update(user_id, summary);
        self.db
            .update_item()
            .table_name(u.table_name())
            .set_key(Some(u.key().clone()))
            .update_expression(u.update_expression())
            .set_expression_attribute_names(u.expression_attribute_names().cloned())
            .set_expression_attribute_values(u.expression_attribute_values().cloned())
            .send()
            .await
            .map_err(|e| Error::storage("UpdateItem summary", sdk(e)))?;
        Ok(())
    }

    /// One page of a user's items with `lo <= sk <= hi`.
    async fn query_page(
        &self,
        user_id: &str,
        (lo, hi): (&str, &str),
        start: Option<Item>,
        limit: Option<i32>,
    ) -> Result<aws_sdk_dynamodb::operation::query::QueryOutput> {
        self.db
            .query()
            .table_name(&self.table)
            .key_condition_expression("user_id = :u AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":u", s(user_id))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi))
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
            .map(|item| {
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
            })
            .filter(|s| !matches!(s, Ok(x) if x.date < from || x.date > to))
            .collect::<Result<Vec<_>>>()?;
        let next = page
            .last_evaluated_key
            .as_ref()
            .and_then(|k| get_s(k, "sk"))
            .map(String::from);
        Ok((samples, next))
    }

    /// Deletes every health item of a user; returns how many.
    pub async fn delete_user(&self, user_id: &str) -> Result<usize> {
        // Every sort key starts with a lowercase word ("day#", "push#", "sample#").
        let items = self.query_range(user_id, "a".into(), "~".into()).await?;
        let requests: Vec<WriteRequest> = items
            .iter()
            .filter_map(|item| {
                let key = HashMap::from([
                    ("user_id".to_string(), item.get("user_id")?.clone()),
                    ("sk".to_string(), item.get("sk")?.clone()),
                ]);
                Some(
                    WriteRequest::builder()
                        .delete_request(DeleteRequest::builder().set_key(Some(key)).build().ok()?)
                        .build(),
                )
            })
            .collect();
        let count = requests.len();
        self.batch_write(requests).await?;
        Ok(count)
    }
}

/// The attribute that names whose an ephemeral item is (user id, or a Mock
/// vendor user id), indexed so that deleting a user finds every item.
pub const OWNER: &str = "owner";

/// Short-lived items with a TTL: single-use OAuth state and dedup keys.
#[derive(Clone)]
pub struct EphemeralStore {
    pub(crate) db: Client,
    pub(crate) table: String,
}

impl EphemeralStore {
    pub const OWNER_INDEX: &'static str = "by-owner";

    pub fn new(db: Client, table: String) -> Self {
        Self { db, table }
    }

    /// Stores `attrs` under `pk` until `expires_at`, replacing any old item.
    pub async fn put(
        &self,
        pk: &str,
        attrs: HashMap<String, String>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let mut item: Item = attrs.into_iter().map(|(k, v)| (k, s(v))).collect();
        item.insert("pk".into(), s(pk));
        item.insert("expires_at".into(), n(expires_at.timestamp()));
        self.db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| Error::storage("PutItem ephemeral", sdk(e)))?;
        Ok(())
    }

    /// The live item under `pk`, if any.
    pub async fn get(&self, pk: &str) -> Result<Option<HashMap<String, String>>> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::storage("GetItem ephemeral", sdk(e)))?;
        Ok(out
            .item
            .filter(|i| get_n::<i64>(i, "expires_at").is_some_and(|t| t > Utc::now().timestamp()))
            .map(Self::strings))
    }

    fn strings(item: Item) -> HashMap<String, String> {
        item.into_iter()
            .filter_map(|(k, v)| v.as_s().ok().map(|s| (k, s.clone())))
            .collect()
    }

    /// Removes and returns the item only if it exists and has not expired:
    /// exactly one caller can take it.
    pub async fn take(&self, pk: &str) -> Result<Option<HashMap<String, String>>> {
        let res = self
            .db
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .condition_expression("attribute_exists(pk) AND expires_at > :now")
            .expression_attribute_values(":now", n(Utc::now().timestamp()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        Ok(conditional(res, "DeleteItem ephemeral")?
            .and_then(|out| out.attributes.map(Self::strings)))
    }

    /// Claims `pk` until `expires_at`. True for the first claim; false when a
    /// live claim exists (an expired one may be claimed again).
    pub async fn claim(
        &self,
        pk: &str,
        expires_at: DateTime<Utc>,
        owner: Option<&str>,
    ) -> Result<bool> {
        let mut req = self
            .db
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("expires_at", n(expires_at.timestamp()))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(Utc::now().timestamp()));
        if let Some(o) = owner {
            req = req.item(OWNER, s(o));
        }
        Ok(conditional(req.send().await, "PutItem claim")?.is_some())
    }

    /// Deletes every live or expired item that names `owner` (through the
    /// by-owner index); returns how many.
    pub async fn delete_owned(&self, owner: &str) -> Result<usize> {
        let mut count = 0;
        loop {
            let page = self
                .db
                .query()
                .table_name(&self.table)
                .index_name(Self::OWNER_INDEX)
                .key_condition_expression("#o = :o")
                .expression_attribute_names("#o", OWNER)
                .expression_attribute_values(":o", s(owner))
                .send()
                .await
                .map_err(|e| Error::storage("Query by-owner", sdk(e)))?;
            let pks: Vec<String> = page
                .items()
                .iter()
                .filter_map(|i| get_s(i, "pk").map(String::from))
                .collect();
            if pks.is_empty() {
                return Ok(count);
            }
            for pk in pks {
                self.delete(&pk).await?;
                count += 1;
            }
        }
    }

    pub async fn delete(&self, pk: &str) -> Result<()> {
        self.db
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .send()
            .await
            .map_err(|e| Error::storage("DeleteItem ephemeral", sdk(e)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_shards_are_stable_in_range_and_spread() {
        let shard = |i: usize| schedule_shard(&format!("user-{i}"), Vendor::Whoop);
        assert_eq!(shard(7), shard(7));
        let used: std::collections::HashSet<String> = (0..200).map(shard).collect();
        assert!(used
            .iter()
            .all(|s| s.parse::<u8>().is_ok_and(|n| n < SCHEDULE_SHARDS)));
        assert_eq!(
            used.len(),
            usize::from(SCHEDULE_SHARDS),
            "200 keys use every shard"
        );
        assert_ne!(
            schedule_shard("u", Vendor::Whoop),
            schedule_shard("u", Vendor::Oura),
            "a user's vendors spread too (for this key)"
        );
    }

    #[test]
    fn a_corrupt_connection_item_is_not_reported_as_an_outage() {
        let mut item = ConnectionStore::key("u", Vendor::Whoop);
        item.insert("status".into(), s("no-such-status"));
        item.insert("connected_at".into(), n(1_700_000_000));
        let err = ConnectionStore::from_item(&item).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
        assert_eq!(err.status(), 500, "a 503 would tell the client to retry");
        assert!(!err.public_detail().contains("retry"));
    }
}
