//! DynamoDB: the connector's three tables, each with the one module that
//! knows its item layout. Every update names the full primary key; expiry is
//! checked on read because TTL deletion is lazy.

pub mod connections;
pub mod ephemeral;
pub mod health;
mod item;

pub use connections::ConnectionStore;
pub use ephemeral::EphemeralStore;
pub use health::HealthStore;

use crate::aws::sdk;
use crate::domain::error::{Error, Result};
use aws_sdk_dynamodb::types::TableStatus;

/// Whether `table` answers and takes requests (DescribeTable: one cheap
/// control-plane read, no item).
async fn table_answers(db: &aws_sdk_dynamodb::Client, table: &str) -> Result<()> {
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
