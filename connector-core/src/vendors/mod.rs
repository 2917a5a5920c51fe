//! The vendors the connector knows, what each needs for OAuth, and the driver
//! trait a vendor implements to be synced. One file per vendor driver.

pub mod catalog;
pub mod mock;

use crate::error::Error;
use crate::model::Sample;
use crate::tokens::TokenSet;
use crate::webhooks::{SignatureScheme, WebhookEvent};
use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Mock,
    Whoop,
    Garmin,
    Fitbit,
    Oura,
    Polar,
    Strava,
    Dexcom,
    Withings,
    Terra,
}

impl Vendor {
    pub const ALL: [Vendor; 10] = [
        Vendor::Mock,
        Vendor::Whoop,
        Vendor::Garmin,
        Vendor::Fitbit,
        Vendor::Oura,
        Vendor::Polar,
        Vendor::Strava,
        Vendor::Dexcom,
        Vendor::Withings,
        Vendor::Terra,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Mock => "mock",
            Vendor::Whoop => "whoop",
            Vendor::Garmin => "garmin",
            Vendor::Fitbit => "fitbit",
            Vendor::Oura => "oura",
            Vendor::Polar => "polar",
            Vendor::Strava => "strava",
            Vendor::Dexcom => "dexcom",
            Vendor::Withings => "withings",
            Vendor::Terra => "terra",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Vendor::Mock => "Mock (local test vendor)",
            Vendor::Whoop => "WHOOP",
            Vendor::Garmin => "Garmin",
            Vendor::Fitbit => "Fitbit (Google Health API)",
            Vendor::Oura => "Oura",
            Vendor::Polar => "Polar",
            Vendor::Strava => "Strava",
            Vendor::Dexcom => "Dexcom",
            Vendor::Withings => "Withings",
            Vendor::Terra => "Terra",
        }
    }

    /// The VENDOR part of `CONNECTOR_<VENDOR>_CLIENT_ID` and friends.
    pub fn env_name(self) -> &'static str {
        match self {
            Vendor::Mock => "MOCK",
            Vendor::Whoop => "WHOOP",
            Vendor::Garmin => "GARMIN",
            Vendor::Fitbit => "FITBIT",
            Vendor::Oura => "OURA",
            Vendor::Polar => "POLAR",
            Vendor::Strava => "STRAVA",
            Vendor::Dexcom => "DEXCOM",
            Vendor::Withings => "WITHINGS",
            Vendor::Terra => "TERRA",
        }
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Vendor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Vendor::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| Error::NotFound(format!("vendor {s:?}")))
    }
}

/// Why a call to a vendor failed, in the terms the sync worker acts on.
#[derive(Debug, thiserror::Error)]
pub enum VendorError {
    #[error("access token rejected")]
    Unauthorized,
    #[error("refresh token rejected")]
    RefreshRejected,
    #[error("rate limited; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("transient: {0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
}

impl VendorError {
    pub fn into_error(self, vendor: Vendor) -> Error {
        match self {
            VendorError::RateLimited { retry_after_secs } => {
                Error::RateLimited { retry_after_secs }
            }
            other => Error::Vendor {
                vendor,
                detail: other.to_string(),
            },
        }
    }
}

/// What the driver knows about the connection it syncs.
pub struct FetchRequest<'a> {
    pub user_id: &'a str,
    pub vendor_user_id: &'a str,
    pub access_token: &'a str,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[async_trait]
pub trait VendorDriver: Send + Sync {
    fn vendor(&self) -> Vendor;

    /// How the vendor signs its webhooks; None when it sends none.
    fn webhook_scheme(&self) -> Option<SignatureScheme>;

    /// The events in a verified webhook body.
    fn parse_webhook(&self, body: &[u8]) -> Result<Vec<WebhookEvent>, Error>;

    /// Daily samples for the user-local dates `from..=to`.
    async fn fetch(&self, req: FetchRequest<'_>) -> Result<Vec<Sample>, VendorError>;

    /// A new token set for a refresh token (which may rotate).
    async fn refresh(
        &self,
        vendor_user_id: &str,
        refresh_token: &str,
    ) -> Result<TokenSet, VendorError>;

    /// Revokes the grant at the vendor. Ok(false) when the vendor has no revoke.
    async fn revoke(&self, vendor_user_id: &str, tokens: &TokenSet) -> Result<bool, VendorError>;
}

/// The drivers available in this build, by vendor.
#[derive(Clone, Default)]
pub struct Registry {
    drivers: HashMap<Vendor, Arc<dyn VendorDriver>>,
}

impl Registry {
    pub fn with(mut self, driver: Arc<dyn VendorDriver>) -> Self {
        self.drivers.insert(driver.vendor(), driver);
        self
    }

    pub fn get(&self, vendor: Vendor) -> Option<&Arc<dyn VendorDriver>> {
        self.drivers.get(&vendor)
    }

    pub fn driver(&self, vendor: Vendor) -> Result<&Arc<dyn VendorDriver>, Error> {
        self.get(vendor).ok_or_else(|| Error::Vendor {
            vendor,
            detail: "no data driver for this vendor in this build yet".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_names_round_trip() {
        for v in Vendor::ALL {
            assert_eq!(v.as_str().parse::<Vendor>().unwrap(), v);
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                format!("\"{}\"", v.as_str())
            );
        }
        assert!("apple".parse::<Vendor>().is_err());
    }
}
