//! How values are spelled in DynamoDB items, for the three stores.

use crate::aws::sdk;
use crate::domain::error::{Error, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeZone, Utc};
use std::collections::HashMap;

pub(super) type Item = HashMap<String, AttributeValue>;

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
pub(super) fn get_s<'a>(item: &'a Item, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}
pub(super) fn get_n<T: std::str::FromStr>(item: &Item, k: &str) -> Option<T> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}
pub(super) fn get_time(item: &Item, k: &str) -> Option<DateTime<Utc>> {
    get_n::<i64>(item, k).and_then(|t| Utc.timestamp_opt(t, 0).single())
}
/// The output of a conditional write, or None when its condition failed.
pub(super) fn conditional<T, E, R>(
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
