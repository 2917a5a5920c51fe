//! Golden tests: Garmin-shaped payloads (connector-core/fixtures/vendors/garmin,
//! see its README) → exact normalized values.

use super::*;
use crate::vendors::testing::daily;

fn fixtures() -> Summaries {
    Summaries {
        dailies: serde_json::from_str(include_str!(
            "../../../fixtures/vendors/garmin/dailies.json"
        ))
        .unwrap(),
        sleeps: serde_json::from_str(include_str!("../../../fixtures/vendors/garmin/sleeps.json"))
            .unwrap(),
        hrv: serde_json::from_str(include_str!("../../../fixtures/vendors/garmin/hrv.json"))
            .unwrap(),
        pulseox: serde_json::from_str(include_str!(
            "../../../fixtures/vendors/garmin/pulseox.json"
        ))
        .unwrap(),
        activities: serde_json::from_str(include_str!(
            "../../../fixtures/vendors/garmin/activities.json"
        ))
        .unwrap(),
    }
}

#[test]
fn golden_daily_values_land_on_the_calendar_date() {
    let s = normalize(&fixtures());
    for (metric, date, value) in [
        (MetricType::Steps, "2026-11-21", 8421.0),
        (MetricType::Calories, "2026-11-21", 2201.0),
        (MetricType::RestingHr, "2026-11-21", 54.0),
        (MetricType::Stress, "2026-11-21", 3.2),
        (MetricType::SleepDuration, "2026-11-21", 395.0),
        (MetricType::SleepScore, "2026-11-21", 82.0),
        (MetricType::Hrv, "2026-11-21", 48.0),
        (MetricType::Spo2, "2026-11-21", 96.0),
        (MetricType::Steps, "2026-11-22", 412.0),
        (MetricType::Calories, "2026-11-22", 587.0),
        (MetricType::RestingHr, "2026-11-22", 53.0),
    ] {
        assert_eq!(daily(&s, metric, date), Some(value), "{metric:?} {date}");
    }
    // -1 means Garmin had too little data: no stress value at all.
    assert_eq!(daily(&s, MetricType::Stress, "2026-11-22"), None);
    assert!(s.iter().all(|x| x.source == "garmin"));
}

#[test]
fn golden_intraday_heart_rate_and_workout() {
    let s = normalize(&fixtures());
    let hr: Vec<(String, String, f64)> = s
        .iter()
        .filter(|x| x.metric == MetricType::HeartRate)
        .map(|x| (x.date.to_string(), x.time.unwrap().to_rfc3339(), x.value))
        .collect();
    assert!(hr.contains(&(
        "2026-11-21".into(),
        "2026-11-21T07:00:00+00:00".into(),
        61.0
    )));
    assert!(hr.contains(&(
        "2026-11-21".into(),
        "2026-11-21T16:30:15+00:00".into(),
        151.0
    )));
    assert!(hr.contains(&(
        "2026-11-22".into(),
        "2026-11-22T06:00:00+00:00".into(),
        58.0
    )));
    assert_eq!(hr.len(), 5);
    let w = |m: MetricType| {
        s.iter()
            .find(|x| x.metric == m)
            .map(|x| (x.date.to_string(), x.label.clone().unwrap(), x.value))
            .unwrap()
    };
    assert_eq!(
        w(MetricType::WorkoutDuration),
        ("2026-11-21".into(), "running".into(), 45.0)
    );
    assert_eq!(w(MetricType::WorkoutDistance).2, 7520.5);
    assert_eq!(w(MetricType::WorkoutCalories).2, 486.0);
}

#[test]
fn notifications_become_pull_or_revoke_events_with_stable_ids() {
    let now: DateTime<Utc> = "2026-11-22T12:00:00Z".parse().unwrap();
    let ping = include_bytes!("../../../fixtures/vendors/garmin/ping_dailies.json");
    let ev = parse_notification(ping, now).unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].vendor_user_id, "fakeuser0000000000000000garmin01");
    assert_eq!(ev[0].kind, EventKind::DataChanged);
    // The upload window's end (1795331103 = 2026-11-22T03:45Z) dates the pull.
    assert_eq!(ev[0].date.to_string(), "2026-11-22");
    assert_eq!(
        ev[0],
        parse_notification(ping, now + Duration::hours(1)).unwrap()[0]
    );

    let push = include_bytes!("../../../fixtures/vendors/garmin/push_dailies.json");
    let ev = parse_notification(push, now).unwrap();
    assert_eq!(
        ev[0].event_id,
        "dailies:fakeuser0000000000000000garmin01:fake-daily-20261122"
    );

    let dereg = include_bytes!("../../../fixtures/vendors/garmin/deregistration.json");
    let ev = parse_notification(dereg, now).unwrap();
    assert_eq!(ev[0].kind, EventKind::Deauthorized);

    assert_eq!(parse_notification(b"[]", now).unwrap_err().status(), 400);
    assert_eq!(
        parse_notification(br#"{"dailies":[{"userId":""}]}"#, now)
            .unwrap_err()
            .status(),
        400
    );
}

#[test]
fn pulls_stay_within_24_hours_and_backfills_within_the_limits() {
    let now: DateTime<Utc> = "2026-11-22T12:00:00Z".parse().unwrap();
    let d = |s: &str| s.parse::<NaiveDate>().unwrap();
    let w = upload_windows(d("2026-11-21"), d("2026-11-22"), now);
    assert_eq!(w.len(), 2);
    assert!(w.iter().all(|(a, b)| b - a <= 86_400 && a < b));
    assert_eq!(w[1].1, now.timestamp(), "never into the future");
    let b = backfill_requests(d("2026-08-01"), d("2026-11-22"));
    for (kind, start, end) in &b {
        let max = SUMMARY_TYPES.iter().find(|(k, _)| k == kind).unwrap().1;
        assert!(end - start < max * 86_400, "{kind}");
    }
    assert_eq!(b.iter().filter(|(k, _, _)| *k == "activities").count(), 5);
    assert_eq!(b.iter().filter(|(k, _, _)| *k == "dailies").count(), 2);
}
