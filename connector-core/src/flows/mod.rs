//! The use cases, one file each, and the only code that takes the `App`:
//! connecting a vendor, accepting its webhooks, queueing and running sync jobs,
//! refreshing tokens, the scheduled tick, the phone push, reading data,
//! deleting an account and erasing what it stored, telling the app what
//! happened and delivering it, and the connector's own health. A function's `lib.rs` parses its event, calls one flow and shapes
//! the answer.

pub mod account;
pub mod app;
pub mod backfill;
pub mod connect;
pub mod data;
pub mod deliver;
pub mod erasure;
pub mod events;
pub mod push;
pub mod queueing;
pub mod refresh;
pub mod status;
pub mod sync;
pub mod tick;
pub mod webhook;
