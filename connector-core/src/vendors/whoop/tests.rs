//! Golden tests: WHOOP-shaped payloads (connector-core/fixtures/vendors/whoop,
//! see its README) → exact normalized values.

use super::*;
use crate::vendors::driver::WebhookRequest;
use crate::vendors::testing::{self, block_on, daily};
use http::{HeaderMap, HeaderValue, Method};

#[derive(Deserialize)]
/// A page of records as the vendor sends it.
struct Page<T> {
    records: Vec<T>,
}

fn records<T: DeserializeOwned>(json: &str) -> Vec<T> {
    serde_json::from_str::<Page<T>>(json).unwrap().records
}

fn fixture_samples() -> Vec<Sample> {
    let mut sleeps: Vec<Sleep> = records(include_str!(
        "../../../fixtures/vendors/whoop/sleep_collection_page1.json"
    ));
    sleeps.extend(records::<Sleep>(include_str!(
        "../../../fixtures/vendors/whoop/sleep_collection_page2.json"
    )));
    normalize(
        &records(include_str!(
            "../../../fixtures/vendors/whoop/cycle_collection.json"
        )),
        &records(include_str!(
            "../../../fixtures/vendors/whoop/recovery_collection.json"
        )),
        &sleeps,
        &records(include_str!(
            "../../../fixtures/vendors/whoop/workout_collection.json"
        )),
    )
}

#[test]
fn golden_daily_values_land_on_the_wake_up_day() {
    let s = fixture_samples();
    let expect = [
        (MetricType::SleepDuration, "2026-11-21", 420.0),
        (MetricType::SleepScore, "2026-11-21", 91.0),
        (MetricType::Recovery, "2026-11-21", 78.0),
        (MetricType::Hrv, "2026-11-21", 72.5),
        (MetricType::RestingHr, "2026-11-21", 50.0),
        (MetricType::Spo2, "2026-11-21", 97.25),
        (MetricType::Calories, "2026-11-21", 2300.0),
        (MetricType::Strain, "2026-11-21", 14.2),
        (MetricType::SleepDuration, "2026-11-22", 410.0),
        (MetricType::SleepScore, "2026-11-22", 87.0),
        (MetricType::Recovery, "2026-11-22", 66.0),
        (MetricType::Hrv, "2026-11-22", 61.234),
        (MetricType::RestingHr, "2026-11-22", 52.0),
        (MetricType::Spo2, "2026-11-22", 96.5),
        (MetricType::Calories, "2026-11-22", 800.0),
    ];
    for (metric, date, value) in expect {
        assert_eq!(daily(&s, metric, date), Some(value), "{metric:?} on {date}");
    }
    // WHOOP measures no steps; nothing is dated on the UTC day of a late workout's daily values.
    assert_eq!(daily(&s, MetricType::Steps, "2026-11-21"), None);
    assert!(s
        .iter()
        .filter(|x| x.time.is_none())
        .all(|x| x.date.to_string() != "2026-11-20"));
    assert!(s.iter().all(|x| x.source == "whoop"));
}

#[test]
fn golden_workouts_keep_sport_local_day_and_units() {
    let s = fixture_samples();
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
    // 19:30 local on the 22nd is 00:30 UTC on the 23rd: the local day wins.
    assert_eq!(
        workout(MetricType::WorkoutDuration, "weightlifting"),
        Some((
            "2026-11-22".into(),
            "2026-11-23T00:30:00+00:00".into(),
            60.0
        ))
    );
    assert_eq!(
        workout(MetricType::WorkoutCalories, "weightlifting").map(|w| w.2),
        Some(300.0)
    );
    assert_eq!(workout(MetricType::WorkoutDistance, "weightlifting"), None);
}

#[test]
fn naps_add_no_daily_sleep() {
    let s = fixture_samples();
    let sleep_days: Vec<_> = s
        .iter()
        .filter(|x| x.metric == MetricType::SleepDuration)
        .collect();
    assert_eq!(sleep_days.len(), 2, "two nights, the nap left out");
}

#[test]
fn local_dates_follow_the_records_offset() {
    let at: DateTime<Utc> = "2026-11-21T03:30:00Z".parse().unwrap();
    assert_eq!(local_date(at, Some("-05:00")).to_string(), "2026-11-20");
    assert_eq!(local_date(at, Some("+01:00")).to_string(), "2026-11-21");
    assert_eq!(local_date(at, Some("Z")).to_string(), "2026-11-21");
    assert_eq!(local_date(at, None).to_string(), "2026-11-21");
    assert_eq!(local_date(at, Some("garbage")).to_string(), "2026-11-21");
}

fn ctx() -> VendorCtx {
    testing::ctx(
        Vendor::Whoop,
        &[
            ("CONNECTOR_WHOOP_CLIENT_ID", "fake-whoop-client"),
            ("CONNECTOR_WHOOP_CLIENT_SECRET", "fake-whoop-client-secret"),
        ],
    )
}

fn deliver(body: &[u8], ts: &str, sig: &str, now: DateTime<Utc>) -> Result<WebhookReply> {
    let mut h = HeaderMap::new();
    h.insert("x-whoop-signature", HeaderValue::from_str(sig).unwrap());
    h.insert(
        "x-whoop-signature-timestamp",
        HeaderValue::from_str(ts).unwrap(),
    );
    let q = HashMap::new();
    let req = WebhookRequest {
        method: &Method::POST,
        headers: &h,
        query: &q,
        body,
        now,
    };
    block_on(Whoop.webhook(&ctx(), &req))
}

#[test]
fn webhook_vectors_from_the_fixtures_verify_and_dedup_on_trace_id() {
    let now: DateTime<Utc> = "2026-11-22T12:00:30Z".parse().unwrap();
    let body = include_bytes!("../../../fixtures/vendors/whoop/webhook_recovery_updated.json");
    let reply = deliver(
        body,
        "1795348800000",
        "URA1UMDVQ2qpd45s/J6dBxnbl13rKfjwtVgR+VsncAw=",
        now,
    )
    .unwrap();
    let WebhookReply::Events(events) = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, "fake-trace-0002");
    assert_eq!(events[0].vendor_user_id, "99000001");
    assert_eq!(events[0].kind, EventKind::DataChanged);
    // The same signature on another fixture's body, a stale timestamp, and a
    // hex-encoded signature (another vendor's rule) are all refused.
    let other = include_bytes!("../../../fixtures/vendors/whoop/webhook_sleep_updated.json");
    for (b, ts, sig, at) in [
        (
            &other[..],
            "1795348800000",
            "URA1UMDVQ2qpd45s/J6dBxnbl13rKfjwtVgR+VsncAw=",
            now,
        ),
        (
            &body[..],
            "1795348800000",
            "URA1UMDVQ2qpd45s/J6dBxnbl13rKfjwtVgR+VsncAw=",
            now + Duration::minutes(10),
        ),
        (
            &body[..],
            "1795348800000",
            "5110355040d5436aa9778e6cfc9e9d0719db975dab29f8f0b55811f95b27700c",
            now,
        ),
    ] {
        assert_eq!(deliver(b, ts, sig, at).unwrap_err().status(), 401);
    }
}

/// Golden values from WHOOP's own description: records made of its
/// schemas' field examples, normalized in the units its field texts state.
#[test]
fn golden_values_from_whoops_own_examples() {
    let Some(doc) = crate::vendors::described::vendor_description("whoop-api-openapi.yml") else {
        return;
    };
    fn one<T: DeserializeOwned>(doc: &serde_json::Value, name: &str) -> T {
        serde_json::from_value(crate::vendors::described::example_of(doc, name)).unwrap()
    }
    let (cycle, recovery, sleep, workout): (Cycle, Recovery, Sleep, Workout) = (
        one(&doc, "Cycle"),
        one(&doc, "Recovery"),
        one(&doc, "Sleep"),
        one(&doc, "WorkoutV2"),
    );
    let units = [
        ("CycleScore", "kilojoule", "Kilojoules"),
        ("WorkoutScore", "kilojoule", "Kilojoules"),
        ("RecoveryScore", "hrv_rmssd_milli", "in milliseconds"),
        ("RecoveryScore", "skin_temp_celsius", "in Celsius"),
        (
            "SleepStageSummary",
            "total_light_sleep_time_milli",
            "in milliseconds",
        ),
        (
            "SleepStageSummary",
            "total_slow_wave_sleep_time_milli",
            "in milliseconds",
        ),
        (
            "SleepStageSummary",
            "total_rem_sleep_time_milli",
            "in milliseconds",
        ),
    ];
    assert_eq!(
        crate::vendors::described::unstated_units(&doc, &units),
        Vec::<String>::new()
    );
    let s = normalize(&[cycle], &[recovery], &[sleep], &[workout]);
    // The examples' records end 10:25 UTC at -05:00: the 24th, local.
    let day = "2022-04-24";
    for (metric, value) in [
        (MetricType::Strain, 5.2951527),
        // 8288.297 kJ / 4.184, to 0.1 kcal.
        (MetricType::Calories, 1981.0),
        (MetricType::Recovery, 44.0),
        (MetricType::Hrv, 31.813562),
        (MetricType::RestingHr, 64.0),
        (MetricType::Spo2, 95.6875),
        (MetricType::SkinTemperature, 33.7),
        // 14,905,851 + 6,630,370 + 5,879,573 ms asleep, in whole minutes.
        (MetricType::SleepDuration, 457.0),
        (MetricType::SleepScore, 98.0),
        (MetricType::RespiratoryRate, 16.11328125),
    ] {
        assert_eq!(daily(&s, metric, day), Some(value), "{metric:?}");
    }
    // The workout started 02:25 UTC, 21:25 the evening before at -05:00.
    let workout = |metric| {
        s.iter()
            .find(|x| x.metric == metric && x.label.as_deref() == Some("running"))
            .map(|x| (x.date.to_string(), x.value))
    };
    assert_eq!(
        workout(MetricType::WorkoutDuration),
        Some(("2022-04-23".into(), 480.0))
    );
    assert_eq!(
        workout(MetricType::WorkoutCalories),
        Some(("2022-04-23".into(), 375.1))
    );
    assert_eq!(
        workout(MetricType::WorkoutDistance),
        Some(("2022-04-23".into(), 1772.77035916))
    );
}

/// Every field the normalizers' types read is one WHOOP's description
/// names, where it names it.
#[test]
fn every_field_read_is_in_whoops_description() {
    use crate::vendors::described::{undescribed_reads, vendor_description};
    let Some(doc) = vendor_description("whoop-api-openapi.yml") else {
        return;
    };
    let found = [
        ("Cycle", undescribed_reads::<Cycle>(&doc, "Cycle")),
        ("Recovery", undescribed_reads::<Recovery>(&doc, "Recovery")),
        ("Sleep", undescribed_reads::<Sleep>(&doc, "Sleep")),
        ("WorkoutV2", undescribed_reads::<Workout>(&doc, "WorkoutV2")),
        (
            "UserBasicProfile",
            undescribed_reads::<Profile>(&doc, "UserBasicProfile"),
        ),
    ];
    for (schema, reads) in found {
        assert!(reads.is_empty(), "{schema}: {reads:?}");
    }
}
