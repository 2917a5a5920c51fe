//! The vendor fixtures held to the vendors' own published API
//! descriptions (`../shared/vendor-specs`, or `CONNECTOR_VENDOR_SPECS`):
//! every fixture file is listed here with the operation it stands for, or
//! with why no description covers it, and each described one must conform
//! strictly (see `connector_infra::conformance`).

use connector_infra::conformance::{specs_dir, Spec, Target};
use connector_infra::stack::workspace_root;
use serde_json::Value;
use std::collections::BTreeSet;

/// What a fixture file stands for.
enum Covers {
    /// A body of `target` in the vendor's description.
    Described(Target<'static>),
    /// Nothing in the description: why (the vendor documents it only in prose, …).
    Undescribed(&'static str),
}
use Covers::*;

const fn get(path: &'static str) -> Covers {
    Described(Target::Response {
        method: "get",
        path,
        status: "200",
    })
}

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
];

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
    for v in VENDORS {
        let spec = Spec::load(&dir, v.spec).unwrap();
        let mut checked = 0;
        for (file, covers) in v.fixtures {
            let Described(target) = covers else { continue };
            let text = std::fs::read_to_string(fixture_dir(v.folder).join(file)).unwrap();
            let body: Value = serde_json::from_str(&text).unwrap();
            for problem in spec.check(*target, &body).unwrap() {
                failures.push(format!("{} {file} ({target}): {problem}", v.folder));
            }
            checked += 1;
        }
        println!(
            "{}: {checked} fixtures checked against {}",
            v.folder, v.spec
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
