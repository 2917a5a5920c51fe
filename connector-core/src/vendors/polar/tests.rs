//! Golden tests: Polar-shaped payloads (connector-core/fixtures/vendors/polar,
//! see its README) → exact normalized values; webhook vectors and PING.

use super::*;
use crate::vendors::driver::WebhookRequest;
use crate::vendors::testing::{self, block_on, daily};
use http::{HeaderMap, HeaderValue, Method};
use std::collections::HashMap;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../../fixtures/vendors/polar/", $name))
    };
}

fn parsed<T: serde::de::DeserializeOwned + Clone>(values: Vec<serde_json::Value>) -> Vec<T> {
    firsts(&parse_all::<T>("fixture", values).unwrap())
}

fn collections() -> Collections {
    let exercises: Vec<serde_json::Value> =
        serde_json::from_str(fixture!("exercises_list.json")).unwrap();
    let nights: Nights = serde_json::from_str(fixture!("sleep_list.json")).unwrap();
    let recharges: Recharges =
        serde_json::from_str(fixture!("nightly_recharge_list.json")).unwrap();
    let activities: Vec<serde_json::Value> =
        serde_json::from_str(fixture!("activities_list.json")).unwrap();
    Collections {
        exercises: parsed(exercises),
        sleep: parsed(nights.nights),
        recharge: parsed(recharges.recharges),
        activities: parsed(activities),
        heart_rate: vec![
            serde_json::from_str(fixture!("continuous_heart_rate_date.json")).unwrap(),
        ],
    }
}

#[test]
fn golden_daily_values() {
    let s = normalize(&collections());
    let expect = [
        (MetricType::SleepDuration, "2026-11-21", 440.0),
        (MetricType::SleepScore, "2026-11-21", 82.0),
        (MetricType::Hrv, "2026-11-21", 62.0),
        (MetricType::Steps, "2026-11-20", 7804.0),
        (MetricType::Steps, "2026-11-21", 9120.0),
        (MetricType::Calories, "2026-11-20", 2210.0),
        (MetricType::Calories, "2026-11-21", 2350.0),
    ];
    for (metric, date, value) in expect {
        assert_eq!(daily(&s, metric, date), Some(value), "{metric:?} on {date}");
    }
    // Decision: nightly recharge heart_rate_avg is not a resting HR.
    assert!(s.iter().all(|x| x.metric != MetricType::RestingHr));
    // Sleep is on Polar's date, not the bedtime's.
    assert_eq!(daily(&s, MetricType::SleepDuration, "2026-11-20"), None);
    assert!(s.iter().all(|x| x.source == "polar"));
}

/// Polar's description gives an activity day's `start_time` and `end_time`
/// in UTC; its own fixtures (and the deprecated transactional resource)
/// read as local. Either way the day is the local one, east of UTC too.
#[test]
fn an_activity_day_is_the_users_local_day_whichever_clock_its_times_use() {
    let day = |start: &str, end: &str| {
        let a: Vec<Activity> = parsed(vec![serde_json::json!({
            "start_time": start, "end_time": end, "steps": 1000, "calories": 2000
        })]);
        a[0].date().to_string()
    };
    // UTC+1: the local 21st runs from 23:00 UTC on the 20th.
    assert_eq!(
        day("2026-11-20T23:00:00", "2026-11-21T22:59:59"),
        "2026-11-21"
    );
    // UTC+10 (Sydney in winter).
    assert_eq!(
        day("2026-07-20T14:00:00", "2026-07-21T13:59:59"),
        "2026-07-21"
    );
    // UTC-5.
    assert_eq!(
        day("2026-11-21T05:00:00", "2026-11-22T04:59:59"),
        "2026-11-21"
    );
    // Local times.
    assert_eq!(
        day("2026-11-21T00:00:00", "2026-11-21T23:59:59"),
        "2026-11-21"
    );
}

#[test]
fn golden_exercise_local_day_utc_start_and_units() {
    let s = normalize(&collections());
    let get = |m: MetricType| {
        s.iter()
            .find(|x| x.metric == m)
            .map(|x| {
                (
                    x.date.to_string(),
                    x.time.unwrap().to_rfc3339(),
                    x.value,
                    x.label.clone().unwrap(),
                )
            })
            .unwrap()
    };
    assert_eq!(
        get(MetricType::WorkoutDuration),
        (
            "2026-11-21".into(),
            "2026-11-21T17:05:00+00:00".into(),
            45.5,
            "RUNNING".into()
        )
    );
    assert_eq!(get(MetricType::WorkoutCalories).2, 480.0);
    assert_eq!(get(MetricType::WorkoutDistance).2, 8200.0);
}

#[test]
fn golden_continuous_heart_rate_stays_on_the_local_day() {
    let s = normalize(&collections());
    let hr: Vec<(String, String, f64)> = s
        .iter()
        .filter(|x| x.metric == MetricType::HeartRate)
        .map(|x| (x.date.to_string(), x.time.unwrap().to_rfc3339(), x.value))
        .collect();
    assert_eq!(
        hr,
        [
            (
                "2026-11-21".into(),
                "2026-11-20T23:02:08+00:00".into(),
                62.0
            ),
            (
                "2026-11-21".into(),
                "2026-11-20T23:07:08+00:00".into(),
                65.0
            ),
            (
                "2026-11-21".into(),
                "2026-11-21T11:30:08+00:00".into(),
                71.0
            ),
        ]
    );
}

#[test]
fn single_day_documents_match_the_lists() {
    let e: Exercise = serde_json::from_str(fixture!("exercise_get.json")).unwrap();
    assert_eq!(e.id, "aB3xY9");
    let s: Sleep = serde_json::from_str(fixture!("sleep_date.json")).unwrap();
    assert_eq!(s.sleep_score, Some(82.0));
    let r: NightlyRecharge = serde_json::from_str(fixture!("nightly_recharge_date.json")).unwrap();
    assert_eq!(r.heart_rate_variability_avg, Some(62.0));
    assert_eq!(r.heart_rate_avg, Some(54.0));
    let a: Activity = serde_json::from_str(fixture!("activity_date.json")).unwrap();
    assert_eq!(a.date().to_string(), "2026-11-21");
}

#[test]
fn iso_durations_and_ranges() {
    assert_eq!(iso_duration_secs("PT45M30S"), Some(2730.0));
    assert_eq!(iso_duration_secs("PT2H44M"), Some(9840.0));
    assert_eq!(iso_duration_secs("PT0.5S"), Some(0.5));
    assert_eq!(iso_duration_secs("P1DT1H"), Some(90_000.0));
    for bad in ["45M", "PT45X", "PT45", ""] {
        assert_eq!(iso_duration_secs(bad), None, "{bad}");
    }
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    let r = ranges(d("2026-01-01"), d("2026-03-01"), ACTIVITY_RANGE_DAYS);
    assert_eq!(r.first().unwrap().0, d("2026-01-01"));
    assert_eq!(r.last().unwrap().1, d("2026-03-01"));
    for (a, b) in &r {
        assert!((*b - *a).num_days() < ACTIVITY_RANGE_DAYS);
    }
}

#[test]
fn member_ids_are_stable_and_do_not_reveal_the_user() {
    assert_eq!(member_id("alice"), member_id("alice"));
    assert_ne!(member_id("alice"), member_id("bob"));
    assert!(!member_id("alice").contains("alice"));
    assert!(member_id("alice").starts_with("wcc-"));
}

#[test]
fn token_response_names_the_user_and_has_no_refresh_token() {
    let t: serde_json::Value = serde_json::from_str(fixture!("token_response.json")).unwrap();
    assert_eq!(t["x_user_id"], 98765432);
    assert!(t.get("refresh_token").is_none());
    let r: Registered = serde_json::from_str(fixture!("register_user_response.json")).unwrap();
    assert_eq!(r.polar_user_id, Some(98765432));
}

const SECRET: &str = "00000000-fake-4000-8000-polarsecret0";

fn ctx() -> VendorCtx {
    testing::ctx(
        Vendor::Polar,
        &[
            ("CONNECTOR_POLAR_CLIENT_ID", "fake-polar-client"),
            ("CONNECTOR_POLAR_CLIENT_SECRET", "fake-polar-client-secret"),
            ("CONNECTOR_POLAR_WEBHOOK_SECRET", SECRET),
        ],
    )
}

fn deliver(body: &[u8], sig: Option<&str>) -> Result<WebhookReply> {
    let mut h = HeaderMap::new();
    if let Some(s) = sig {
        h.insert("polar-webhook-signature", HeaderValue::from_str(s).unwrap());
    }
    let q = HashMap::new();
    let req = WebhookRequest {
        method: &Method::POST,
        headers: &h,
        query: &q,
        body,
        now: Utc::now(),
    };
    block_on(Polar.webhook(&ctx(), &req))
}

fn events(reply: WebhookReply) -> Vec<WebhookEvent> {
    match reply {
        WebhookReply::Events(e) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn webhook_vector_from_the_fixtures_verifies() {
    let body = fixture!("webhook_exercise.json").as_bytes();
    let sig = "913fa8ac4cb292d5ae84f9a66dea46efffd6880616c659139f7745bcd4e9e090";
    assert_eq!(scheme().sign(SECRET.as_bytes(), None, body), sig);
    let e = events(deliver(body, Some(sig)).unwrap());
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].vendor_user_id, "98765432");
    assert_eq!(e[0].kind, EventKind::DataChanged);
    // Sent 17:55Z: the pull covers 2026-11-21 (and the 20th).
    assert_eq!(e[0].date.to_string(), "2026-11-22");
    let again = events(deliver(body, Some(sig)).unwrap());
    assert_eq!(again[0].event_id, e[0].event_id);
    // Without the final newline the bytes differ: so does the signature.
    let trimmed = &body[..body.len() - 1];
    assert_eq!(deliver(trimmed, Some(sig)).unwrap_err().status(), 401);
    assert!(deliver(
        trimmed,
        Some("ee09353ac94cfdd7d2930424db9e8392666703d2cd3dc3840c6b4b46b2788792")
    )
    .is_ok());
    // One changed byte, a missing header, base64 (another vendor's rule).
    let mut changed = body.to_vec();
    changed[20] ^= 1;
    assert_eq!(deliver(&changed, Some(sig)).unwrap_err().status(), 401);
    assert_eq!(deliver(body, None).unwrap_err().status(), 401);
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        hex::decode(sig).unwrap(),
    );
    assert_eq!(deliver(body, Some(&b64)).unwrap_err().status(), 401);
}

#[test]
fn dated_events_pull_their_day_and_ids_differ_by_event() {
    let mut ids = Vec::new();
    for (body, date) in [
        (fixture!("webhook_sleep.json"), "2026-11-21"),
        (fixture!("webhook_continuous_heart_rate.json"), "2026-11-21"),
        (fixture!("webhook_activity_summary.json"), "2026-11-21"),
    ] {
        let sig = scheme().sign(SECRET.as_bytes(), None, body.as_bytes());
        let e = events(deliver(body.as_bytes(), Some(&sig)).unwrap());
        assert_eq!(e[0].date.to_string(), date);
        ids.push(e[0].event_id.clone());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    // Signed events Polar sends but the connector does not sync: acknowledged.
    let body = br#"{"event":"PHYSICAL_INFORMATION","user_id":98765432,"timestamp":"2026-11-21T10:00:00Z","url":"https://www.polaraccesslink.com/v3/users/physical-info"}"#;
    let sig = scheme().sign(SECRET.as_bytes(), None, body);
    assert_eq!(
        deliver(body, Some(&sig)).unwrap(),
        WebhookReply::not_synced("PHYSICAL_INFORMATION")
    );
    assert_eq!(deliver(body, Some("00")).unwrap_err().status(), 401);
}

#[test]
fn ping_is_answered_200_whatever_its_signature() {
    let body = fixture!("webhook_ping.json").as_bytes();
    for sig in [None, Some("deadbeef"), Some("not hex")] {
        match deliver(body, sig).unwrap() {
            WebhookReply::Handshake { status, .. } => assert_eq!(status, 200),
            other => panic!("{other:?}"),
        }
    }
}

/// Golden values from Polar's own description: its exercise, sleep,
/// nightly recharge and activity records made of their fields' examples,
/// in the units its texts state.
#[test]
fn golden_values_from_polars_own_examples() {
    use crate::vendors::described::{example_of, vendor_description};
    use crate::vendors::testing::daily;
    let Some(doc) = vendor_description("polar-accesslink-api-openapi.yml") else {
        return;
    };
    let units = [
        ("exerciseHashId", "distance", "in meters"),
        ("exerciseHashId", "calories", "in kilocalories"),
        ("exerciseHashId", "duration", "ISO8601"),
        ("sleep", "light_sleep", "in seconds"),
        ("sleep", "deep_sleep", "in seconds"),
        ("sleep", "rem_sleep", "in seconds"),
        ("sleep", "unrecognized_sleep_stage", "in seconds"),
        (
            "nightly-recharge",
            "heart_rate_variability_avg",
            "in milliseconds",
        ),
    ];
    assert_eq!(
        crate::vendors::described::unstated_units(&doc, &units),
        Vec::<String>::new()
    );
    let one = |name| example_of(&doc, name);
    let c = Collections {
        exercises: vec![serde_json::from_value(one("exerciseHashId")).unwrap()],
        sleep: vec![serde_json::from_value(one("sleep")).unwrap()],
        recharge: vec![serde_json::from_value(one("nightly-recharge")).unwrap()],
        activities: vec![serde_json::from_value(one("activity-summary")).unwrap()],
        heart_rate: vec![],
    };
    let s = normalize(&c);
    // 10:40:02 local at +180 minutes; PT2H44M; 530 kcal; 1600 m.
    let workout: Vec<(String, String, f64)> = s
        .iter()
        .filter(|x| x.label.as_deref() == Some("OTHER"))
        .map(|x| (x.date.to_string(), x.time.unwrap().to_rfc3339(), x.value))
        .collect();
    let at = |v: f64| {
        (
            "2008-10-13".to_string(),
            "2008-10-13T07:40:02+00:00".to_string(),
            v,
        )
    };
    assert_eq!(workout, [at(164.0), at(530.0), at(1600.0)]);
    // 1000 s in each of four stages: 66.7 minutes.
    assert_eq!(
        daily(&s, MetricType::SleepDuration, "2020-01-01"),
        Some(66.7)
    );
    assert_eq!(daily(&s, MetricType::SleepScore, "2020-01-01"), Some(80.0));
    assert_eq!(daily(&s, MetricType::Hrv, "2020-01-01"), Some(28.0));
    assert_eq!(daily(&s, MetricType::Steps, "2025-08-13"), Some(8823.0));
    assert_eq!(daily(&s, MetricType::Calories, "2025-08-13"), Some(2500.0));
}

/// Every field the normalizers' and the webhook's types read is one
/// Polar's description names, where it names it.
#[test]
fn every_field_read_is_in_polars_description() {
    use crate::vendors::described::{undescribed_reads, vendor_description};
    let Some(doc) = vendor_description("polar-accesslink-api-openapi.yml") else {
        return;
    };
    // One notification type reads the fields of every payload: a field is
    // undescribed only if no payload has it.
    let payloads = [
        "webhookPayloadExercise",
        "webhookPayloadSleep",
        "webhookPayloadContinuousHeartRate",
        "webhookPayloadActivitySummary",
    ]
    .map(|p| undescribed_reads::<Notification>(&doc, p));
    let notification: Vec<String> = payloads
        .iter()
        .flatten()
        .filter(|f| f.starts_with("not traced") || payloads.iter().all(|p| p.contains(f)))
        .cloned()
        .collect();
    let found = [
        (
            "exercise",
            undescribed_reads::<Exercise>(&doc, "exerciseHashId"),
        ),
        ("sleep", undescribed_reads::<Sleep>(&doc, "sleep")),
        (
            "nightly recharge",
            undescribed_reads::<NightlyRecharge>(&doc, "nightly-recharge"),
        ),
        (
            "activity",
            undescribed_reads::<Activity>(&doc, "activity-summary"),
        ),
        (
            "continuous heart rate",
            undescribed_reads::<ContinuousHeartRate>(&doc, "continuous-heartrate"),
        ),
        (
            "registration",
            undescribed_reads::<Registered>(&doc, "user"),
        ),
        ("webhook", notification),
    ];
    for (what, reads) in found {
        assert!(reads.is_empty(), "{what}: {reads:?}");
    }
}
