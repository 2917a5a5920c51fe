//! Golden tests: Google-Health-shaped payloads (connector-core/fixtures/vendors/fitbit,
//! see its README) → exact normalized values.

use super::*;
use crate::vendors::driver::WebhookRequest;
use crate::vendors::testing::daily;
use http::{HeaderMap, HeaderValue, Method};
use std::collections::HashMap;

fn points(json: &str, name: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(json).unwrap();
    let pts = v["dataPoints"].as_array().unwrap().clone();
    assert!(pts.iter().all(|p| p.get(name).is_some()));
    pts
}

fn fixtures() -> Points {
    Points {
        resting_hr: field(
            &points(
                include_str!("../../../fixtures/vendors/fitbit/daily_resting_heart_rate_list.json"),
                "dailyRestingHeartRate",
            ),
            "dailyRestingHeartRate",
        ),
        hrv: field(
            &points(
                include_str!(
                    "../../../fixtures/vendors/fitbit/daily_heart_rate_variability_list.json"
                ),
                "dailyHeartRateVariability",
            ),
            "dailyHeartRateVariability",
        ),
        spo2: field(
            &points(
                include_str!("../../../fixtures/vendors/fitbit/daily_oxygen_saturation_list.json"),
                "dailyOxygenSaturation",
            ),
            "dailyOxygenSaturation",
        ),
        sleep: field(
            &points(
                include_str!("../../../fixtures/vendors/fitbit/sleep_list.json"),
                "sleep",
            ),
            "sleep",
        ),
        exercise: field(
            &points(
                include_str!("../../../fixtures/vendors/fitbit/exercise_list.json"),
                "exercise",
            ),
            "exercise",
        ),
        steps: parse_daily_rollup(
            &serde_json::from_str(include_str!(
                "../../../fixtures/vendors/fitbit/daily_rollup_steps_response.json"
            ))
            .unwrap(),
            "steps",
            "countSum",
        ),
        calories: parse_daily_rollup(
            &serde_json::from_str(include_str!(
                "../../../fixtures/vendors/fitbit/daily_rollup_total_calories_response.json"
            ))
            .unwrap(),
            "totalCalories",
            "kcalSum",
        ),
    }
}

#[test]
fn golden_daily_values() {
    let s = normalize(&fixtures());
    for (m, date, v) in [
        (MetricType::Steps, "2026-11-21", 8421.0),
        (MetricType::Calories, "2026-11-21", 2203.6),
        (MetricType::RestingHr, "2026-11-21", 55.0),
        (MetricType::Hrv, "2026-11-21", 41.7),
        (MetricType::Spo2, "2026-11-21", 95.8),
        (MetricType::SleepDuration, "2026-11-21", 432.0),
        (MetricType::RestingHr, "2026-11-22", 54.0),
    ] {
        assert_eq!(daily(&s, m, date), Some(v), "{m:?} {date}");
    }
    // v4 has neither a sleep score nor stress.
    assert!(s
        .iter()
        .all(|x| x.metric != MetricType::SleepScore && x.metric != MetricType::Stress));
}

#[test]
fn golden_workout_uses_active_duration_and_metres() {
    let s = normalize(&fixtures());
    let w = |m: MetricType| {
        s.iter()
            .find(|x| x.metric == m)
            .map(|x| (x.date.to_string(), x.label.clone().unwrap(), x.value))
            .unwrap()
    };
    assert_eq!(
        w(MetricType::WorkoutDuration),
        ("2026-11-21".into(), "running".into(), 44.0)
    );
    assert_eq!(w(MetricType::WorkoutDistance).2, 7210.0);
    assert_eq!(w(MetricType::WorkoutCalories).2, 455.0);
}

#[test]
fn sleep_lands_on_the_local_wake_up_day() {
    let mut p = Points::default();
    let mut sleep = fixtures().sleep;
    // Ends 23:30 UTC on the 21st, which is 00:30 on the 22nd at UTC+1.
    sleep[0].interval.end_time = "2026-11-21T23:30:00Z".parse().unwrap();
    p.sleep = sleep;
    let s = normalize(&p);
    assert_eq!(s[0].date.to_string(), "2026-11-22");
}

fn ctx(secret: &str) -> VendorCtx {
    crate::vendors::testing::ctx(
        Vendor::Fitbit,
        &[
            ("CONNECTOR_FITBIT_CLIENT_ID", "fake-id"),
            ("CONNECTOR_FITBIT_CLIENT_SECRET", "fake-secret"),
            ("CONNECTOR_FITBIT_WEBHOOK_SECRET", secret),
        ],
    )
}

fn post(authorization: Option<&str>, body: &[u8]) -> Result<WebhookReply> {
    let mut h = HeaderMap::new();
    if let Some(a) = authorization {
        h.insert("authorization", HeaderValue::from_str(a).unwrap());
    }
    let q = HashMap::new();
    let req = WebhookRequest {
        method: &Method::POST,
        headers: &h,
        query: &q,
        body,
        now: "2026-11-21T17:00:00Z".parse().unwrap(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(Fitbit.webhook(&ctx("Bearer FAKE-subscriber-secret-0001"), &req))
}

#[test]
fn verification_answers_201_with_the_secret_and_401_without() {
    let body = include_bytes!("../../../fixtures/vendors/fitbit/verification.json");
    let ok = post(Some("Bearer FAKE-subscriber-secret-0001"), body).unwrap();
    assert!(matches!(ok, WebhookReply::Handshake { status: 201, .. }));
    assert_eq!(post(None, body).unwrap_err().status(), 401);
    assert_eq!(
        post(Some("Bearer FAKE-subscriber-secret-0002"), body)
            .unwrap_err()
            .status(),
        401
    );
}

#[test]
fn notifications_pull_the_interval_with_a_stable_id() {
    let body = include_bytes!("../../../fixtures/vendors/fitbit/notification.json");
    let WebhookReply::Events(ev) = post(Some("Bearer FAKE-subscriber-secret-0001"), body).unwrap()
    else {
        panic!("not events")
    };
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].vendor_user_id, "FAKEhealthUser0001");
    assert_eq!(ev[0].kind, EventKind::DataChanged);
    // 16:45Z + 14 h reaches the 22nd; the worker pulls the 21st and 22nd.
    assert_eq!(ev[0].date.to_string(), "2026-11-22");
    // A single object is accepted too, with the same dedup key.
    let one = serde_json::to_vec(&serde_json::from_slice::<Value>(body).unwrap()[0]).unwrap();
    let again = parse_notification(&one, Utc::now()).unwrap();
    assert_eq!(again[0].event_id, ev[0].event_id);
    assert_eq!(
        post(None, body).unwrap_err().status(),
        401,
        "notifications need the secret too"
    );
}

/// Every field the normalizers' types read is one Google's discovery
/// document names, where it names it.
#[test]
fn every_field_read_is_in_googles_discovery_document() {
    use crate::vendors::described::{undescribed_reads, vendor_description};
    let Some(doc) = vendor_description("google-health.v4.json") else {
        return;
    };
    let found = [
        (
            "daily resting heart rate",
            undescribed_reads::<DailyRestingHeartRate>(&doc, "DailyRestingHeartRate"),
        ),
        (
            "daily heart rate variability",
            undescribed_reads::<DailyHeartRateVariability>(&doc, "DailyHeartRateVariability"),
        ),
        (
            "daily oxygen saturation",
            undescribed_reads::<DailyOxygenSaturation>(&doc, "DailyOxygenSaturation"),
        ),
        ("sleep", undescribed_reads::<SleepSession>(&doc, "Sleep")),
        ("exercise", undescribed_reads::<Exercise>(&doc, "Exercise")),
        ("identity", undescribed_reads::<Identity>(&doc, "Identity")),
    ];
    for (what, reads) in found {
        assert!(reads.is_empty(), "{what}: {reads:?}");
    }
}
