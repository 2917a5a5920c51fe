//! Where configuration values come from: the process environment, optionally
//! overlaid with explicit values (the local stack derives them from
//! template.yaml, the way CloudFormation fills them in AWS).

use std::collections::HashMap;
use std::sync::Arc;

/// Where configuration values are read: explicit overrides first, then the process environment.
#[derive(Clone, Default, Debug)]
pub struct Env {
    overrides: Arc<HashMap<String, String>>,
}

impl Env {
    /// The process environment alone.
    pub fn process() -> Self {
        Self::default()
    }

    /// The process environment under `overrides`.
    pub fn with_overrides(overrides: HashMap<String, String>) -> Self {
        Self {
            overrides: Arc::new(overrides),
        }
    }

    /// A set, non-blank value; blank counts as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        self.overrides
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.trim().is_empty())
    }
}
