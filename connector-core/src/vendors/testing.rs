//! Helpers shared by the vendor drivers' unit tests.

use super::credentials::VendorCredentials;
use crate::domain::health::{MetricType, Sample};
use crate::domain::vendor::Vendor;
use crate::vendors::client::VendorCtx;
use std::collections::HashMap;

/// Runs `f` to completion on a new current-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// A driver context for `vendor` with these environment values (full names).
pub fn ctx(vendor: Vendor, env: &[(&str, &str)]) -> VendorCtx {
    let env = crate::domain::env::Env::with_overrides(
        env.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
    );
    let creds = crate::aws::secrets::Secrets::new(env, None);
    VendorCtx::new(
        crate::vendors::token::http_client(),
        block_on(VendorCredentials::load(
            &creds,
            crate::vendors::registry::spec(vendor),
        ))
        .expect("credentials"),
        crate::vendors::budget::CallBudget::unmetered(vendor),
    )
}

/// The one daily value of `metric` on `date` (a panic if there are two).
pub fn daily(samples: &[Sample], metric: MetricType, date: &str) -> Option<f64> {
    let found: Vec<f64> = samples
        .iter()
        .filter(|s| s.metric == metric && s.date.to_string() == date && s.time.is_none())
        .map(|s| s.value)
        .collect();
    assert!(found.len() <= 1, "{metric:?} twice on {date}: {found:?}");
    found.first().copied()
}
