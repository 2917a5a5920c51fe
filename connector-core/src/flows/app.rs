//! Everything a function needs: its configuration read and checked once at
//! start-up (Lambda init), what calls out made on first use, all shared by
//! reference across invocations.

use crate::aws::client::SdkClient;
use crate::aws::kms::{CacheLimits, Envelope, KmsKeys};
use crate::aws::outbox::{EventBus, Outbox};
use crate::aws::queue::JobQueue;
use crate::aws::secrets::Secrets;
use crate::aws::store::{ConnectionStore, EphemeralStore, EventStore, HealthStore};
use crate::domain::config::Config;
use crate::domain::env::Env;
use crate::domain::error::{Error, Result};
use crate::domain::vendor::Vendor;
use crate::vendors::budget::CallBudget;
use crate::vendors::client::VendorCtx;
use crate::vendors::credentials::VendorCredentials;
use crate::vendors::driver::DriverDeps;
use crate::vendors::flood::DeliveryLimiter;
use crate::vendors::quota::FleetQuota;
use crate::vendors::registry::{self, Driver, Registry};
use std::sync::{Arc, OnceLock};

/// Everything a function needs: configuration, stores, queue, secrets, vendor
/// drivers and clients. Nothing that calls out is made before its first
/// use: the AWS SDK clients ([`SdkClient`]), the token envelope, the vendor
/// drivers and the vendor HTTP client; and a function whose code never asks
/// for one does not link it.
pub struct App {
    /// The connector's configuration.
    pub config: Config,
    /// The Connections table.
    pub connections: ConnectionStore,
    /// The Health table.
    pub health: HealthStore,
    /// The Ephemeral table.
    pub ephemeral: EphemeralStore,
    /// The Events table: the change feed.
    pub events: EventStore,
    /// The sync and backfill queues.
    pub queue: JobQueue,
    /// Where events to the app are queued for delivery.
    pub outbox: Outbox,
    /// The app's webhook signing secret, in a secret of its own.
    pub app_webhook_secret: Secrets,
    /// Vendor credentials.
    pub credentials: Secrets,
    /// The phone-push signing secret, in a secret of its own.
    pub push_secret: Secrets,
    /// The fleet-wide call budget per vendor.
    pub quota: Arc<FleetQuota>,
    /// Webhook deliveries per vendor and source address, in this process.
    pub deliveries: Arc<DeliveryLimiter>,
    /// The health route's last answer in this process.
    pub status: Arc<crate::domain::status::StatusCache>,
    env: Env,
    sdk: aws_config::SdkConfig,
    envelope: OnceLock<Envelope>,
    bus: OnceLock<Option<EventBus>>,
    vendors: OnceLock<Registry>,
    http: OnceLock<reqwest::Client>,
}

impl App {
    /// Seals and opens tokens (KMS data keys, cached).
    pub fn envelope(&self) -> &Envelope {
        self.envelope.get_or_init(|| {
            Envelope::new(
                Box::new(KmsKeys::new(
                    SdkClient::on_first_use(&self.sdk, aws_sdk_kms::Client::new),
                    self.config.kms_key_id.clone(),
                )),
                &self.config.connections_table,
                CacheLimits::default(),
            )
        })
    }

    /// The EventBridge bus events are put on (the app-events function), if configured.
    pub fn bus(&self) -> Option<&EventBus> {
        self.bus
            .get_or_init(|| {
                self.config.app_event_bus.clone().map(|name| {
                    EventBus::new(
                        SdkClient::on_first_use(&self.sdk, aws_sdk_eventbridge::Client::new),
                        name,
                    )
                })
            })
            .as_ref()
    }

    /// The vendor drivers.
    pub fn vendors(&self) -> Result<&Registry> {
        if let Some(made) = self.vendors.get() {
            return Ok(made);
        }
        let made = Registry::build(&DriverDeps {
            ephemeral: &self.ephemeral,
            env: &self.env,
        })?;
        Ok(self.vendors.get_or_init(|| made))
    }

    /// The HTTP client for vendor calls: no redirects, 10 s timeout.
    pub fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(crate::vendors::token::http_client)
    }

    /// A vendor's app registration as configured now.
    pub async fn vendor_credentials(&self, vendor: Vendor) -> Result<VendorCredentials> {
        VendorCredentials::load(&self.credentials, registry::spec(vendor)).await
    }

    /// Whether `vendor` is on in this deployment (the Mock vendor only when
    /// configured so).
    pub fn vendor_enabled(&self, vendor: Vendor) -> bool {
        vendor != Vendor::Mock || self.config.mock_enabled
    }

    /// A vendor's driver with what it needs to call the vendor.
    pub async fn driver(&self, vendor: Vendor) -> Result<(Arc<Driver>, VendorCtx)> {
        if !self.vendor_enabled(vendor) {
            return Err(Error::Conflict(format!(
                "vendor {vendor} is off in this deployment; the EnableMockVendor parameter (CONNECTOR_MOCK_ENABLED=true) turns it on"
            )));
        }
        let driver = self.vendors()?.driver(vendor)?.clone();
        let ctx = VendorCtx::new(
            self.http().clone(),
            self.vendor_credentials(vendor).await?,
            CallBudget::new(self.quota.clone(), vendor),
        );
        Ok((driver, ctx))
    }

    /// The app built from the process environment.
    pub async fn from_env() -> Result<Self> {
        Self::new(Env::process()).await
    }

    /// The app built from `env`: configuration, AWS clients, stores and drivers.
    pub async fn new(env: Env) -> Result<Self> {
        let config = Config::from_env(&env)?;
        let sdk = crate::aws::aws_config(config.aws_endpoint.as_deref());
        Self::build(env, config, &sdk).await
    }

    /// The app built from `env` on AWS clients of `sdk` (the local stack
    /// gives each function its own role's credentials this way).
    pub async fn with_sdk(env: Env, sdk: &aws_config::SdkConfig) -> Result<Self> {
        let config = Config::from_env(&env)?;
        Self::build(env, config, sdk).await
    }

    async fn build(env: Env, config: Config, sdk: &aws_config::SdkConfig) -> Result<Self> {
        // Read now, so a bad setting stops the function at start.
        registry::check_settings(&env)?;
        let dynamo = SdkClient::on_first_use(sdk, aws_sdk_dynamodb::Client::new);
        let ephemeral = EphemeralStore::new(dynamo.clone(), config.ephemeral_table.clone());
        let secrets_manager = SdkClient::on_first_use(sdk, aws_sdk_secretsmanager::Client::new);
        let secrets = config
            .secret_arn
            .clone()
            .map(|arn| (secrets_manager.clone(), arn));
        let push_secret = config
            .push_secret_arn
            .clone()
            .map(|arn| (secrets_manager.clone(), arn));
        let app_webhook_secret = config
            .app_webhook_secret_arn
            .clone()
            .map(|arn| (secrets_manager, arn));
        let sqs = SdkClient::on_first_use(sdk, aws_sdk_sqs::Client::new);
        let quota = Arc::new(FleetQuota::from_env(ephemeral.clone(), &env, |v| {
            registry::spec(v).quota
        })?);
        Ok(Self {
            connections: ConnectionStore::new(dynamo.clone(), config.connections_table.clone()),
            health: HealthStore::new(dynamo.clone(), config.health_table.clone()),
            events: EventStore::new(dynamo, config.events_table.clone()),
            queue: JobQueue::new(
                sqs.clone(),
                config.sync_queue_url.clone(),
                config.backfill_queue_url.clone(),
            ),
            outbox: Outbox::new(
                sqs,
                config.app_events_queue_url.clone(),
                config.app_event_channels(),
            ),
            app_webhook_secret: Secrets::new(env.clone(), app_webhook_secret),
            push_secret: Secrets::new(env.clone(), push_secret),
            credentials: Secrets::new(env.clone(), secrets),
            sdk: sdk.clone(),
            envelope: OnceLock::new(),
            bus: OnceLock::new(),
            vendors: OnceLock::new(),
            http: OnceLock::new(),
            quota,
            deliveries: Arc::new(DeliveryLimiter::new(config.webhook_per_source_per_sec)),
            status: Arc::default(),
            ephemeral,
            env,
            config,
        })
    }
}

/// What every function's `main` sets up first: JSON logs
/// ([`init_logging`]) and the metrics' EMF recorder (`aws::metrics`).
pub fn init_telemetry() {
    init_logging();
    crate::aws::metrics::init();
}

/// Structured JSON logs, one line per event, filtered by RUST_LOG: a
/// default level and per-target levels (`info`, `warn,connector_core=debug`);
/// targets not named log at `info` unless a default level is given, so a
/// typo never silences a function.
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .without_time()
        .with_target(false)
        .finish()
        .with(filter)
        .try_init();
}

fn log_filter(rust_log: Option<&str>) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::Targets;
    let parsed: Targets = rust_log.and_then(|v| v.parse().ok()).unwrap_or_default();
    // An empty target ("=warn") would be a prefix of every target.
    parsed.iter().filter(|(target, _)| !target.is_empty()).fold(
        Targets::new().with_default(
            parsed
                .default_level()
                .unwrap_or(tracing::level_filters::LevelFilter::INFO),
        ),
        |filter, (target, level)| filter.with_target(target, level),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn app(extra: &[(&str, &str)]) -> Result<App> {
        let mut vars = vec![
            (
                "CONNECTOR_SECRET_ARN",
                "arn:aws:secretsmanager:us-east-1:1:secret:fake",
            ),
            ("CONNECTOR_APP_EVENT_BUS", "bus"),
        ];
        vars.extend_from_slice(extra);
        let sdk = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("us-east-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        crate::vendors::testing::block_on(App::with_sdk(
            crate::domain::config::test_env(&vars),
            &sdk,
        ))
    }

    #[test]
    fn nothing_that_calls_out_is_made_before_its_first_use() {
        let app = app(&[]).unwrap();
        assert!(!app.ephemeral.db.is_made(), "DynamoDB client");
        assert!(app.envelope.get().is_none() && app.bus.get().is_none());
        assert!(app.vendors.get().is_none());
        assert!(app.http.get().is_none());
        let _ = app.envelope();
        assert!(app.bus().is_some() && app.bus.get().is_some());
        assert!(app.vendors().unwrap().get(Vendor::Oura).is_some());
        let _ = app.http();
        assert!(app.vendors.get().is_some() && app.http.get().is_some());
        assert!(!app.ephemeral.db.is_made());
    }

    #[test]
    fn a_bad_driver_setting_still_stops_the_function_at_start() {
        let refused = app(&[("CONNECTOR_MOCK_ACCESS_TTL_SECS", "soon")]);
        assert!(
            matches!(&refused, Err(Error::Config(m)) if m.contains("CONNECTOR_MOCK_ACCESS_TTL_SECS")),
            "{:?}",
            refused.err()
        );
    }

    #[test]
    fn rust_log_sets_a_default_level_and_levels_per_target() {
        let f = log_filter(Some("warn,connector_core=debug"));
        assert!(f.would_enable("connector_core::flows::sync", &Level::DEBUG));
        assert!(!f.would_enable("connector_core::flows::sync", &Level::TRACE));
        assert!(f.would_enable("aws_smithy_runtime", &Level::WARN));
        assert!(!f.would_enable("aws_smithy_runtime", &Level::INFO));
        let f = log_filter(Some("connector_core=debug"));
        assert!(f.would_enable("connector_core::aws", &Level::DEBUG));
        assert!(f.would_enable("webhook", &Level::INFO));
        for unset_or_unreadable in [None, Some("loud please"), Some("=")] {
            let f = log_filter(unset_or_unreadable);
            assert!(
                f.would_enable("webhook", &Level::INFO),
                "{unset_or_unreadable:?}: {f:?}"
            );
            assert!(
                !f.would_enable("webhook", &Level::DEBUG),
                "{unset_or_unreadable:?}: {f:?}"
            );
        }
    }
}
