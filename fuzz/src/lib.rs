//! What the fuzz targets share: a readable input format, the vendors'
//! fake app credentials, correct authentication on demand, and the
//! properties every webhook answer must have.
//!
//! Input format (so seeds are plain text files):
//! - byte 0: bit 0 asks the harness to authenticate the delivery as the
//!   vendor would (sign it, or present the shared secret); bits 1–2 pick
//!   the method (POST, GET, HEAD, PUT);
//! - then lines up to an empty line: `name: value` is a header, `?key=value`
//!   a query parameter;
//! - the rest is the body.

use chrono::{DateTime, TimeZone, Utc};
use connector_core::aws::secrets::Secrets;
use connector_core::domain::env::Env;
use connector_core::domain::error::Error;
use connector_core::domain::vendor::Vendor;
use connector_core::vendors::client::VendorCtx;
use connector_core::vendors::credentials::VendorCredentials;
use connector_core::vendors::driver::DriverDeps;
use connector_core::vendors::driver::{VendorDriver, WebhookReply, WebhookRequest};
use connector_core::vendors::registry::Registry;
use connector_core::vendors::signature::{SignatureScheme, TimestampUnit};
use connector_core::vendors::{mock::MockVendor, oura, polar, terra, whoop};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

pub mod apigw;
pub mod push;
pub mod schemes;

pub use connector_core::domain::vendor::Vendor as Target;

pub const CLIENT_ID: &str = "fake-client-id";
pub const CLIENT_SECRET: &str = "fake-client-secret-for-fuzzing";
pub const WEBHOOK_SECRET: &str = "fake-webhook-secret-for-fuzzing";
pub const VERIFY_TOKEN: &str = "fake-verify-token-for-fuzzing";
pub const SUBSCRIPTION_ID: &str = "424242";
const SECRETS: [&str; 3] = [CLIENT_SECRET, WEBHOOK_SECRET, VERIFY_TOKEN];

/// DynamoDB's limit on a sort key; event and user ids become key parts.
pub const MAX_ID_BYTES: usize = 1024;

/// A fixed "now", so a run is reproducible from its input alone.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 17, 12, 0, 0).unwrap()
}

/// A decoded fuzz input.
pub struct Delivery {
    /// Byte 0, whose other bits a target may use.
    pub control: u8,
    pub authenticate: bool,
    pub method: Method,
    pub headers: HeaderMap,
    pub query: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Delivery {
    pub fn decode(data: &[u8]) -> Option<Self> {
        let (&control, mut rest) = data.split_first()?;
        let method = [Method::POST, Method::GET, Method::HEAD, Method::PUT]
            [usize::from(control >> 1) & 3]
            .clone();
        let mut headers = HeaderMap::new();
        let mut query = HashMap::new();
        loop {
            let end = rest.iter().position(|&b| b == b'\n')?;
            let (line, tail) = (&rest[..end], &rest[end + 1..]);
            rest = tail;
            if line.is_empty() {
                break;
            }
            let line = std::str::from_utf8(line).ok()?;
            if let Some(pair) = line.strip_prefix('?') {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                query.insert(k.to_string(), v.to_string());
            } else if let Some((k, v)) = line.split_once(':') {
                let name = HeaderName::from_bytes(k.trim().as_bytes()).ok()?;
                let value = HeaderValue::from_str(v.trim()).ok()?;
                headers.append(name, value);
            }
        }
        Some(Delivery {
            control,
            authenticate: control & 1 == 1,
            method,
            headers,
            query,
            body: rest.to_vec(),
        })
    }
}

fn env_for(vendor: Vendor) -> Env {
    let p = format!("CONNECTOR_{}", vendor.env_name());
    let pairs = [
        ("CLIENT_ID", CLIENT_ID),
        ("CLIENT_SECRET", CLIENT_SECRET),
        ("WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("VERIFY_TOKEN", VERIFY_TOKEN),
        ("SUBSCRIPTION_ID", SUBSCRIPTION_ID),
    ];
    Env::with_overrides(
        pairs
            .iter()
            .map(|(k, v)| (format!("{p}_{k}"), v.to_string()))
            .collect(),
    )
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

fn driver(vendor: Vendor) -> Arc<dyn VendorDriver> {
    static DRIVERS: OnceLock<Registry> = OnceLock::new();
    DRIVERS
        .get_or_init(|| {
            // The Mock driver keeps users in DynamoDB; its webhook path never
            // calls it, so a client that points nowhere is enough.
            let conf = aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
                .build();
            let db = aws_sdk_dynamodb::Client::from_conf(conf);
            let ephemeral = connector_core::aws::store::EphemeralStore::new(db, "unused".into());
            Registry::build(&DriverDeps {
                ephemeral: &ephemeral,
                env: &Env::default(),
            })
            .expect("every driver builds")
        })
        .get(vendor)
        .cloned()
        .expect("a driver for every vendor")
}

struct Harness {
    driver: Arc<dyn VendorDriver>,
    ctx: VendorCtx,
}

fn harness(vendor: Vendor) -> &'static Harness {
    static ALL: OnceLock<HashMap<Vendor, Harness>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        Vendor::ALL
            .into_iter()
            .map(|v| {
                let creds = runtime()
                    .block_on(VendorCredentials::load(
                        &Secrets::new(env_for(v), None),
                        connector_core::vendors::registry::spec(v),
                    ))
                    .expect("credentials from the environment");
                let ctx = VendorCtx::new(
                    reqwest::Client::new(),
                    creds,
                    connector_core::vendors::budget::CallBudget::unmetered(v),
                );
                (
                    v,
                    Harness {
                        driver: driver(v),
                        ctx,
                    },
                )
            })
            .collect()
    });
    &all[&vendor]
}

pub fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    headers.insert(name, HeaderValue::from_str(value).expect("ASCII value"));
}

/// `now()` as the scheme's timestamp header carries it.
pub fn now_in(unit: TimestampUnit) -> String {
    match unit {
        TimestampUnit::Millis => now().timestamp_millis().to_string(),
        _ => now().timestamp().to_string(),
    }
}

fn sign_with(scheme: SignatureScheme, secret: &str, d: &mut Delivery) {
    let ts = scheme.timestamp.map(|rule| now_in(rule.unit));
    let sig = scheme.sign(secret.as_bytes(), ts.as_deref(), &d.body);
    set(&mut d.headers, scheme.signature_header, &sig);
    if let (Some(rule), Some(ts)) = (scheme.timestamp, ts) {
        set(&mut d.headers, rule.header, &ts);
    }
}

/// What the vendor itself would add to prove the delivery is genuine.
fn authenticate(vendor: Vendor, d: &mut Delivery) {
    match vendor {
        Vendor::Mock => sign_with(MockVendor::scheme(), WEBHOOK_SECRET, d),
        Vendor::Whoop => sign_with(whoop::scheme(), CLIENT_SECRET, d),
        Vendor::Oura => {
            sign_with(oura::scheme(), CLIENT_SECRET, d);
            d.query
                .insert("verification_token".into(), VERIFY_TOKEN.into());
        }
        Vendor::Polar => sign_with(polar::scheme(), WEBHOOK_SECRET, d),
        Vendor::Terra => {
            let sig = terra::sign(WEBHOOK_SECRET.as_bytes(), now().timestamp(), &d.body);
            set(&mut d.headers, terra::SIGNATURE_HEADER, &sig);
        }
        Vendor::Fitbit => set(&mut d.headers, "authorization", WEBHOOK_SECRET),
        Vendor::Garmin => set(&mut d.headers, "garmin-client-id", CLIENT_ID),
        Vendor::Withings => {
            d.query.insert(
                connector_core::vendors::withings::CALLBACK_TOKEN_PARAM.into(),
                VERIFY_TOKEN.into(),
            );
        }
        Vendor::Strava => {
            d.query
                .insert("hub.verify_token".into(), VERIFY_TOKEN.into());
        }
        Vendor::Dexcom => {}
    }
}

/// A secret in an answer is a leak unless the input carried it already
/// (Strava echoes its challenge, whatever it holds).
fn assert_no_secret(what: &str, text: &str, input: &[u8]) {
    for s in SECRETS {
        let echoed = input.windows(s.len()).any(|w| w == s.as_bytes());
        assert!(
            echoed || !text.contains(s),
            "{what} carries a configured secret"
        );
    }
}

/// One delivery to `vendor`'s webhook driver, with the properties every
/// answer must have:
/// - nothing unauthenticated becomes an event (Strava excepted: it signs
///   nothing, and the subscription id it sends is not a secret);
/// - events have ids that fit a DynamoDB key;
/// - a refusal is a 4xx (a 5xx would make the vendor retry it forever);
/// - no answer carries a configured secret.
pub fn webhook(vendor: Vendor, data: &[u8]) {
    let Some(mut d) = Delivery::decode(data) else {
        return;
    };
    if d.authenticate {
        authenticate(vendor, &mut d);
    }
    let h = harness(vendor);
    let req = WebhookRequest {
        method: &d.method,
        headers: &d.headers,
        query: &d.query,
        body: &d.body,
        now: now(),
    };
    match runtime().block_on(h.driver.webhook(&h.ctx, &req)) {
        Ok(WebhookReply::Events(events)) => {
            assert!(
                d.authenticate || vendor == Vendor::Strava,
                "{vendor}: events from an unauthenticated delivery"
            );
            for e in events {
                for (what, id) in [("event id", &e.event_id), ("user id", &e.vendor_user_id)] {
                    assert!(
                        !id.is_empty() && id.len() <= MAX_ID_BYTES,
                        "{vendor}: {what} of {} bytes",
                        id.len()
                    );
                }
            }
        }
        Ok(WebhookReply::NotSynced { event_type }) => {
            assert!(
                d.authenticate || vendor == Vendor::Strava,
                "{vendor}: an unauthenticated delivery acknowledged"
            );
            assert!(
                event_type.len() <= 64,
                "{vendor}: event type of {} bytes",
                event_type.len()
            );
        }
        Ok(WebhookReply::Handshake { status, body, .. }) => {
            assert!((200..500).contains(&status), "{vendor}: handshake {status}");
            assert_no_secret("handshake", &body, data);
        }
        Err(e) => refusal(vendor.as_str(), &e, data),
    }
}

/// A refusal of hostile input: a 4xx whose message carries no secret.
pub fn refusal(what: &str, e: &Error, input: &[u8]) {
    assert!(
        (400..500).contains(&e.status()),
        "{what}: refused with {} ({e})",
        e.status()
    );
    assert_no_secret(what, &e.to_string(), input);
}
