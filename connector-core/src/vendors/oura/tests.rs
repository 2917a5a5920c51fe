//! Golden tests: Oura-shaped payloads (connector-core/fixtures/vendors/oura,
//! see its README) → exact normalized values; webhook vectors and handshakes.

use super::*;
use crate::vendors::driver::WebhookRequest;
use crate::vendors::testing::{self, block_on, daily};
use crate::vendors::time::offset_at;
use http::{HeaderMap, HeaderValue, Method};
use std::collections::HashMap;

#[derive(Deserialize)]
/// A page of records as the vendor sends it.
struct Page<T> {
    data: Vec<T>,
}

fn data<T: DeserializeOwned>(json: &str) -> Vec<T> {
    serde_json::from_str::<Page<T>>(json).unwrap().data
}

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../../fixtures/vendors/oura/", $name))
    };
}

fn collections() -> Collections {
    let mut sleep: Vec<SleepPeriod> = data(fixture!("sleep_page1.json"));
    sleep.extend(data::<SleepPeriod>(fixture!("sleep_page2.json")));
    Collections {
        daily_sleep: data(fixture!("daily_sleep.json")),
        sleep,
        daily_readiness: data(fixture!("daily_readiness.json")),
        daily_activity: data(fixture!("daily_activity.json")),
        daily_spo2: data(fixture!("daily_spo2.json")),
        workout: data(fixture!("workout.json")),
        heartrate: data(fixture!("heartrate.json")),
    }
}

#[test]
fn golden_daily_values_use_ouras_day() {
    let s = normalize(&collections());
    let expect = [
        (MetricType::SleepDuration, "2026-11-21", 420.0),
        (MetricType::SleepScore, "2026-11-21", 82.0),
        (MetricType::Readiness, "2026-11-21", 80.0),
        (MetricType::Hrv, "2026-11-21", 72.0),
        (MetricType::RestingHr, "2026-11-21", 48.0),
        (MetricType::Steps, "2026-11-21", 9876.0),
        (MetricType::Calories, "2026-11-21", 2450.0),
        (MetricType::Spo2, "2026-11-21", 97.125),
        (MetricType::SleepDuration, "2026-11-22", 410.0),
        (MetricType::SleepScore, "2026-11-22", 76.0),
        (MetricType::Readiness, "2026-11-22", 68.0),
        (MetricType::Hrv, "2026-11-22", 61.0),
        (MetricType::RestingHr, "2026-11-22", 52.0),
        (MetricType::Steps, "2026-11-22", 4321.0),
        (MetricType::Calories, "2026-11-22", 2100.0),
        (MetricType::Spo2, "2026-11-22", 96.5),
    ];
    for (metric, date, value) in expect {
        assert_eq!(daily(&s, metric, date), Some(value), "{metric:?} on {date}");
    }
    // The 25-minute nap adds nothing; nothing lands on the bedtime's day.
    assert_eq!(
        s.iter()
            .filter(|x| x.metric == MetricType::SleepDuration)
            .count(),
        2
    );
    assert!(s.iter().all(|x| x.date.to_string() != "2026-11-20"));
    assert!(s.iter().all(|x| x.source == "oura"));
}

#[test]
fn golden_workouts_keep_activity_day_and_units() {
    let s = normalize(&collections());
    let workout = |metric: MetricType, label: &str| {
        s.iter()
            .find(|x| x.metric == metric && x.label.as_deref() == Some(label))
            .map(|x| (x.date.to_string(), x.time.unwrap().to_rfc3339(), x.value))
    };
    assert_eq!(
        workout(MetricType::WorkoutDuration, "running"),
        Some((
            "2026-11-21".into(),
            "2026-11-21T12:30:00+00:00".into(),
            45.0
        ))
    );
    assert_eq!(
        workout(MetricType::WorkoutCalories, "running").map(|w| w.2),
        Some(500.0)
    );
    assert_eq!(
        workout(MetricType::WorkoutDistance, "running").map(|w| w.2),
        Some(8046.72)
    );
    // 19:30 local on the 22nd is 00:30 UTC on the 23rd: Oura's day wins.
    assert_eq!(
        workout(MetricType::WorkoutDuration, "cycling"),
        Some((
            "2026-11-22".into(),
            "2026-11-23T00:30:00+00:00".into(),
            60.0
        ))
    );
    assert_eq!(
        workout(MetricType::WorkoutCalories, "cycling").map(|w| w.2),
        Some(300.0)
    );
    assert_eq!(
        workout(MetricType::WorkoutDistance, "cycling").map(|w| w.2),
        Some(20000.0)
    );
}

#[test]
fn heart_rate_rows_take_the_users_offset_from_other_records() {
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
                "2026-11-21T11:00:00+00:00".into(),
                49.0
            ),
            (
                "2026-11-21".into(),
                "2026-11-21T11:05:00+00:00".into(),
                51.0
            ),
            (
                "2026-11-21".into(),
                "2026-11-21T12:35:00+00:00".into(),
                146.0
            ),
        ]
    );
    // 03:00 UTC is the evening before in UTC-5, and UTC without any offset.
    let at: DateTime<Utc> = "2026-11-22T03:00:00Z".parse().unwrap();
    let known = known_offsets(&collections());
    assert_eq!(offset_at(&known, at).local_minus_utc(), -5 * 3600);
    assert_eq!(offset_at(&[], at).local_minus_utc(), 0);
}

#[test]
fn the_longest_long_sleep_is_the_days_main_sleep() {
    let mut c = collections();
    let mut second = c.sleep[0].clone();
    second.id = "fake-second".into();
    second.total_sleep_duration = Some(3.5 * 3600.0);
    second.average_hrv = Some(10.0);
    c.sleep.push(second);
    let s = normalize(&c);
    assert_eq!(daily(&s, MetricType::Hrv, "2026-11-21"), Some(72.0));
    assert_eq!(
        daily(&s, MetricType::SleepDuration, "2026-11-21"),
        Some(420.0)
    );
}

#[test]
fn windows_never_exceed_the_limit() {
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    assert_eq!(
        windows(d("2026-01-01"), d("2026-01-01")),
        [(d("2026-01-01"), d("2026-01-01"))]
    );
    let w = windows(d("2026-01-01"), d("2026-03-15"));
    assert_eq!(w.first().unwrap().0, d("2026-01-01"));
    assert_eq!(w.last().unwrap().1, d("2026-03-15"));
    for (a, b) in &w {
        assert!((*b - *a).num_days() < MAX_WINDOW_DAYS);
    }
    for pair in w.windows(2) {
        assert_eq!(pair[0].1 + Duration::days(1), pair[1].0);
    }
}

fn ctx() -> VendorCtx {
    testing::ctx(
        Vendor::Oura,
        &[
            ("CONNECTOR_OURA_CLIENT_ID", "fake-oura-client"),
            ("CONNECTOR_OURA_CLIENT_SECRET", "fake-oura-client-secret"),
            (
                "CONNECTOR_OURA_VERIFY_TOKEN",
                "fake-oura-verification-token",
            ),
        ],
    )
}

fn call(
    method: Method,
    headers: &[(&'static str, &str)],
    query: &[(&str, &str)],
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<WebhookReply> {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    let q: HashMap<String, String> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let req = WebhookRequest {
        method: &method,
        headers: &h,
        query: &q,
        body,
        now,
    };
    block_on(Oura.webhook(&ctx(), &req))
}

fn deliver(body: &[u8], ts: &str, sig: &str, now: DateTime<Utc>) -> Result<WebhookReply> {
    call(
        Method::POST,
        &[("x-oura-signature", sig), ("x-oura-timestamp", ts)],
        &[],
        body,
        now,
    )
}

const TS: &str = "1795348800";

fn now() -> DateTime<Utc> {
    "2026-11-22T12:00:30Z".parse().unwrap()
}

#[test]
fn webhook_vectors_from_the_fixtures_verify() {
    let vectors: [(&[u8], &str, &str, &str); 3] = [
        (
            fixture!("webhook_sleep_update.json").as_bytes(),
            "3B59B0BE9D043A2FDC105344B93D08423A53D5E96EC491401C6C81CC6FCAB735",
            "fake-oura-sleep-0003",
            "2026-11-22",
        ),
        (
            fixture!("webhook_daily_activity_create.json").as_bytes(),
            "EDFBE47F3006393DBA2E8B75DB6E3BB500580CD421355CE2B3E64BD28D7044F3",
            "fake-oura-activity-0002",
            "2026-11-23",
        ),
        (
            fixture!("webhook_workout_delete.json").as_bytes(),
            "A34153D030506980DC8732A3800372429C4A5A80C45222CCA1403A1B2F4B3554",
            "fake-oura-workout-0002",
            "2026-11-23",
        ),
    ];
    let mut ids = Vec::new();
    for (body, sig, _object, date) in vectors {
        // What the simulator signs is exactly the fixture's vector.
        assert_eq!(
            scheme()
                .sign(b"fake-oura-client-secret", Some(TS), body)
                .to_uppercase(),
            sig
        );
        let reply = deliver(body, TS, sig, now()).unwrap();
        let WebhookReply::Events(events) = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].vendor_user_id, "fake-oura-user-0001");
        assert_eq!(events[0].kind, EventKind::DataChanged);
        assert_eq!(events[0].date.to_string(), date);
        // Re-delivery gives the same id.
        let again = deliver(body, TS, sig, now()).unwrap();
        let WebhookReply::Events(again) = again else {
            panic!()
        };
        assert_eq!(again[0].event_id, events[0].event_id);
        ids.push(events[0].event_id.clone());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "distinct events, distinct ids");
}

#[test]
fn forged_stale_and_wrong_scheme_webhooks_are_refused() {
    let body = fixture!("webhook_sleep_update.json").as_bytes();
    let other = fixture!("webhook_workout_delete.json").as_bytes();
    let sig = "3B59B0BE9D043A2FDC105344B93D08423A53D5E96EC491401C6C81CC6FCAB735";
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        hex::decode(sig).unwrap(),
    );
    for (b, ts, s, at) in [
        (other, TS, sig, now()),
        (body, TS, sig, now() + Duration::minutes(10)),
        (body, "1795348801", sig, now()),
        (body, "1795348800000", sig, now()),
        (body, TS, b64.as_str(), now()),
    ] {
        assert_eq!(deliver(b, ts, s, at).unwrap_err().status(), 401);
    }
    // Lower-case hex of the same MAC is the same signature.
    assert!(deliver(body, TS, &sig.to_lowercase(), now()).is_ok());
    let no_sig = call(Method::POST, &[("x-oura-timestamp", TS)], &[], body, now());
    assert_eq!(no_sig.unwrap_err().status(), 401);
}

#[test]
fn a_body_signed_over_its_compact_form_verifies() {
    let compact = fixture!("webhook_sleep_update.json");
    // The same document with whitespace between tokens, Oura's key order kept.
    let pretty = compact
        .replace("\",\"", "\",\n  \"")
        .replace("\":\"", "\": \"");
    assert_ne!(pretty, compact);
    assert_eq!(compact_json(pretty.as_bytes()).unwrap(), compact.as_bytes());
    let sig = "3B59B0BE9D043A2FDC105344B93D08423A53D5E96EC491401C6C81CC6FCAB735";
    assert!(deliver(pretty.as_bytes(), TS, sig, now()).is_ok());
    // Whitespace inside strings is data, not formatting.
    assert_eq!(compact_json(br#"{"a": "x y"}"#).unwrap(), br#"{"a":"x y"}"#);
    assert_eq!(
        compact_json(br#"{"a":"q\" :b"}"#),
        None,
        "an escaped quote does not end the string"
    );
}

#[test]
fn handshake_answers_the_challenge_only_for_the_verify_token() {
    let reply = call(
        Method::GET,
        &[],
        &[
            ("verification_token", "fake-oura-verification-token"),
            ("challenge", "fake-oura-challenge-123"),
        ],
        b"",
        now(),
    )
    .unwrap();
    let WebhookReply::Handshake {
        status,
        content_type,
        body,
    } = reply
    else {
        panic!("{reply:?}")
    };
    assert_eq!((status, content_type), (200, "application/json"));
    let expected: serde_json::Value =
        serde_json::from_str(fixture!("webhook_verification_response.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        expected
    );
    for token in [None, Some("wrong"), Some("")] {
        let mut q = vec![("challenge", "c")];
        if let Some(t) = token {
            q.push(("verification_token", t));
        }
        let err = call(Method::GET, &[], &q, b"", now()).unwrap_err();
        assert_eq!(err.status(), 401);
        assert!(!err.to_string().contains("fake-oura-verification-token"));
    }
    let no_challenge = call(
        Method::GET,
        &[],
        &[("verification_token", "fake-oura-verification-token")],
        b"",
        now(),
    );
    assert_eq!(no_challenge.unwrap_err().status(), 400);
}

#[test]
fn dedup_ids_ignore_sub_second_jitter_but_not_the_fields() {
    let t: DateTime<Utc> = "2026-11-22T11:40:00.000Z".parse().unwrap();
    let jitter: DateTime<Utc> = "2026-11-22T11:40:00.250Z".parse().unwrap();
    let id = |at| event_id("u", "sleep", "o", "update", &at);
    assert_eq!(id(t), id(jitter));
    assert_ne!(id(t), event_id("u", "sleep", "o", "create", &t));
    assert_ne!(id(t), event_id("u2", "sleep", "o", "update", &t));
}

#[test]
fn token_responses_parse_without_a_user_id() {
    let t: serde_json::Value = serde_json::from_str(fixture!("token_response.json")).unwrap();
    assert!(t.get("user_id").is_none());
    let p: PersonalInfo = serde_json::from_str(fixture!("personal_info.json")).unwrap();
    assert_eq!(p.id, "fake-oura-user-0001");
}

/// Every field the normalizers' types read is one Oura's description
/// names, where it names it (traced over the fixtures, whose times the
/// description types as plain strings).
#[test]
fn every_field_read_is_in_ouras_description() {
    use crate::vendors::described::{undescribed_reads_of, vendor_description};
    let Some(doc) = vendor_description("oura-openapi-1.27.json") else {
        return;
    };
    fn list<T: DeserializeOwned>(doc: &serde_json::Value, model: &str, json: &str) -> Vec<String> {
        let body: serde_json::Value = serde_json::from_str(json).unwrap();
        let schema = format!("MultiDocumentResponse_{model}_");
        undescribed_reads_of::<Page<T>>(doc, &schema, &body)
    }
    let body = |json: &str| serde_json::from_str::<serde_json::Value>(json).unwrap();
    let found = [
        (
            "daily sleep",
            list::<DailySleep>(&doc, "DailySleepModel", fixture!("daily_sleep.json")),
        ),
        (
            "sleep",
            list::<SleepPeriod>(&doc, "SleepModel", fixture!("sleep_page1.json")),
        ),
        (
            "daily readiness",
            list::<DailyReadiness>(
                &doc,
                "DailyReadinessModel",
                fixture!("daily_readiness.json"),
            ),
        ),
        (
            "daily activity",
            list::<DailyActivity>(&doc, "DailyActivityModel", fixture!("daily_activity.json")),
        ),
        (
            "daily SpO2",
            list::<DailySpo2>(&doc, "DailySpO2Model", fixture!("daily_spo2.json")),
        ),
        (
            "workout",
            list::<Workout>(&doc, "PublicWorkout", fixture!("workout.json")),
        ),
        (
            "heart rate",
            undescribed_reads_of::<Page<HeartRate>>(
                &doc,
                "TimeSeriesResponse_HeartRateModel_",
                &body(fixture!("heartrate.json")),
            ),
        ),
        (
            "personal info",
            undescribed_reads_of::<PersonalInfo>(
                &doc,
                "PersonalInfoResponse",
                &body(fixture!("personal_info.json")),
            ),
        ),
    ];
    for (what, reads) in found {
        assert!(reads.is_empty(), "{what}: {reads:?}");
    }
    // The units the normalizer converts from (seconds to minutes) or
    // keeps (kilocalories, meters) are the ones the texts state.
    let units = [
        ("SleepModel", "total_sleep_duration", "in seconds"),
        ("DailyActivityModel", "total_calories", "in kilocalories"),
        ("PublicWorkout", "calories", "in kilocalories"),
        ("PublicWorkout", "distance", "in meters"),
    ];
    assert_eq!(
        crate::vendors::described::unstated_units(&doc, &units),
        Vec::<String>::new()
    );
}
