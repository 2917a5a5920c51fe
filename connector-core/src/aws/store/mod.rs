//! DynamoDB: the connector's four tables, each with the one module that
//! knows its item layout. Every update names the full primary key; expiry is
//! checked on read because TTL deletion is lazy.

pub mod connections;
pub mod ephemeral;
pub mod events;
pub mod health;
mod item;
mod table;

pub use connections::ConnectionStore;
pub use ephemeral::EphemeralStore;
pub use events::EventStore;
pub use health::HealthStore;
