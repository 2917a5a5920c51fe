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

#![warn(missing_docs)]

pub mod aws;
pub mod domain;
pub mod flows;
#[cfg(feature = "http")]
pub mod http;
pub mod vendors;

pub use domain::error::{Error, Result};
pub use domain::vendor::Vendor;
pub use flows::app::App;

#[cfg(test)]
mod layers_test;
