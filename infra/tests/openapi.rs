//! The API description apps generate clients from is the one the code
//! generates: `docs/openapi.json` (what the api-docs function serves) equals
//! what the handlers' annotations give, and it describes exactly the routes
//! template.yaml deploys, with the same auth.

use connector_infra::openapi::{description, CHECKED_IN};
use connector_infra::stack::workspace_root;
use connector_infra::template::{Route, Template};
use serde_json::Value;

fn generated() -> Value {
    serde_json::from_str(&description()).expect("the description is JSON")
}

#[test]
fn the_checked_in_description_is_what_the_code_generates() {
    let path = workspace_root().join(CHECKED_IN);
    let checked_in = std::fs::read_to_string(&path).expect("docs/openapi.json");
    assert!(
        checked_in == description(),
        "{CHECKED_IN} differs from what the handlers' annotations generate: run `make openapi` \
         and commit the result"
    );
    assert_eq!(
        api_docs::DESCRIPTION,
        checked_in,
        "the api-docs function serves the file"
    );
    assert_eq!(generated()["openapi"], "3.1.0");
}

/// The operation of `doc` that serves `route`: the same path, or a templated
/// one whose parameters' schemas admit the route's segments.
fn operation_for<'a>(doc: &'a Value, route: &Route) -> Option<(&'a str, &'a Value)> {
    let method = route.method.to_lowercase();
    doc["paths"]
        .as_object()?
        .iter()
        .filter_map(|(path, item)| Some((path.as_str(), item.get(&method)?)))
        .find(|(path, op)| covers(path, op, &route.path))
}

fn covers(described: &str, op: &Value, deployed: &str) -> bool {
    let (d, r): (Vec<&str>, Vec<&str>) = (
        described.split('/').collect(),
        deployed.split('/').collect(),
    );
    d.len() == r.len()
        && d.iter().zip(&r).all(|(d, r)| {
            match d.strip_prefix('{').and_then(|d| d.strip_suffix('}')) {
                None => d == r,
                // The deployed route has the same parameter, or a fixed segment
                // the parameter's schema admits (one POST route per vendor).
                Some(name) => r == d || admits(op, name, r),
            }
        })
}

fn admits(op: &Value, name: &str, value: &str) -> bool {
    let Some(param) = op["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name && p["in"] == "path"))
    else {
        return false;
    };
    let schema = &param["schema"];
    if let Some(pattern) = schema["pattern"].as_str() {
        let alternatives = pattern.trim_start_matches("^(").trim_end_matches(")$");
        return alternatives.split('|').any(|a| a == value);
    }
    false
}

#[test]
fn every_deployed_route_is_described_with_its_auth_and_nothing_else_is() {
    let doc = generated();
    let template = Template::load(&workspace_root().join("template.yaml")).unwrap();
    let routes = template.routes();
    assert!(routes.len() > 20, "{} routes", routes.len());
    let mut served = std::collections::BTreeSet::new();
    for route in &routes {
        let (path, op) = operation_for(&doc, route)
            .unwrap_or_else(|| panic!("{} is deployed but not described", route.route_key()));
        served.insert((route.method.to_lowercase(), path.to_string()));
        let security = op["security"].as_array().cloned().unwrap_or_default();
        let jwt = security.iter().any(|s| s.get("user_jwt").is_some());
        assert_eq!(
            jwt,
            !route.public,
            "{}: the description's auth differs from the template's",
            route.route_key()
        );
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            assert!(
                served.contains(&(method.clone(), path.clone())),
                "{method} {path} is described but no route of template.yaml serves it"
            );
        }
    }
}

#[test]
fn every_error_answer_is_a_problem_or_the_gateways_refusal() {
    let doc = generated();
    let components = &doc["components"]["responses"];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('2') || status.starts_with('3') || method == "head" {
                    continue;
                }
                // A health route answers 503 with the same status document
                // as its 200, which is what load balancers and deploy
                // checks read.
                if (method.as_str(), path.as_str(), status.as_str()) == ("get", "/v1/health", "503")
                {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/ServiceStatus");
                    continue;
                }
                let response = match response["$ref"].as_str() {
                    Some(r) => &components[r.rsplit('/').next().unwrap()],
                    None => response,
                };
                let types: Vec<&String> = response["content"]
                    .as_object()
                    .map(|c| c.keys().collect())
                    .unwrap_or_default();
                assert!(
                    !types.is_empty()
                        && types.iter().all(|t| {
                            *t == "application/problem+json"
                                || (*t == "application/json"
                                    && ["401", "403", "404"].contains(&status.as_str()))
                        }),
                    "{method} {path} {status}: {types:?}"
                );
            }
        }
    }
}
