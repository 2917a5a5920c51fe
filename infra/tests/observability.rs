//! What production sees: the metrics the code declares
//! (`connector_core::domain::metric`), the template's alarms and dashboard
//! built on them, and the README's tables of both, held to each other. (The
//! EMF lines the binaries really write are checked in binaries.rs.)

use connector_core::domain::metric::Metric;
use connector_infra::stack::workspace_root;
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};

fn template() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn readme() -> String {
    std::fs::read_to_string(workspace_root().join("README.md")).unwrap()
}

/// The string inside `!Sub` (or a plain string).
fn sub_text(v: &Value) -> String {
    match v {
        Value::Tagged(t) => t.value.as_str().unwrap().to_string(),
        other => other.as_str().unwrap().to_string(),
    }
}

/// (name, sorted dimensions) of every declared metric.
fn declared() -> BTreeSet<(String, Vec<String>)> {
    Metric::ALL
        .iter()
        .map(|m| {
            let mut dims: Vec<String> = m.dimensions().iter().map(|d| d.name().into()).collect();
            dims.sort();
            (m.name().to_string(), dims)
        })
        .collect()
}

/// The resources of `kind`, by logical id.
fn resources(t: &Value, kind: &str) -> BTreeMap<String, Value> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(k, r)| (k.as_str().unwrap().to_string(), r["Properties"].clone()))
        .collect()
}

/// The rows of the first Markdown table under `heading`, as cells.
fn table_under(text: &str, heading: &str) -> Vec<Vec<String>> {
    let at = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no {heading:?}"));
    text[at..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect()
        })
        .collect()
}

/// `SCHEMA("ns", A, B)` / `{ns,A,B}` → the metric's name and sorted dimensions.
fn schema_of(query: &str) -> (String, Vec<String>) {
    if let Some(rest) = query.strip_prefix("SEARCH('{") {
        let (schema, tail) = rest.split_once("} ").unwrap();
        let mut dims: Vec<String> = schema.split(',').skip(1).map(|d| d.trim().into()).collect();
        dims.sort();
        let name = tail
            .split_once("MetricName=\"")
            .unwrap()
            .1
            .split_once('"')
            .unwrap()
            .0;
        return (name.to_string(), dims);
    }
    let name = query
        .split_once("SUM(")
        .unwrap()
        .1
        .split_once(')')
        .unwrap()
        .0;
    let schema = query
        .split_once("SCHEMA(")
        .unwrap()
        .1
        .split_once(')')
        .unwrap()
        .0;
    let mut dims: Vec<String> = schema.split(',').skip(1).map(|d| d.trim().into()).collect();
    dims.sort();
    (name.to_string(), dims)
}

#[test]
fn the_readme_lists_exactly_the_declared_metrics() {
    let rows = table_under(&readme(), "### Metrics");
    let listed: BTreeSet<(String, Vec<String>)> = rows
        .iter()
        .map(|r| {
            let mut dims: Vec<String> = r[1].split(", ").map(String::from).collect();
            dims.sort();
            (r[0].clone(), dims)
        })
        .collect();
    assert_eq!(rows.len(), Metric::ALL.len(), "{rows:?}");
    assert_eq!(listed, declared());
}

#[test]
fn the_readme_lists_exactly_the_templates_alarms() {
    let in_template: BTreeSet<String> = resources(&template(), "AWS::CloudWatch::Alarm")
        .into_keys()
        .collect();
    let listed: BTreeSet<String> = table_under(&readme(), "### Alarms")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(listed, in_template);
    // What the issue asks to be alarmed on, each by its alarm.
    for alarm in [
        "SyncDeadLetterAlarm",
        "FunctionErrorsAlarm",
        "FunctionThrottlesAlarm",
        "WebhooksRefusedAlarm",
        "RefreshFailuresAlarm",
        "VendorThrottledAlarm",
        "SyncQueueAgeAlarm",
        "WebhookWatchdogAlarm",
    ] {
        assert!(in_template.contains(alarm), "{alarm}");
    }
}

#[test]
fn every_alarm_notifies_and_watches_what_exists() {
    let t = template();
    let functions: BTreeSet<String> = resources(&t, "AWS::Serverless::Function")
        .into_keys()
        .collect();
    let declared = declared();
    for (id, alarm) in resources(&t, "AWS::CloudWatch::Alarm") {
        for actions in ["AlarmActions", "OKActions"] {
            let topic = &alarm[actions][0];
            assert_eq!(
                sub_text(topic),
                "AlarmTopic",
                "{id} {actions} must notify AlarmTopic"
            );
        }
        assert!(
            sub_text(&alarm["AlarmDescription"]).contains("(README, Alarms)"),
            "{id}"
        );
        let Some(queries) = alarm["Metrics"].as_sequence() else {
            // A plain metric alarm: an AWS namespace.
            assert!(alarm["Namespace"].as_str().unwrap().starts_with("AWS/"));
            continue;
        };
        let returned: Vec<&Value> = queries
            .iter()
            .filter(|q| q["ReturnData"].as_bool() == Some(true))
            .collect();
        assert_eq!(returned.len(), 1, "{id}: one query is the alarm's");
        let expression = sub_text(&returned[0]["Expression"]);
        if expression.starts_with("SELECT") {
            // A Metrics Insights query of our own metrics, per vendor.
            let watched = schema_of(&expression);
            assert!(declared.contains(&watched), "{id}: {watched:?}");
            assert!(expression.contains("SCHEMA(\"${MetricsNamespace}\""));
            assert!(expression.ends_with("GROUP BY Vendor"), "{id}");
        } else {
            // Metric math over every function's own metric.
            let watched: BTreeSet<String> = queries
                .iter()
                .map(|q| &q["MetricStat"]["Metric"]["Dimensions"][0]["Value"])
                .filter(|v| !v.is_null())
                .map(sub_text)
                .collect();
            assert_eq!(watched, functions, "{id} watches every function");
            for q in queries.iter().filter(|q| !q["MetricStat"].is_null()) {
                assert_eq!(q["MetricStat"]["Metric"]["Namespace"], "AWS/Lambda");
            }
        }
    }
}

#[test]
fn the_dashboard_draws_every_declared_metric_by_its_dimensions() {
    let t = template();
    let dashboards = resources(&t, "AWS::CloudWatch::Dashboard");
    assert_eq!(dashboards.len(), 1);
    let body = sub_text(&dashboards.values().next().unwrap()["DashboardBody"]);
    let body: serde_json::Value = serde_json::from_str(&body).expect("the body is JSON");
    let mut drawn = BTreeSet::new();
    for widget in body["widgets"].as_array().unwrap() {
        for line in widget["properties"]["metrics"].as_array().unwrap() {
            if let Some(expression) = line[0]["expression"].as_str() {
                drawn.insert(schema_of(expression));
                assert!(expression.contains("{${MetricsNamespace},"), "{expression}");
            }
        }
    }
    assert_eq!(drawn, declared());
}

#[test]
fn the_worker_knows_the_queues_max_receives() {
    let t = template();
    let env = &t["Globals"]["Function"]["Environment"]["Variables"];
    let jobs = env["CONNECTOR_JOB_MAX_RECEIVES"].as_u64().unwrap();
    let deliveries = env["CONNECTOR_APP_EVENT_MAX_RECEIVES"].as_u64().unwrap();
    let mut queues_with_dlq = 0;
    for (id, queue) in resources(&t, "AWS::SQS::Queue") {
        let redrive = &queue["RedrivePolicy"];
        if redrive.is_null() {
            continue;
        }
        queues_with_dlq += 1;
        let max = if id == "AppEventsQueue" {
            deliveries
        } else {
            jobs
        };
        assert_eq!(redrive["maxReceiveCount"].as_u64(), Some(max), "{id}");
    }
    assert_eq!(queues_with_dlq, 3);
    assert_eq!(
        sub_text(&env["CONNECTOR_METRICS_NAMESPACE"]),
        "MetricsNamespace"
    );
}
