//! connector-core: everything of the wearable cloud connector that is not
//! Lambda glue. One module per idea; see ../shared/DESIGN.md for the shape.

pub mod api;
pub mod app;
pub mod config;
pub mod connections;
pub mod credentials;
pub mod crypto;
pub mod env;
pub mod error;
pub mod http_runtime;
pub mod jobs;
pub mod model;
pub mod oauth;
pub mod polling;
pub mod push;
pub mod push_store;
pub mod quota;
pub mod ratelimit;
pub mod refresh;
pub mod retry;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod tokens;
pub mod vendors;
pub mod webhooks;

pub use app::App;
pub use error::{Error, Result};
pub use vendors::Vendor;
