//! The vendors the connector knows, how a call to one can fail, and a vendor
//! record as received.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Declares the vendors, one line each: variant, wire name (also its name
/// in routes and in stored keys) and the VENDOR of `CONNECTOR_<VENDOR>_*`.
macro_rules! vendors {
    ($($variant:ident: $name:literal, $env:literal;)+) => {
        /// A vendor the connector knows.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "lowercase")]
        pub enum Vendor {
            $(
                #[doc = $name]
                $variant,
            )+
        }

        impl Vendor {
            /// Every vendor, in declaration order.
            pub const ALL: [Vendor; [$($name),+].len()] = [$(Vendor::$variant),+];

            /// The vendor's wire name: in routes, JSON and stored keys.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Vendor::$variant => $name,)+
                }
            }

            /// The VENDOR part of `CONNECTOR_<VENDOR>_CLIENT_ID` and friends.
            pub fn env_name(self) -> &'static str {
                match self {
                    $(Vendor::$variant => $env,)+
                }
            }
        }
    };
}

vendors! {
    Mock: "mock", "MOCK";
    Whoop: "whoop", "WHOOP";
    Garmin: "garmin", "GARMIN";
    Fitbit: "fitbit", "FITBIT";
    Oura: "oura", "OURA";
    Polar: "polar", "POLAR";
    Strava: "strava", "STRAVA";
    Dexcom: "dexcom", "DEXCOM";
    Withings: "withings", "WITHINGS";
    Terra: "terra", "TERRA";
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Vendor {
    type Err = UnknownVendor;
    fn from_str(s: &str) -> Result<Self, UnknownVendor> {
        Vendor::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownVendor(s.to_string()))
    }
}

/// A name that is no vendor of the connector's.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("vendor {0:?} not found")]
pub struct UnknownVendor(pub String);

/// Why a call to a vendor failed, in the terms the sync worker acts on.
#[derive(Debug, thiserror::Error)]
pub enum VendorError {
    /// The vendor refused the access token; refresh it and try again.
    #[error("access token rejected")]
    Unauthorized,
    /// The vendor refused the refresh token; the user must reconnect.
    #[error("refresh token rejected")]
    RefreshRejected,
    /// The vendor (or the fleet's quota for it) says to wait.
    #[error("rate limited; retry after {retry_after_secs} s")]
    RateLimited {
        /// When to retry, s from now.
        retry_after_secs: u64,
    },
    /// A failure that may pass by itself (timeout, 5xx); retry later.
    #[error("transient: {0}")]
    Transient(String),
    /// A failure retrying cannot fix.
    #[error("{0}")]
    Permanent(String),
    /// The request to the connector lacks what this vendor needs.
    #[error("{field}: {reason}")]
    BadInput {
        /// The field of the request.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// One vendor record as received, kept (bounded) for audit and re-processing.
#[derive(Clone, Debug, PartialEq)]
pub struct RawRecord {
    /// The vendor's record type, e.g. "recovery" or "sleep".
    pub kind: String,
    /// The vendor's id of the record (or its date where it has none).
    pub id: String,
    /// The user-local date the record belongs to.
    pub date: NaiveDate,
    /// The record's JSON as received.
    pub json: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_names_round_trip() {
        for v in Vendor::ALL {
            assert_eq!(v.env_name(), v.as_str().to_ascii_uppercase());
            assert_eq!(v.as_str().parse::<Vendor>().unwrap(), v);
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                format!("\"{}\"", v.as_str())
            );
        }
        assert!("apple".parse::<Vendor>().is_err());
    }
}
