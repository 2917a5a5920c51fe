//! The drivers of this build, by vendor: one line per vendor.

use crate::domain::error::Error;
use crate::domain::vendor::{Vendor, VendorError};
use crate::vendors::driver::VendorDriver;
use crate::vendors::{dexcom, fitbit, garmin, oura, polar, strava, terra, whoop, withings};
use std::collections::HashMap;
use std::sync::Arc;

/// The drivers available in this build, by vendor.
#[derive(Clone, Default)]
pub struct Registry {
    drivers: HashMap<Vendor, Arc<dyn VendorDriver>>,
}

impl Registry {
    /// Every real vendor's driver in this build (Mock needs its store: add it with `with`).
    pub fn real_vendors() -> Self {
        Self::default()
            .with(Arc::new(whoop::Whoop))
            .with(Arc::new(garmin::Garmin))
            .with(Arc::new(fitbit::Fitbit))
            .with(Arc::new(dexcom::Dexcom))
            .with(Arc::new(strava::Strava))
            .with(Arc::new(withings::Withings))
            .with(Arc::new(terra::Terra))
            .with(Arc::new(oura::Oura))
            .with(Arc::new(polar::Polar))
    }

    pub fn with(mut self, driver: Arc<dyn VendorDriver>) -> Self {
        self.drivers.insert(driver.vendor(), driver);
        self
    }

    pub fn get(&self, vendor: Vendor) -> Option<&Arc<dyn VendorDriver>> {
        self.drivers.get(&vendor)
    }

    /// Every driver in this build.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn VendorDriver>> {
        self.drivers.values()
    }

    pub fn driver(&self, vendor: Vendor) -> Result<&Arc<dyn VendorDriver>, Error> {
        self.get(vendor).ok_or_else(|| Error::Vendor {
            vendor,
            error: VendorError::Permanent(
                "no data driver for this vendor in this build yet".into(),
            ),
        })
    }
}
