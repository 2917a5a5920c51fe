//! Golden tests: Terra-shaped payloads (connector-core/fixtures/vendors/terra,
//! see its README) → exact normalized values; the signature vector.

use super::*;

fn data(json: &str) -> (String, Vec<Value>) {
    let v: Value = serde_json::from_str(json).unwrap();
    (
        v["type"].as_str().unwrap().to_string(),
        v["data"].as_array().unwrap().clone(),
    )
}

fn all() -> Vec<Sample> {
    [
        include_str!("../../../fixtures/vendors/terra/webhook_daily.json"),
        include_str!("../../../fixtures/vendors/terra/webhook_sleep.json"),
        include_str!("../../../fixtures/vendors/terra/webhook_body.json"),
        include_str!("../../../fixtures/vendors/terra/webhook_activity.json"),
    ]
    .iter()
    .flat_map(|j| {
        let (kind, d) = data(j);
        normalize(&kind, &d)
    })
    .collect()
}

fn find(s: &[Sample], m: MetricType) -> Vec<(String, Option<String>, f64)> {
    s.iter()
        .filter(|x| x.metric == m)
        .map(|x| (x.date.to_string(), x.time.map(|t| t.to_rfc3339()), x.value))
        .collect()
}

#[test]
fn golden_values_on_the_local_day() {
    let s = all();
    let day = |m| find(&s, m);
    assert_eq!(
        day(MetricType::Steps),
        vec![("2026-11-21".into(), None, 9876.0)]
    );
    assert_eq!(
        day(MetricType::Calories),
        vec![("2026-11-21".into(), None, 2345.0)]
    );
    assert_eq!(
        day(MetricType::RestingHr),
        vec![("2026-11-21".into(), None, 56.0)]
    );
    assert_eq!(
        day(MetricType::HeartRate),
        vec![("2026-11-21".into(), None, 72.0)]
    );
    assert_eq!(
        day(MetricType::Spo2),
        vec![("2026-11-21".into(), None, 97.0)]
    );
    assert_eq!(
        day(MetricType::SleepDuration),
        vec![("2026-11-21".into(), None, 426.0)]
    );
    assert_eq!(
        day(MetricType::SleepScore),
        vec![("2026-11-21".into(), None, 84.0)]
    );
    assert_eq!(
        day(MetricType::Hrv),
        vec![("2026-11-21".into(), None, 52.3)]
    );
    assert_eq!(
        day(MetricType::BodyWeight),
        vec![(
            "2026-11-22".into(),
            Some("2026-11-22T12:40:00+00:00".into()),
            80.4
        )]
    );
    assert_eq!(
        day(MetricType::Glucose),
        vec![(
            "2026-11-22".into(),
            Some("2026-11-22T13:15:00+00:00".into()),
            104.0
        )]
    );
    // The workout does not add to the day's steps or calories.
    let w = find(&s, MetricType::WorkoutCalories);
    assert_eq!(
        w,
        vec![(
            "2026-11-22".into(),
            Some("2026-11-22T22:00:00+00:00".into()),
            410.0
        )]
    );
    let (kind, d) = data(include_str!(
        "../../../fixtures/vendors/terra/get_daily_response_to_webhook_false.json"
    ));
    assert_eq!(kind, "daily");
    let pulled = normalize(&kind, &d);
    let pushed = normalize(
        "daily",
        &data(include_str!(
            "../../../fixtures/vendors/terra/webhook_daily.json"
        ))
        .1,
    );
    assert_eq!(pulled, pushed, "a pull and a push of the same day agree");
}

#[test]
fn signature_vector_and_its_window() {
    let body = include_bytes!("../../../fixtures/vendors/terra/webhook_healthcheck.json");
    let secret = b"fake-terra-signing-secret";
    let header = "t=1795348800,v1=3fe546d13fbd7080845a509843ebca764560cfa6c0b6887ac9c994c4bd7d9127";
    assert_eq!(sign(secret, 1795348800, body), header);
    let mut h = HeaderMap::new();
    h.insert(SIGNATURE_HEADER, HeaderValue::from_static(header));
    let t: DateTime<Utc> = "2026-11-22T12:00:00Z".parse().unwrap();
    assert_eq!(verify(secret, &h, body, t + Duration::seconds(60)), Ok(()));
    assert_eq!(
        verify(secret, &h, body, t + Duration::seconds(301)),
        Err(Rejection::Stale(300))
    );
    assert_eq!(verify(b"other", &h, body, t), Err(Rejection::BadSignature));
    // Several v1 values: any may match; a v0 never counts.
    let mut h2 = HeaderMap::new();
    h2.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_str(&format!(
            "t=1795348800,v1=00,v0={},v1={}",
            &header[16..],
            &header[16..]
        ))
        .unwrap(),
    );
    assert_eq!(verify(secret, &h2, body, t), Ok(()));
    let mut h3 = HeaderMap::new();
    h3.insert(
        SIGNATURE_HEADER,
        HeaderValue::from_str(&format!("t=1795348800,v0={}", &header[16..])).unwrap(),
    );
    assert_eq!(
        verify(secret, &h3, body, t),
        Err(Rejection::Malformed(SIGNATURE_HEADER))
    );
    assert_eq!(
        verify(secret, &HeaderMap::new(), body, t),
        Err(Rejection::MissingHeader(SIGNATURE_HEADER))
    );
}

#[test]
fn events_pull_data_revoke_on_deauth_and_ignore_the_rest() {
    let now: DateTime<Utc> = "2026-11-22T14:00:00Z".parse().unwrap();
    let daily = include_bytes!("../../../fixtures/vendors/terra/webhook_daily.json");
    let ev = parse_webhook(daily, now).unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].vendor_user_id, "00000000-0000-4000-8000-000000007e11");
    assert_eq!(ev[0].date.to_string(), "2026-11-21");
    assert_eq!(ev[0].kind, EventKind::DataChanged);
    assert_eq!(
        ev[0].event_id,
        parse_webhook(daily, now + Duration::hours(1)).unwrap()[0].event_id
    );
    let deauth = include_bytes!("../../../fixtures/vendors/terra/webhook_deauth.json");
    assert_eq!(
        parse_webhook(deauth, now).unwrap()[0].kind,
        EventKind::Deauthorized
    );
    for quiet in [
        &include_bytes!("../../../fixtures/vendors/terra/webhook_healthcheck.json")[..],
        include_bytes!("../../../fixtures/vendors/terra/webhook_auth_success.json"),
        include_bytes!("../../../fixtures/vendors/terra/webhook_user_reauth.json"),
    ] {
        assert!(parse_webhook(quiet, now).unwrap().is_empty());
    }
    assert_eq!(parse_webhook(b"{}", now).unwrap_err().status(), 400);
}

/// Every path the normalizer reads is one Terra's description has, in the
/// record schema of its data type.
#[test]
fn every_path_read_is_in_terras_description() {
    use crate::vendors::described::{names_path, vendor_description};
    let Some(doc) = vendor_description("terra-v2-bundled.yaml") else {
        return;
    };
    let schema = |kind: &str| match kind {
        "daily" => "Daily",
        "sleep" => "Sleep",
        "activity" => "Activity",
        _ => "Body",
    };
    let missing: Vec<String> = paths_read()
        .into_iter()
        .filter(|(kind, path)| !names_path(&doc, schema(kind), path))
        .map(|(kind, path)| format!("{kind}: {}", path.join(".")))
        .collect();
    assert!(missing.is_empty(), "{missing:?}");
    // The check itself: the path the driver once read for the sleep score.
    assert!(!names_path(&doc, "Sleep", &["scores", "sleep_score"]));
}

/// Golden values from the example events in Terra's own description.
#[test]
fn golden_values_from_terras_own_webhook_examples() {
    let Some(doc) = crate::vendors::described::vendor_description("terra-v2-bundled.yaml") else {
        return;
    };
    let samples = |kind: &str| {
        let event =
            &doc["webhooks"][kind]["post"]["requestBody"]["content"]["application/json"]["example"];
        normalize(kind, event["data"].as_array().unwrap())
    };
    let day = "2026-07-01";
    let daily = samples("daily");
    assert_eq!(
        crate::vendors::testing::daily(&daily, MetricType::Steps, day),
        Some(11894.0)
    );
    assert_eq!(
        crate::vendors::testing::daily(&daily, MetricType::Calories, day),
        Some(2450.8)
    );
    // 25,200 s asleep: 420 minutes, on the local day the sleep ended.
    let sleep = samples("sleep");
    assert_eq!(
        crate::vendors::testing::daily(&sleep, MetricType::SleepDuration, day),
        Some(420.0)
    );
    // 07:04:11 to 07:52:48: 49 minutes; 512.5 kcal; 8,250.4 m.
    let run: Vec<(MetricType, f64)> = samples("activity")
        .iter()
        .filter(|x| x.label.as_deref() == Some("morning run") && x.date.to_string() == day)
        .map(|x| (x.metric, x.value))
        .collect();
    assert_eq!(
        run,
        [
            (MetricType::WorkoutDuration, 49.0),
            (MetricType::WorkoutCalories, 512.5),
            (MetricType::WorkoutDistance, 8250.4),
        ]
    );
    let body = samples("body");
    let weight: Vec<(String, String, f64)> = body
        .iter()
        .filter(|x| x.metric == MetricType::BodyWeight)
        .map(|x| (x.date.to_string(), x.time.unwrap().to_rfc3339(), x.value))
        .collect();
    assert_eq!(
        weight,
        [(day.into(), "2026-07-01T06:55:02+00:00".into(), 72.4)]
    );
}
