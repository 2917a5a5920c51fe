//! Rotating a secret that authenticates deliveries: while
//! `CONNECTOR_<VENDOR>_<NAME>_PREVIOUS` holds the value being replaced,
//! every driver accepts a delivery made with either value, and none with a
//! third; without it, only the current value.

use super::*;
use crate::domain::error::Error;
use crate::vendors::driver::{WebhookReply, WebhookRequest};
use crate::vendors::testing::{block_on, ctx};
use chrono::Utc;
use http::{HeaderMap, HeaderValue, Method};

const CURRENT: &str = "fake-rotated-in-value";
const PREVIOUS: &str = "fake-rotated-out-value";
const UNKNOWN: &str = "fake-never-configured-value";

/// How a vendor authenticates deliveries, and one delivery made with `key`.
struct Case {
    vendor: Vendor,
    /// The variable holding the value (without `CONNECTOR_<VENDOR>_`).
    name: &'static str,
    /// Other variables the vendor needs to take a delivery.
    env: &'static [(&'static str, &'static str)],
    /// A delivery made with `key`: method, headers, query and body.
    delivery: fn(&str) -> Delivery,
}

struct Delivery {
    method: Method,
    headers: HeaderMap,
    query: HashMap<String, String>,
    body: Vec<u8>,
}

fn post(headers: &[(&'static str, String)], body: &[u8]) -> Delivery {
    let mut h = HeaderMap::new();
    for (name, value) in headers {
        h.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    Delivery {
        method: Method::POST,
        headers: h,
        query: HashMap::new(),
        body: body.to_vec(),
    }
}

fn get(query: &[(&str, &str)]) -> Delivery {
    Delivery {
        method: Method::GET,
        headers: HeaderMap::new(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: Vec::new(),
    }
}

fn whoop(key: &str) -> Delivery {
    let body = include_bytes!("../../../fixtures/vendors/whoop/webhook_recovery_updated.json");
    let ts = Utc::now().timestamp_millis().to_string();
    let sig = whoop::scheme().sign(key.as_bytes(), Some(&ts), body);
    post(
        &[
            ("x-whoop-signature", sig),
            ("x-whoop-signature-timestamp", ts),
        ],
        body,
    )
}

fn oura(key: &str) -> Delivery {
    let body = include_bytes!("../../../fixtures/vendors/oura/webhook_sleep_update.json");
    let ts = Utc::now().timestamp().to_string();
    let sig = oura::scheme()
        .sign(key.as_bytes(), Some(&ts), body)
        .to_uppercase();
    post(&[("x-oura-signature", sig), ("x-oura-timestamp", ts)], body)
}

fn oura_handshake(key: &str) -> Delivery {
    get(&[("verification_token", key), ("challenge", "fake-challenge")])
}

fn polar(key: &str) -> Delivery {
    let body = include_bytes!("../../../fixtures/vendors/polar/webhook_exercise.json");
    let sig = polar::scheme().sign(key.as_bytes(), None, body);
    post(
        &[
            ("polar-webhook-signature", sig),
            ("polar-webhook-event", "EXERCISE".into()),
        ],
        body,
    )
}

fn terra(key: &str) -> Delivery {
    let body = include_bytes!("../../../fixtures/vendors/terra/webhook_daily.json");
    let sig = terra::sign(key.as_bytes(), Utc::now().timestamp(), body);
    post(&[("terra-signature", sig)], body)
}

fn fitbit(key: &str) -> Delivery {
    let body = include_bytes!("../../../fixtures/vendors/fitbit/notification.json");
    post(&[("authorization", key.to_string())], body)
}

fn withings(key: &str) -> Delivery {
    let body = include_bytes!("../../../fixtures/vendors/withings/notification_appli44_sleep.txt");
    let mut d = post(
        &[(
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        )],
        body,
    );
    d.query
        .insert(withings::CALLBACK_TOKEN_PARAM.to_string(), key.to_string());
    d
}

fn strava_handshake(key: &str) -> Delivery {
    get(&[
        ("hub.mode", "subscribe"),
        ("hub.challenge", "fake-challenge"),
        ("hub.verify_token", key),
    ])
}

const CASES: [Case; 8] = [
    Case {
        vendor: Vendor::Whoop,
        name: "CLIENT_SECRET",
        env: &[("CONNECTOR_WHOOP_CLIENT_ID", "fake-whoop-client")],
        delivery: whoop,
    },
    Case {
        vendor: Vendor::Oura,
        name: "CLIENT_SECRET",
        env: &[("CONNECTOR_OURA_CLIENT_ID", "fake-oura-client")],
        delivery: oura,
    },
    Case {
        vendor: Vendor::Oura,
        name: "VERIFY_TOKEN",
        env: &[],
        delivery: oura_handshake,
    },
    Case {
        vendor: Vendor::Polar,
        name: "WEBHOOK_SECRET",
        env: &[],
        delivery: polar,
    },
    Case {
        vendor: Vendor::Terra,
        name: "WEBHOOK_SECRET",
        env: &[],
        delivery: terra,
    },
    Case {
        vendor: Vendor::Fitbit,
        name: "WEBHOOK_SECRET",
        env: &[],
        delivery: fitbit,
    },
    Case {
        vendor: Vendor::Withings,
        name: "VERIFY_TOKEN",
        env: &[],
        delivery: withings,
    },
    Case {
        vendor: Vendor::Strava,
        name: "VERIFY_TOKEN",
        env: &[],
        delivery: strava_handshake,
    },
];

fn driver(vendor: Vendor) -> Arc<dyn VendorDriver> {
    match vendor {
        Vendor::Whoop => Arc::new(whoop::Whoop),
        Vendor::Oura => Arc::new(oura::Oura),
        Vendor::Polar => Arc::new(polar::Polar),
        Vendor::Terra => Arc::new(terra::Terra),
        Vendor::Fitbit => Arc::new(fitbit::Fitbit),
        Vendor::Withings => Arc::new(withings::Withings),
        Vendor::Strava => Arc::new(strava::Strava),
        other => unreachable!("{other} has no case"),
    }
}

/// Whether `case`'s driver takes a delivery made with `key`, given the
/// configured `current` and `previous` values.
fn accepts(case: &Case, key: &str, current: &str, previous: Option<&str>) -> bool {
    let var = format!("CONNECTOR_{}_{}", case.vendor.env_name(), case.name);
    let previous_var = format!("{var}_PREVIOUS");
    let mut env: Vec<(&str, &str)> = case.env.to_vec();
    env.push((&var, current));
    if let Some(p) = previous {
        env.push((&previous_var, p));
    }
    let ctx = ctx(case.vendor, &env);
    let d = (case.delivery)(key);
    let req = WebhookRequest {
        method: &d.method,
        headers: &d.headers,
        query: &d.query,
        body: &d.body,
        now: Utc::now(),
    };
    match block_on(driver(case.vendor).webhook(&ctx, &req)) {
        Ok(WebhookReply::Handshake { status, .. }) => status < 300,
        Ok(_) => true,
        Err(Error::Unauthorized(_)) => false,
        Err(other) => panic!("{} {}: {other}", case.vendor, case.name),
    }
}

#[test]
fn during_a_rotation_both_values_are_accepted_and_no_third() {
    for case in &CASES {
        let what = format!("{} {}", case.vendor, case.name);
        assert!(
            accepts(case, CURRENT, CURRENT, Some(PREVIOUS)),
            "{what}: current"
        );
        assert!(
            accepts(case, PREVIOUS, CURRENT, Some(PREVIOUS)),
            "{what}: previous"
        );
        assert!(
            !accepts(case, UNKNOWN, CURRENT, Some(PREVIOUS)),
            "{what}: unknown"
        );
    }
}

#[test]
fn after_a_rotation_only_the_current_value_is_accepted() {
    for case in &CASES {
        let what = format!("{} {}", case.vendor, case.name);
        assert!(accepts(case, CURRENT, CURRENT, None), "{what}: current");
        assert!(!accepts(case, PREVIOUS, CURRENT, None), "{what}: previous");
        // A previous value alone, with no current one, opens nothing.
        assert!(
            !accepts(case, PREVIOUS, "", Some(PREVIOUS)),
            "{what}: previous alone"
        );
    }
}
