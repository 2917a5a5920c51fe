//! Deployment configuration, read once at start-up. The same names are used
//! in AWS (template.yaml fills them) and locally (the local stack fills them).

use crate::domain::env::Env;
use crate::domain::error::{Error, Result};
use url::Url;

/// Days of history pulled on connect when `CONNECTOR_BACKFILL_DAYS` is unset.
pub const DEFAULT_BACKFILL_DAYS: u32 = 14;
/// Most days one sync job, backfill or report may cover.
pub const MAX_WINDOW_DAYS: u32 = 90;

/// The deployment's configuration, from `CONNECTOR_*` variables.
#[derive(Clone, Debug)]
pub struct Config {
    /// The Connections table's name.
    pub connections_table: String,
    /// The Ephemeral table's name.
    pub ephemeral_table: String,
    /// The Events table (the change feed).
    pub events_table: String,
    /// The Health table's name.
    pub health_table: String,
    /// The URL of the live sync-job queue (and of history jobs without their own).
    pub sync_queue_url: String,
    /// History jobs; unset: they share the sync queue (no live-first).
    pub backfill_queue_url: Option<String>,
    /// The KMS key that wraps the token data keys.
    pub kms_key_id: String,
    /// Secrets Manager secret holding vendor credentials (JSON keyed by the
    /// env-var names). Unset locally: credentials then come from the env.
    pub secret_arn: Option<String>,
    /// Secrets Manager secret holding the phone-push signing secret
    /// (`CONNECTOR_PUSH_SECRET`), which only the health-push function may
    /// read. Unset locally: it then comes from the env.
    pub push_secret_arn: Option<String>,
    /// App URLs the OAuth callback may redirect to; the first is the default.
    pub return_urls: Vec<Url>,
    /// Public origin of the HTTP API, for OAuth redirect URIs. Unset in a
    /// first deploy: the request's own domain is used then.
    pub public_base_url: Option<Url>,
    /// Days of history pulled on connect, 1 to `MAX_WINDOW_DAYS`.
    pub backfill_days: u32,
    /// Endpoint of a local AWS emulator; unset in AWS.
    pub aws_endpoint: Option<String>,
    /// How far a phone push's timestamp may be from now.
    pub push_window_secs: i64,
    /// Phone pushes per user per minute.
    pub push_rate_per_min: u32,
    /// The least time between the starts of two webhook-driven pulls of one
    /// user at a vendor whose webhooks anyone could forge (Garmin, Strava), in seconds.
    pub unsigned_pull_gap_secs: u32,
    /// Whether the Mock vendor (no consent, made-up data) is on; off unless
    /// `CONNECTOR_MOCK_ENABLED` is `true`.
    pub mock_enabled: bool,
    /// Manual syncs (`POST /v1/sync`) one user may ask of one vendor per hour.
    pub manual_syncs_per_hour: u32,
    /// The least time between the starts of two manual pulls of one user at
    /// one vendor, in seconds (0: none): a sync asked sooner waits for it.
    pub manual_sync_gap_secs: u32,
    /// Connects one user may start per hour.
    pub connect_starts_per_hour: u32,
    /// How long `DELETE /v1/me` deletes pages itself before it hands the
    /// rest to the sync worker, in milliseconds (the HTTP API gives up at 30 s).
    pub erasure_inline_ms: u64,
    /// How long one sync-worker step of an erasure deletes pages, in
    /// milliseconds (the function's timeout is 60 s).
    pub erasure_pass_ms: u64,
    /// Seconds from an erasure's last page to its final sweep: longer than
    /// a sync job can run, so a job that loaded the connection before it was
    /// deleted has written what it will.
    pub erasure_sweep_delay_secs: u32,
    /// Webhook deliveries a second one source address may make to one
    /// vendor's route in one process (bursts of twice that).
    pub webhook_per_source_per_sec: u32,
    /// The queues' maxReceiveCount: a job failing on this receive goes to
    /// the dead-letter queue (counted as dead-lettered, not retried).
    pub job_max_receives: u32,
    /// The AppEvents queue: every event to the app is queued there once
    /// per channel. Unset: events are only kept in the change feed.
    pub app_events_queue_url: Option<String>,
    /// The EventBridge bus events go to (a channel when set).
    pub app_event_bus: Option<String>,
    /// The app's HTTP endpoint for signed events (a channel when set).
    pub app_webhook_url: Option<Url>,
    /// Secrets Manager secret holding `CONNECTOR_APP_WEBHOOK_SECRET`, which
    /// only the app-events function may read. Unset locally: the env's.
    pub app_webhook_secret_arn: Option<String>,
    /// The AppEvents queue's maxReceiveCount: a delivery failing on this
    /// receive goes to its dead-letter queue.
    pub app_event_max_receives: u32,
    /// The longest wait between two tries of a failed delivery, in seconds.
    pub app_event_backoff_cap_secs: u64,
}

/// `name` parsed and within `lo..=hi`; `default` when unset.
pub(crate) fn bounded<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    env: &Env,
    name: &str,
    default: T,
    lo: T,
    hi: T,
) -> Result<T> {
    match env.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<T>()
            .ok()
            .filter(|x| *x >= lo && *x <= hi)
            .ok_or_else(|| Error::Config(format!("{name} must be {lo}..={hi}, got {v:?}"))),
    }
}

/// The app's webhook URL: http(s) with a host. The error never repeats the
/// URL (it may carry a credential of the app's).
fn webhook_url(text: &str) -> Result<Url> {
    let url = Url::parse(text.trim())
        .map_err(|e| Error::Config(format!("CONNECTOR_APP_WEBHOOK_URL is not a URL: {e}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(Error::Config(
            "CONNECTOR_APP_WEBHOOK_URL must be an http(s) URL with a host".into(),
        ));
    }
    Ok(url)
}

impl Config {
    /// The channels every event is delivered to: the bus and the webhook,
    /// each when configured.
    pub fn app_event_channels(&self) -> Vec<crate::domain::app_event::Channel> {
        use crate::domain::app_event::Channel;
        let mut channels = Vec::new();
        if self.app_event_bus.is_some() {
            channels.push(Channel::Bus);
        }
        if self.app_webhook_url.is_some() {
            channels.push(Channel::Webhook);
        }
        channels
    }

    /// Reads and checks the configuration; a missing required name is an error.
    pub fn from_env(env: &Env) -> Result<Self> {
        let required = |name: &str| {
            env.get(name)
                .ok_or_else(|| Error::Config(format!("{name} is not set")))
        };
        let return_urls = env
            .get("CONNECTOR_RETURN_URLS")
            .unwrap_or_else(|| "http://localhost:3000/connected".into())
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                Url::parse(s)
                    .map_err(|e| Error::Config(format!("CONNECTOR_RETURN_URLS entry {s:?}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        if return_urls.is_empty() {
            return Err(Error::Config("CONNECTOR_RETURN_URLS is empty".into()));
        }
        let public_base_url = env
            .get("CONNECTOR_PUBLIC_BASE_URL")
            .map(|b| Url::parse(&b))
            .transpose()
            .map_err(|e| Error::Config(format!("CONNECTOR_PUBLIC_BASE_URL: {e}")))?;
        let backfill_days = bounded(
            env,
            "CONNECTOR_BACKFILL_DAYS",
            DEFAULT_BACKFILL_DAYS,
            1,
            MAX_WINDOW_DAYS,
        )?;
        Ok(Self {
            connections_table: required("CONNECTOR_CONNECTIONS_TABLE")?,
            ephemeral_table: required("CONNECTOR_EPHEMERAL_TABLE")?,
            events_table: required("CONNECTOR_EVENTS_TABLE")?,
            health_table: required("CONNECTOR_HEALTH_TABLE")?,
            sync_queue_url: required("CONNECTOR_SYNC_QUEUE_URL")?,
            backfill_queue_url: env
                .get("CONNECTOR_BACKFILL_QUEUE_URL")
                .filter(|u| !u.trim().is_empty()),
            kms_key_id: required("CONNECTOR_KMS_KEY_ID").map_err(|_| {
                Error::Config(
                    "CONNECTOR_KMS_KEY_ID is not set: tokens are only ever stored encrypted".into(),
                )
            })?,
            secret_arn: env.get("CONNECTOR_SECRET_ARN"),
            push_secret_arn: env.get("CONNECTOR_PUSH_SECRET_ARN"),
            return_urls,
            public_base_url,
            backfill_days,
            aws_endpoint: env.get("CONNECTOR_AWS_ENDPOINT"),
            push_window_secs: bounded(env, "CONNECTOR_PUSH_WINDOW_SECS", 300, 30, 3600)?,
            push_rate_per_min: bounded(env, "CONNECTOR_PUSH_RATE_PER_MIN", 30, 1, 6000)?,
            unsigned_pull_gap_secs: bounded(env, "CONNECTOR_UNSIGNED_PULL_GAP_SECS", 300, 1, 900)?,
            mock_enabled: match env.get("CONNECTOR_MOCK_ENABLED").as_deref().map(str::trim) {
                None | Some("") | Some("false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(Error::Config(format!(
                        "CONNECTOR_MOCK_ENABLED must be true or false, not {other:?}"
                    )))
                }
            },
            manual_syncs_per_hour: bounded(env, "CONNECTOR_MANUAL_SYNCS_PER_HOUR", 12, 1, 3600)?,
            manual_sync_gap_secs: bounded(env, "CONNECTOR_MANUAL_SYNC_GAP_SECS", 60, 0, 900)?,
            connect_starts_per_hour: bounded(
                env,
                "CONNECTOR_CONNECT_STARTS_PER_HOUR",
                20,
                1,
                3600,
            )?,
            erasure_inline_ms: bounded(env, "CONNECTOR_ERASURE_INLINE_MS", 8_000, 0, 20_000)?,
            erasure_pass_ms: bounded(env, "CONNECTOR_ERASURE_PASS_MS", 40_000, 0, 45_000)?,
            erasure_sweep_delay_secs: bounded(
                env,
                "CONNECTOR_ERASURE_SWEEP_DELAY_SECS",
                120,
                0,
                900,
            )?,
            webhook_per_source_per_sec: bounded(
                env,
                "CONNECTOR_WEBHOOK_PER_SOURCE_PER_SEC",
                20,
                1,
                5000,
            )?,
            job_max_receives: bounded(env, "CONNECTOR_JOB_MAX_RECEIVES", 5, 1, 1000)?,
            app_events_queue_url: env.get("CONNECTOR_APP_EVENTS_QUEUE_URL"),
            app_event_bus: env.get("CONNECTOR_APP_EVENT_BUS"),
            app_webhook_url: env
                .get("CONNECTOR_APP_WEBHOOK_URL")
                .map(|u| webhook_url(&u))
                .transpose()?,
            app_webhook_secret_arn: env.get("CONNECTOR_APP_WEBHOOK_SECRET_ARN"),
            app_event_max_receives: bounded(env, "CONNECTOR_APP_EVENT_MAX_RECEIVES", 12, 1, 1000)?,
            app_event_backoff_cap_secs: bounded(
                env,
                "CONNECTOR_APP_EVENT_BACKOFF_CAP_SECS",
                900,
                1,
                43_200,
            )?,
        })
    }

    /// The configured return URL that `requested` names, or the default one;
    /// the connector's own connect page (`/v1/connect` on the public origin)
    /// is always one. Anything else is refused: no open redirects.
    pub fn return_url(&self, requested: Option<&str>, request_domain: Option<&str>) -> Result<Url> {
        let Some(r) = requested else {
            return Ok(self.return_urls[0].clone());
        };
        let same = |u: &Url| u.as_str() == r || u.as_str().trim_end_matches('/') == r;
        if let Some(u) = self.return_urls.iter().find(|u| same(u)) {
            return Ok(u.clone());
        }
        match self.public_url(CONNECT_PAGE_PATH, request_domain) {
            Ok(page) if same(&page) => Ok(page),
            _ => Err(Error::BadRequest(
                "return_url is not a configured return URL".into(),
            )),
        }
    }

    /// The OAuth redirect URI of a vendor: on the configured public origin,
    /// else on the domain the request came in on.
    pub fn callback_url(
        &self,
        vendor: crate::domain::vendor::Vendor,
        request_domain: Option<&str>,
    ) -> Result<Url> {
        self.public_url(
            &format!("/v1/oauth/{}/callback", vendor.as_str()),
            request_domain,
        )
    }

    /// `path` on the configured public origin, else on the domain the
    /// request came in on.
    fn public_url(&self, path: &str, request_domain: Option<&str>) -> Result<Url> {
        let mut url = match (&self.public_base_url, request_domain) {
            (Some(base), _) => base.clone(),
            (None, Some(domain)) => Url::parse(&format!("https://{domain}"))
                .map_err(|e| Error::Config(format!("request domain {domain:?}: {e}")))?,
            (None, None) => {
                return Err(Error::Config(
                    "CONNECTOR_PUBLIC_BASE_URL is not set and the request names no domain".into(),
                ))
            }
        };
        url.set_path(path);
        Ok(url)
    }
}

/// Where the connector serves its own connect page, which is always a
/// return URL.
pub const CONNECT_PAGE_PATH: &str = "/v1/connect";

/// A configuration's environment for tests: every required setting with a
/// fake value, and `pairs` over them.
#[cfg(test)]
pub(crate) fn test_env(pairs: &[(&str, &str)]) -> Env {
    let mut m: std::collections::HashMap<String, String> = [
        ("CONNECTOR_CONNECTIONS_TABLE", "c"),
        ("CONNECTOR_EPHEMERAL_TABLE", "e"),
        ("CONNECTOR_EVENTS_TABLE", "ev"),
        ("CONNECTOR_HEALTH_TABLE", "h"),
        ("CONNECTOR_SYNC_QUEUE_URL", "http://q"),
        ("CONNECTOR_KMS_KEY_ID", "k"),
        (
            "CONNECTOR_RETURN_URLS",
            "https://app.example.com/done, https://other.example.com/x",
        ),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in pairs {
        m.insert(k.to_string(), v.to_string());
    }
    Env::with_overrides(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        test_env(pairs)
    }

    #[test]
    fn events_go_to_the_channels_configured_and_a_bad_webhook_url_is_refused_unrepeated() {
        use crate::domain::app_event::Channel;
        let none = Config::from_env(&env(&[("CONNECTOR_APP_WEBHOOK_URL", " ")])).unwrap();
        assert!(none.app_event_channels().is_empty());
        let both = Config::from_env(&env(&[
            ("CONNECTOR_APP_EVENT_BUS", "bus"),
            ("CONNECTOR_APP_WEBHOOK_URL", "https://app.example.com/hooks"),
        ]))
        .unwrap();
        assert_eq!(both.app_event_channels(), [Channel::Bus, Channel::Webhook]);
        for bad in [
            "ftp://app.example.com/x",
            "https://",
            "not a url?token=fake-s3cret",
        ] {
            let err = Config::from_env(&env(&[("CONNECTOR_APP_WEBHOOK_URL", bad)])).unwrap_err();
            assert!(
                err.to_string().contains("CONNECTOR_APP_WEBHOOK_URL"),
                "{err}"
            );
            assert!(!err.to_string().contains("fake-s3cret"), "{err}");
        }
    }

    #[test]
    fn missing_kms_key_is_a_startup_error() {
        let err = Config::from_env(&env(&[("CONNECTOR_KMS_KEY_ID", " ")])).unwrap_err();
        assert!(err.to_string().contains("CONNECTOR_KMS_KEY_ID"), "{err}");
    }

    #[test]
    fn return_url_only_from_configured_list() {
        let c = Config::from_env(&env(&[])).unwrap();
        assert_eq!(
            c.return_url(None, None).unwrap().as_str(),
            "https://app.example.com/done"
        );
        assert_eq!(
            c.return_url(Some("https://other.example.com/x"), None)
                .unwrap()
                .as_str(),
            "https://other.example.com/x"
        );
        assert!(c
            .return_url(Some("https://evil.example.com/"), None)
            .is_err());
    }

    #[test]
    fn the_connect_page_on_the_public_origin_is_a_return_url_and_no_other_origins_is() {
        let behind = Config::from_env(&env(&[(
            "CONNECTOR_PUBLIC_BASE_URL",
            "https://api.example.com",
        )]))
        .unwrap();
        let page = "https://api.example.com/v1/connect";
        assert_eq!(behind.return_url(Some(page), None).unwrap().as_str(), page);
        // The request's own domain does not count when a public origin is set.
        for other in [
            "https://evil.example.com/v1/connect",
            "https://api.example.com/v1/connect/x",
            "https://api.example.com/v1/dashboard",
            "http://api.example.com/v1/connect",
        ] {
            assert!(
                behind
                    .return_url(Some(other), Some("evil.example.com"))
                    .is_err(),
                "{other}"
            );
        }
        let derived = Config::from_env(&env(&[])).unwrap();
        assert_eq!(
            derived
                .return_url(
                    Some("https://abc.execute-api.us-east-1.amazonaws.com/v1/connect"),
                    Some("abc.execute-api.us-east-1.amazonaws.com")
                )
                .unwrap()
                .as_str(),
            "https://abc.execute-api.us-east-1.amazonaws.com/v1/connect"
        );
        assert!(derived.return_url(Some(page), None).is_err());
    }

    #[test]
    fn backfill_days_bounded() {
        assert_eq!(Config::from_env(&env(&[])).unwrap().backfill_days, 14);
        assert!(Config::from_env(&env(&[("CONNECTOR_BACKFILL_DAYS", "0")])).is_err());
        assert!(Config::from_env(&env(&[("CONNECTOR_BACKFILL_DAYS", "91")])).is_err());
        assert_eq!(
            Config::from_env(&env(&[("CONNECTOR_BACKFILL_DAYS", "30")]))
                .unwrap()
                .backfill_days,
            30
        );
    }
}
