//! A vendor call's budget: whom the calls are for, how urgent they are and
//! how long they may wait for the fleet quota's slots. A sync job's budget
//! books its slots in batches ([`FleetQuota::book`]), paces its calls
//! inside them and gives back the tail it did not use.

use crate::domain::error::Result;
use crate::domain::job::Priority;
use crate::domain::metric::{count_vendor, Metric};
use crate::domain::vendor::Vendor;
use crate::vendors::quota::{FleetQuota, Grant, OverQuota, MAX_JOB_WAIT};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A call's budget: which vendor, for whom, how urgent, and how long its
/// calls may wait for slots: until a sync job's deadline, or
/// [`MAX_JOB_WAIT`] in all (shared by the calls).
///
/// A job's budget (see [`CallBudget::for_job`]) books slots in batches:
/// call [`CallBudget::release`] when the job's calls are done.
#[derive(Clone)]
pub struct CallBudget {
    quota: Option<Arc<FleetQuota>>,
    vendor: Vendor,
    user: Option<String>,
    priority: Priority,
    waited: Arc<std::sync::Mutex<Duration>>,
    deadline: Option<Instant>,
    booked: Arc<std::sync::Mutex<Booking>>,
}

/// What a budget holds between its calls.
#[derive(Default)]
struct Booking {
    /// Calls admitted so far.
    called: u32,
    /// The last booking, while it has slots (or unused ones to give back).
    grant: Option<Grant>,
}

impl CallBudget {
    /// A live budget for calls to `vendor` under `quota`, not yet tied to a user.
    pub fn new(quota: Arc<FleetQuota>, vendor: Vendor) -> Self {
        Self::under(Some(quota), vendor)
    }

    /// No fleet budget (unit tests of drivers).
    pub fn unmetered(vendor: Vendor) -> Self {
        Self::under(None, vendor)
    }

    fn under(quota: Option<Arc<FleetQuota>>, vendor: Vendor) -> Self {
        Self {
            quota,
            vendor,
            user: None,
            priority: Priority::Live,
            waited: Default::default(),
            deadline: None,
            booked: Default::default(),
        }
    }

    /// The same budget for one user's sync of the given urgency.
    pub fn for_job(mut self, user: &str, priority: Priority) -> Self {
        self.user = Some(user.to_string());
        self.priority = priority;
        self
    }

    /// The same budget, its calls waiting for slots until `deadline` (a
    /// sync job's share of its invocation) instead of [`MAX_JOB_WAIT`].
    pub fn until(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Waits for a slot for one call; `Err` with the wait when the job has
    /// waited its share and should come back later.
    pub async fn admit(&self) -> Result<Result<(), OverQuota>> {
        let Some(quota) = &self.quota else {
            return Ok(Ok(()));
        };
        // A slot the last booking still holds (and its pacer), or the
        // booking used up.
        let (held, called, spent) = {
            let mut booking = self.booked.lock().expect("quota booking");
            booking.called += 1;
            let called = booking.called - 1;
            match booking.grant.as_mut() {
                Some(grant) if grant.left() > 0 => {
                    grant.used += 1;
                    (Some(grant.pacer.clone()), called, None)
                }
                _ => (None, called, booking.grant.take()),
            }
        };
        if let Some(pacer) = held {
            if let Some(pacer) = pacer {
                pace(&pacer).await;
            }
            return Ok(Ok(()));
        }
        if let Some(spent) = spent {
            quota.release(spent).await;
        }
        let left = match self.deadline {
            Some(deadline) => deadline.saturating_duration_since(Instant::now()),
            None => MAX_JOB_WAIT.saturating_sub(*self.waited.lock().expect("wait counter")),
        };
        // Only a job's calls book ahead: it gives back what it leaves.
        let want = match self.user {
            Some(_) => quota.grant_size(self.vendor, self.priority, called, left),
            None => 1,
        };
        match quota
            .book(self.vendor, self.user.as_deref(), self.priority, left, want)
            .await?
        {
            Ok(grant) => {
                let waited = grant.waited;
                if !waited.is_zero() {
                    count_vendor(Metric::QuotaWaits, self.vendor, 1);
                }
                *self.waited.lock().expect("wait counter") += waited;
                if grant.slots > 1 {
                    self.booked.lock().expect("quota booking").grant = Some(grant);
                }
                Ok(Ok(()))
            }
            Err(over) => {
                count_vendor(Metric::QuotaWaits, self.vendor, 1);
                Ok(Err(over))
            }
        }
    }

    /// Gives back the slots booked ahead that the calls did not use. A
    /// budget dropped without it leaves them unused (never handed out twice).
    pub async fn release(&self) {
        let grant = self.booked.lock().expect("quota booking").grant.take();
        if let (Some(quota), Some(grant)) = (&self.quota, grant) {
            quota.release(grant).await;
        }
    }

    /// The vendor the calls go to.
    pub fn vendor(&self) -> Vendor {
        self.vendor
    }
}

/// Waits until `pacer` lets the next call of a booking go.
async fn pace(pacer: &governor::DefaultDirectRateLimiter) {
    use governor::clock::{Clock, DefaultClock};
    let clock = DefaultClock::default();
    while let Err(not_until) = pacer.check() {
        tokio::time::sleep(not_until.wait_time_from(clock.now())).await;
    }
}
