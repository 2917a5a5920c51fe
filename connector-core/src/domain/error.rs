//! The one error type of the connector. Each variant says what went wrong and
//! maps to the HTTP status a handler answers with. Details never carry a token,
//! secret, code or signature: callers build them from names and counts only.

use crate::domain::vendor::{UnknownVendor, Vendor, VendorError};

/// The connector's error: what went wrong, mapped to an HTTP status (see `status`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed (400); also a sync job that can never run.
    #[error("{0}")]
    BadRequest(String),
    /// The caller's credential or signature is missing or wrong (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The named thing does not exist (404).
    #[error("{0} not found")]
    NotFound(String),
    /// The request clashes with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is well-formed but cannot be acted on (422).
    #[error("{0}")]
    Unprocessable(String),
    /// One field of the request has a bad value (422).
    #[error("{field}: {reason}")]
    InvalidField {
        /// The field's name.
        field: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// The request body exceeds this many bytes (413).
    #[error("request body exceeds {0} bytes")]
    PayloadTooLarge(usize),
    /// The vendor has no client credentials configured (409).
    #[error("vendor {0} is not configured: set CONNECTOR_{env}_CLIENT_ID and CONNECTOR_{env}_CLIENT_SECRET", env = .0.env_name())]
    VendorNotConfigured(Vendor),
    /// Too many requests; retry later (429).
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited {
        /// When to retry, s from now.
        retry_after_secs: u64,
    },
    /// The connector is misconfigured (500).
    #[error("configuration: {0}")]
    Config(String),
    /// A storage call failed (503).
    #[error("storage: {0}")]
    Storage(String),
    /// A queue call failed (503).
    #[error("queue: {0}")]
    Queue(String),
    /// Sealing or opening a value failed (500).
    #[error("encryption: {0}")]
    Crypto(String),
    /// A stored item that does not read back as written: data to look at,
    /// not an outage to wait out.
    #[error("stored data: {0}")]
    Corrupt(String),
    /// Delivering an event to the app failed: its webhook refused or did
    /// not answer, or the event bus refused (502).
    #[error("event delivery: {0}")]
    Delivery(String),
    /// A vendor call failed (502).
    #[error("vendor {vendor}: {error}")]
    Vendor {
        /// The vendor that failed.
        vendor: Vendor,
        /// How it failed.
        error: VendorError,
    },
}

/// What to do with a sync job that failed with an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Run it again this many seconds from now (the vendor or quota said when).
    RetryAfter(u64),
    /// Run it again after a backoff: the cause may pass by itself.
    BackOff,
    /// It can never run (a malformed job): let it reach the dead-letter queue.
    DeadLetter,
    /// The vendor refused it for good: record that on the connection and stop.
    RecordOnConnection,
}

/// The connector's result, with `Error` by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status a handler answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::Unauthorized(_) => 401,
            Error::NotFound(_) => 404,
            Error::Conflict(_) | Error::VendorNotConfigured(_) => 409,
            Error::Unprocessable(_) | Error::InvalidField { .. } => 422,
            Error::PayloadTooLarge(_) => 413,
            Error::RateLimited { .. } => 429,
            Error::Config(_) | Error::Crypto(_) | Error::Corrupt(_) => 500,
            Error::Vendor { .. } | Error::Delivery(_) => 502,
            Error::Storage(_) | Error::Queue(_) => 503,
        }
    }

    /// The short title of the error's HTTP answer.
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
            Error::Corrupt(_) => "Stored data unreadable",
            Error::Vendor { .. } => "Vendor request failed",
            Error::Delivery(_) => "Event delivery failed",
            Error::Storage(_) => "Storage unavailable",
            Error::Queue(_) => "Queue unavailable",
        }
    }

    /// What a client may be told. Server-side failures get a fixed sentence:
    /// their details go to the log, never into a response body.
    pub fn public_detail(&self) -> String {
        match self {
            Error::Config(_) | Error::Crypto(_) | Error::Corrupt(_) | Error::Delivery(_) => {
                "the connector could not complete the request; see the server log".into()
            }
            Error::Storage(_) | Error::Queue(_) => {
                "a backing service is unavailable; retry shortly".into()
            }
            other => other.to_string(),
        }
    }

    /// A storage failure of operation `op`.
    pub fn storage(op: &str, err: impl std::fmt::Display) -> Self {
        Error::Storage(format!("{op}: {err}"))
    }

    /// A queue failure of operation `op`.
    pub fn queue(op: &str, err: impl std::fmt::Display) -> Self {
        Error::Queue(format!("{op}: {err}"))
    }

    /// A vendor's failure, kept typed. A 429 becomes the connector's own
    /// "retry after" and a request the vendor cannot take names its field.
    pub fn vendor(vendor: Vendor, error: VendorError) -> Self {
        match error {
            VendorError::RateLimited { retry_after_secs } => {
                Error::RateLimited { retry_after_secs }
            }
            VendorError::BadInput { field, reason } => Error::InvalidField {
                field: field.to_string(),
                reason,
            },
            error => Error::Vendor { vendor, error },
        }
    }

    /// What a sync job that failed with this error should do next.
    pub fn disposition(&self) -> Disposition {
        match self {
            Error::RateLimited { retry_after_secs } => Disposition::RetryAfter(*retry_after_secs),
            Error::BadRequest(_) => Disposition::DeadLetter,
            Error::Vendor {
                error: VendorError::Permanent(_),
                ..
            } => Disposition::RecordOnConnection,
            _ => Disposition::BackOff,
        }
    }
}

impl From<UnknownVendor> for Error {
    fn from(e: UnknownVendor) -> Self {
        Error::NotFound(format!("vendor {:?}", e.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vendor_failure_stays_typed() {
        let err = Error::vendor(
            Vendor::Whoop,
            VendorError::Transient("503 from the API".into()),
        );
        assert!(matches!(
            &err,
            Error::Vendor {
                vendor: Vendor::Whoop,
                error: VendorError::Transient(_)
            }
        ));
        assert_eq!(err.to_string(), "vendor whoop: transient: 503 from the API");
        assert_eq!(err.status(), 502);
        assert!(matches!(
            Error::vendor(
                Vendor::Terra,
                VendorError::BadInput {
                    field: "provider",
                    reason: "required".into()
                }
            ),
            Error::InvalidField { .. }
        ));
    }

    #[test]
    fn a_failed_job_is_told_what_to_do_next() {
        let vendor = |e| Error::vendor(Vendor::Oura, e);
        let cases = [
            (
                vendor(VendorError::RateLimited {
                    retry_after_secs: 7,
                }),
                Disposition::RetryAfter(7),
            ),
            (
                Error::RateLimited {
                    retry_after_secs: 3,
                },
                Disposition::RetryAfter(3),
            ),
            (
                Error::BadRequest("sync job is malformed".into()),
                Disposition::DeadLetter,
            ),
            (
                vendor(VendorError::Permanent("user gone".into())),
                Disposition::RecordOnConnection,
            ),
            (
                vendor(VendorError::Transient("timeout".into())),
                Disposition::BackOff,
            ),
            (vendor(VendorError::Unauthorized), Disposition::BackOff),
            (Error::Storage("throttled".into()), Disposition::BackOff),
            (Error::Corrupt("item".into()), Disposition::BackOff),
        ];
        for (err, expected) in cases {
            assert_eq!(err.disposition(), expected, "{err:?}");
        }
    }

    #[test]
    fn an_unknown_vendor_name_is_not_found() {
        let err: Error = "apple".parse::<Vendor>().unwrap_err().into();
        assert_eq!(err.status(), 404);
        assert_eq!(err.to_string(), "vendor \"apple\" not found");
    }
}
