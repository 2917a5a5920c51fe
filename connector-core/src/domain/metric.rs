//! The connector's operational metrics: each one's name, its dimensions and
//! what it counts. Code counts them through the `metrics` facade (a no-op
//! until a recorder is installed: `aws::metrics` installs one writing
//! CloudWatch Embedded Metric Format in a function binary). The template's
//! alarms and dashboard and the README's table name exactly these.

use crate::domain::error::Error;
use crate::domain::vendor::Vendor;

/// A dimension of a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    /// The vendor's wire name (`whoop`); for jobs also `erasure` or `unreadable`, for a
    /// rotated secret also `push`.
    Vendor,
    /// Why a webhook delivery was refused (see [`Error::reason`]).
    Reason,
    /// What became of a phone push: `created`, `merged`, `unchanged`, or a refusal reason.
    Result,
    /// Where an event to the app went: `bus`, `webhook`, or `unreadable`.
    Channel,
}

impl Dimension {
    /// The dimension's name in CloudWatch.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Vendor => "Vendor",
            Dimension::Reason => "Reason",
            Dimension::Result => "Result",
            Dimension::Channel => "Channel",
        }
    }
}

macro_rules! metrics {
    ($($variant:ident [$($dim:ident),*] $doc:literal;)+) => {
        /// A metric the connector emits (always a count).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Metric {
            $(
                #[doc = $doc]
                $variant,
            )+
        }

        impl Metric {
            /// Every metric, in declaration order.
            pub const ALL: [Metric; [$($doc),+].len()] = [$(Metric::$variant),+];

            /// The metric's name in CloudWatch.
            pub fn name(self) -> &'static str {
                match self {
                    $(Metric::$variant => stringify!($variant),)+
                }
            }

            /// Its dimensions, in the order they are given to [`count`].
            pub fn dimensions(self) -> &'static [Dimension] {
                match self {
                    $(Metric::$variant => &[$(Dimension::$dim),*],)+
                }
            }

            /// What it counts, in one sentence.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Metric::$variant => $doc,)+
                }
            }
        }
    };
}

metrics! {
    WebhooksAccepted [Vendor] "Webhook deliveries authenticated and acted on (or acknowledged as not synced).";
    WebhooksRefused [Vendor, Reason] "Webhook deliveries answered with an error, by why.";
    WebhookDuplicates [Vendor] "Webhook events seen before (the vendor's retry, or a notice delivered twice), dropped.";
    JobsDone [Vendor] "Queue messages (sync jobs, webhook notices, erasure steps) finished.";
    JobsRetried [Vendor] "Queue messages that failed and go back to the queue for a later try.";
    JobsDeadLettered [Vendor] "Queue messages that failed their last try and go to the dead-letter queue.";
    VendorCalls [Vendor] "HTTP calls to a vendor's API.";
    VendorThrottled [Vendor] "Vendor answers of 429 (or a quota the vendor reported as spent).";
    QuotaWaits [Vendor] "Vendor calls held back by the fleet's own quota pacing.";
    SamplesWritten [Vendor] "Health samples written from a vendor.";
    RefreshesDone [Vendor] "OAuth token refreshes that succeeded.";
    RefreshesFailed [Vendor] "OAuth token refreshes that failed (the vendor refused, or a call failed).";
    WatchdogPolls [Vendor] "Syncs queued because a connection went quiet past its vendor's limit (webhooks stopped; Dexcom's regular poll).";
    PhonePushes [Result] "Phone (HealthKit) pushes, by result.";
    EventsDelivered [Channel] "Events to the app delivered (put on the bus, or answered 2xx by the app's webhook).";
    EventsRetried [Channel] "Deliveries of events to the app that failed and go back to the queue for a later try.";
    EventsDeadLettered [Channel] "Deliveries of events to the app that failed their last try and go to the dead-letter queue.";
    PreviousSecretAccepted [Vendor] "Deliveries authenticated with a secret's previous value while it is rotated (Vendor `push` for phone pushes); remove the `_PREVIOUS` value once this stays at zero.";
}

/// Adds `n` to `metric` with its dimensions' values, in the order of
/// [`Metric::dimensions`].
pub fn count(metric: Metric, values: &[&str], n: u64) {
    debug_assert_eq!(
        values.len(),
        metric.dimensions().len(),
        "{metric:?} takes {:?}",
        metric.dimensions()
    );
    if n == 0 {
        return;
    }
    let labels: Vec<metrics::Label> = metric
        .dimensions()
        .iter()
        .zip(values)
        .map(|(d, v)| metrics::Label::new(d.name(), v.to_string()))
        .collect();
    metrics::counter!(metric.name(), labels).increment(n);
}

/// Adds `n` to a metric whose one dimension is the vendor.
pub fn count_vendor(metric: Metric, vendor: Vendor, n: u64) {
    count(metric, &[vendor.as_str()], n);
}

impl Error {
    /// A short, fixed word for why a request was refused, for a metric's
    /// dimension (never the error's details).
    pub fn reason(&self) -> &'static str {
        match self {
            Error::BadRequest(_)
            | Error::Unprocessable(_)
            | Error::InvalidField { .. }
            | Error::Conflict(_) => "malformed",
            Error::Unauthorized(_) => "unauthenticated",
            Error::NotFound(_) | Error::VendorNotConfigured(_) => "not_configured",
            Error::PayloadTooLarge(_) => "too_large",
            Error::RateLimited { .. } => "rate_limited",
            Error::Config(_)
            | Error::Storage(_)
            | Error::Queue(_)
            | Error::Crypto(_)
            | Error::Corrupt(_)
            | Error::Delivery(_)
            | Error::Vendor { .. } => "internal_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_cloudwatch_safe() {
        let mut names: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Metric::ALL.len());
        for m in Metric::ALL {
            assert!(m.name().chars().all(|c| c.is_ascii_alphanumeric()), "{m:?}");
            assert!(!m.dimensions().is_empty(), "{m:?} has no dimension");
            assert!(m.meaning().ends_with('.'), "{m:?}");
        }
    }
}
