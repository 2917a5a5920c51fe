//! A token bucket per key kept in DynamoDB, so every concurrent Lambda shares
//! one budget (a per-process limiter would be multiplied by the fleet).

use crate::aws::sdk;
use crate::domain::error::{Error, Result};
use crate::store::{EphemeralStore, OWNER};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;

#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    pub capacity: f64,
    pub refill_per_sec: f64,
}

impl Bucket {
    pub fn per_minute(n: u32) -> Self {
        Self {
            capacity: f64::from(n.max(1)),
            refill_per_sec: f64::from(n.max(1)) / 60.0,
        }
    }
}

/// Takes one token from `key`'s bucket: Ok(Ok(())) when granted, Ok(Err(s))
/// when empty, with the seconds until a token is back.
pub async fn take(
    store: &EphemeralStore,
    key: &str,
    owner: &str,
    bucket: Bucket,
) -> Result<Result<(), u64>> {
    let pk = format!("ratelimit#{key}");
    for _ in 0..8 {
        let now_ms = Utc::now().timestamp_millis();
        let item = store
            .db
            .get_item()
            .table_name(&store.table)
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
        let idle_secs = (bucket.capacity / bucket.refill_per_sec).ceil() as i64 + 60;
        let mut put = store
            .db
            .put_item()
            .table_name(&store.table)
            .item("pk", AttributeValue::S(pk.clone()))
            .item("tokens", AttributeValue::N((available - 1.0).to_string()))
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
        match put.send().await {
            Ok(_) => return Ok(Ok(())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                continue
            }
            Err(e) => return Err(Error::storage("PutItem rate limit", sdk(e))),
        }
    }
    Err(Error::Storage("rate limiter contention".into()))
}
