//! The Ephemeral table: short-lived items with a TTL (single-use OAuth
//! state, webhook dedup keys, job done-markers, fleet-wide claims), each
//! naming its owner so deleting a user finds them.

use super::item::{conditional, get_n, get_s, n, s, Item};
use crate::aws::client::SdkClient;
use crate::aws::sdk;
use crate::domain::connection::{ConsentFlow, ParkedConnect, PendingConnect, SealedTokens};
use crate::domain::erasure::{ErasureRecord, ErasureStatus};
use crate::domain::error::{Error, Result};
use crate::domain::job::JobReason;
use crate::domain::vendor::Vendor;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;

/// The attribute that names whose an ephemeral item is (user id, or a Mock
/// vendor user id), indexed so that deleting a user finds every item.
pub const OWNER: &str = "owner";

/// Short-lived items with a TTL: single-use OAuth state and dedup keys.
#[derive(Clone)]
pub struct EphemeralStore {
    pub(crate) db: SdkClient<Client>,
    pub(crate) table: String,
}

impl EphemeralStore {
    /// The index by `owner`, through which a user's items are deleted.
    pub const OWNER_INDEX: &'static str = "by-owner";

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

    /// Stores `attrs` under `pk` until `expires_at`, replacing any old item.
    async fn put(
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
        Ok(self.live_item(pk).await?.map(Self::strings))
    }

    /// The item under `pk` with all its attributes, if it has not expired.
    async fn live_item(&self, pk: &str) -> Result<Option<Item>> {
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
            .filter(|i| get_n::<i64>(i, "expires_at").is_some_and(|t| t > Utc::now().timestamp())))
    }

    fn strings(item: Item) -> HashMap<String, String> {
        item.into_iter()
            .filter_map(|(k, v)| v.as_s().ok().map(|s| (k, s.clone())))
            .collect()
    }

    /// Removes and returns the item only if it exists and has not expired:
    /// exactly one caller can take it.
    async fn take(&self, pk: &str) -> Result<Option<HashMap<String, String>>> {
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

    /// Deletes the item under `pk`, if there is one.
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

    /// Takes one token from `key`'s bucket: Ok(Ok(())) when granted, Ok(Err(s))
    /// when empty, with the seconds until a token is back.
    pub async fn take_token(
        &self,
        key: &str,
        owner: &str,
        bucket: Bucket,
    ) -> Result<Result<(), u64>> {
        Ok(self.take_tokens(key, owner, bucket, 1).await?.map(|_| ()))
    }

    /// Takes up to `want` tokens from `key`'s bucket, as many as it holds:
    /// Ok(Ok(n)) with n ≥ 1 taken, Ok(Err(s)) when empty, with the seconds
    /// until a token is back.
    pub async fn take_tokens(
        &self,
        key: &str,
        owner: &str,
        bucket: Bucket,
        want: u32,
    ) -> Result<Result<u32, u64>> {
        let pk = format!("ratelimit#{key}");
        for _ in 0..8 {
            let now_ms = Utc::now().timestamp_millis();
            let item = self
                .db
                .get_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(pk.clone()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| Error::storage("GetItem rate limit", sdk(e)))?
                .item;
            let num = |k: &str| {
                item.as_ref()
                    .and_then(|i| i.get(k))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<f64>().ok())
            };
            let (tokens, updated) = match (num("tokens"), num("updated_ms")) {
                (Some(t), Some(u)) => (t, u as i64),
                _ => (bucket.capacity, now_ms),
            };
            let elapsed = (now_ms - updated).max(0) as f64 / 1000.0;
            let available = (tokens + elapsed * bucket.refill_per_sec).min(bucket.capacity);
            if available < 1.0 {
                let wait = ((1.0 - available) / bucket.refill_per_sec).ceil().max(1.0);
                return Ok(Err(wait as u64));
            }
            let taken = (available.floor() as u32).clamp(1, want.max(1));
            let idle_secs = (bucket.capacity / bucket.refill_per_sec).ceil() as i64 + 60;
            let mut put = self
                .db
                .put_item()
                .table_name(&self.table)
                .item("pk", AttributeValue::S(pk.clone()))
                .item(
                    "tokens",
                    AttributeValue::N((available - f64::from(taken)).to_string()),
                )
                .item("updated_ms", AttributeValue::N(now_ms.to_string()))
                .item(OWNER, AttributeValue::S(owner.into()))
                .item(
                    "expires_at",
                    AttributeValue::N((now_ms / 1000 + idle_secs).to_string()),
                );
            put = match item.as_ref().and_then(|i| i.get("updated_ms")).cloned() {
                Some(old) => put
                    .condition_expression("updated_ms = :old")
                    .expression_attribute_values(":old", old),
                None => put.condition_expression("attribute_not_exists(pk)"),
            };
            // Refused: another taker moved the bucket since the read.
            if conditional(put.send().await, "PutItem rate limit")?.is_some() {
                return Ok(Ok(taken));
            }
        }
        Err(Error::Storage("rate limiter contention".into()))
    }

    /// Puts `count` tokens taken from `key`'s bucket and not used back (the
    /// bucket's capacity still caps what a taker sees).
    pub async fn give_back_tokens(&self, key: &str, count: u32) -> Result<()> {
        self.db
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("ratelimit#{key}")))
            .update_expression("SET tokens = tokens + :n")
            .condition_expression("attribute_exists(tokens)")
            .expression_attribute_values(":n", n(i64::from(count)))
            .send()
            .await
            .map_err(|e| Error::storage("UpdateItem rate limit", sdk(e)))?;
        Ok(())
    }
}

/// Live sync jobs waiting in the queue: at most one per (user, vendor),
/// with every day the requests it absorbed named (a string set, so that
/// absorbing is one atomic `ADD`).
impl EphemeralStore {
    /// Adds `days` to the job waiting for (`user`, `vendor`): that job's id,
    /// or None when none is waiting.
    pub async fn merge_into_waiting_job(
        &self,
        user: &str,
        vendor: Vendor,
        days: &[NaiveDate],
    ) -> Result<Option<String>> {
        let res = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("pk", s(waiting_job_key(user, vendor)))
            .update_expression("ADD days :d")
            .condition_expression("attribute_exists(pk) AND expires_at > :now")
            .expression_attribute_values(":d", day_set(days))
            .expression_attribute_values(":now", n(Utc::now().timestamp()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        Ok(conditional(res, "UpdateItem waiting job")?.map(|out| {
            out.attributes
                .as_ref()
                .and_then(|a| get_s(a, "job_id"))
                .unwrap_or_default()
                .to_string()
        }))
    }

    /// Records `job_id` as the job waiting for (`user`, `vendor`) with
    /// `days`, until `expires_at`; false when another one is waiting.
    pub async fn put_waiting_job(
        &self,
        user: &str,
        vendor: Vendor,
        job_id: &str,
        days: &[NaiveDate],
        expires_at: DateTime<Utc>,
    ) -> Result<bool> {
        let res = self
            .db
            .put_item()
            .table_name(&self.table)
            .item("pk", s(waiting_job_key(user, vendor)))
            .item("job_id", s(job_id))
            .item("days", day_set(days))
            .item(OWNER, s(user))
            .item("expires_at", n(expires_at.timestamp()))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(Utc::now().timestamp()))
            .send()
            .await;
        Ok(conditional(res, "PutItem waiting job")?.is_some())
    }

    /// Takes the days of job `job_id` when it is the one waiting for
    /// (`user`, `vendor`); None when it is not (any more).
    pub async fn take_waiting_job(
        &self,
        user: &str,
        vendor: Vendor,
        job_id: &str,
    ) -> Result<Option<Vec<NaiveDate>>> {
        let res = self
            .db
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(waiting_job_key(user, vendor)))
            .condition_expression("job_id = :id")
            .expression_attribute_values(":id", s(job_id))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let Some(out) = conditional(res, "DeleteItem waiting job")? else {
            return Ok(None);
        };
        let days = out
            .attributes
            .as_ref()
            .and_then(|a| a.get("days"))
            .and_then(|d| d.as_ss().ok())
            .map(|d| d.iter().filter_map(|day| day.parse().ok()).collect())
            .unwrap_or_default();
        Ok(Some(days))
    }
}

/// When a user's next pull of one kind (`reason`: a webhook-driven pull at
/// a vendor whose webhooks anyone could forge, or a manual sync) at a
/// vendor may start.
impl EphemeralStore {
    /// Records that a pull of `user` at `vendor` started; the next may start at `until`.
    pub async fn mark_pulled(
        &self,
        user: &str,
        vendor: Vendor,
        reason: JobReason,
        until: DateTime<Utc>,
    ) -> Result<()> {
        let attrs = HashMap::from([(OWNER.to_string(), user.to_string())]);
        self.put(&pull_gap_key(user, vendor, reason), attrs, until)
            .await
    }

    /// Seconds until the next pull of `user` at `vendor` may start (0: now).
    pub async fn pull_gap_left(
        &self,
        user: &str,
        vendor: Vendor,
        reason: JobReason,
    ) -> Result<u64> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pull_gap_key(user, vendor, reason)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::storage("GetItem pull gap", sdk(e)))?;
        let until = out
            .item()
            .and_then(|i| get_n::<i64>(i, "expires_at"))
            .unwrap_or(0);
        Ok(u64::try_from(until - Utc::now().timestamp()).unwrap_or(0))
    }
}

fn pull_gap_key(user: &str, vendor: Vendor, reason: JobReason) -> String {
    match reason {
        JobReason::Manual => format!("manualgap#{}#{user}", vendor.as_str()),
        _ => format!("pullgap#{}#{user}", vendor.as_str()),
    }
}

/// Refreshed tokens that could not be stored on their connection: kept
/// sealed until the next refresh of that connection puts them in place.
impl EphemeralStore {
    /// Keeps `tokens` (sealed) for `user`'s connection to `vendor`.
    pub async fn keep_refreshed_tokens(
        &self,
        user: &str,
        vendor: Vendor,
        tokens: &SealedTokens,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let mut attrs = HashMap::from([
            (OWNER.to_string(), user.to_string()),
            ("access_token".to_string(), tokens.access.clone()),
        ]);
        if let Some(r) = &tokens.refresh {
            attrs.insert("refresh_token".into(), r.clone());
        }
        if let Some(t) = expires_at {
            attrs.insert("token_expires_at".into(), t.timestamp().to_string());
        }
        let keep_until = Utc::now() + chrono::Duration::days(30);
        self.put(&kept_tokens_key(user, vendor), attrs, keep_until)
            .await
    }

    /// Takes the refreshed tokens kept for `user`'s connection to `vendor`, if any.
    pub async fn take_refreshed_tokens(
        &self,
        user: &str,
        vendor: Vendor,
    ) -> Result<Option<(SealedTokens, Option<DateTime<Utc>>)>> {
        let Some(mut item) = self.take(&kept_tokens_key(user, vendor)).await? else {
            return Ok(None);
        };
        let access = item
            .remove("access_token")
            .ok_or_else(|| Error::Corrupt("kept tokens lack access_token".into()))?;
        let expires_at = item
            .remove("token_expires_at")
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(|t| DateTime::from_timestamp(t, 0));
        Ok(Some((
            SealedTokens {
                access,
                refresh: item.remove("refresh_token"),
            },
            expires_at,
        )))
    }
}

fn kept_tokens_key(user: &str, vendor: Vendor) -> String {
    format!("kepttokens#{}#{user}", vendor.as_str())
}

/// Which app user each vendor account is connected to: one item per vendor
/// account, so that one account never joins two app users.
impl EphemeralStore {
    /// Claims the `vendor` account `vendor_user_id` for `user`: None when it
    /// is theirs now, else the app user who holds it.
    pub async fn claim_vendor_account(
        &self,
        vendor: Vendor,
        vendor_user_id: &str,
        user: &str,
    ) -> Result<Option<String>> {
        let key = vendor_account_key(vendor, vendor_user_id);
        let res = self
            .db
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&key))
            .item(OWNER, s(user))
            .item("expires_at", n(KEPT_FOR_GOOD))
            .condition_expression("attribute_not_exists(pk) OR #o = :u")
            .expression_attribute_names("#o", OWNER)
            .expression_attribute_values(":u", s(user))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        match res {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(c)) => Ok(Some(
                    c.item
                        .as_ref()
                        .and_then(|i| get_s(i, OWNER))
                        .unwrap_or_default()
                        .to_string(),
                )),
                _ => Err(Error::storage("PutItem vendor account", sdk(e))),
            },
        }
    }

    /// Hands the `vendor` account `vendor_user_id` to `user`, whoever held it
    /// (the holder's connection is gone).
    pub async fn take_over_vendor_account(
        &self,
        vendor: Vendor,
        vendor_user_id: &str,
        user: &str,
    ) -> Result<()> {
        let attrs = HashMap::from([(OWNER.to_string(), user.to_string())]);
        let forever = DateTime::from_timestamp(KEPT_FOR_GOOD, 0).unwrap_or_default();
        self.put(&vendor_account_key(vendor, vendor_user_id), attrs, forever)
            .await
    }

    /// Releases `user`'s hold on the `vendor` account `vendor_user_id`.
    pub async fn release_vendor_account(
        &self,
        vendor: Vendor,
        vendor_user_id: &str,
        user: &str,
    ) -> Result<()> {
        let res = self
            .db
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(vendor_account_key(vendor, vendor_user_id)))
            .condition_expression("#o = :u")
            .expression_attribute_names("#o", OWNER)
            .expression_attribute_values(":u", s(user))
            .send()
            .await;
        conditional(res, "DeleteItem vendor account")?;
        Ok(())
    }
}

/// The TTL of an item kept until it is deleted: the last second of year 9999.
const KEPT_FOR_GOOD: i64 = 253_402_300_799;

fn vendor_account_key(vendor: Vendor, vendor_user_id: &str) -> String {
    format!("vendoraccount#{}#{vendor_user_id}", vendor.as_str())
}

fn waiting_job_key(user: &str, vendor: Vendor) -> String {
    format!("waiting#{}#{user}", vendor.as_str())
}

fn day_set(days: &[NaiveDate]) -> AttributeValue {
    let mut set: Vec<String> = days.iter().map(NaiveDate::to_string).collect();
    set.sort();
    set.dedup();
    AttributeValue::Ss(set)
}

/// Connects waiting for the browser: one item per state, under a digest of
/// the state (the state itself is a bearer value); and consents waiting for
/// the app's user, one item per completion id, under its digest.
impl EphemeralStore {
    /// Keeps `pending` under `state` until `expires_at`.
    pub async fn put_pending_connect(
        &self,
        state: &str,
        pending: &PendingConnect,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        self.put(
            &pending_connect_key(state),
            pending_item(pending),
            expires_at,
        )
        .await
    }

    /// Takes the connect waiting under `state`: exactly one caller gets it,
    /// within its TTL.
    pub async fn take_pending_connect(&self, state: &str) -> Result<Option<PendingConnect>> {
        match self.take(&pending_connect_key(state)).await? {
            Some(mut item) => Ok(Some(pending_from(&mut item)?)),
            None => Ok(None),
        }
    }

    /// Keeps `parked` under `completion` until `expires_at`.
    pub async fn put_parked_connect(
        &self,
        completion: &str,
        parked: &ParkedConnect,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let mut item = pending_item(&parked.pending);
        item.insert(CALLBACK.to_string(), parked.sealed_callback.clone());
        self.put(&parked_connect_key(completion), item, expires_at)
            .await
    }

    /// Takes the consent parked under `completion`: exactly one caller gets
    /// it, within its TTL.
    pub async fn take_parked_connect(&self, completion: &str) -> Result<Option<ParkedConnect>> {
        let Some(mut item) = self.take(&parked_connect_key(completion)).await? else {
            return Ok(None);
        };
        let sealed_callback = item
            .remove(CALLBACK)
            .ok_or_else(|| Error::Corrupt(format!("parked connect item lacks {CALLBACK}")))?;
        Ok(Some(ParkedConnect {
            pending: pending_from(&mut item)?,
            sealed_callback,
        }))
    }
}

fn pending_item(pending: &PendingConnect) -> HashMap<String, String> {
    let mut item = HashMap::from([
        ("user_id".to_string(), pending.user_id.clone()),
        (OWNER.to_string(), pending.user_id.clone()),
        ("vendor".to_string(), pending.vendor.as_str().to_string()),
        ("redirect_uri".to_string(), pending.redirect_uri.clone()),
        ("return_url".to_string(), pending.return_url.clone()),
    ]);
    match &pending.flow {
        ConsentFlow::Hosted => {
            item.insert(FLOW.to_string(), "hosted".to_string());
        }
        ConsentFlow::Code { sealed_verifier } => {
            item.insert(FLOW.to_string(), "code".to_string());
            if let Some(v) = sealed_verifier {
                item.insert(PKCE_VERIFIER.to_string(), v.clone());
            }
        }
    }
    item
}

fn pending_from(item: &mut HashMap<String, String>) -> Result<PendingConnect> {
    let mut field = |k: &str| {
        item.remove(k)
            .ok_or_else(|| Error::Corrupt(format!("OAuth state item lacks {k}")))
    };
    Ok(PendingConnect {
        vendor: field("vendor")?
            .parse()
            .map_err(|_| Error::Corrupt("OAuth state item names no vendor".into()))?,
        user_id: field("user_id")?,
        redirect_uri: field("redirect_uri")?,
        return_url: field("return_url")?,
        flow: match (item.remove(PKCE_VERIFIER), item.remove(FLOW).as_deref()) {
            (Some(v), _) => ConsentFlow::Code {
                sealed_verifier: Some(v),
            },
            (None, Some("code")) => ConsentFlow::Code {
                sealed_verifier: None,
            },
            // Items written before the flow was kept: code flows all had a verifier.
            (None, _) => ConsentFlow::Hosted,
        },
    })
}

const CALLBACK: &str = "callback";
const PKCE_VERIFIER: &str = "pkce_verifier";
const FLOW: &str = "flow";

fn pending_connect_key(state: &str) -> String {
    format!("oauth#{}", digest(state))
}

fn parked_connect_key(completion: &str) -> String {
    format!("completion#{}", digest(completion))
}

fn digest(bearer: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bearer.as_bytes()))
}

/// The Mock vendor's side of its grants: the digests of the tokens it
/// issued, each owned by its Mock user (revoking deletes them all).
impl EphemeralStore {
    /// Records an issued pair: (access digest, expiry), (refresh digest, expiry).
    pub async fn record_mock_grant(
        &self,
        vendor_user_id: &str,
        access: (&str, DateTime<Utc>),
        refresh: (&str, DateTime<Utc>),
    ) -> Result<()> {
        let holder = |extra: Option<(&str, &str)>| {
            let mut item = HashMap::from([
                ("vendor_user_id".to_string(), vendor_user_id.to_string()),
                (OWNER.to_string(), vendor_user_id.to_string()),
            ]);
            if let Some((k, v)) = extra {
                item.insert(k.to_string(), v.to_string());
            }
            item
        };
        self.put(
            &format!("mockvendor#rt#{}", refresh.0),
            holder(None),
            refresh.1,
        )
        .await?;
        self.put(
            &format!("mockvendor#at#{}", access.0),
            holder(Some(("refresh_hash", refresh.0))),
            access.1,
        )
        .await
    }

    /// The Mock user a live access token (by digest) was issued to.
    pub async fn mock_access_holder(&self, access_digest: &str) -> Result<Option<String>> {
        Ok(self
            .get(&format!("mockvendor#at#{access_digest}"))
            .await?
            .and_then(|mut i| i.remove("vendor_user_id")))
    }

    /// Spends a refresh token (by digest): the Mock user it was issued to,
    /// for exactly one caller.
    pub async fn take_mock_refresh(&self, refresh_digest: &str) -> Result<Option<String>> {
        Ok(self
            .take(&format!("mockvendor#rt#{refresh_digest}"))
            .await?
            .and_then(|mut i| i.remove("vendor_user_id")))
    }
}

/// The vendors this deployment has credentials for, as the tick publishes
/// them for the functions that may not read the credentials secret
/// (providers).
impl EphemeralStore {
    /// Publishes `vendors` as the supported ones until `until`.
    pub async fn publish_supported(&self, vendors: &[Vendor], until: DateTime<Utc>) -> Result<()> {
        let list = vendors
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(",");
        self.put(
            SUPPORTED_VENDORS_KEY,
            HashMap::from([("vendors".to_string(), list)]),
            until,
        )
        .await
    }

    /// The supported vendors last published; None before the first tick
    /// (or once a publication expired).
    pub async fn published_supported(&self) -> Result<Option<Vec<Vendor>>> {
        Ok(self.get(SUPPORTED_VENDORS_KEY).await?.map(|item| {
            item.get("vendors")
                .map(|l| l.split(',').filter_map(|v| v.parse().ok()).collect())
                .unwrap_or_default()
        }))
    }
}

const SUPPORTED_VENDORS_KEY: &str = "vendors#supported";

/// Erasures: one record per deleted user under a digest of the user id
/// (no item left behind names the user) and with no owner (deleting the
/// user's items leaves it), kept for `ERASURE_RECORD_DAYS` after its last
/// step so the app can poll it.
impl EphemeralStore {
    /// Records that `user`'s erasure reached `status`, adding what this
    /// step deleted; creates the record on the first step.
    pub async fn advance_erasure(
        &self,
        user: &str,
        status: ErasureStatus,
        health_items: usize,
        ephemeral_items: usize,
    ) -> Result<()> {
        let now = Utc::now();
        let kept_until = now + chrono::Duration::days(ERASURE_RECORD_DAYS);
        self.db
            .update_item()
            .table_name(&self.table)
            .key("pk", s(erasure_key(user)))
            .update_expression(
                "SET #s = :s, updated_at = :t, started_at = if_not_exists(started_at, :t), \
                 expires_at = :e ADD health_items :h, ephemeral_items :x",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":s", s(status.as_str()))
            .expression_attribute_values(":t", s(now.to_rfc3339()))
            .expression_attribute_values(":e", n(kept_until.timestamp()))
            .expression_attribute_values(":h", n(health_items as i64))
            .expression_attribute_values(":x", n(ephemeral_items as i64))
            .send()
            .await
            .map_err(|e| Error::storage("UpdateItem erasure", sdk(e)))?;
        Ok(())
    }

    /// `user`'s erasure, if one was started in the last `ERASURE_RECORD_DAYS`.
    pub async fn erasure(&self, user: &str) -> Result<Option<ErasureRecord>> {
        let Some(item) = self.live_item(&erasure_key(user)).await? else {
            return Ok(None);
        };
        let bad = || Error::Corrupt("erasure record is malformed".into());
        Ok(Some(ErasureRecord {
            user_id: user.to_string(),
            status: get_s(&item, "status")
                .and_then(ErasureStatus::parse)
                .ok_or_else(bad)?,
            started_at: get_s(&item, "started_at").ok_or_else(bad)?.to_string(),
            updated_at: get_s(&item, "updated_at").ok_or_else(bad)?.to_string(),
            health_items: get_n(&item, "health_items").ok_or_else(bad)?,
            ephemeral_items: get_n(&item, "ephemeral_items").ok_or_else(bad)?,
        }))
    }
}

/// Days an erasure's record is kept after its last step.
pub const ERASURE_RECORD_DAYS: i64 = 30;

fn erasure_key(user: &str) -> String {
    format!("erasure#{}", digest(user))
}

/// Where a pacing schedule (one GCRA window of the fleet quota) stands:
/// one item per window whose `tat`, in microseconds, is the theoretical
/// arrival time of the next call.
impl EphemeralStore {
    /// Moves a running schedule on by `interval` if its `tat` is between
    /// `step.floor` (still running) and `limit` (not booked too far ahead).
    pub async fn advance_tat(
        &self,
        key: &str,
        interval: i64,
        limit: i64,
        step: TatStep<'_>,
    ) -> Result<TatMove> {
        let req = self
            .tat_update(key, &step)
            .update_expression(format!(
                "SET tat = tat + :tau, expires_at = :exp{}{}",
                step.owner_set(),
                step.live.mark("tat")
            ))
            .condition_expression(format!(
                "tat >= :floor AND tat <= :limit{}",
                step.live.condition()
            ))
            .expression_attribute_values(":tau", n(interval))
            .expression_attribute_values(":limit", n(limit))
            .return_values(ReturnValue::UpdatedOld);
        Self::tat_moved(req.send().await)
    }

    /// Restarts a stopped schedule (no `tat`, or one before `step.floor`) at `start`.
    pub async fn restart_tat(&self, key: &str, start: i64, step: TatStep<'_>) -> Result<TatMove> {
        let req = self
            .tat_update(key, &step)
            .update_expression(format!(
                "SET tat = :start, expires_at = :exp{}{}",
                step.owner_set(),
                step.live.mark(":start")
            ))
            .condition_expression(format!(
                "(attribute_not_exists(tat) OR tat < :floor){}",
                step.live.condition()
            ))
            .expression_attribute_values(":start", n(start));
        Self::tat_moved(req.send().await)
    }

    /// Gives the unused tail of a booking back: moves the schedule back by
    /// `tail` (µs) if it still ends at `end`, where the booking left it (no
    /// one booked since). A live booking's mark moves back with it.
    /// Ok(false) when someone booked after it: the tail stays unused.
    pub async fn return_tat_tail(
        &self,
        key: &str,
        tail: i64,
        end: i64,
        live: bool,
    ) -> Result<bool> {
        let (set, cond) = if live {
            (
                "SET tat = tat - :tail, live_until = live_until - :tail",
                "tat = :end AND attribute_exists(live_until)",
            )
        } else {
            ("SET tat = tat - :tail", "tat = :end")
        };
        let res = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .update_expression(set)
            .condition_expression(cond)
            .expression_attribute_values(":tail", n(tail))
            .expression_attribute_values(":end", n(end))
            .send()
            .await;
        Ok(conditional(res, "UpdateItem quota")?.is_some())
    }

    fn tat_update(
        &self,
        key: &str,
        step: &TatStep<'_>,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        let mut req = self
            .db
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .expression_attribute_values(":floor", n(step.floor))
            .expression_attribute_values(":exp", n(step.expires_at))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(owner) = step.owner {
            req = req
                .expression_attribute_names("#owner", OWNER)
                .expression_attribute_values(":owner", s(owner));
        }
        match step.live {
            LiveMark::Hold(hold) => req.expression_attribute_values(":hold", n(hold)),
            LiveMark::YieldTo(now) => req.expression_attribute_values(":now", n(now)),
        }
    }

    fn tat_moved(
        res: Result<
            aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
            aws_sdk_dynamodb::error::SdkError<
                aws_sdk_dynamodb::operation::update_item::UpdateItemError,
                aws_sdk_dynamodb::config::http::HttpResponse,
            >,
        >,
    ) -> Result<TatMove> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        let tat = |item: Option<&Item>| item.and_then(|i| get_n::<i64>(i, "tat"));
        match res {
            Ok(out) => Ok(TatMove::Moved {
                old: tat(out.attributes.as_ref()),
            }),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(c)) => Ok(TatMove::Refused {
                    current: tat(c.item.as_ref()),
                    live_until: c.item.as_ref().and_then(|i| get_n::<i64>(i, "live_until")),
                }),
                _ => Err(Error::storage("UpdateItem quota", sdk(e))),
            },
        }
    }
}

/// What both schedule updates share.
pub struct TatStep<'a> {
    /// A `tat` before this is a stopped schedule (microseconds).
    pub floor: i64,
    /// When the item may go (unix seconds).
    pub expires_at: i64,
    /// The user a per-user schedule belongs to.
    pub owner: Option<&'a str>,
    /// What the call does with the schedule's live mark.
    pub live: LiveMark,
}

/// A schedule's live mark (`live_until`, unix µs): while a live call's job
/// is under way, backfill calls take no slot, so the live job goes as fast
/// as it would alone.
#[derive(Clone, Copy, Debug)]
pub enum LiveMark {
    /// A live call: marks the schedule live until its slot plus this many
    /// µs (time enough for its job's next call).
    Hold(i64),
    /// A backfill call at this time (unix µs): moves the schedule only when
    /// no live mark is ahead of it.
    YieldTo(i64),
}

impl LiveMark {
    /// The SET clause that marks the schedule live from the slot `slot`
    /// (an attribute or a value name) on; none for backfill.
    fn mark(&self, slot: &str) -> String {
        match self {
            LiveMark::Hold(_) => format!(", live_until = {slot} + :hold"),
            LiveMark::YieldTo(_) => String::new(),
        }
    }

    /// The condition a backfill call adds: no live mark ahead of now.
    fn condition(&self) -> &'static str {
        match self {
            LiveMark::Hold(_) => "",
            LiveMark::YieldTo(_) => " AND (attribute_not_exists(live_until) OR live_until < :now)",
        }
    }
}

impl TatStep<'_> {
    fn owner_set(&self) -> &'static str {
        if self.owner.is_some() {
            ", #owner = :owner"
        } else {
            ""
        }
    }
}

/// How a schedule update went.
pub enum TatMove {
    /// Done; `old` is the `tat` before (a running schedule's only).
    Moved {
        /// The `tat` before the update; None when it was a restart.
        old: Option<i64>,
    },
    /// The condition failed; `current` is the `tat` that made it fail.
    Refused {
        /// The `tat` that failed the condition; None when there is none.
        current: Option<i64>,
        /// The schedule's live mark, if any (unix µs).
        live_until: Option<i64>,
    },
}

/// A token bucket kept per key in the Ephemeral table, so every concurrent
/// Lambda shares one budget (a per-process limiter would be multiplied by
/// the fleet).
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    /// Most tokens the bucket holds: the burst.
    pub capacity: f64,
    /// Tokens added back per second.
    pub refill_per_sec: f64,
}

impl Bucket {
    /// `n` calls an hour, with a burst of up to `n`.
    pub fn per_hour(n: u32) -> Self {
        Self {
            capacity: f64::from(n.max(1)),
            refill_per_sec: f64::from(n.max(1)) / 3600.0,
        }
    }

    /// `n` calls a minute, with a burst of up to `n`.
    pub fn per_minute(n: u32) -> Self {
        Self {
            capacity: f64::from(n.max(1)),
            refill_per_sec: f64::from(n.max(1)) / 60.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_stored_only_as_its_digest() {
        let state = "a-bearer-state-value-of-the-browser";
        let key = pending_connect_key(state);
        assert!(key.starts_with("oauth#") && !key.contains(state));
        assert_eq!(key, pending_connect_key(state));
    }
}
