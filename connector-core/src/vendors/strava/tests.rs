//! Golden tests: Strava-shaped payloads (connector-core/fixtures/vendors/strava,
//! see its README) → exact normalized values; webhook handshakes and events.

use super::*;
use crate::vendors::driver::WebhookRequest;
use crate::vendors::testing::{self, block_on};
use http::{HeaderMap, HeaderValue, Method};

fn fixture_activities(with_detail: bool) -> Vec<Activity> {
    let mut list: Vec<Activity> = serde_json::from_str(include_str!(
        "../../../fixtures/vendors/strava/athlete_activities.json"
    ))
    .unwrap();
    if with_detail {
        let d: Activity = serde_json::from_str(include_str!(
            "../../../fixtures/vendors/strava/activity_detail.json"
        ))
        .unwrap();
        for a in list.iter_mut() {
            if a.id == d.id {
                *a = d.clone();
            }
        }
    }
    list
}

fn find(s: &[Sample], metric: MetricType, label: &str) -> Option<(String, String, f64)> {
    let found: Vec<_> = s
        .iter()
        .filter(|x| x.metric == metric && x.label.as_deref() == Some(label))
        .collect();
    assert!(found.len() <= 1, "{metric:?} {label} twice");
    found
        .first()
        .map(|x| (x.date.to_string(), x.time.unwrap().to_rfc3339(), x.value))
}

#[test]
fn golden_workouts_land_on_the_local_start_date_with_units() {
    let s = normalize(&fixture_activities(true));
    assert_eq!(
        find(&s, MetricType::WorkoutDuration, "Run"),
        Some((
            "2026-11-21".into(),
            "2026-11-21T07:30:00+00:00".into(),
            52.0
        ))
    );
    assert_eq!(
        find(&s, MetricType::WorkoutCalories, "Run").map(|x| x.2),
        Some(702.0)
    );
    assert_eq!(
        find(&s, MetricType::WorkoutDistance, "Run").map(|x| x.2),
        Some(10012.5)
    );
    assert_eq!(
        find(&s, MetricType::HeartRate, "Run").map(|x| x.2),
        Some(151.2)
    );
    // Started 23:30 UTC on the 21st = 00:30 local on the 22nd: the local day wins.
    assert_eq!(
        find(&s, MetricType::WorkoutDuration, "Ride"),
        Some((
            "2026-11-22".into(),
            "2026-11-21T23:30:00+00:00".into(),
            62.0
        ))
    );
    assert_eq!(
        find(&s, MetricType::WorkoutDistance, "Ride").map(|x| x.2),
        Some(25000.0)
    );
    // Kilojoules are mechanical work: never turned into kcal; no HR sensor.
    assert_eq!(find(&s, MetricType::WorkoutCalories, "Ride"), None);
    assert_eq!(find(&s, MetricType::HeartRate, "Ride"), None);
    assert_eq!(
        find(&s, MetricType::WorkoutPower, "Ride").map(|x| x.2),
        Some(170.0)
    );
    // Strava has no daily values.
    assert!(s.iter().all(|x| x.time.is_some() && x.source == "strava"));
}

#[test]
fn summaries_alone_carry_no_calories() {
    let s = normalize(&fixture_activities(false));
    assert!(s.iter().all(|x| x.metric != MetricType::WorkoutCalories));
    assert_eq!(
        find(&s, MetricType::WorkoutDuration, "Run").map(|x| x.2),
        Some(52.0)
    );
}

#[test]
fn identify_reads_the_athlete_from_the_exchange_response() {
    let body: serde_json::Value = serde_json::from_str(include_str!(
        "../../../fixtures/vendors/strava/token_exchange_response.json"
    ))
    .unwrap();
    let mut extra = crate::vendors::token::ExtraFields::default();
    extra
        .fields
        .insert("athlete".into(), body["athlete"].clone());
    let grant = Grant {
        tokens: TokenSet {
            access_token: crate::domain::connection::Secret::new("FAKE-strava-access-token-0001"),
            refresh_token: None,
            expires_at: None,
            scopes: vec![],
        },
        extra,
    };
    assert_eq!(
        block_on(Strava.identify(&ctx(), &grant)).unwrap(),
        "12345678"
    );
    let empty = Grant {
        tokens: grant.tokens.clone(),
        extra: crate::vendors::token::ExtraFields::default(),
    };
    assert!(block_on(Strava.identify(&ctx(), &empty)).is_err());
}

#[test]
fn rate_limit_waits_run_to_the_next_quarter_hour_or_midnight() {
    let h = |pairs: &[(&'static str, &str)]| {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    };
    let at: DateTime<Utc> = "2026-11-23T08:07:30Z".parse().unwrap();
    let fixture_headers = h(&[
        ("x-ratelimit-limit", "200,2000"),
        ("x-ratelimit-usage", "12,340"),
        ("x-readratelimit-limit", "100,1000"),
        ("x-readratelimit-usage", "100,300"),
    ]);
    // 08:07:30 → 08:15:00.
    assert_eq!(rate_limit_wait(&fixture_headers, at), 450);
    let daily = h(&[
        ("x-readratelimit-limit", "100,1000"),
        ("x-readratelimit-usage", "40,1000"),
    ]);
    // → 00:00 UTC next day.
    assert_eq!(
        rate_limit_wait(&daily, at),
        86_400 - (8 * 3600 + 7 * 60 + 30)
    );
    assert_eq!(
        rate_limit_wait(&HeaderMap::new(), "2026-11-23T08:15:00Z".parse().unwrap()),
        900
    );
}

fn ctx() -> VendorCtx {
    testing::ctx(
        Vendor::Strava,
        &[
            ("CONNECTOR_STRAVA_CLIENT_ID", "fake-strava-client"),
            (
                "CONNECTOR_STRAVA_CLIENT_SECRET",
                "fake-strava-client-secret",
            ),
            ("CONNECTOR_STRAVA_VERIFY_TOKEN", "FAKE-verify-token"),
            ("CONNECTOR_STRAVA_SUBSCRIPTION_ID", "424242"),
        ],
    )
}

fn deliver(method: Method, query: &[(&str, &str)], body: &[u8]) -> Result<WebhookReply> {
    let h = HeaderMap::new();
    let q: HashMap<String, String> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let req = WebhookRequest {
        method: &method,
        headers: &h,
        query: &q,
        body,
        now: "2026-11-22T12:00:00Z".parse().unwrap(),
    };
    block_on(Strava.webhook(&ctx(), &req))
}

#[test]
fn validation_handshake_echoes_the_challenge_only_for_our_verify_token() {
    let q: HashMap<String, String> = serde_json::from_str(include_str!(
        "../../../fixtures/vendors/strava/webhook_validation_query.json"
    ))
    .unwrap();
    let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let reply = deliver(Method::GET, &pairs, b"").unwrap();
    let WebhookReply::Handshake {
        status,
        content_type,
        body,
    } = reply
    else {
        panic!("{reply:?}")
    };
    assert_eq!((status, content_type), (200, "application/json"));
    let expected: serde_json::Value = serde_json::from_str(include_str!(
        "../../../fixtures/vendors/strava/webhook_validation_response.json"
    ))
    .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        expected
    );

    let wrong = [
        ("hub.mode", "subscribe"),
        ("hub.challenge", "abc"),
        ("hub.verify_token", "FAKE-verify-tokeX"),
    ];
    match deliver(Method::GET, &wrong, b"").unwrap() {
        WebhookReply::Handshake { status, body, .. } => {
            assert_eq!(status, 403);
            assert!(!body.contains("abc") && !body.contains("FAKE"), "{body}");
        }
        other => panic!("{other:?}"),
    }
    let missing = [("hub.mode", "subscribe"), ("hub.challenge", "abc")];
    assert!(matches!(
        deliver(Method::GET, &missing, b"").unwrap(),
        WebhookReply::Handshake { status: 403, .. }
    ));
}

fn events(body: &[u8]) -> Vec<WebhookEvent> {
    match deliver(Method::POST, &[], body).unwrap() {
        WebhookReply::Events(e) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn activity_events_pull_around_their_time_and_deauthorization_revokes() {
    let create = events(include_bytes!(
        "../../../fixtures/vendors/strava/webhook_activity_create.json"
    ));
    assert_eq!(create.len(), 1);
    assert_eq!(create[0].vendor_user_id, "12345678");
    assert_eq!(create[0].kind, EventKind::DataChanged);
    assert_eq!(
        create[0].event_id,
        "strava:424242:12345678:90000000001:create:1795249503"
    );
    // event_time 1795249503 = 2026-11-21T08:25:03Z; +14 h is still the 21st,
    // so the worker pulls the 20th and 21st (the run's local day is the 21st).
    assert_eq!(create[0].date.to_string(), "2026-11-21");
    let update = events(include_bytes!(
        "../../../fixtures/vendors/strava/webhook_activity_update.json"
    ));
    assert_ne!(update[0].event_id, create[0].event_id);
    let delete = events(include_bytes!(
        "../../../fixtures/vendors/strava/webhook_activity_delete.json"
    ));
    assert_eq!(delete[0].kind, EventKind::DataChanged);
    let deauth = events(include_bytes!(
        "../../../fixtures/vendors/strava/webhook_athlete_deauthorize.json"
    ));
    assert_eq!(deauth[0].kind, EventKind::Deauthorized);
    assert_eq!(deauth[0].vendor_user_id, "12345678");
    // The same event re-sent has the same id (dedup), never a random one.
    assert_eq!(
        events(include_bytes!(
            "../../../fixtures/vendors/strava/webhook_activity_create.json"
        ))[0]
            .event_id,
        create[0].event_id
    );
    // Other athlete updates are accepted and ignored.
    let other = br#"{"aspect_type":"update","event_time":1795341600,"object_id":12345678,"object_type":"athlete","owner_id":12345678,"subscription_id":424242,"updates":{"firstname":"X"}}"#;
    assert!(events(other).is_empty());
}

#[test]
fn events_of_another_subscription_are_refused() {
    let body = include_str!("../../../fixtures/vendors/strava/webhook_activity_create.json")
        .replace("424242", "424243");
    let err = deliver(Method::POST, &[], body.as_bytes()).unwrap_err();
    assert_eq!(err.status(), 401);
    assert_eq!(
        deliver(Method::POST, &[], b"not json")
            .unwrap_err()
            .status(),
        400
    );
}

/// Golden values from the example answers in Strava's own swagger
/// (`GET /athlete/activities`, `GET /activities/{id}`).
#[test]
fn golden_values_from_stravas_own_examples() {
    let Some(doc) = crate::vendors::described::vendor_description("strava-swagger.json") else {
        return;
    };
    let example = |path: &str| {
        doc["paths"][path]["get"]["responses"]["200"]["examples"]["application/json"].clone()
    };
    let mut activities: Vec<Activity> =
        serde_json::from_value(example("/athlete/activities")).unwrap();
    activities.push(serde_json::from_value(example("/activities/{id}")).unwrap());
    let s = normalize(&activities);
    let on = |metric, date: &str| {
        let found: Vec<(String, f64)> = s
            .iter()
            .filter(|x| x.metric == metric && x.date.to_string() == date)
            .map(|x| (x.label.clone().unwrap_or_default(), x.value))
            .collect();
        found
    };
    // The detailed ride: 4,410 s, 28,099 m, 870.2 kcal, 185.5 W, no heart rate.
    let label = "MountainBikeRide".to_string();
    assert_eq!(
        on(MetricType::WorkoutDuration, "2018-02-16"),
        [(label.clone(), 73.5)]
    );
    assert_eq!(
        on(MetricType::WorkoutDistance, "2018-02-16"),
        [(label.clone(), 28099.0)]
    );
    assert_eq!(
        on(MetricType::WorkoutCalories, "2018-02-16"),
        [(label.clone(), 870.2)]
    );
    assert_eq!(
        on(MetricType::WorkoutPower, "2018-02-16"),
        [(label.clone(), 185.5)]
    );
    assert!(on(MetricType::HeartRate, "2018-02-16").is_empty());
    // A summary has no calories; its local start (05:15 at -08:00) dates it.
    assert_eq!(
        on(MetricType::WorkoutDuration, "2018-05-02"),
        [(label.clone(), 75.0)]
    );
    assert_eq!(
        on(MetricType::WorkoutDistance, "2018-05-02"),
        [(label.clone(), 24931.4)]
    );
    assert_eq!(
        on(MetricType::HeartRate, "2018-05-02"),
        [(label.clone(), 140.3)]
    );
    assert!(on(MetricType::WorkoutCalories, "2018-05-02").is_empty());
    assert_eq!(on(MetricType::WorkoutPower, "2018-04-30"), [(label, 200.0)]);
}

/// Every field the normalizer's type reads is one Strava's models name
/// (the same type reads summaries and details: either model will do), or
/// one Strava's own example answers carry where its models leave it out
/// (`average_heartrate`: the conformance suite's known-wrong list).
#[test]
fn every_field_read_is_in_stravas_models_or_examples() {
    use crate::vendors::described::{undescribed_reads, vendor_description};
    let (Some(models), Some(swagger)) = (
        vendor_description("strava-models.json"),
        vendor_description("strava-swagger.json"),
    ) else {
        return;
    };
    let example = &swagger["paths"]["/athlete/activities"]["get"]["responses"]["200"]["examples"]
        ["application/json"][0];
    let summary = undescribed_reads::<Activity>(&models, "SummaryActivity");
    let detail = undescribed_reads::<Activity>(&models, "DetailedActivity");
    let unnamed: Vec<&String> = summary.iter().filter(|f| detail.contains(f)).collect();
    assert_eq!(unnamed, ["/average_heartrate"], "{summary:?} {detail:?}");
    assert!(example["average_heartrate"].is_number());
}
