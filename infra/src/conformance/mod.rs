//! Holds JSON bodies to a vendor's own published API description (OpenAPI
//! 3.0 or 3.1): the schema of an operation's response, a request body, a
//! webhook or a named component, checked strictly: required fields,
//! types, enums, nullability, formats, and no field the description does
//! not name.
//!
//! The descriptions are not in this repository: they are read from
//! `CONNECTOR_VENDOR_SPECS`, else from `../shared/vendor-specs` beside the
//! workspace (see the README, Vendor conformance).

use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod request;
pub mod simulator;

pub use request::{Operation, Sent};

/// What a body stands for in a vendor's description.
#[derive(Clone, Copy, Debug)]
pub enum Covers {
    /// A body of `target`.
    Described(Target<'static>),
    /// Nothing in the description: why (a vendor that documents it in prose only, …).
    Undescribed(&'static str),
}

/// Short constructors for [`Covers::Described`], one per kind of target.
pub mod covers {
    use super::{Covers, Target};

    /// The 200 answer of a GET.
    pub const fn get(path: &'static str) -> Covers {
        response("get", path, "200")
    }

    pub const fn response(
        method: &'static str,
        path: &'static str,
        status: &'static str,
    ) -> Covers {
        Covers::Described(Target::Response {
            method,
            path,
            status,
        })
    }

    pub const fn request(method: &'static str, path: &'static str) -> Covers {
        Covers::Described(Target::Request { method, path })
    }

    pub const fn schema(name: &'static str) -> Covers {
        Covers::Described(Target::Component(name))
    }

    pub const fn operation(id: &'static str) -> Covers {
        Covers::Described(Target::Operation(id))
    }
}

/// Where a description is known to be wrong about the live API: the vendor
/// (its wire name), the JSON path (`*`: any one step), what the check says
/// there or the fields it does not name that the vendor sends, and the
/// evidence.
pub struct KnownWrong {
    pub vendor: &'static str,
    pub path: &'static str,
    pub says: Says,
    pub evidence: &'static str,
}

/// What a known-wrong entry explains.
pub enum Says {
    /// A mismatch whose message contains this.
    Message(&'static str),
    /// These fields, where the check says the description does not name them.
    Unnamed(&'static [&'static str]),
}

/// How the check words fields a description does not name.
pub const UNNAMED: &str = "fields the description does not name: ";

const NOT_RFC3339: Says = Says::Message("is not a \"date-time\"");
const DEXCOM_LOCAL_TIMES: &str =
    "Dexcom writes times without a UTC offset where the source has none: \
    the getDataRangeV3 reference example has no offsets (fixtures README, docs/vendors/dexcom.md) \
    and the EGV systemTime description in the same file says receiver records carry none; \
    the transcription's `format: date-time` (RFC 3339, offset required) is stricter than Dexcom";
const STRAVA_RESOURCE_STATE: Says = Says::Unnamed(&["resource_state"]);
const STRAVA_EXAMPLES: &str = "Strava's own example responses (strava-swagger.json, \
    GET /athlete/activities and GET /activities/{id}) carry resource_state in `athlete` and `map`; \
    the models (MetaAthlete, PolylineMap) leave it out";
/// The activity fields Strava's own examples carry and its models leave out.
const STRAVA_ACTIVITY_FIELDS: Says = Says::Unnamed(&[
    "resource_state",
    "utc_offset",
    "location_city",
    "location_state",
    "location_country",
    "has_heartrate",
    "average_heartrate",
    "max_heartrate",
    "average_cadence",
    "suffer_score",
    "pr_count",
    "partner_brand_tag",
]);
const STRAVA_ACTIVITY_EXAMPLES: &str = "Strava's own example responses (strava-swagger.json): \
    GET /athlete/activities carries each of these but partner_brand_tag, GET /activities/{id} \
    resource_state, utc_offset, has_heartrate, average_cadence, suffer_score, pr_count and \
    partner_brand_tag; the models (SummaryActivity, DetailedActivity) name none of them";

/// Each must still be met by some body (the fixtures test checks), or it
/// is dropped. A request's place is `request/<operation>/<where>` (the
/// fixtures test checks these against the description itself).
pub const KNOWN_WRONG: &[KnownWrong] = &[
    KnownWrong { vendor: "dexcom", path: "/*/*/systemTime", says: NOT_RFC3339, evidence: DEXCOM_LOCAL_TIMES },
    KnownWrong { vendor: "dexcom", path: "/*/*/displayTime", says: NOT_RFC3339, evidence: DEXCOM_LOCAL_TIMES },
    KnownWrong { vendor: "strava", path: "/*/athlete", says: STRAVA_RESOURCE_STATE, evidence: STRAVA_EXAMPLES },
    KnownWrong { vendor: "strava", path: "/*/map", says: STRAVA_RESOURCE_STATE, evidence: STRAVA_EXAMPLES },
    KnownWrong { vendor: "strava", path: "/athlete", says: STRAVA_RESOURCE_STATE, evidence: STRAVA_EXAMPLES },
    KnownWrong { vendor: "strava", path: "/map", says: STRAVA_RESOURCE_STATE, evidence: STRAVA_EXAMPLES },
    KnownWrong { vendor: "strava", path: "/*", says: STRAVA_ACTIVITY_FIELDS, evidence: STRAVA_ACTIVITY_EXAMPLES },
    KnownWrong { vendor: "strava", path: "/", says: STRAVA_ACTIVITY_FIELDS, evidence: STRAVA_ACTIVITY_EXAMPLES },
    KnownWrong {
        vendor: "withings",
        path: "/body/updatetime",
        says: Says::Message("is not of type \"string\""),
        evidence: "Withings answers an integer epoch: a captured getmeas answer (GitHub zsoltbalogh/goals, \
            weight-data.php: \"updatetime\":1515003660) and clients that parse it as a number \
            (TrendWeight WithingsGetMeasuresResponse.UpdateTime: long, openHAB MeasureResult: int)",
    },
    KnownWrong {
        vendor: "withings",
        path: "/",
        says: Says::Unnamed(&["error"]),
        evidence: "Withings' error answers carry an `error` message beside `status` \
            (home-assistant/home-assistant.io#34285 quotes {'status': 503, 'error': 'Invalid Params: \
            invalid code'}; metriport/metriport#176 reads response.data.error); the description's \
            own text says some services 'return a detailled message about the nature of the error' \
            without naming the field",
    },
    KnownWrong {
        vendor: "withings",
        path: "request/sleepv2-getsummary/query/offset",
        says: Says::Message("not in the description"),
        evidence: "the same operation's answer in the description has `more` and `offset`, \
            \"Offset to use to retrieve the next data\", and getactivity and getworkouts, which page \
            the same way, list an `offset` parameter; only getsummary's parameter list leaves it out",
    },
];

/// What of a mismatch line (`<path>: <what>`) of `vendor` no entry of
/// [`KNOWN_WRONG`] explains (None: all of it is explained), and the
/// entries that explained some.
pub fn unexplained(vendor: &str, problem: &str) -> (Option<String>, Vec<usize>) {
    let Some((at, says)) = problem.split_once(": ") else {
        return (Some(problem.to_string()), Vec::new());
    };
    let applies = |k: &KnownWrong| k.vendor == vendor && path_matches(k.path, at);
    if let Some(list) = says.strip_prefix(UNNAMED) {
        let fields: Vec<String> = serde_json::from_str(list).unwrap_or_default();
        let (mut used, mut left) = (Vec::new(), Vec::new());
        for field in fields {
            let entry = KNOWN_WRONG.iter().position(|k| {
                applies(k) && matches!(k.says, Says::Unnamed(f) if f.contains(&field.as_str()))
            });
            match entry {
                Some(i) => used.push(i),
                None => left.push(field),
            }
        }
        let rest = (!left.is_empty()).then(|| format!("{at}: {UNNAMED}{left:?}"));
        return (rest, used);
    }
    match KNOWN_WRONG
        .iter()
        .position(|k| applies(k) && matches!(k.says, Says::Message(m) if says.contains(m)))
    {
        Some(i) => (None, vec![i]),
        None => (Some(problem.to_string()), Vec::new()),
    }
}

/// Whether the JSON path `at` is matched by `pattern` (`*`: any one step).
pub fn path_matches(pattern: &str, at: &str) -> bool {
    let (p, a): (Vec<&str>, Vec<&str>) = (pattern.split('/').collect(), at.split('/').collect());
    p.len() == a.len()
        && p.iter()
            .zip(&a)
            .all(|(p, a)| (*p == "*" && !a.is_empty()) || p == a)
}

/// Where the descriptions' public copies come from, for the line printed
/// when they are absent.
pub const SOURCES: &str =
    "the vendors' published OpenAPI descriptions (sources in the README, Vendor conformance)";

const JSON_TYPES: [&str; 7] = [
    "null", "boolean", "object", "array", "number", "string", "integer",
];

/// The folder holding the vendors' descriptions, if there is one.
pub fn specs_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("CONNECTOR_VENDOR_SPECS") {
        Some(d) => PathBuf::from(d),
        None => crate::stack::workspace_root().join("../shared/vendor-specs"),
    };
    dir.is_dir().then_some(dir)
}

/// Why a schema could not be found or compiled.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read or parsed.
    #[error("{0}: {1}")]
    Unreadable(String, String),
    /// The description has no such operation, response or component.
    #[error("{0} has no {1}")]
    Missing(String, String),
    /// The converted schema does not compile.
    #[error("{0}: schema for {1} does not compile: {2}")]
    Invalid(String, String, String),
}

/// One vendor's API description.
pub struct Spec {
    name: String,
    doc: Value,
    /// OpenAPI 3.0 (`nullable`, boolean `exclusiveMinimum`), not 3.1.
    v30: bool,
}

/// What a JSON body is, in a description.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// The JSON response of `method path` with `status`.
    Response {
        method: &'a str,
        path: &'a str,
        status: &'a str,
    },
    /// The JSON request body of `method path`.
    Request { method: &'a str, path: &'a str },
    /// The 200 JSON response of the operation with this `operationId`
    /// (Withings, whose paths differ only by an `action` parameter).
    Operation(&'a str),
    /// The body of the OpenAPI 3.1 webhook named so (Terra).
    Webhook(&'a str),
    /// A schema of `components/schemas`.
    Component(&'a str),
    /// A JSON array of a `components/schemas` schema (Strava, whose
    /// models come without their operations).
    ListOf(&'a str),
}

impl std::fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Response {
                method,
                path,
                status,
            } => write!(f, "{} {path} → {status}", method.to_uppercase()),
            Target::Request { method, path } => {
                write!(f, "{} {path} request body", method.to_uppercase())
            }
            Target::Operation(id) => write!(f, "operation {id} → 200"),
            Target::Webhook(name) => write!(f, "webhook {name}"),
            Target::Component(name) => write!(f, "schema {name}"),
            Target::ListOf(name) => write!(f, "array of schema {name}"),
        }
    }
}

impl Spec {
    /// The description in `file` (YAML or JSON) of the specs folder.
    pub fn load(dir: &Path, file: &str) -> Result<Self, SpecError> {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| SpecError::Unreadable(file.into(), e.to_string()))?;
        let doc: Value = if file.ends_with(".json") {
            serde_json::from_str(&text)
                .map_err(|e| SpecError::Unreadable(file.into(), e.to_string()))?
        } else {
            serde_yaml::from_str(&text)
                .map_err(|e| SpecError::Unreadable(file.into(), e.to_string()))?
        };
        let doc = if doc["discoveryVersion"].is_string() {
            from_discovery(&doc)
        } else {
            doc
        };
        let v30 = doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0"));
        Ok(Self {
            name: file.to_string(),
            doc,
            v30,
        })
    }

    /// The description's schema for `target`, as written.
    pub fn schema_of(&self, target: Target<'_>) -> Result<Value, SpecError> {
        let missing = || SpecError::Missing(self.name.clone(), target.to_string());
        let json_schema = |content: &Value| {
            content
                .as_object()
                .and_then(|c| {
                    c.iter()
                        .find(|(t, _)| t.contains("json"))
                        .map(|(_, m)| m["schema"].clone())
                })
                .filter(|s| !s.is_null())
        };
        match target {
            Target::Response {
                method,
                path,
                status,
            } => {
                let response = self.resolve(&self.doc["paths"][path][method]["responses"][status]);
                json_schema(&response["content"]).ok_or_else(missing)
            }
            Target::Request { method, path } => {
                let body = self.resolve(&self.doc["paths"][path][method]["requestBody"]);
                json_schema(&body["content"]).ok_or_else(missing)
            }
            Target::Operation(id) => {
                let op = self.doc["paths"]
                    .as_object()
                    .into_iter()
                    .flat_map(|paths| paths.values())
                    .filter_map(Value::as_object)
                    .flat_map(|ops| ops.values())
                    .find(|op| op["operationId"] == id)
                    .ok_or_else(missing)?;
                json_schema(&self.resolve(&op["responses"]["200"])["content"]).ok_or_else(missing)
            }
            Target::Webhook(name) => {
                let hook = &self.doc["webhooks"][name];
                let op = hook
                    .as_object()
                    .and_then(|o| o.values().find(|v| v.get("requestBody").is_some()))
                    .ok_or_else(missing)?;
                json_schema(&self.resolve(&op["requestBody"])["content"]).ok_or_else(missing)
            }
            Target::Component(name) | Target::ListOf(name) => {
                let s = &self.doc["components"]["schemas"][name];
                let one = json!({"$ref": format!("#/components/schemas/{name}")});
                match target {
                    _ if s.is_null() => Err(missing()),
                    Target::ListOf(_) => Ok(json!({"type": "array", "items": one})),
                    _ => Ok(one),
                }
            }
        }
    }

    /// Follows a `$ref` one step to the part of the description it names
    /// (a response, a request body, a parameter, a schema).
    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => self
                .doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or(&Value::Null),
            None => v,
        }
    }

    /// Where `body` breaks the description of `target`: one line per
    /// mismatch, `<JSON path>: <what is wrong>`; empty when it conforms.
    pub fn check(&self, target: Target<'_>, body: &Value) -> Result<Vec<String>, SpecError> {
        self.check_against(&target.to_string(), self.schema_of(target)?, body)
    }

    /// [`Spec::check`] with a schema of this description (`what` names it
    /// in errors).
    fn check_against(
        &self,
        what: &str,
        schema: Value,
        body: &Value,
    ) -> Result<Vec<String>, SpecError> {
        let schema = self.strict_schema(schema);
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| SpecError::Invalid(self.name.clone(), what.to_string(), e.to_string()))?;
        let all: Vec<_> = validator.iter_errors(body).collect();
        // Where a variant failed, its holder's closure lists every field
        // again: the variant's own errors say it.
        let holders: Vec<(String, String)> = all
            .iter()
            .filter_map(|e| {
                let keyword = e.schema_path().to_string();
                let base = keyword
                    .strip_suffix("/oneOf")
                    .or_else(|| keyword.strip_suffix("/anyOf"))?;
                Some((e.instance_path().to_string(), base.to_string()))
            })
            .collect();
        let mut errors = Vec::new();
        for e in &all {
            let closure_of_failed_holder = holders.iter().any(|(at, base)| {
                *at == e.instance_path().to_string()
                    && e.schema_path().to_string() == format!("{base}/unevaluatedProperties")
            });
            if !closure_of_failed_holder {
                flatten(e, &mut errors);
            }
        }
        // Any failure inside an object drops the annotations its closure
        // counts on, so the closure then names every field: there, only
        // the fields no schema of the object declares are unknown.
        let failure_inside = |at: &str| {
            errors.iter().any(|(p, _, _)| {
                p.len() > at.len() && p.starts_with(at) && p[at.len()..].starts_with('/')
            })
        };
        let mut found: Vec<String> = errors
            .iter()
            .filter_map(|(at, unknown, message)| {
                let shown = if at.is_empty() { "/" } else { at };
                match unknown {
                    None => Some(format!("{shown}: {message}")),
                    Some((fields, closure)) => {
                        let fields: Vec<&String> = if failure_inside(at) {
                            let declared = declared_at(&schema, closure);
                            fields.iter().filter(|f| !declared.contains(*f)).collect()
                        } else {
                            fields.iter().collect()
                        };
                        (!fields.is_empty()).then(|| format!("{shown}: {UNNAMED}{fields:?}"))
                    }
                }
            })
            .collect();
        found.sort();
        found.dedup();
        Ok(found)
    }

    /// `schema` with the description's components as `$defs`, in JSON
    /// Schema 2020-12, closed to fields the description does not name.
    fn strict_schema(&self, schema: Value) -> Value {
        let components = self.doc["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let defs: Map<String, Value> = components
            .iter()
            .map(|(k, v)| (k.clone(), self.convert(v, true, &components)))
            .collect();
        let mut root = match self.convert(&schema, false, &components) {
            Value::Object(m) => m,
            other => Map::from_iter([("allOf".to_string(), json!([other]))]),
        };
        root.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        root.insert("$defs".into(), Value::Object(defs));
        Value::Object(root)
    }

    /// One schema node in 2020-12 terms. `is_def`: a component's own
    /// definition (closed where it is used, not where it is defined, so
    /// that `allOf` can combine it with others).
    fn convert(&self, node: &Value, is_def: bool, components: &Map<String, Value>) -> Value {
        let Value::Object(src) = node else {
            return node.clone();
        };
        let mut out = Map::new();
        for (k, v) in src {
            let converted = match k.as_str() {
                "$ref" => json!(v
                    .as_str()
                    .unwrap_or_default()
                    .replace("#/components/schemas/", "#/$defs/")),
                "properties" | "patternProperties" | "$defs" | "definitions" => Value::Object(
                    v.as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(name, s)| (name.clone(), self.used(s, components)))
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                "items" | "additionalProperties" | "not" | "contains" if v.is_object() => {
                    self.used(v, components)
                }
                "prefixItems" | "anyOf" | "oneOf" => json!(v
                    .as_array()
                    .map(|a| a
                        .iter()
                        .map(|s| self.used(s, components))
                        .collect::<Vec<_>>())
                    .unwrap_or_default()),
                // Members of allOf are closed together, by the node holding them.
                "allOf" => json!(v
                    .as_array()
                    .map(|a| a
                        .iter()
                        .map(|s| self.convert(s, true, components))
                        .collect::<Vec<_>>())
                    .unwrap_or_default()),
                // A type JSON Schema does not have (Withings' `macaddress`)
                // constrains nothing, rather than breaking every schema.
                "type" if v.as_str().is_some_and(|t| !JSON_TYPES.contains(&t)) => continue,
                // Resource markers of a component: it is one schema of this document.
                "$schema" | "$id" => continue,
                // Annotations of OpenAPI, not of JSON Schema.
                "nullable" | "discriminator" | "xml" | "externalDocs" | "example"
                | "deprecated" | "readOnly" | "writeOnly" => continue,
                _ => v.clone(),
            };
            out.insert(k.clone(), converted);
        }
        if self.v30 {
            // 3.0: a boolean exclusive bound qualifies minimum/maximum.
            for (flag, bound) in [
                ("exclusiveMinimum", "minimum"),
                ("exclusiveMaximum", "maximum"),
            ] {
                if let Some(b) = out.get(flag).and_then(Value::as_bool) {
                    out.remove(flag);
                    if b {
                        if let Some(n) = out.remove(bound) {
                            out.insert(flag.into(), n);
                        }
                    }
                }
            }
            if src.get("nullable").and_then(Value::as_bool) == Some(true) {
                match out.get("type").cloned() {
                    Some(Value::String(t)) => {
                        out.insert("type".into(), json!([t, "null"]));
                        if let Some(Value::Array(e)) = out.get_mut("enum") {
                            e.push(Value::Null);
                        }
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(&mut out));
                        out.insert("anyOf".into(), json!([{"type": "null"}, inner]));
                    }
                }
            }
        }
        if !is_def && self.declares_fields(node, components, 0) {
            out.entry("unevaluatedProperties").or_insert(json!(false));
        }
        Value::Object(out)
    }

    /// A schema where it is used (a property, an item, a variant).
    fn used(&self, node: &Value, components: &Map<String, Value>) -> Value {
        self.convert(node, false, components)
    }

    /// Whether `node` names an object's fields (directly, through `$ref`
    /// or its combinators); a free-form object does not.
    fn declares_fields(&self, node: &Value, components: &Map<String, Value>, depth: u8) -> bool {
        if depth > 16 {
            return false;
        }
        let Value::Object(m) = node else { return false };
        if ["properties", "patternProperties", "additionalProperties"]
            .iter()
            .any(|k| m.contains_key(*k))
        {
            return true;
        }
        if let Some(name) = m
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
        {
            return components
                .get(name)
                .is_some_and(|t| self.declares_fields(t, components, depth + 1));
        }
        ["allOf", "anyOf", "oneOf"].iter().any(|k| {
            m.get(*k).and_then(Value::as_array).is_some_and(|a| {
                a.iter()
                    .any(|s| self.declares_fields(s, components, depth + 1))
            })
        })
    }
}

/// The field names the schema holding the closure at `closure` (an
/// error's keyword path, through `$ref`s) declares, in any of its parts.
fn declared_at(root: &Value, closure: &str) -> BTreeSet<String> {
    let follow = |node: &Value| -> Value {
        match node["$ref"].as_str() {
            Some(r) => root
                .pointer(r.trim_start_matches('#'))
                .cloned()
                .unwrap_or(Value::Null),
            None => node.clone(),
        }
    };
    let mut node = root.clone();
    let steps: Vec<&str> = closure.split('/').filter(|s| !s.is_empty()).collect();
    for step in steps.iter().take(steps.len().saturating_sub(1)) {
        node = if *step == "$ref" {
            follow(&node)
        } else if let Ok(i) = step.parse::<usize>() {
            node.get(i).cloned().unwrap_or(Value::Null)
        } else {
            node.get(*step).cloned().unwrap_or(Value::Null)
        };
    }
    fn names(
        node: &Value,
        follow: &dyn Fn(&Value) -> Value,
        depth: u8,
        out: &mut BTreeSet<String>,
    ) {
        if depth > 16 {
            return;
        }
        if let Some(p) = node["properties"].as_object() {
            out.extend(p.keys().cloned());
        }
        if node.get("$ref").is_some() {
            names(&follow(node), follow, depth + 1, out);
        }
        for k in ["allOf", "anyOf", "oneOf"] {
            for part in node[k].as_array().into_iter().flatten() {
                names(part, follow, depth + 1, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    names(&node, &follow, 0, &mut out);
    out
}

/// A Google discovery document as the OpenAPI 3.1 this module reads: its
/// schemas as components (JSON Schema), each method as an operation found
/// by its `id` ([`Target::Operation`]) with its request and response.
fn from_discovery(doc: &Value) -> Value {
    let schemas: Map<String, Value> = doc["schemas"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), discovery_schema(v)))
                .collect()
        })
        .unwrap_or_default();
    let mut paths = Map::new();
    let mut stack = vec![doc["resources"].clone()];
    while let Some(level) = stack.pop() {
        let Value::Object(resources) = level else {
            continue;
        };
        for resource in resources.values() {
            stack.push(resource["resources"].clone());
            for method in resource["methods"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
            {
                let body = |r: &Value| {
                    r["$ref"].as_str().map(|name| {
                        json!({"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}})
                    })
                };
                let mut op = json!({"operationId": method["id"], "x-discovery": method});
                if let Some(response) = body(&method["response"]) {
                    op["responses"] = json!({"200": response});
                }
                if let Some(request) = body(&method["request"]) {
                    op["requestBody"] = request;
                }
                let key = method["id"].as_str().unwrap_or_default().to_string();
                paths.insert(key, json!({"x-method": op}));
            }
        }
    }
    json!({
        "openapi": "3.1.0",
        "paths": paths,
        "components": {"schemas": schemas},
        "x-discovery-parameters": doc["parameters"],
    })
}

/// A discovery schema in JSON Schema terms: `$ref` by name, 64-bit
/// integers and durations as the strings Google sends, `any` as anything.
fn discovery_schema(node: &Value) -> Value {
    let Value::Object(src) = node else {
        return node.clone();
    };
    let mut out = Map::new();
    for (k, v) in src {
        match k.as_str() {
            "$ref" => {
                out.insert(
                    k.clone(),
                    json!(format!(
                        "#/components/schemas/{}",
                        v.as_str().unwrap_or_default()
                    )),
                );
            }
            "properties" => {
                let props: Map<String, Value> = v
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(n, s)| (n.clone(), discovery_schema(s)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" => {
                out.insert(k.clone(), discovery_schema(v));
            }
            "type" if v == "any" => {}
            "type" | "enum" | "pattern" => {
                out.insert(k.clone(), v.clone());
            }
            "format" => match v.as_str().unwrap_or_default() {
                "int64" | "uint64" => {
                    out.insert("pattern".into(), json!("^-?[0-9]+$"));
                }
                "google-duration" => {
                    out.insert("pattern".into(), json!("^-?[0-9]+(\\.[0-9]{1,9})?s$"));
                }
                "google-datetime" => {
                    out.insert("format".into(), json!("date-time"));
                }
                _ => {}
            },
            _ => {}
        }
    }
    Value::Object(out)
}

/// A mismatch: where, the unknown fields and where the closure that
/// found them sits in the schema when that is what it is, and the message.
type Mismatch = (String, Option<(Vec<String>, String)>, String);

/// `e` as mismatches; a body matching none of `oneOf`/`anyOf`'s variants
/// is described by the variant it comes closest to.
fn flatten(e: &jsonschema::ValidationError<'_>, out: &mut Vec<Mismatch>) {
    use jsonschema::error::ValidationErrorKind as Kind;
    let variants = match e.kind() {
        Kind::OneOfNotValid { context } | Kind::AnyOf { context } => Some(context),
        _ => None,
    };
    // A variant of another type (null beside an object) is the closest
    // only when every variant is.
    let here = e.instance_path().to_string();
    let wrong_type = |errors: &Vec<jsonschema::ValidationError<'_>>| {
        errors
            .iter()
            .any(|x| matches!(x.kind(), Kind::Type { .. }) && x.instance_path().to_string() == here)
    };
    if let Some(closest) = variants.and_then(|v| {
        v.iter()
            .min_by_key(|errors| (wrong_type(errors), errors.len()))
    }) {
        if !closest.is_empty() {
            for inner in closest {
                flatten(inner, out);
            }
            return;
        }
    }
    let unknown = match e.kind() {
        Kind::UnevaluatedProperties { unexpected } => {
            Some((unexpected.clone(), e.schema_path().to_string()))
        }
        _ => None,
    };
    out.push((e.instance_path().to_string(), unknown, e.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(doc: Value) -> Spec {
        let v30 = doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0"));
        Spec {
            name: "test.yml".into(),
            doc,
            v30,
        }
    }

    fn openapi30() -> Spec {
        spec(json!({
            "openapi": "3.0.1",
            "paths": {"/things": {"get": {"responses": {"200": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Page"}}}}}}}},
            "components": {"schemas": {
                "Page": {"type": "object", "required": ["records"], "properties": {
                    "records": {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}},
                    "next_token": {"type": "string", "nullable": true}}},
                "Base": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
                "Thing": {"allOf": [{"$ref": "#/components/schemas/Base"}, {"type": "object", "properties": {
                    "state": {"type": "string", "enum": ["SCORED", "PENDING"]},
                    "at": {"type": "string", "format": "date-time"},
                    "score": {"type": "number", "minimum": 0, "exclusiveMinimum": true},
                    "extra": {"type": "object"}}}]}
            }}
        }))
    }

    fn check(body: Value) -> Vec<String> {
        let target = Target::Response {
            method: "get",
            path: "/things",
            status: "200",
        };
        openapi30().check(target, &body).unwrap()
    }

    #[test]
    fn a_conforming_body_passes_allof_and_nullable_included() {
        let body = json!({"records": [{"id": 1, "state": "SCORED", "at": "2026-11-20T07:00:00Z",
            "score": 0.5, "extra": {"anything": true}}], "next_token": null});
        assert_eq!(check(body), Vec::<String>::new());
    }

    #[test]
    fn each_kind_of_mismatch_is_named_with_its_path() {
        let found = check(json!({"records": [
            {"id": "1"},
            {"id": 2, "state": "DONE"},
            {"id": 3, "at": "yesterday"},
            {"id": 4, "score": 0},
            {"id": 5, "invented": 1},
            {"state": "PENDING"}
        ]}));
        let has = |path: &str, words: &str| {
            found
                .iter()
                .any(|f| f.starts_with(&format!("{path}:")) && f.contains(words))
        };
        assert!(has("/records/0/id", "integer"), "type: {found:#?}");
        assert!(has("/records/1/state", "SCORED"), "enum: {found:#?}");
        assert!(has("/records/2/at", "date-time"), "format: {found:#?}");
        assert!(
            has("/records/3/score", "0"),
            "exclusive minimum: {found:#?}"
        );
        assert!(
            has("/records/4", "\"invented\""),
            "unknown field in allOf: {found:#?}"
        );
        assert!(has("/records/5", "id"), "required: {found:#?}");
        assert_eq!(found.len(), 6, "one line each, no cascade: {found:#?}");
        let top = check(json!({"records": [], "unknown_top": 1}));
        assert_eq!(
            top,
            ["/: fields the description does not name: [\"unknown_top\"]"],
            "unknown top-level field"
        );
    }

    #[test]
    fn an_unknown_field_beside_a_failure_inside_is_still_named() {
        // The failing `state` drops the annotations the record's closure
        // counts on; `bogus` is still the one field no schema declares.
        assert_eq!(
            check(json!({"records": [{"id": 1, "state": "LOST", "bogus": 2}]})),
            [
                "/records/0/state: \"LOST\" is not one of \"SCORED\" or \"PENDING\"",
                "/records/0: fields the description does not name: [\"bogus\"]",
            ]
        );
        // Known-wrong fields are taken out of such a line one by one.
        let line = "/0: fields the description does not name: [\"resource_state\", \"visibility\"]";
        let (rest, used) = unexplained("strava", line);
        assert_eq!(
            rest.as_deref(),
            Some("/0: fields the description does not name: [\"visibility\"]")
        );
        assert_eq!(used.len(), 1);
        assert_eq!(
            unexplained(
                "strava",
                "/: fields the description does not name: [\"pr_count\"]"
            )
            .0,
            None
        );
        assert!(!path_matches("/*", "/"));
    }

    #[test]
    fn null_is_refused_where_not_nullable() {
        let found = check(json!({"records": [{"id": null}]}));
        assert!(
            found.iter().any(|f| f.starts_with("/records/0/id:")),
            "{found:#?}"
        );
        assert!(check(json!({"records": [], "next_token": null})).is_empty());
    }

    #[test]
    fn a_missing_operation_is_an_error_not_a_pass() {
        let target = Target::Response {
            method: "get",
            path: "/nowhere",
            status: "200",
        };
        assert!(matches!(
            openapi30().check(target, &json!({})),
            Err(SpecError::Missing(..))
        ));
    }
}
