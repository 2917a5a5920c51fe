//! AWS SDK clients made on their first use.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

/// An AWS SDK client that a function makes the first time it calls it, from
/// the shared configuration: nothing is built at start-up for a request
/// that may never come, and a function makes only the clients its code
/// calls. Clones share the one client. Derefs to the client.
pub struct SdkClient<C>(Arc<Source<C>>);

enum Source<C> {
    Made(C),
    OnFirstUse {
        client: OnceLock<C>,
        sdk: Box<aws_config::SdkConfig>,
        make: fn(&aws_config::SdkConfig) -> C,
    },
}

impl<C> SdkClient<C> {
    /// A client `make` makes from `sdk` when first called.
    pub fn on_first_use(
        sdk: &aws_config::SdkConfig,
        make: fn(&aws_config::SdkConfig) -> C,
    ) -> Self {
        Self(Arc::new(Source::OnFirstUse {
            client: OnceLock::new(),
            sdk: Box::new(sdk.clone()),
            make,
        }))
    }

    /// Whether the client has been made (a made one is reused).
    pub fn is_made(&self) -> bool {
        match &*self.0 {
            Source::Made(_) => true,
            Source::OnFirstUse { client, .. } => client.get().is_some(),
        }
    }
}

impl<C> Deref for SdkClient<C> {
    type Target = C;

    fn deref(&self) -> &C {
        match &*self.0 {
            Source::Made(client) => client,
            Source::OnFirstUse { client, sdk, make } => client.get_or_init(|| make(sdk)),
        }
    }
}

impl<C> Clone for SdkClient<C> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// A client made already (tests, tools).
impl<C> From<C> for SdkClient<C> {
    fn from(client: C) -> Self {
        Self(Arc::new(Source::Made(client)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static MADE: AtomicUsize = AtomicUsize::new(0);

    fn counted(sdk: &aws_config::SdkConfig) -> Option<String> {
        MADE.fetch_add(1, Ordering::SeqCst);
        sdk.region().map(|r| r.to_string())
    }

    #[test]
    fn a_client_is_made_once_on_its_first_use_and_shared_by_clones() {
        let sdk = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let client = SdkClient::on_first_use(&sdk, counted);
        let clone = client.clone();
        assert_eq!(MADE.load(Ordering::SeqCst), 0);
        assert!(!clone.is_made());
        assert_eq!(clone.as_deref(), Some("eu-west-1"));
        assert_eq!(client.as_deref(), Some("eu-west-1"));
        assert_eq!(MADE.load(Ordering::SeqCst), 1);
        assert!(client.is_made());
        assert!(SdkClient::from(Some("made".to_string())).is_made());
    }
}
