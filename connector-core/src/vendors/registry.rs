//! The vendors of this build, one line each in two tables: their SPECs,
//! and how their drivers are built. Two tables, so that a function that
//! only reads a vendor's facts links no driver.

use crate::domain::error::{Error, Result};
use crate::domain::vendor::{Vendor, VendorError};
use crate::vendors::driver::{DriverDeps, VendorDriver};
use crate::vendors::spec::VendorSpec;
use crate::vendors::{dexcom, fitbit, garmin, mock, oura, polar, strava, terra, whoop, withings};
use std::collections::HashMap;
use std::sync::Arc;

type Build = fn(&DriverDeps<'_>) -> Result<Arc<dyn VendorDriver>>;

/// Every vendor's facts.
static SPECS: [&VendorSpec; 10] = [
    &mock::SPEC,
    &whoop::SPEC,
    &garmin::SPEC,
    &fitbit::SPEC,
    &oura::SPEC,
    &polar::SPEC,
    &strava::SPEC,
    &dexcom::SPEC,
    &withings::SPEC,
    &terra::SPEC,
];

/// Every vendor's driver.
const DRIVERS: [Build; 10] = [
    mock::driver,
    |_| Ok(Arc::new(whoop::Whoop)),
    |_| Ok(Arc::new(garmin::Garmin)),
    |_| Ok(Arc::new(fitbit::Fitbit)),
    |_| Ok(Arc::new(oura::Oura)),
    |_| Ok(Arc::new(polar::Polar)),
    |_| Ok(Arc::new(strava::Strava)),
    |_| Ok(Arc::new(dexcom::Dexcom)),
    |_| Ok(Arc::new(withings::Withings)),
    |_| Ok(Arc::new(terra::Terra)),
];

/// A vendor's facts.
pub fn spec(vendor: Vendor) -> &'static VendorSpec {
    SPECS
        .iter()
        .find(|spec| spec.vendor == vendor)
        .expect("every vendor has a SPEC in the registry")
}

/// Reads the drivers' settings from `env` (a bad one is an error) without
/// building a driver: what a function checks at start.
pub fn check_settings(env: &crate::domain::env::Env) -> Result<()> {
    mock::knobs(env).map(|_| ())
}

/// The drivers available in this build, by vendor.
#[derive(Clone, Default)]
pub struct Registry {
    drivers: HashMap<Vendor, Arc<dyn VendorDriver>>,
}

impl Registry {
    /// Every vendor's driver.
    pub fn build(deps: &DriverDeps<'_>) -> Result<Self> {
        DRIVERS.iter().try_fold(Self::default(), |registry, build| {
            Ok(registry.with(build(deps)?))
        })
    }

    /// This registry with `driver` for its vendor (replacing any other).
    pub fn with(mut self, driver: Arc<dyn VendorDriver>) -> Self {
        self.drivers.insert(driver.vendor(), driver);
        self
    }

    /// The driver of `vendor`, if this build has one.
    pub fn get(&self, vendor: Vendor) -> Option<&Arc<dyn VendorDriver>> {
        self.drivers.get(&vendor)
    }

    /// Every driver in this build.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn VendorDriver>> {
        self.drivers.values()
    }

    /// The driver of `vendor`, or the failure a job records when there is none.
    pub fn driver(&self, vendor: Vendor) -> Result<&Arc<dyn VendorDriver>, Error> {
        self.get(vendor).ok_or_else(|| Error::Vendor {
            vendor,
            error: VendorError::Permanent(
                "no data driver for this vendor in this build yet".into(),
            ),
        })
    }
}

#[cfg(test)]
mod forgery;

#[cfg(test)]
mod rotation;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::store::EphemeralStore;
    use crate::domain::env::Env;

    #[test]
    fn every_vendor_has_one_spec_and_its_driver_is_that_vendors() {
        for vendor in Vendor::ALL {
            assert_eq!(spec(vendor).vendor, vendor);
            assert_eq!(
                SPECS.iter().filter(|s| s.vendor == vendor).count(),
                1,
                "{vendor}"
            );
        }
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let ephemeral = EphemeralStore::new(aws_sdk_dynamodb::Client::from_conf(conf), "t".into());
        let registry = Registry::build(&DriverDeps {
            ephemeral: &ephemeral,
            env: &Env::default(),
        })
        .unwrap();
        for vendor in Vendor::ALL {
            assert_eq!(registry.driver(vendor).unwrap().vendor(), vendor);
        }
        assert_eq!(registry.all().count(), DRIVERS.len());
    }

    #[test]
    fn every_oauth_vendor_has_https_endpoints_and_mock_has_none() {
        assert!(spec(Vendor::Mock).oauth.is_none());
        for v in Vendor::ALL.into_iter().filter(|v| *v != Vendor::Mock) {
            let d = spec(v).oauth.unwrap();
            for u in [d.auth_url, d.token_url, d.api_base] {
                assert!(u.starts_with("https://"), "{v}: {u}");
            }
        }
        assert!(spec(Vendor::Whoop)
            .oauth
            .unwrap()
            .scopes
            .contains(&"offline"));
        assert_eq!(
            spec(Vendor::Polar).oauth.unwrap().client_auth,
            crate::vendors::spec::ClientAuth::Basic
        );
    }
}
