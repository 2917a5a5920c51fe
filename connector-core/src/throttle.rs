//! Per-vendor token buckets (governor) that pace calls to each vendor's API
//! from one process. Limits follow each vendor's documented app-level quota.

use crate::vendors::Vendor;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

pub struct VendorThrottle {
    buckets: HashMap<Vendor, DefaultDirectRateLimiter>,
}

/// (requests, per period) — the documented app-level limits.
pub fn documented_limit(vendor: Vendor) -> (u32, Duration) {
    match vendor {
        Vendor::Mock => (50, Duration::from_secs(1)),
        Vendor::Whoop => (100, Duration::from_secs(60)),
        Vendor::Garmin => (100, Duration::from_secs(60)),
        Vendor::Fitbit => (300, Duration::from_secs(60)),
        Vendor::Oura => (5000, Duration::from_secs(300)),
        Vendor::Polar => (500, Duration::from_secs(900)),
        Vendor::Strava => (100, Duration::from_secs(900)),
        Vendor::Dexcom => (60_000, Duration::from_secs(3600)),
        Vendor::Withings => (120, Duration::from_secs(60)),
        Vendor::Terra => (100, Duration::from_secs(60)),
    }
}

impl Default for VendorThrottle {
    fn default() -> Self {
        let buckets = Vendor::ALL
            .into_iter()
            .map(|v| {
                let (n, per) = documented_limit(v);
                let burst = NonZeroU32::new(n).expect("non-zero limit");
                let quota = Quota::with_period(per / n)
                    .expect("non-zero period")
                    .allow_burst(burst);
                (v, RateLimiter::direct(quota))
            })
            .collect();
        Self { buckets }
    }
}

impl VendorThrottle {
    /// Waits until a call to `vendor` fits in its bucket.
    pub async fn acquire(&self, vendor: Vendor) {
        if let Some(b) = self.buckets.get(&vendor) {
            b.until_ready().await;
        }
    }

    /// Takes a token without waiting; false when the bucket is empty.
    pub fn try_acquire(&self, vendor: Vendor) -> bool {
        self.buckets.get(&vendor).is_none_or(|b| b.check().is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refuses() {
        let t = VendorThrottle::default();
        let (n, _) = documented_limit(Vendor::Whoop);
        for _ in 0..n {
            assert!(t.try_acquire(Vendor::Whoop));
        }
        assert!(!t.try_acquire(Vendor::Whoop));
        // Buckets are per vendor.
        assert!(t.try_acquire(Vendor::Oura));
    }
}
