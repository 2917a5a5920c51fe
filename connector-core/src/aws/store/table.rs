//! What every table's store asks of DynamoDB alike: whether the table
//! answers, and batches of writes sent until DynamoDB has taken them all.

use crate::aws::sdk;
use crate::domain::error::{Error, Result};
use aws_sdk_dynamodb::types::TableStatus;

/// Whether `table` answers and takes requests (DescribeTable: one cheap
/// control-plane read, no item).
pub(super) async fn table_answers(db: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
    let out = db
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| Error::storage("DescribeTable", sdk(e)))?;
    match out.table().and_then(|t| t.table_status()) {
        Some(TableStatus::Active | TableStatus::Updating) => Ok(()),
        other => Err(Error::Storage(format!("table {table} is {other:?}"))),
    }
}

/// Applies `requests` to `table` 25 at a time, sending what DynamoDB left
/// unprocessed again with a growing pause.
pub(super) async fn batch_write(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    requests: Vec<aws_sdk_dynamodb::types::WriteRequest>,
) -> Result<()> {
    for chunk in requests.chunks(25) {
        let mut pending = chunk.to_vec();
        for attempt in 0..8u32 {
            let out = db
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await
                .map_err(|e| Error::storage("BatchWriteItem", sdk(e)))?;
            pending = out
                .unprocessed_items
                .and_then(|mut m| m.remove(table))
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

/// Applies `items` all or none; false when a condition of one refused them
/// (nothing was written), an error when the call failed.
pub(super) async fn transact_if(
    db: &aws_sdk_dynamodb::Client,
    items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    what: &str,
) -> Result<bool> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match db
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) => {
            let refused_by_condition = match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(t)) => t
                    .cancellation_reasons()
                    .iter()
                    .any(|r| r.code() == Some("ConditionalCheckFailed")),
                _ => false,
            };
            if refused_by_condition {
                Ok(false)
            } else {
                Err(Error::storage(
                    &format!("TransactWriteItems {what}"),
                    sdk(e),
                ))
            }
        }
    }
}
