//! The vendors of this build, one line each in two tables: their SPECs,
//! and their drivers. Two tables, so that a function that only reads a
//! vendor's facts links no driver; and the drivers are an enum rather than
//! trait objects, so that a function links only the driver methods it
//! calls (a trait object's vtable keeps every method of every vendor: the
//! webhook function would link every vendor's fetch).

use crate::domain::connection::TokenSet;
use crate::domain::error::{Error, Result};
use crate::domain::vendor::{Vendor, VendorError};
use crate::vendors::client::VendorCtx;
use crate::vendors::driver::{
    DriverDeps, FetchRequest, Fetched, HostedConnect, Upkept, VendorDriver, WebhookReply,
    WebhookRequest,
};
use crate::vendors::spec::VendorSpec;
use crate::vendors::token::Grant;
use crate::vendors::{dexcom, fitbit, garmin, mock, oura, polar, strava, terra, whoop, withings};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

type Build = fn(&DriverDeps<'_>) -> Result<Driver>;

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
    |deps| mock::driver(deps).map(Driver::Mock),
    |_| Ok(Driver::Whoop(whoop::Whoop)),
    |_| Ok(Driver::Garmin(garmin::Garmin)),
    |_| Ok(Driver::Fitbit(fitbit::Fitbit)),
    |_| Ok(Driver::Oura(oura::Oura)),
    |_| Ok(Driver::Polar(polar::Polar)),
    |_| Ok(Driver::Strava(strava::Strava)),
    |_| Ok(Driver::Dexcom(dexcom::Dexcom)),
    |_| Ok(Driver::Withings(withings::Withings)),
    |_| Ok(Driver::Terra(terra::Terra)),
];

/// One vendor's driver. Each method hands the call to that vendor's own.
pub enum Driver {
    /// Mock.
    Mock(mock::MockVendor),
    /// WHOOP.
    Whoop(whoop::Whoop),
    /// Garmin.
    Garmin(garmin::Garmin),
    /// Fitbit (Google Health API).
    Fitbit(fitbit::Fitbit),
    /// Oura.
    Oura(oura::Oura),
    /// Polar.
    Polar(polar::Polar),
    /// Strava.
    Strava(strava::Strava),
    /// Dexcom.
    Dexcom(dexcom::Dexcom),
    /// Withings.
    Withings(withings::Withings),
    /// Terra.
    Terra(terra::Terra),
}

/// `$call` on the vendor's own driver, bound to `$d`.
macro_rules! each {
    ($driver:expr, $d:ident => $call:expr) => {
        match $driver {
            Driver::Mock($d) => $call,
            Driver::Whoop($d) => $call,
            Driver::Garmin($d) => $call,
            Driver::Fitbit($d) => $call,
            Driver::Oura($d) => $call,
            Driver::Polar($d) => $call,
            Driver::Strava($d) => $call,
            Driver::Dexcom($d) => $call,
            Driver::Withings($d) => $call,
            Driver::Terra($d) => $call,
        }
    };
}

// Every method, the defaulted ones too: a default here would hide the
// vendor's own.
#[async_trait]
impl VendorDriver for Driver {
    fn vendor(&self) -> Vendor {
        each!(self, d => d.vendor())
    }

    async fn identify(&self, ctx: &VendorCtx, grant: &Grant) -> Result<String, VendorError> {
        each!(self, d => d.identify(ctx, grant).await)
    }

    async fn webhook(&self, ctx: &VendorCtx, req: &WebhookRequest<'_>) -> Result<WebhookReply> {
        each!(self, d => d.webhook(ctx, req).await)
    }

    async fn fetch(&self, ctx: &VendorCtx, req: FetchRequest<'_>) -> Result<Fetched, VendorError> {
        each!(self, d => d.fetch(ctx, req).await)
    }

    async fn refresh(
        &self,
        ctx: &VendorCtx,
        vendor_user_id: &str,
        refresh_token: &str,
    ) -> Result<TokenSet, VendorError> {
        each!(self, d => d.refresh(ctx, vendor_user_id, refresh_token).await)
    }

    async fn revoke(
        &self,
        ctx: &VendorCtx,
        vendor_user_id: &str,
        tokens: &TokenSet,
    ) -> Result<bool, VendorError> {
        each!(self, d => d.revoke(ctx, vendor_user_id, tokens).await)
    }

    fn quiet_limit(&self) -> Option<chrono::Duration> {
        each!(self, d => d.quiet_limit())
    }

    fn unsigned_webhooks(&self) -> bool {
        each!(self, d => d.unsigned_webhooks())
    }

    async fn grant_is_live(
        &self,
        ctx: &VendorCtx,
        access_token: &str,
    ) -> Result<bool, VendorError> {
        each!(self, d => d.grant_is_live(ctx, access_token).await)
    }

    fn upkeep_every(&self, ctx: &VendorCtx) -> Option<chrono::Duration> {
        each!(self, d => d.upkeep_every(ctx))
    }

    async fn upkeep(&self, ctx: &VendorCtx, now: DateTime<Utc>) -> Result<Upkept, VendorError> {
        each!(self, d => d.upkeep(ctx, now).await)
    }

    async fn connect_at_once(&self, user_id: &str) -> Result<Option<(String, TokenSet)>> {
        each!(self, d => d.connect_at_once(user_id).await)
    }

    async fn hosted_connect(
        &self,
        ctx: &VendorCtx,
        req: &HostedConnect<'_>,
    ) -> Result<Option<url::Url>, VendorError> {
        each!(self, d => d.hosted_connect(ctx, req).await)
    }

    async fn hosted_callback(
        &self,
        ctx: &VendorCtx,
        state: &str,
        query: &HashMap<String, String>,
    ) -> Result<Option<(String, TokenSet)>, VendorError> {
        each!(self, d => d.hosted_callback(ctx, state, query).await)
    }

    async fn identify_user(
        &self,
        ctx: &VendorCtx,
        grant: &Grant,
        user_id: &str,
    ) -> Result<String, VendorError> {
        each!(self, d => d.identify_user(ctx, grant, user_id).await)
    }
}

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
    drivers: HashMap<Vendor, Arc<Driver>>,
}

impl Registry {
    /// Every vendor's driver.
    pub fn build(deps: &DriverDeps<'_>) -> Result<Self> {
        DRIVERS.iter().try_fold(Self::default(), |registry, build| {
            Ok(registry.with(build(deps)?))
        })
    }

    /// This registry with `driver` for its vendor (replacing any other).
    pub fn with(mut self, driver: Driver) -> Self {
        self.drivers.insert(driver.vendor(), Arc::new(driver));
        self
    }

    /// The driver of `vendor`, if this build has one.
    pub fn get(&self, vendor: Vendor) -> Option<&Arc<Driver>> {
        self.drivers.get(&vendor)
    }

    /// Every driver in this build.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Driver>> {
        self.drivers.values()
    }

    /// The driver of `vendor`, or the failure a job records when there is none.
    pub fn driver(&self, vendor: Vendor) -> Result<&Arc<Driver>, Error> {
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

    fn every_driver() -> Registry {
        let conf = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let ephemeral = EphemeralStore::new(aws_sdk_dynamodb::Client::from_conf(conf), "t".into());
        Registry::build(&DriverDeps {
            ephemeral: &ephemeral,
            env: &Env::default(),
        })
        .unwrap()
    }

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
        let registry = every_driver();
        for vendor in Vendor::ALL {
            assert_eq!(registry.driver(vendor).unwrap().vendor(), vendor);
        }
        assert_eq!(registry.all().count(), DRIVERS.len());
    }

    #[test]
    fn the_enum_hands_methods_the_vendors_override_to_the_vendor() {
        let registry = every_driver();
        let unsigned: Vec<Vendor> = registry
            .all()
            .filter(|d| d.unsigned_webhooks())
            .map(|d| d.vendor())
            .collect();
        assert!(unsigned.contains(&Vendor::Garmin) && unsigned.contains(&Vendor::Strava));
        assert!(!unsigned.contains(&Vendor::Whoop), "{unsigned:?}");
        let quiet = |v| registry.driver(v).unwrap().quiet_limit();
        assert_eq!(quiet(Vendor::Mock), None);
        assert_eq!(
            quiet(Vendor::Dexcom),
            Some(chrono::Duration::minutes(dexcom::POLL_MINUTES))
        );
        assert_eq!(
            quiet(Vendor::Oura),
            Some(chrono::Duration::hours(
                crate::vendors::driver::WEBHOOK_WATCHDOG_HOURS
            ))
        );
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
