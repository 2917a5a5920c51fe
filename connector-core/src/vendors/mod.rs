//! The vendor layer: the driver trait and the registry, what the connector
//! knows of each vendor's app registration, the OAuth token protocol, the
//! webhook signature schemes, the fleet quota's pacing, the per-source
//! flood guard of webhook deliveries, the vendor HTTP client; and one folder per vendor (its driver, wire types, normalization
//! and tests). No vendor's folder imports another's.

pub mod budget;
pub mod client;
pub mod credentials;
#[cfg(test)]
pub mod described;
pub mod driver;
pub mod flood;
pub mod quota;
pub mod registry;
pub mod signature;
pub mod spec;
#[cfg(test)]
pub mod testing;
pub mod time;
pub mod token;

pub mod dexcom;
pub mod fitbit;
pub mod garmin;
pub mod mock;
pub mod oura;
pub mod polar;
pub mod strava;
pub mod terra;
pub mod whoop;
pub mod withings;
