//! The simulator's answers held to the vendors' descriptions: every route
//! a simulated vendor serves is listed with the operation it plays (or why
//! no description covers it), and each JSON answer it gave is checked.

use super::covers::{get, operation, response};
use super::{path_matches, unexplained, Covers, Operation, Sent, Spec, Target};
use crate::simulator::record::Exchange;
use connector_core::Vendor;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use Covers::{Described, Undescribed};

/// A route of a simulated vendor: method, path under its base URL (`*`:
/// any one segment), Withings' `action` where the path serves several
/// operations, and what it plays.
type Route = (&'static str, &'static str, Option<&'static str>, Covers);

const OAUTH: &str = "the OAuth authorize and token endpoints are not in the vendor's description";

/// The description file of each vendor that has one, and its routes.
pub fn routes(vendor: Vendor) -> Option<(&'static str, &'static [Route])> {
    Some(match vendor {
        Vendor::Whoop => ("whoop-api-openapi.yml", WHOOP),
        Vendor::Oura => ("oura-openapi-1.27.json", OURA),
        Vendor::Polar => ("polar-accesslink-api-openapi.yml", POLAR),
        Vendor::Strava => ("strava-models.json", STRAVA),
        Vendor::Withings => ("withings-data-api-openapi.yml", WITHINGS),
        Vendor::Dexcom => ("dexcom-v3-from-docs.json", DEXCOM),
        Vendor::Terra => ("terra-v2-bundled.yaml", TERRA),
        Vendor::Fitbit => ("google-health.v4.json", FITBIT),
        _ => return None,
    })
}

const WHOOP: &[Route] = &[
    (
        "GET",
        "/developer/v2/user/profile/basic",
        None,
        get("/v2/user/profile/basic"),
    ),
    ("GET", "/developer/v2/cycle", None, get("/v2/cycle")),
    ("GET", "/developer/v2/recovery", None, get("/v2/recovery")),
    (
        "GET",
        "/developer/v2/activity/sleep",
        None,
        get("/v2/activity/sleep"),
    ),
    (
        "GET",
        "/developer/v2/activity/workout",
        None,
        get("/v2/activity/workout"),
    ),
    (
        "DELETE",
        "/developer/v2/user/access",
        None,
        response("delete", "/v2/user/access", "204"),
    ),
];

const OURA: &[Route] = &[
    (
        "GET",
        "/v2/usercollection/personal_info",
        None,
        get("/v2/usercollection/personal_info"),
    ),
    (
        "GET",
        "/v2/usercollection/heartrate",
        None,
        get("/v2/usercollection/heartrate"),
    ),
    (
        "GET",
        "/v2/usercollection/daily_sleep",
        None,
        get("/v2/usercollection/daily_sleep"),
    ),
    (
        "GET",
        "/v2/usercollection/sleep",
        None,
        get("/v2/usercollection/sleep"),
    ),
    (
        "GET",
        "/v2/usercollection/daily_readiness",
        None,
        get("/v2/usercollection/daily_readiness"),
    ),
    (
        "GET",
        "/v2/usercollection/daily_activity",
        None,
        get("/v2/usercollection/daily_activity"),
    ),
    (
        "GET",
        "/v2/usercollection/daily_spo2",
        None,
        get("/v2/usercollection/daily_spo2"),
    ),
    (
        "GET",
        "/v2/usercollection/workout",
        None,
        get("/v2/usercollection/workout"),
    ),
    (
        "GET",
        "/v2/webhook/subscription",
        None,
        get("/v2/webhook/subscription"),
    ),
    (
        "POST",
        "/v2/webhook/subscription",
        None,
        response("post", "/v2/webhook/subscription", "201"),
    ),
    (
        "PUT",
        "/v2/webhook/subscription/renew/*",
        None,
        response("put", "/v2/webhook/subscription/renew/{id}", "200"),
    ),
    (
        "DELETE",
        "/v2/webhook/subscription/*",
        None,
        response("delete", "/v2/webhook/subscription/{id}", "204"),
    ),
    ("GET", "/oauth/revoke", None, Undescribed(OAUTH)),
];

const POLAR: &[Route] = &[
    (
        "POST",
        "/v3/users",
        None,
        response("post", "/v3/users", "200"),
    ),
    (
        "DELETE",
        "/v3/users/*",
        None,
        response("delete", "/v3/users/{user-id}", "204"),
    ),
    ("GET", "/v3/exercises", None, get("/v3/exercises")),
    (
        "GET",
        "/v3/exercises/*",
        None,
        get("/v3/exercises/{exerciseId}"),
    ),
    ("GET", "/v3/users/sleep", None, get("/v3/users/sleep")),
    (
        "GET",
        "/v3/users/sleep/*",
        None,
        get("/v3/users/sleep/{date}"),
    ),
    (
        "GET",
        "/v3/users/nightly-recharge",
        None,
        get("/v3/users/nightly-recharge"),
    ),
    (
        "GET",
        "/v3/users/nightly-recharge/*",
        None,
        get("/v3/users/nightly-recharge/{date}"),
    ),
    (
        "GET",
        "/v3/users/continuous-heart-rate/*",
        None,
        get("/v3/users/continuous-heart-rate/{date}"),
    ),
    (
        "GET",
        "/v3/users/activities",
        None,
        get("/v3/users/activities"),
    ),
    (
        "GET",
        "/v3/users/activities/*",
        None,
        get("/v3/users/activities/{date}"),
    ),
];

const STRAVA_PROSE: &str =
    "Strava's models have no push-subscription or deauthorization schema (prose)";

const STRAVA: &[Route] = &[
    (
        "GET",
        "/api/v3/athlete",
        None,
        Described(Target::Component("DetailedAthlete")),
    ),
    (
        "GET",
        "/api/v3/athlete/activities",
        None,
        Described(Target::ListOf("SummaryActivity")),
    ),
    (
        "GET",
        "/api/v3/activities/*",
        None,
        Described(Target::Component("DetailedActivity")),
    ),
    (
        "POST",
        "/api/v3/push_subscriptions",
        None,
        Undescribed(STRAVA_PROSE),
    ),
    (
        "POST",
        "/oauth/deauthorize",
        None,
        Undescribed(STRAVA_PROSE),
    ),
];

const WITHINGS: &[Route] = &[
    (
        "GET",
        "/oauth2_user/authorize2",
        None,
        operation("oauth2-authorize"),
    ),
    (
        "POST",
        "/v2/oauth2",
        Some("requesttoken"),
        operation("oauth2-getaccesstoken"),
    ),
    (
        "POST",
        "/v2/oauth2",
        Some("revoke"),
        operation("oauth2-revoke"),
    ),
    (
        "POST",
        "/v2/signature",
        Some("getnonce"),
        operation("signaturev2-getnonce"),
    ),
    (
        "POST",
        "/measure",
        Some("getmeas"),
        operation("measure-getmeas"),
    ),
    (
        "POST",
        "/v2/measure",
        Some("getactivity"),
        operation("measurev2-getactivity"),
    ),
    (
        "POST",
        "/v2/measure",
        Some("getworkouts"),
        operation("measurev2-getworkouts"),
    ),
    (
        "POST",
        "/v2/sleep",
        Some("getsummary"),
        operation("sleepv2-getsummary"),
    ),
    (
        "POST",
        "/notify",
        Some("subscribe"),
        operation("notify-subscribe"),
    ),
    ("POST", "/notify", Some("list"), operation("notify-list")),
    (
        "POST",
        "/notify",
        Some("revoke"),
        operation("notify-revoke"),
    ),
];

const DEXCOM: &[Route] = &[
    (
        "GET",
        "/v3/users/self/dataRange",
        None,
        get("/v3/users/self/dataRange"),
    ),
    (
        "GET",
        "/v3/users/self/egvs",
        None,
        get("/v3/users/self/egvs"),
    ),
    (
        "POST",
        "/v2/oauth2/token",
        None,
        response("post", "/v2/oauth2/token", "200"),
    ),
];

const TERRA: &[Route] = &[
    (
        "POST",
        "/v2/auth/authenticateUser",
        None,
        response("post", "/auth/authenticateUser", "200"),
    ),
    (
        "DELETE",
        "/v2/auth/deauthenticateUser",
        None,
        response("delete", "/auth/deauthenticateUser", "200"),
    ),
    ("GET", "/v2/userInfo", None, get("/userInfo")),
    ("GET", "/v2/daily", None, get("/daily")),
    ("GET", "/v2/sleep", None, get("/sleep")),
    ("GET", "/v2/activity", None, get("/activity")),
    ("GET", "/v2/body", None, get("/body")),
];

const FITBIT: &[Route] = &[
    (
        "GET",
        "/v4/users/me/identity",
        None,
        operation("health.users.getIdentity"),
    ),
    (
        "GET",
        "/v4/users/me/dataTypes/*/dataPoints",
        None,
        operation("health.users.dataTypes.dataPoints.list"),
    ),
    (
        "POST",
        "/v4/users/me/dataTypes/*/dataPoints:dailyRollUp",
        None,
        operation("health.users.dataTypes.dataPoints.dailyRollUp"),
    ),
    (
        "POST",
        "/v4/users/me/dataTypes/*/dataPoints:rollUp",
        None,
        operation("health.users.dataTypes.dataPoints.rollUp"),
    ),
    (
        "POST",
        "/revoke",
        None,
        Undescribed("Google's OAuth revoke endpoint is not in the Health API's discovery document"),
    ),
];

/// What checking one vendor's exchanges found.
#[derive(Debug, Default)]
pub struct Report {
    /// JSON answers checked against the description.
    pub checked: usize,
    /// The operations they stand for.
    pub operations: BTreeSet<String>,
    /// Answers not checked, by why.
    pub unchecked: BTreeMap<String, usize>,
    /// Requests checked against the description.
    pub requests_checked: usize,
    /// Webhook bodies the simulator made, checked against the description.
    pub webhooks_checked: usize,
    /// Requests not checked, by why.
    pub requests_unchecked: BTreeMap<String, usize>,
    /// Mismatches and unlisted routes, one line each.
    pub problems: Vec<String>,
}

/// Strava's operations in its swagger (its models file has no paths).
const STRAVA_OPERATIONS: &[(&str, &str, Operation)] = &[
    (
        "GET",
        "/api/v3/athlete",
        Operation::Id("getLoggedInAthlete"),
    ),
    (
        "GET",
        "/api/v3/athlete/activities",
        Operation::Id("getLoggedInAthleteActivities"),
    ),
    (
        "GET",
        "/api/v3/activities/*",
        Operation::Id("getActivityById"),
    ),
];

/// The description and operation a request of `vendor` to a route that
/// plays `target` is checked against.
fn request_operation(
    vendor: Vendor,
    e: &Exchange,
    target: Target<'static>,
) -> Option<(&'static str, Operation<'static>)> {
    match target {
        Target::Response { method, path, .. } | Target::Request { method, path } => {
            Some((routes(vendor)?.0, Operation::At { method, path }))
        }
        Target::Operation(id) => Some((routes(vendor)?.0, Operation::Id(id))),
        Target::Component(_) | Target::ListOf(_) if vendor == Vendor::Strava => STRAVA_OPERATIONS
            .iter()
            .find(|(m, p, _)| *m == e.method && path_matches(p, &e.path))
            .map(|(.., op)| ("strava-swagger.json", *op)),
        _ => None,
    }
}

/// Checks the request of `e` against `op` of `spec`; its problems, or why not.
fn check_request(
    vendor: Vendor,
    spec: &Spec,
    op: Operation<'static>,
    e: &Exchange,
) -> Result<Vec<String>, String> {
    let sent = Sent {
        path: &e.path,
        query: &e.query,
        content_type: &e.request_content_type,
        body: &e.request_body,
        auth_scheme: e.auth_scheme.as_deref(),
        header_names: &e.header_names,
    };
    let found = spec.check_request(op, &sent).map_err(|e| e.to_string())?;
    // Known-wrong entries name a request's place as `request/<operation>/<where>`.
    let key = match op {
        Operation::Id(id) => id.to_string(),
        Operation::At { method, path } => format!("{}{path}", method.to_uppercase()),
    };
    Ok(found
        .into_iter()
        .filter(|p| {
            unexplained(vendor.as_str(), &format!("request/{key}/{p}"))
                .0
                .is_some()
        })
        .map(|p| format!("{} {} ({op}): request {p}", e.method, e.path))
        .collect())
}

/// Withings' `action`, from the query or the form body.
fn action_of(e: &Exchange) -> Option<String> {
    let from = |s: &[u8]| {
        url::form_urlencoded::parse(s)
            .find(|(k, _)| k == "action")
            .map(|(_, v)| v.into_owned())
    };
    from(e.query.as_bytes()).or_else(|| from(&e.request_body))
}

/// A JSON path with every array index as `*`: one line per place,
/// whichever item it was found in.
fn any_index(p: &str) -> String {
    p.split('/')
        .map(|step| {
            if !step.is_empty() && step.chars().all(|c| c.is_ascii_digit()) {
                "*"
            } else {
                step
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// What a webhook body the simulator made stands for in its vendor's
/// description, if it has one.
fn delivery_target(vendor: Vendor, body: &Value) -> Option<Target<'_>> {
    match vendor {
        Vendor::Terra => body["type"].as_str().map(Target::Webhook),
        Vendor::Polar => Some(Target::Component(match body["event"].as_str()? {
            "EXERCISE" => "webhookPayloadExercise",
            "SLEEP" => "webhookPayloadSleep",
            "CONTINUOUS_HEART_RATE" => "webhookPayloadContinuousHeartRate",
            "ACTIVITY_SUMMARY" => "webhookPayloadActivitySummary",
            "PING" => "webhookPing",
            _ => return None,
        })),
        _ => None,
    }
}

/// Checks `exchanges` of `vendor`, and the webhook bodies it `delivered`,
/// against its description in `dir`; None when the vendor has no
/// description (Garmin).
pub fn check(
    dir: &Path,
    vendor: Vendor,
    oauth_paths: (&str, &str),
    exchanges: &[Exchange],
    delivered: &[Vec<u8>],
) -> Option<Report> {
    let (file, table) = routes(vendor)?;
    let spec = match Spec::load(dir, file) {
        Ok(s) => s,
        Err(e) => {
            return Some(Report {
                problems: vec![e.to_string()],
                ..Report::default()
            })
        }
    };
    let mut report = Report::default();
    let mut others: BTreeMap<&str, Result<Spec, String>> = BTreeMap::new();
    let mut skip = |why: &str| *report.unchecked.entry(why.to_string()).or_default() += 1;
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut operations = BTreeSet::new();
    for e in exchanges {
        if e.path.contains("/_sim/") {
            continue;
        }
        let action = action_of(e);
        let route = table.iter().find(|(m, p, a, _)| {
            *m == e.method
                && path_matches(p, &e.path)
                && (a.is_none() || a.map(String::from) == action)
        });
        let target = match route {
            Some((.., Described(t))) => {
                match request_operation(vendor, e, *t) {
                    Some((request_file, op)) => {
                        // The vendor's own description, or another one
                        // (Strava's swagger), loaded once.
                        let request_spec = if request_file == file {
                            Ok(&spec)
                        } else {
                            others
                                .entry(request_file)
                                .or_insert_with(|| {
                                    Spec::load(dir, request_file).map_err(|e| e.to_string())
                                })
                                .as_ref()
                                .map_err(Clone::clone)
                        };
                        match request_spec.and_then(|s| check_request(vendor, s, op, e)) {
                            Ok(found) => {
                                report.requests_checked += 1;
                                problems.extend(found);
                            }
                            Err(why) => problems.push(why),
                        }
                    }
                    None => {
                        *report
                            .requests_unchecked
                            .entry(format!("{t}: no operation in the description"))
                            .or_default() += 1
                    }
                }
                *t
            }
            Some((.., Undescribed(why))) => {
                skip(why);
                continue;
            }
            None if e.path == oauth_paths.0 || e.path == oauth_paths.1 => {
                skip(OAUTH);
                continue;
            }
            None => {
                problems.push(format!(
                    "{} {}: a route no description entry covers",
                    e.method, e.path
                ));
                continue;
            }
        };
        if !e.content_type.contains("json") || e.body.is_empty() {
            skip("answers without a JSON body");
            continue;
        }
        let Ok(body) = serde_json::from_slice::<Value>(&e.body) else {
            problems.push(format!("{} {}: the answer is not JSON", e.method, e.path));
            continue;
        };
        let status = e.status.to_string();
        let target = match target {
            Target::Response { method, path, .. } => {
                if spec
                    .schema_of(Target::Response {
                        method,
                        path,
                        status: &status,
                    })
                    .is_err()
                {
                    skip(&format!(
                        "statuses the description gives no JSON schema ({status})"
                    ));
                    continue;
                }
                Target::Response {
                    method,
                    path,
                    status: &status,
                }
            }
            // Withings answers errors with HTTP 200 and a non-zero `status`,
            // in the operation's own envelope: checked as its answer.
            other if !(200..300).contains(&e.status) => {
                let _ = other;
                skip(&format!(
                    "error answers ({status}) the description has no schema for"
                ));
                continue;
            }
            other => other,
        };
        match spec.check(target, &body) {
            Ok(found) => {
                for p in found {
                    if let Some(p) = unexplained(vendor.as_str(), &p).0 {
                        let (at, what) = p.split_once(": ").unwrap_or((&p, ""));
                        problems.push(format!(
                            "{} {} ({target}): {}: {what}",
                            e.method,
                            e.path,
                            any_index(at)
                        ));
                    }
                }
                checked += 1;
                operations.insert(target.to_string());
            }
            Err(err) => problems.push(err.to_string()),
        }
    }
    for body in delivered {
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            problems.push("a webhook body the simulator made is not JSON".into());
            continue;
        };
        let Some(target) = delivery_target(vendor, &body) else {
            *report
                .unchecked
                .entry("webhook bodies the description has no schema for".into())
                .or_default() += 1;
            continue;
        };
        match spec.check(target, &body) {
            Ok(found) => {
                problems.extend(
                    found
                        .into_iter()
                        .filter_map(|p| unexplained(vendor.as_str(), &p).0)
                        .map(|p| format!("webhook ({target}): {p}")),
                );
                report.webhooks_checked += 1;
            }
            Err(err) => problems.push(err.to_string()),
        }
    }
    problems.sort();
    problems.dedup();
    report.checked = checked;
    report.operations = operations;
    report.problems = problems;
    Some(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(method: &str, path: &str, status: u16, body: &str) -> Exchange {
        Exchange {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            request_content_type: String::new(),
            request_body: Vec::new(),
            auth_scheme: Some("Bearer".into()),
            header_names: vec!["authorization".into()],
            status,
            content_type: if body.is_empty() {
                ""
            } else {
                "application/json"
            }
            .into(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn answers_are_checked_by_route_and_unlisted_routes_fail() {
        let dir = std::env::temp_dir().join(format!("conformance-sim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A WHOOP description with one operation.
        std::fs::write(
            dir.join("whoop-api-openapi.yml"),
            r#"{"openapi": "3.0.1", "paths": {"/v2/cycle": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"type": "object", "required": ["records"], "properties": {"records": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "integer"}}}}}}}}}}}}}}"#,
        )
        .unwrap();
        let exchanges = [
            exchange(
                "GET",
                "/developer/v2/cycle",
                200,
                r#"{"records": [{"id": 1}]}"#,
            ),
            exchange(
                "GET",
                "/developer/v2/cycle",
                200,
                r#"{"records": [{"id": 2, "v1_id": null}]}"#,
            ),
            exchange("GET", "/developer/v2/unknown", 200, "{}"),
            exchange("POST", "/_sim/webhook", 200, "{}"),
            exchange(
                "POST",
                "/oauth/oauth2/token",
                200,
                r#"{"access_token": "x"}"#,
            ),
        ];
        let paths = ("/oauth/oauth2/auth", "/oauth/oauth2/token");
        let r = check(&dir, Vendor::Whoop, paths, &exchanges, &[]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(r.checked, 2);
        assert_eq!(
            r.problems,
            [
                "GET /developer/v2/cycle (GET /v2/cycle → 200): /records/*: fields the description does not name: [\"v1_id\"]",
                "GET /developer/v2/unknown: a route no description entry covers",
            ]
        );
        assert_eq!(r.unchecked.get(OAUTH), Some(&1));
        assert!(check(&dir, Vendor::Garmin, paths, &exchanges, &[]).is_none());
    }
}
