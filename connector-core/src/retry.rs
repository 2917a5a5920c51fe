//! When a failed sync job should be tried again: as late as the vendor asks
//! after a 429 (its Retry-After or rate-limit reset), otherwise after an
//! exponential backoff with full jitter — by changing the message's
//! visibility, never by sleeping in the Lambda. After the queue's
//! maxReceiveCount the message goes to the DLQ.

use crate::domain::error::{Disposition, Error};
use rand::Rng;

/// SQS's longest visibility timeout is 12 hours.
pub const MAX_VISIBILITY_SECS: u64 = 12 * 3600;
/// The first retry after a transient failure waits up to this long...
pub const BACKOFF_BASE_SECS: u64 = 10;
/// ...doubling with each receive, up to this.
pub const BACKOFF_CAP_SECS: u64 = 900;

/// Seconds until the message should be visible again, given the error and
/// how many times the message has been received (1 on the first try).
pub fn visibility_after(err: &Error, receive_count: u32, rng: &mut impl Rng) -> u64 {
    match err.disposition() {
        Disposition::RetryAfter(secs) => secs.clamp(1, MAX_VISIBILITY_SECS),
        // A malformed job never succeeds: let it use up its receives at once
        // so the redrive policy moves it to the DLQ without delay.
        Disposition::DeadLetter => 0,
        Disposition::BackOff | Disposition::RecordOnConnection => {
            let exp = receive_count.saturating_sub(1).min(16);
            let ceiling = BACKOFF_BASE_SECS
                .saturating_mul(1 << exp)
                .min(BACKOFF_CAP_SECS);
            // Full jitter: anywhere in [1, ceiling], so retries of a burst spread out.
            rng.gen_range(1..=ceiling)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn rate_limits_wait_as_the_vendor_says_and_the_rest_back_off() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let limited = Error::RateLimited {
            retry_after_secs: 42,
        };
        assert_eq!(visibility_after(&limited, 1, &mut rng), 42);
        assert_eq!(visibility_after(&limited, 4, &mut rng), 42);
        let huge = Error::RateLimited {
            retry_after_secs: 10 * 86_400,
        };
        assert_eq!(visibility_after(&huge, 1, &mut rng), MAX_VISIBILITY_SECS);
        let transient = Error::Storage("throttled".into());
        for receive in 1..=8u32 {
            let ceiling = (BACKOFF_BASE_SECS << (receive - 1)).min(BACKOFF_CAP_SECS);
            let waits: Vec<u64> = (0..200)
                .map(|_| visibility_after(&transient, receive, &mut rng))
                .collect();
            assert!(waits.iter().all(|w| (1..=ceiling).contains(w)), "{receive}");
            // Jittered: not all the same.
            assert!(waits.iter().any(|w| *w != waits[0]), "{receive}");
        }
        assert!(visibility_after(&transient, 40, &mut rng) <= BACKOFF_CAP_SECS);
        let poison = Error::BadRequest("sync job is malformed".into());
        assert_eq!(visibility_after(&poison, 1, &mut rng), 0);
    }
}
