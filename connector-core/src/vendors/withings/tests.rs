//! Golden tests: Withings-shaped payloads (connector-core/fixtures/vendors/withings,
//! see its README) → exact normalized values; notifications and statuses.

use super::*;
use crate::vendors::driver::WebhookRequest;
use crate::vendors::testing::block_on;
use http::{HeaderMap, Method};

fn body_of(json: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["status"], 0);
    v["body"].clone()
}

fn fixture_samples() -> Vec<Sample> {
    let measures: MeasureBody = serde_json::from_value(body_of(include_str!(
        "../../../fixtures/vendors/withings/measure_getmeas_response.json"
    )))
    .unwrap();
    let activity = body_of(include_str!(
        "../../../fixtures/vendors/withings/measure_v2_getactivity_response.json"
    ));
    let sleep = body_of(include_str!(
        "../../../fixtures/vendors/withings/sleep_v2_getsummary_response.json"
    ));
    let workouts = body_of(include_str!(
        "../../../fixtures/vendors/withings/measure_v2_getworkouts_response.json"
    ));
    let mut s = normalize_measures(&measures);
    s.extend(normalize_activity(
        &serde_json::from_value::<Vec<ActivityDay>>(activity["activities"].clone()).unwrap(),
    ));
    s.extend(normalize_sleep(
        &serde_json::from_value::<Vec<SleepSeries>>(sleep["series"].clone()).unwrap(),
    ));
    s.extend(normalize_workouts(
        &serde_json::from_value::<Vec<Workout>>(workouts["series"].clone()).unwrap(),
    ));
    s
}

fn one(s: &[Sample], metric: MetricType) -> Vec<(String, Option<String>, f64)> {
    s.iter()
        .filter(|x| x.metric == metric)
        .map(|x| (x.date.to_string(), x.time.map(|t| t.to_rfc3339()), x.value))
        .collect()
}

#[test]
fn golden_measures_land_on_the_local_day_of_the_body_timezone() {
    let s = fixture_samples();
    assert_eq!(
        one(&s, MetricType::BodyWeight),
        vec![(
            "2026-11-21".into(),
            Some("2026-11-21T06:32:10+00:00".into()),
            72.35
        )]
    );
    // 23:20 UTC on the 21st is 00:20 in Paris on the 22nd.
    assert_eq!(
        one(&s, MetricType::HeartRate),
        vec![(
            "2026-11-22".into(),
            Some("2026-11-21T23:20:00+00:00".into()),
            64.0
        )]
    );
    assert_eq!(
        one(&s, MetricType::Spo2),
        vec![(
            "2026-11-22".into(),
            Some("2026-11-22T08:15:00+00:00".into()),
            97.0
        )]
    );
    assert_eq!(one(&s, MetricType::BodyFat)[0].2, 21.5);
    assert_eq!(one(&s, MetricType::BloodPressureSystolic)[0].2, 121.0);
    assert_eq!(one(&s, MetricType::BloodPressureDiastolic)[0].2, 78.0);
}

#[test]
fn golden_daily_values_activity_and_sleep() {
    let s = fixture_samples();
    let daily = |m| {
        let mut v: Vec<(String, f64)> = s
            .iter()
            .filter(|x| x.metric == m && x.time.is_none())
            .map(|x| (x.date.to_string(), x.value))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(
        daily(MetricType::Steps),
        vec![
            ("2026-11-21".into(), 8432.0),
            ("2026-11-22".into(), 10125.0)
        ]
    );
    // Calories are totalcalories (active + passive), never the active-only value.
    assert_eq!(
        daily(MetricType::Calories),
        vec![("2026-11-21".into(), 2210.3), ("2026-11-22".into(), 2380.0)]
    );
    assert_eq!(
        daily(MetricType::SleepDuration),
        vec![("2026-11-21".into(), 420.0)]
    );
    assert_eq!(
        daily(MetricType::SleepScore),
        vec![("2026-11-21".into(), 82.0)]
    );
    assert_eq!(daily(MetricType::Hrv), vec![("2026-11-21".into(), 45.0)]);
    // No resting heart rate from Withings; the workout adds no daily calories.
    assert!(daily(MetricType::RestingHr).is_empty());
    assert!(s.iter().all(|x| x.source == "withings"));
}

#[test]
fn golden_workout_keeps_category_local_day_and_units() {
    let s = fixture_samples();
    let w = |m| {
        s.iter()
            .find(|x| x.metric == m)
            .map(|x| (x.label.clone().unwrap(), x.date.to_string(), x.value))
    };
    assert_eq!(
        w(MetricType::WorkoutDuration),
        Some(("run".into(), "2026-11-22".into(), 42.5))
    );
    assert_eq!(w(MetricType::WorkoutCalories).unwrap().2, 310.0);
    assert_eq!(w(MetricType::WorkoutDistance).unwrap().2, 5020.0);
}

#[test]
fn naps_do_not_replace_the_night() {
    let night: SleepSeries = serde_json::from_value(
        body_of(include_str!(
            "../../../fixtures/vendors/withings/sleep_v2_getsummary_response.json"
        ))["series"][0]
            .clone(),
    )
    .unwrap();
    let mut nap = night.clone();
    nap.data.total_sleep_time = Some(1800.0);
    nap.data.sleep_score = Some(40.0);
    for order in [vec![night.clone(), nap.clone()], vec![nap, night]] {
        let s = normalize_sleep(&order);
        assert_eq!(one(&s, MetricType::SleepScore)[0].2, 82.0);
        assert_eq!(one(&s, MetricType::SleepDuration).len(), 1);
    }
}

#[test]
fn body_statuses_map_to_next_steps() {
    let e: serde_json::Value = serde_json::from_str(include_str!(
        "../../../fixtures/vendors/withings/error_invalid_token.json"
    ))
    .unwrap();
    let status = e["status"].as_i64().unwrap();
    assert!(matches!(
        status_error(status, "x"),
        VendorError::Unauthorized
    ));
    assert!(matches!(
        status_error(601, "x"),
        VendorError::RateLimited {
            retry_after_secs: 60
        }
    ));
    assert!(matches!(status_error(2555, "x"), VendorError::Transient(_)));
    assert!(matches!(status_error(503, "x"), VendorError::Permanent(_)));
}

#[test]
fn identify_takes_the_userid_of_the_token_response() {
    let body = body_of(include_str!(
        "../../../fixtures/vendors/withings/oauth2_requesttoken_response.json"
    ));
    let mut extra = crate::vendors::token::ExtraFields::default();
    extra.fields.insert("userid".into(), body["userid"].clone());
    let grant = Grant {
        tokens: TokenSet {
            access_token: crate::domain::connection::Secret::new("fake-withings-access-token-0001"),
            refresh_token: None,
            expires_at: None,
            scopes: vec![],
        },
        extra,
    };
    // No webhook URL here: no subscription call is made.
    assert_eq!(
        block_on(Withings.identify(&ctx(false), &grant)).unwrap(),
        "9990001"
    );
}

fn ctx(with_token: bool) -> VendorCtx {
    let mut vars = vec![
        ("CONNECTOR_WITHINGS_CLIENT_ID", "fake-withings-client"),
        (
            "CONNECTOR_WITHINGS_CLIENT_SECRET",
            "fake-withings-client-secret",
        ),
    ];
    if with_token {
        vars.push((
            "CONNECTOR_WITHINGS_VERIFY_TOKEN",
            "fake-withings-callback-token",
        ));
    }
    crate::vendors::testing::ctx(Vendor::Withings, &vars)
}

fn deliver(
    method: Method,
    token: Option<&str>,
    body: &[u8],
    with_token: bool,
) -> Result<WebhookReply> {
    let h = HeaderMap::new();
    let mut q = HashMap::new();
    if let Some(t) = token {
        q.insert(CALLBACK_TOKEN_PARAM.to_string(), t.to_string());
    }
    let req = WebhookRequest {
        method: &method,
        headers: &h,
        query: &q,
        body,
        now: "2026-11-22T12:00:00Z".parse().unwrap(),
    };
    block_on(Withings.webhook(&ctx(with_token), &req))
}

fn events(body: &[u8]) -> Vec<WebhookEvent> {
    match deliver(
        Method::POST,
        Some("fake-withings-callback-token"),
        body,
        true,
    )
    .unwrap()
    {
        WebhookReply::Events(e) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn notifications_queue_pulls_and_unlink_deauthorizes() {
    let sleep = events(include_bytes!(
        "../../../fixtures/vendors/withings/notification_appli44_sleep.txt"
    ));
    assert_eq!(
        sleep,
        vec![WebhookEvent {
            event_id: "withings:9990001:44:1795212600:1795241100".into(),
            vendor_user_id: "9990001".into(),
            // enddate 2026-11-21T04:45Z + 14 h → the 21st: the worker pulls the 20th and 21st.
            date: "2026-11-21".parse().unwrap(),
            kind: EventKind::DataChanged,
        }]
    );
    let weight = events(include_bytes!(
        "../../../fixtures/vendors/withings/notification_appli1_weight.txt"
    ));
    assert_eq!(
        weight[0].event_id,
        "withings:9990001:1:1795242730:1795242730"
    );
    assert_eq!(weight[0].kind, EventKind::DataChanged);
    let unlink = events(include_bytes!(
        "../../../fixtures/vendors/withings/notification_appli46_unlink.txt"
    ));
    assert_eq!(unlink[0].kind, EventKind::Deauthorized);
    assert_eq!(unlink[0].event_id, "withings:9990001:46:::unlink");
    assert!(events(b"userid=9990001&appli=46&action=update").is_empty());
}

#[test]
fn notifications_without_our_callback_token_are_refused() {
    let body = include_bytes!("../../../fixtures/vendors/withings/notification_appli1_weight.txt");
    for (token, configured) in [
        (None, true),
        (Some("fake-withings-callback-tokeX"), true),
        (Some("fake-withings-callback-token"), false),
    ] {
        assert_eq!(
            deliver(Method::POST, token, body, configured)
                .unwrap_err()
                .status(),
            401
        );
    }
    let bad = deliver(
        Method::POST,
        Some("fake-withings-callback-token"),
        b"appli=1",
        true,
    );
    assert_eq!(bad.unwrap_err().status(), 400);
}

#[test]
fn head_and_get_answer_the_subscription_check() {
    for m in [Method::HEAD, Method::GET] {
        assert_eq!(
            deliver(m, None, b"", true).unwrap(),
            WebhookReply::Handshake {
                status: 200,
                content_type: "text/plain",
                body: String::new()
            }
        );
    }
}

#[test]
fn measure_values_scale_by_their_unit() {
    let m = |value, unit| {
        Measure {
            value,
            kind: 1,
            unit,
        }
        .real()
    };
    assert_eq!(m(72350, -3), 72.35);
    assert_eq!(m(215, -1), 21.5);
    assert_eq!(m(97, 0), 97.0);
    assert_eq!(m(7, 2), 700.0);
}

/// Golden values from Withings' own description: its measure and activity
/// objects made of their fields' examples, in the units its texts state.
#[test]
fn golden_values_from_withings_own_examples() {
    use crate::vendors::described::{example_of, unstated_units, vendor_description};
    let Some(doc) = vendor_description("withings-data-api-openapi.yml") else {
        return;
    };
    let units = [
        ("measure_object", "unit", "value * 10^unit = real value"),
        ("activity_object", "totalcalories", "(in Kcal)"),
    ];
    assert_eq!(unstated_units(&doc, &units), Vec::<String>::new());
    // 65750 × 10^-3: 65.75 kg, meastype 1 being the weight in kg.
    let measure: Measure = serde_json::from_value(example_of(&doc, "measure_object")).unwrap();
    assert_eq!((measure.kind, measure.real()), (1, 65.75));
    // Its group is attributed 1 (a device measure not sure to be the
    // user's) and its category example is not 1 (a real measure): skipped.
    let group = example_of(&doc, "measuregrp_object");
    let body: MeasureBody =
        serde_json::from_value(serde_json::json!({"measuregrps": [group]})).unwrap();
    assert!(normalize_measures(&body).is_empty());
    let day: ActivityDay = serde_json::from_value(example_of(&doc, "activity_object")).unwrap();
    let s = normalize_activity(&[day]);
    assert_eq!(
        crate::vendors::testing::daily(&s, MetricType::Steps, "2020-06-24"),
        Some(6200.0)
    );
    assert_eq!(
        crate::vendors::testing::daily(&s, MetricType::Calories, "2020-06-24"),
        Some(3500.0)
    );
}

/// Every field the normalizers' types read is one Withings' description
/// names, where it names it.
#[test]
fn every_field_read_is_in_withings_description() {
    use crate::vendors::described::{undescribed_reads, vendor_description};
    let Some(doc) = vendor_description("withings-data-api-openapi.yml") else {
        return;
    };
    let found = [
        (
            "measure group",
            undescribed_reads::<MeasureGroup>(&doc, "measuregrp_object"),
        ),
        (
            "activity",
            undescribed_reads::<ActivityDay>(&doc, "activity_object"),
        ),
        (
            "sleep",
            undescribed_reads::<SleepSeries>(&doc, "sleep_summary_object"),
        ),
        (
            "workout",
            undescribed_reads::<Workout>(&doc, "workout_object"),
        ),
    ];
    for (what, reads) in found {
        assert!(reads.is_empty(), "{what}: {reads:?}");
    }
}
