//! connector-core: everything of the wearable cloud connector that is not
//! Lambda glue.
//!
//! Layers, each a folder, imported one way only: `domain` (vocabulary, no
//! I/O) ← `aws` (the only code that names an AWS SDK type) ← `vendors`
//! (drivers, their facts, the token protocol, signatures, quota pacing) ←
//! `flows` (use cases, the only code that takes the `App`); `http`
//! (lambda_http glue) sits beside `flows`. A lower layer never imports a
//! higher one, and no vendor's folder imports another's; `layers_test`
//! checks it.

pub mod api;
pub mod app;
pub mod aws;
pub mod connections;
pub mod domain;
pub mod http_runtime;
pub mod polling;
pub mod refresh;
pub mod retry;
pub mod sync;
pub mod telemetry;
pub mod vendors;

pub use app::App;
pub use domain::error::{Error, Result};
pub use domain::vendor::Vendor;

#[cfg(test)]
mod layers_test;
