//! The one error type of the connector. Each variant says what went wrong and
//! maps to the HTTP status a handler answers with. Details never carry a token,
//! secret, code or signature: callers build them from names and counts only.

use crate::vendors::Vendor;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("request body exceeds {0} bytes")]
    PayloadTooLarge(usize),
    #[error("vendor {0} is not configured: set CONNECTOR_{env}_CLIENT_ID and CONNECTOR_{env}_CLIENT_SECRET", env = .0.env_name())]
    VendorNotConfigured(Vendor),
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("configuration: {0}")]
    Config(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("queue: {0}")]
    Queue(String),
    #[error("encryption: {0}")]
    Crypto(String),
    #[error("vendor {vendor}: {detail}")]
    Vendor { vendor: Vendor, detail: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::NotFound(_) => 404,
            Error::Conflict(_) | Error::VendorNotConfigured(_) => 409,
            Error::Unprocessable(_) | Error::InvalidField { .. } => 422,
            Error::PayloadTooLarge(_) => 413,
            Error::RateLimited { .. } => 429,
            Error::Config(_) | Error::Crypto(_) => 500,
            Error::Vendor { .. } => 502,
            Error::Storage(_) | Error::Queue(_) => 503,
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "Bad request",
            Error::Unauthorized(_) => "Unauthorized",
            Error::NotFound(_) => "Not found",
            Error::Conflict(_) => "Conflict",
            Error::VendorNotConfigured(_) => "Vendor not configured",
            Error::Unprocessable(_) | Error::InvalidField { .. } => "Unprocessable content",
            Error::PayloadTooLarge(_) => "Payload too large",
            Error::RateLimited { .. } => "Too many requests",
            Error::Config(_) => "Server misconfigured",
            Error::Crypto(_) => "Encryption failure",
            Error::Vendor { .. } => "Vendor request failed",
            Error::Storage(_) => "Storage unavailable",
            Error::Queue(_) => "Queue unavailable",
        }
    }

    /// What a client may be told. Server-side failures get a fixed sentence:
    /// their details go to the log, never into a response body.
    pub fn public_detail(&self) -> String {
        match self {
            Error::Config(_) | Error::Crypto(_) => {
                "the connector could not complete the request; see the server log".into()
            }
            Error::Storage(_) | Error::Queue(_) => {
                "a backing service is unavailable; retry shortly".into()
            }
            other => other.to_string(),
        }
    }

    pub fn storage(op: &str, err: impl std::fmt::Display) -> Self {
        Error::Storage(format!("{op}: {err}"))
    }

    pub fn queue(op: &str, err: impl std::fmt::Display) -> Self {
        Error::Queue(format!("{op}: {err}"))
    }
}

/// Formats an AWS SDK error with its full source chain (the plain Display of
/// an SDK error is only "service error").
pub fn sdk<E: std::error::Error>(err: E) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string()
}
