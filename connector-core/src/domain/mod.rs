//! The connector's vocabulary: vendors, errors, health samples and summaries,
//! connections and tokens, sync jobs, erasures, webhook events, phone pushes,
//! operational metrics and configuration. No I/O, no AWS SDK, no
//! lambda_http; imports nothing of the crate outside `domain`.

pub mod app_event;
pub mod config;
pub mod connection;
pub mod env;
pub mod erasure;
pub mod error;
pub mod event;
pub mod health;
pub mod job;
pub mod metric;
pub mod push;
pub mod status;
pub mod vendor;
