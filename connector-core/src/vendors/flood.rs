//! The flood guard of webhook deliveries: requests per second one source
//! address may make to one vendor's webhook route, counted in this process
//! and refused before any AWS call (no secret read, no lookup, no write).
//! API Gateway throttles each vendor's route as a whole; this keeps one
//! source from spending that throttle within a function instance. Vendors
//! deliver from a few addresses in bursts, so the limit is per source and
//! generous; a refused vendor retries.

use crate::domain::error::{Error, Result};
use crate::domain::vendor::Vendor;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::num::NonZeroU32;

/// Sources tracked before the ones back to a full bucket are forgotten.
const TRACKED_SOURCES: usize = 10_000;

/// Per-(vendor, source address) token buckets: `per_sec` a second, bursts
/// of twice that.
pub struct DeliveryLimiter {
    limiter: RateLimiter<(Vendor, String), DefaultKeyedStateStore<(Vendor, String)>, DefaultClock>,
    clock: DefaultClock,
}

impl DeliveryLimiter {
    /// A limiter of `per_sec` deliveries a second per vendor and source (at least 1).
    pub fn new(per_sec: u32) -> Self {
        let rate = NonZeroU32::new(per_sec.max(1)).expect("at least 1");
        let burst = rate.saturating_mul(NonZeroU32::new(2).expect("2"));
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one delivery of `vendor` from `source`; past the limit, the
    /// 429 to answer, with the seconds until the source may send again.
    pub fn admit(&self, vendor: Vendor, source: &str) -> Result<()> {
        if self.limiter.len() > TRACKED_SOURCES {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&(vendor, source.to_string()))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.clock.now());
                Error::RateLimited {
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_flooding_one_vendor_leaves_other_sources_and_vendors_alone() {
        let limiter = DeliveryLimiter::new(5);
        let admitted = (0..100)
            .filter(|_| limiter.admit(Vendor::Garmin, "203.0.113.9").is_ok())
            .count();
        assert_eq!(admitted, 10, "a burst of twice the rate, then refused");
        match limiter.admit(Vendor::Garmin, "203.0.113.9") {
            Err(Error::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("{other:?}"),
        }
        assert!(limiter.admit(Vendor::Garmin, "198.51.100.7").is_ok());
        assert!(limiter.admit(Vendor::Whoop, "203.0.113.9").is_ok());
    }
}
