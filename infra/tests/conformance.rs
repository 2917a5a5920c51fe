//! The vendor fixtures held to the vendors' own published API
//! descriptions (`../shared/vendor-specs`, or `CONNECTOR_VENDOR_SPECS`):
//! every fixture file is listed here with the operation it stands for, or
//! with why no description covers it, and each described one must conform
//! strictly (see `connector_infra::conformance`).

use connector_infra::conformance::covers::{get, operation, request, response, schema};
use connector_infra::conformance::{
    specs_dir, unexplained, Covers, Operation, Says, Sent, Spec, Target, KNOWN_WRONG,
};
use connector_infra::stack::workspace_root;
use serde_json::Value;
use std::collections::BTreeSet;

use Covers::*;

struct Vendor {
    folder: &'static str,
    spec: &'static str,
    fixtures: &'static [(&'static str, Covers)],
}

const NO_TOKEN_SCHEMA: &str = "the description has no OAuth token schema";

const VENDORS: &[Vendor] = &[
    Vendor {
        folder: "whoop",
        spec: "whoop-api-openapi.yml",
        fixtures: &[
            ("cycle_collection.json", get("/v2/cycle")),
            ("recovery_collection.json", get("/v2/recovery")),
            ("sleep_collection_page1.json", get("/v2/activity/sleep")),
            ("sleep_collection_page2.json", get("/v2/activity/sleep")),
            ("workout_collection.json", get("/v2/activity/workout")),
            (
                "user_measurement_body.json",
                get("/v2/user/measurement/body"),
            ),
            ("user_profile_basic.json", get("/v2/user/profile/basic")),
            ("token_response.json", Undescribed(NO_TOKEN_SCHEMA)),
            ("token_refresh_response.json", Undescribed(NO_TOKEN_SCHEMA)),
            ("webhook_recovery_updated.json", Undescribed(WHOOP_WEBHOOKS)),
            ("webhook_sleep_updated.json", Undescribed(WHOOP_WEBHOOKS)),
            ("webhook_workout_deleted.json", Undescribed(WHOOP_WEBHOOKS)),
            ("webhook_workout_updated.json", Undescribed(WHOOP_WEBHOOKS)),
        ],
    },
    Vendor {
        folder: "terra",
        spec: "terra-v2-bundled.yaml",
        fixtures: &[
            (
                "auth_authenticateuser_response.json",
                Described(Target::Response {
                    method: "post",
                    path: "/auth/authenticateUser",
                    status: "200",
                }),
            ),
            (
                "auth_generatewidgetsession_response.json",
                Described(Target::Response {
                    method: "post",
                    path: "/auth/generateWidgetSession",
                    status: "200",
                }),
            ),
            (
                "auth_deauthenticateuser_response.json",
                Described(Target::Response {
                    method: "delete",
                    path: "/auth/deauthenticateUser",
                    status: "200",
                }),
            ),
            ("get_daily_response_to_webhook_false.json", get("/daily")),
            (
                "webhook_auth_success.json",
                Described(Target::Webhook("auth")),
            ),
            ("webhook_deauth.json", Described(Target::Webhook("deauth"))),
            (
                "webhook_user_reauth.json",
                Described(Target::Webhook("user_reauth")),
            ),
            ("webhook_daily.json", Described(Target::Webhook("daily"))),
            ("webhook_sleep.json", Described(Target::Webhook("sleep"))),
            ("webhook_body.json", Described(Target::Webhook("body"))),
            (
                "webhook_activity.json",
                Described(Target::Webhook("activity")),
            ),
            (
                "webhook_healthcheck.json",
                Undescribed(
                    "Terra's description has no healthcheck event (docs.tryterra.co, event types)",
                ),
            ),
        ],
    },
    Vendor {
        folder: "oura",
        spec: "oura-openapi-1.27.json",
        fixtures: &[
            ("personal_info.json", get("/v2/usercollection/personal_info")),
            ("daily_sleep.json", get("/v2/usercollection/daily_sleep")),
            ("sleep_page1.json", get("/v2/usercollection/sleep")),
            ("sleep_page2.json", get("/v2/usercollection/sleep")),
            ("daily_readiness.json", get("/v2/usercollection/daily_readiness")),
            ("daily_activity.json", get("/v2/usercollection/daily_activity")),
            ("daily_spo2.json", get("/v2/usercollection/daily_spo2")),
            ("heartrate.json", get("/v2/usercollection/heartrate")),
            ("workout.json", get("/v2/usercollection/workout")),
            ("webhook_subscription_create_request.json", request("post", "/v2/webhook/subscription")),
            ("webhook_subscription.json", response("post", "/v2/webhook/subscription", "201")),
            ("webhook_subscription_list.json", get("/v2/webhook/subscription")),
            ("webhook_subscription_renewed.json", response("put", "/v2/webhook/subscription/renew/{id}", "200")),
            ("webhook_verification_response.json", Undescribed("our endpoint's answer to Oura's verification GET, described in Oura's webhook guide (prose)")),
            ("webhook_sleep_update.json", Undescribed(OURA_WEBHOOKS)),
            ("webhook_daily_activity_create.json", Undescribed(OURA_WEBHOOKS)),
            ("webhook_workout_delete.json", Undescribed(OURA_WEBHOOKS)),
            ("token_response.json", Undescribed(NO_TOKEN_SCHEMA)),
            ("token_refresh_response.json", Undescribed(NO_TOKEN_SCHEMA)),
        ],
    },
    Vendor {
        folder: "polar",
        spec: "polar-accesslink-api-openapi.yml",
        fixtures: &[
            ("register_user_response.json", response("post", "/v3/users", "200")),
            ("create_webhook_request.json", request("post", "/v3/webhooks")),
            ("create_webhook_response.json", response("post", "/v3/webhooks", "201")),
            ("get_webhook_response.json", get("/v3/webhooks")),
            ("webhook_ping.json", schema("webhookPing")),
            ("webhook_exercise.json", schema("webhookPayloadExercise")),
            ("webhook_sleep.json", schema("webhookPayloadSleep")),
            ("webhook_continuous_heart_rate.json", schema("webhookPayloadContinuousHeartRate")),
            ("webhook_activity_summary.json", schema("webhookPayloadActivitySummary")),
            ("exercises_list.json", get("/v3/exercises")),
            ("exercise_get.json", get("/v3/exercises/{exerciseId}")),
            ("sleep_list.json", get("/v3/users/sleep")),
            ("sleep_date.json", get("/v3/users/sleep/{date}")),
            ("nightly_recharge_list.json", get("/v3/users/nightly-recharge")),
            ("nightly_recharge_date.json", get("/v3/users/nightly-recharge/{date}")),
            ("continuous_heart_rate_date.json", get("/v3/users/continuous-heart-rate/{date}")),
            ("activities_list.json", get("/v3/users/activities")),
            ("activity_date.json", get("/v3/users/activities/{date}")),
            ("token_response.json", Undescribed("Polar's token endpoint (polarremote.com) is not in the AccessLink description")),
        ],
    },
    Vendor {
        folder: "withings",
        spec: "withings-data-api-openapi.yml",
        fixtures: &[
            ("oauth2_requesttoken_response.json", operation("oauth2-getaccesstoken")),
            ("notify_subscribe_response.json", operation("notify-subscribe")),
            ("measure_getmeas_response.json", operation("measure-getmeas")),
            ("measure_v2_getactivity_response.json", operation("measurev2-getactivity")),
            ("sleep_v2_getsummary_response.json", operation("sleepv2-getsummary")),
            ("measure_v2_getworkouts_response.json", operation("measurev2-getworkouts")),
            // An error comes in the envelope of the call that failed (here getmeas).
            ("error_invalid_token.json", operation("measure-getmeas")),
            ("notification_appli1_weight.txt", Undescribed(WITHINGS_NOTIFY)),
            ("notification_appli44_sleep.txt", Undescribed(WITHINGS_NOTIFY)),
            ("notification_appli46_unlink.txt", Undescribed(WITHINGS_NOTIFY)),
        ],
    },
    Vendor {
        folder: "strava",
        spec: "strava-models.json",
        fixtures: &[
            ("athlete_activities.json", Described(Target::ListOf("SummaryActivity"))),
            ("activity_detail.json", schema("DetailedActivity")),
            ("rate_limit_429.json", schema("Fault")),
            ("token_exchange_response.json", Undescribed(STRAVA_PROSE)),
            ("token_refresh_response.json", Undescribed(STRAVA_PROSE)),
            ("push_subscription_create_response.json", Undescribed(STRAVA_PROSE)),
            ("push_subscription_list_response.json", Undescribed(STRAVA_PROSE)),
            ("webhook_validation_query.json", Undescribed(STRAVA_PROSE)),
            ("webhook_validation_response.json", Undescribed(STRAVA_PROSE)),
            ("webhook_activity_create.json", Undescribed(STRAVA_PROSE)),
            ("webhook_activity_update.json", Undescribed(STRAVA_PROSE)),
            ("webhook_activity_delete.json", Undescribed(STRAVA_PROSE)),
            ("webhook_athlete_deauthorize.json", Undescribed(STRAVA_PROSE)),
        ],
    },
    Vendor {
        folder: "dexcom",
        spec: "dexcom-v3-from-docs.json",
        fixtures: &[
            ("v3_egvs_response.json", get("/v3/users/self/egvs")),
            ("v3_datarange_response.json", get("/v3/users/self/dataRange")),
            ("oauth2_token_response.json", response("post", "/v2/oauth2/token", "200")),
            ("oauth2_token_response_v3_keycloak.json", response("post", "/v2/oauth2/token", "200")),
        ],
    },
    Vendor {
        folder: "fitbit",
        spec: "google-health.v4.json",
        fixtures: &[
            ("identity.json", operation("health.users.getIdentity")),
            ("steps_list.json", operation(LIST_DATA_POINTS)),
            ("heart_rate_list.json", operation(LIST_DATA_POINTS)),
            ("daily_resting_heart_rate_list.json", operation(LIST_DATA_POINTS)),
            ("daily_heart_rate_variability_list.json", operation(LIST_DATA_POINTS)),
            ("daily_oxygen_saturation_list.json", operation(LIST_DATA_POINTS)),
            ("sleep_list.json", operation(LIST_DATA_POINTS)),
            ("exercise_list.json", operation(LIST_DATA_POINTS)),
            ("active_energy_burned_list.json", operation(LIST_DATA_POINTS)),
            ("daily_rollup_request.json", schema("DailyRollUpDataPointsRequest")),
            ("daily_rollup_steps_response.json", operation("health.users.dataTypes.dataPoints.dailyRollUp")),
            ("daily_rollup_total_calories_response.json", operation("health.users.dataTypes.dataPoints.dailyRollUp")),
            ("rollup_request.json", schema("RollUpDataPointsRequest")),
            ("rollup_heart_rate_response.json", operation("health.users.dataTypes.dataPoints.rollUp")),
            ("subscriber_create_request.json", schema("CreateSubscriberPayload")),
            ("token_response.json", Undescribed(GOOGLE_OAUTH)),
            ("token_refresh_response.json", Undescribed(GOOGLE_OAUTH)),
            ("verification.json", Undescribed(GOOGLE_NOTIFICATIONS)),
            ("notification.json", Undescribed(GOOGLE_NOTIFICATIONS)),
            ("error_429.json", Undescribed("the discovery document has no error schema (Google's AIP-193 error model, prose)")),
        ],
    },
];

const OURA_WEBHOOKS: &str =
    "Oura's description has no webhook event body (cloud.ouraring.com/v2/docs, webhooks: prose)";
const WITHINGS_NOTIFY: &str =
    "notifications are form posts, described in Withings' notification guide (prose), not JSON";
const STRAVA_PROSE: &str =
    "Strava's models have no token, push-subscription or webhook-event schema \
     (developers.strava.com/docs/authentication and /webhooks: prose and examples)";
const LIST_DATA_POINTS: &str = "health.users.dataTypes.dataPoints.list";
const GOOGLE_OAUTH: &str =
    "Google's OAuth token answers are not in the Health API's discovery document";
const GOOGLE_NOTIFICATIONS: &str =
    "the discovery document has no subscriber notification or verification body (prose only)";
const WHOOP_WEBHOOKS: &str =
    "WHOOP documents webhook bodies in prose only (developer.whoop.com/docs/developing/webhooks)";

fn fixture_dir(folder: &str) -> std::path::PathBuf {
    workspace_root()
        .join("connector-core/fixtures/vendors")
        .join(folder)
}

/// Every fixture file of a checked vendor is listed, and every listed file exists.
#[test]
fn every_fixture_is_listed_with_what_it_stands_for() {
    for v in VENDORS {
        let on_disk: BTreeSet<String> = std::fs::read_dir(fixture_dir(v.folder))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "README.md")
            .collect();
        let listed: BTreeSet<String> = v.fixtures.iter().map(|(f, _)| f.to_string()).collect();
        for (file, covers) in v.fixtures {
            if let Undescribed(why) = covers {
                assert!(
                    why.len() > 20,
                    "{}: say why {file} is not checked",
                    v.folder
                );
            }
        }
        assert_eq!(on_disk, listed, "{}: fixtures on disk vs listed", v.folder);
    }
}

/// Each described fixture conforms to its operation's schema.
#[test]
fn fixtures_conform_to_the_vendors_descriptions() {
    let Some(dir) = specs_dir() else {
        eprintln!(
            "vendor conformance did not run: no CONNECTOR_VENDOR_SPECS or ../shared/vendor-specs ({})",
            connector_infra::conformance::SOURCES
        );
        return;
    };
    let mut failures = Vec::new();
    let mut used = BTreeSet::new();
    for v in VENDORS {
        let spec = Spec::load(&dir, v.spec).unwrap();
        let mut checked = 0;
        for (file, covers) in v.fixtures {
            let Described(target) = covers else { continue };
            let text = std::fs::read_to_string(fixture_dir(v.folder).join(file)).unwrap();
            let body: Value = serde_json::from_str(&text).unwrap();
            for problem in spec.check(*target, &body).unwrap() {
                let (rest, explained) = unexplained(v.folder, &problem);
                used.extend(explained);
                if let Some(rest) = rest {
                    failures.push(format!("{} {file} ({target}): {rest}", v.folder));
                }
            }
            checked += 1;
        }
        println!(
            "{}: {checked} fixtures checked against {}",
            v.folder, v.spec
        );
    }
    for (i, k) in KNOWN_WRONG.iter().enumerate() {
        if let Some(place) = k.path.strip_prefix("request/") {
            let Says::Message(says) = k.says else {
                panic!("{}: a request exception names a message", k.vendor);
            };
            if request_exception_holds(&dir, k.vendor, place, says) {
                used.insert(i);
            }
        }
        assert!(
            k.evidence.len() > 40,
            "{}: say why {} is wrong",
            k.vendor,
            k.path
        );
        if !used.contains(&i) {
            failures.push(format!(
                "{}: known exception {} no longer met: drop it",
                k.vendor, k.path
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Whether the description still says `says` of a request parameter named
/// by a known-wrong entry (`<operation id>/query/<name>`), sent alone.
fn request_exception_holds(dir: &std::path::Path, vendor: &str, place: &str, says: &str) -> bool {
    let Some((op, name)) = place.split_once("/query/") else {
        panic!("{vendor}: request exceptions name a query parameter: {place}");
    };
    let vendor: connector_core::Vendor = vendor.parse().unwrap();
    let (file, _) = connector_infra::conformance::simulator::routes(vendor).unwrap();
    let query = format!("{name}=1");
    let sent = Sent {
        path: "",
        query: &query,
        content_type: "",
        body: b"",
        auth_scheme: Some("Bearer"),
        header_names: &[],
    };
    let found = Spec::load(dir, file)
        .unwrap()
        .check_request(Operation::Id(op), &sent)
        .unwrap();
    found.iter().any(|p| p == &format!("query/{name}: {says}"))
}

/// Simulator answers no suite reaches (the connector never lists a
/// Withings user's subscriptions), held to the description directly.
#[test]
fn simulator_answers_no_suite_reaches_conform() {
    let Some(dir) = specs_dir() else { return };
    let spec = Spec::load(&dir, "withings-data-api-openapi.yml").unwrap();
    let subscribed = [(
        44,
        "https://connector.example.test/v1/webhooks/withings".to_string(),
    )];
    let answer = serde_json::json!({
        "status": 0,
        "body": connector_infra::simulator::withings::notify_list_body(&subscribed),
    });
    assert_eq!(
        spec.check(Target::Operation("notify-list"), &answer)
            .unwrap(),
        Vec::<String>::new()
    );
}
