//! The Connections table: one item per (user, vendor) with its status and
//! sealed tokens, indexed by the vendor's user id and, for connected
//! connections only, by token expiry and quiet time (the schedule indexes).

use super::item::{conditional, get_n, get_s, get_time, n, s, Item};
use crate::aws::client::SdkClient;
use crate::aws::sdk;
use crate::domain::connection::{
    Backfill, BackfillState, Connection, ConnectionStatus, SealedTokens,
};
use crate::domain::error::{Error, Result};
use crate::domain::vendor::Vendor;
use aws_sdk_dynamodb::types::ReturnValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

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

/// The Connections table.
#[derive(Clone)]
pub struct ConnectionStore {
    db: SdkClient<Client>,
    table: String,
}

impl ConnectionStore {
    /// The index by `vendor#vendor_user_id`, for webhooks that name the vendor's user.
    pub const VENDOR_USER_INDEX: &'static str = "by-vendor-user";
    /// Connected connections by access-token expiry (sparse: only connected
    /// items carry `sched_shard`).
    pub const EXPIRY_INDEX: &'static str = "by-expiry";
    /// Connected connections by `quiet_since`: their last sync, or when they
    /// were connected if they never synced.
    pub const QUIET_INDEX: &'static str = "by-quiet";

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
            backfill: Self::backfill_of(item),
        })
    }

    /// The backfill attributes: `bf_state`, `bf_asked`, `bf_days` (the set
    /// of days pulled, so a part pulled twice counts once), `bf_reason`.
    fn backfill_of(item: &Item) -> Option<Backfill> {
        let state = get_s(item, "bf_state").and_then(BackfillState::parse)?;
        let days_done = item
            .get("bf_days")
            .and_then(|v| v.as_ss().ok())
            .map_or(0, |days| days.len() as u32);
        Some(Backfill {
            state,
            days_asked: get_n(item, "bf_asked").unwrap_or(0),
            days_done,
            reason: get_s(item, "bf_reason").map(String::from),
        })
    }

    /// Stores a new or renewed connection, its backfill of `backfill_days`
    /// queued; bumps the token version so that any refresh in flight for
    /// the old grant loses its conditional write.
    #[allow(clippy::too_many_arguments)]
    pub async fn connect(
        &self,
        user_id: &str,
        vendor: Vendor,
        vendor_user_id: &str,
        scopes: &[String],
        expires_at: Option<DateTime<Utc>>,
        tokens: &SealedTokens,
        backfill_days: u32,
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
            (":bq".to_string(), s(BackfillState::Queued.as_str())),
            (":ba".to_string(), n(backfill_days)),
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
            "bf_state = :bq",
            "bf_asked = :ba",
        ];
        let mut remove = vec!["last_error", "bf_days", "bf_reason"];
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

    /// The connection of (`user_id`, `vendor`), if any; a consistent read.
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

    /// Every connection of `user_id`; consistent reads.
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

    /// Records a sync at `at` (clearing the connection's last error) and,
    /// for a backfill, the days it pulled (`bf_days`, a set: a day pulled
    /// twice counts once), in one write; the connection as it is now, or
    /// None when it is gone.
    pub async fn mark_synced(
        &self,
        user_id: &str,
        vendor: Vendor,
        at: DateTime<Utc>,
        pulled: &[chrono::NaiveDate],
    ) -> Result<Option<Connection>> {
        let mut req = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(user_id, vendor)))
            .condition_expression("attribute_exists(user_id)")
            .expression_attribute_values(":t", n(at.timestamp()))
            .return_values(ReturnValue::AllNew);
        req = if pulled.is_empty() {
            req.update_expression("SET last_sync_at = :t, quiet_since = :t REMOVE last_error")
        } else {
            let days = pulled.iter().map(|d| d.to_string()).collect();
            req.update_expression(
                "SET last_sync_at = :t, quiet_since = :t ADD bf_days :d REMOVE last_error",
            )
            .expression_attribute_values(":d", aws_sdk_dynamodb::types::AttributeValue::Ss(days))
        };
        match conditional(req.send().await, "UpdateItem last_sync_at")? {
            Some(out) => out.attributes.as_ref().map(Self::from_item).transpose(),
            None => Ok(None),
        }
    }

    /// Marks the backfill running, when it is still queued.
    pub async fn backfill_started(&self, user_id: &str, vendor: Vendor) -> Result<()> {
        let res = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(user_id, vendor)))
            .condition_expression("bf_state = :q")
            .update_expression("SET bf_state = :r")
            .expression_attribute_values(":q", s(BackfillState::Queued.as_str()))
            .expression_attribute_values(":r", s(BackfillState::Running.as_str()))
            .send()
            .await;
        conditional(res, "UpdateItem backfill state").map(|_| ())
    }

    /// Ends the backfill as `state` (done, or failed for `reason`) unless
    /// it has ended already; the connection as it is now when this call
    /// ended it.
    pub async fn backfill_ended(
        &self,
        user_id: &str,
        vendor: Vendor,
        state: BackfillState,
        reason: Option<&str>,
    ) -> Result<Option<Connection>> {
        let mut req = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(user_id, vendor)))
            .condition_expression("bf_state IN (:q, :r)")
            .expression_attribute_values(":q", s(BackfillState::Queued.as_str()))
            .expression_attribute_values(":r", s(BackfillState::Running.as_str()))
            .expression_attribute_values(":st", s(state.as_str()))
            .return_values(ReturnValue::AllNew);
        req = match reason {
            Some(why) => req
                .update_expression("SET bf_state = :st, bf_reason = :why")
                .expression_attribute_values(":why", s(why)),
            None => req.update_expression("SET bf_state = :st"),
        };
        match conditional(req.send().await, "UpdateItem backfill end")? {
            Some(out) => out.attributes.as_ref().map(Self::from_item).transpose(),
            None => Ok(None),
        }
    }

    /// Deletes the connection; true when there was one.
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
