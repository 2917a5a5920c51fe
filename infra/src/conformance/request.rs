//! Requests held to a description: the operation's path parameters,
//! query parameters (names, required ones, values by their schemas),
//! credentials by its security schemes, and the body by its request
//! schema, in OpenAPI 3, Swagger 2 (Strava) or Google discovery terms.

use super::{discovery_schema, Spec, SpecError};
use serde_json::{json, Map, Value};

/// Which operation of a description a request is for.
#[derive(Clone, Copy, Debug)]
pub enum Operation<'a> {
    /// `method` (lower case) of the path template `path`.
    At { method: &'a str, path: &'a str },
    /// The operation with this `operationId` (discovery: method `id`).
    Id(&'a str),
}

impl std::fmt::Display for Operation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operation::At { method, path } => write!(f, "{} {path}", method.to_uppercase()),
            Operation::Id(id) => write!(f, "operation {id}"),
        }
    }
}

/// A request as it was sent. The credentials are kept as their kind
/// only: what the check needs, and nothing a log must not hold.
#[derive(Clone, Copy, Debug)]
pub struct Sent<'a> {
    /// The path as sent (a prefix before the description's path, such as
    /// WHOOP's `/developer`, is allowed).
    pub path: &'a str,
    /// The raw query string.
    pub query: &'a str,
    /// The `Content-Type` header, or empty.
    pub content_type: &'a str,
    pub body: &'a [u8],
    /// The scheme of the `Authorization` header (`Bearer`, `Basic`), if any.
    pub auth_scheme: Option<&'a str>,
    /// The names of the headers sent, lower case.
    pub header_names: &'a [String],
}

/// One declared parameter: its name, where it goes, whether required, and
/// its value's schema in this description's terms.
struct Param {
    name: String,
    place: String,
    required: bool,
    schema: Value,
    /// A comma-separated list (Withings' `list of integers`, a
    /// non-exploded form array).
    comma_list: bool,
    /// The parameters it must not be sent with, which also stand in for
    /// it when it is required (Withings' `DO NOT USE WITH FOLLOWING
    /// PARAMS: [...]`).
    excludes: Vec<String>,
}

impl Spec {
    /// Where `sent` breaks the description of `op`: one line per mismatch,
    /// `<where>: <what>`; empty when the description allows it.
    pub fn check_request(
        &self,
        op: Operation<'_>,
        sent: &Sent<'_>,
    ) -> Result<Vec<String>, SpecError> {
        let missing = || SpecError::Missing(self.name.clone(), op.to_string());
        let (template, node) = self.operation(op).ok_or_else(missing)?;
        let mut found = Vec::new();
        let params = self.params(&template, &node);

        // Path parameters, by the template.
        match match_template(&template, sent.path) {
            None => found.push(format!("path: `{}` is not `{template}`", sent.path)),
            Some(values) => {
                for (name, value) in values {
                    match params.iter().find(|p| p.place == "path" && p.name == name) {
                        Some(p) => found.extend(
                            self.check_value(&op, p, &[&value])?
                                .into_iter()
                                .map(|m| format!("path/{name}: {m}")),
                        ),
                        None => found.push(format!("path/{name}: not declared")),
                    }
                }
            }
        }

        // Query parameters; Withings declares as query what it takes as a
        // form body too, and its clients post them so.
        let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(sent.query.as_bytes())
            .into_owned()
            .collect();
        let body_schema = self.body_schema(&node);
        let form = sent
            .content_type
            .starts_with("application/x-www-form-urlencoded");
        let body_as_query = form && body_schema.is_none() && !sent.body.is_empty();
        if body_as_query {
            pairs.extend(url::form_urlencoded::parse(sent.body).into_owned());
        }
        // A description without parameters (Dexcom's transcription) says
        // nothing about them: they are not checked.
        let declares_query = node.get("parameters").is_some()
            || node.get("x-discovery").is_some()
            || self.doc["paths"][&template]["parameters"].is_array();
        if declares_query {
            let mut names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            names.dedup();
            for name in names {
                let values: Vec<&str> = pairs
                    .iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
                    .collect();
                match params.iter().find(|p| p.place == "query" && p.name == name) {
                    Some(p) => found.extend(
                        self.check_value(&op, p, &values)?
                            .into_iter()
                            .map(|m| format!("query/{name}: {m}")),
                    ),
                    None if self.is_credential_param(name) => {}
                    None => found.push(format!("query/{name}: not in the description")),
                }
            }
            let sent_param = |place: &str, name: &str| match place {
                "query" => {
                    pairs.iter().any(|(k, _)| k == name)
                        // Withings' alternative to a signature is the user's
                        // token, which its description has in this header.
                        || (name == "access_token" && sent.auth_scheme == Some("Bearer"))
                }
                "header" => sent
                    .header_names
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(name)),
                _ => true,
            };
            for p in &params {
                let here = sent_param(&p.place, &p.name);
                let alternative = p.excludes.iter().find(|x| sent_param("query", x));
                match (here, alternative) {
                    (false, None) if p.required => {
                        found.push(format!("{}/{}: required, not sent", p.place, p.name))
                    }
                    (true, Some(x))
                        if p.place == "query" && pairs.iter().any(|(k, _)| k == &p.name) =>
                    {
                        found.push(format!(
                        "{}/{}: sent with `{x}`, which the description says not to combine it with",
                        p.place, p.name
                    ))
                    }
                    _ => {}
                }
            }
        }

        // Credentials.
        if let Some(need) = self.unmet_security(&node, sent, &pairs) {
            found.push(format!("credentials: {need}"));
        }

        // Body.
        match (body_schema, sent.body.is_empty()) {
            (Some((types, schema, required)), empty) => {
                let base = sent
                    .content_type
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim();
                if empty {
                    if required {
                        found.push("body: required, none sent".into());
                    }
                } else if !types.iter().any(|t| t == base || t == "*/*") {
                    found.push(format!(
                        "body: sent as `{base}`, the description takes {types:?}"
                    ));
                } else if base.contains("json") {
                    match serde_json::from_slice::<Value>(sent.body) {
                        Ok(v) => found.extend(
                            self.check_against(&format!("{op} request body"), schema, &v)?
                                .into_iter()
                                .map(|m| format!("body{m}")),
                        ),
                        Err(e) => found.push(format!("body: not JSON ({e})")),
                    }
                } else if base == "application/x-www-form-urlencoded" {
                    let form = self.form_object(&schema, sent.body);
                    found.extend(
                        self.check_against(&format!("{op} request body"), schema, &form)?
                            .into_iter()
                            .map(|m| format!("body{m}")),
                    );
                }
            }
            (None, false) if !body_as_query => {
                found.push("body: sent where the description takes none".into())
            }
            _ => {}
        }
        found.sort();
        found.dedup();
        Ok(found)
    }

    /// The path template and the operation node of `op`.
    fn operation(&self, op: Operation<'_>) -> Option<(String, Value)> {
        let paths = self.doc["paths"].as_object()?;
        match op {
            Operation::At { method, path } => {
                let node = paths.get(path)?.get(method)?;
                Some((path.to_string(), node.clone()))
            }
            Operation::Id(id) => paths.iter().find_map(|(path, ops)| {
                let node = ops.as_object()?.values().find(|o| o["operationId"] == id)?;
                let template = match node["x-discovery"]["path"].as_str() {
                    Some(p) => format!("/{p}"),
                    // Withings' paths are whole URLs, some with trailing spaces.
                    None => strip_origin(path.trim()).to_string(),
                };
                Some((template, node.clone()))
            }),
        }
    }

    /// Every parameter `node` (and its path) declares, with the
    /// discovery document's global ones.
    fn params(&self, template: &str, node: &Value) -> Vec<Param> {
        let mut out = Vec::new();
        if let Some(discovery) = node.get("x-discovery") {
            let global = self.doc["x-discovery-parameters"].as_object();
            let own = discovery["parameters"].as_object();
            for (name, p) in own.into_iter().chain(global).flat_map(|m| m.iter()) {
                let one = discovery_schema(p);
                let repeated = p["repeated"] == true;
                out.push(Param {
                    name: name.clone(),
                    place: p["location"].as_str().unwrap_or("query").to_string(),
                    required: p["required"] == true,
                    schema: if repeated {
                        json!({"type": "array", "items": one})
                    } else {
                        one
                    },
                    comma_list: false,
                    excludes: Vec::new(),
                });
            }
            return out;
        }
        let path_level = self.doc["paths"]
            .as_object()
            .and_then(|paths| {
                paths
                    .iter()
                    .find(|(k, _)| strip_origin(k.trim()) == template)
            })
            .map(|(_, v)| v["parameters"].clone())
            .unwrap_or(Value::Null);
        for p in [&path_level, &node["parameters"]]
            .into_iter()
            .filter_map(Value::as_array)
            .flatten()
        {
            let p = self.resolve(p);
            let name = p["name"].as_str().unwrap_or_default().to_string();
            let place = p["in"].as_str().unwrap_or_default().to_string();
            // An operation's own declaration replaces its path's.
            out.retain(|q: &Param| !(q.name == name && q.place == place));
            let (schema, comma_list) = match p.get("schema") {
                Some(s) if s["type"] == "list of integers" => {
                    (json!({"type": "array", "items": {"type": "integer"}}), true)
                }
                Some(s) => (s.clone(), false),
                // Swagger 2: the schema's keywords sit on the parameter.
                None => {
                    let mut s = p.as_object().cloned().unwrap_or_default();
                    for k in ["name", "in", "required", "description", "collectionFormat"] {
                        s.remove(k);
                    }
                    (Value::Object(s), p["collectionFormat"] == "csv")
                }
            };
            let comma_list = comma_list || (p["style"] == "form" && p["explode"] == false);
            out.push(Param {
                name,
                place,
                required: p["required"] == true,
                schema,
                comma_list,
                excludes: excluded_by(p["description"].as_str().unwrap_or_default()),
            });
        }
        out
    }

    /// Where the values sent for `param` break its schema.
    fn check_value(
        &self,
        op: &Operation<'_>,
        param: &Param,
        values: &[&str],
    ) -> Result<Vec<String>, SpecError> {
        let schema = self.resolve(&param.schema);
        let value = if schema["type"] == "array" {
            let items = self.resolve(&schema["items"]);
            let raw: Vec<&str> = if param.comma_list && values.len() == 1 {
                values[0].split(',').collect()
            } else {
                values.to_vec()
            };
            Value::Array(raw.iter().map(|v| typed(v, items)).collect())
        } else if values.len() > 1 {
            return Ok(vec![format!(
                "sent {} times, the description takes one value",
                values.len()
            )]);
        } else {
            typed(values[0], schema)
        };
        Ok(self
            .check_against(
                &format!("{op} parameter {}", param.name),
                param.schema.clone(),
                &value,
            )?
            .into_iter()
            .map(|m| m.trim_start_matches("/: ").to_string())
            .collect())
    }

    /// The content types, schema and requiredness of `node`'s request body.
    fn body_schema(&self, node: &Value) -> Option<(Vec<String>, Value, bool)> {
        let body = self.resolve(&node["requestBody"]);
        if let Some(content) = body["content"].as_object() {
            // Withings keys its token request's variants by name, not by
            // media type ("Using client secret", "Using signature"), each a
            // discriminator over the grant types; it takes every call as a
            // form, so the body is a form of any one of them.
            if !content.keys().any(|t| t.contains('/')) {
                let variants: Vec<Value> = content
                    .values()
                    .flat_map(
                        |v| match v["schema"]["discriminator"]["mapping"].as_object() {
                            Some(m) => m.values().map(|r| json!({"$ref": r})).collect(),
                            None => vec![v["schema"].clone()],
                        },
                    )
                    .collect();
                return Some((
                    vec!["application/x-www-form-urlencoded".to_string()],
                    json!({"anyOf": variants}),
                    body["required"] == true,
                ));
            }
            let (_, first) = content.iter().next()?;
            return Some((
                content.keys().cloned().collect(),
                first["schema"].clone(),
                body["required"] == true,
            ));
        }
        // Swagger 2: a parameter `in: body`.
        node["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| self.resolve(p))
            .find(|p| p["in"] == "body")
            .map(|p| {
                (
                    vec!["application/json".to_string()],
                    p["schema"].clone(),
                    p["required"] == true,
                )
            })
    }

    /// A form body as the object its schema describes, each value typed
    /// by its property's schema.
    fn form_object(&self, schema: &Value, body: &[u8]) -> Value {
        let schema = self.resolve(schema);
        let fields: Map<String, Value> = url::form_urlencoded::parse(body)
            .into_owned()
            .map(|(k, v)| {
                let value = typed(&v, self.resolve(&schema["properties"][&k]));
                (k, value)
            })
            .collect();
        Value::Object(fields)
    }

    /// Whether `name` is a query parameter a security scheme declares.
    fn is_credential_param(&self, name: &str) -> bool {
        self.security_schemes()
            .values()
            .any(|s| s["type"] == "apiKey" && s["in"] == "query" && s["name"] == name)
    }

    fn security_schemes(&self) -> Map<String, Value> {
        self.doc["components"]["securitySchemes"]
            .as_object()
            .or_else(|| self.doc["securityDefinitions"].as_object())
            .cloned()
            .unwrap_or_default()
    }

    /// What credentials `node` requires that `sent` lacks, if any: one of
    /// its requirements must be met whole.
    fn unmet_security(
        &self,
        node: &Value,
        sent: &Sent<'_>,
        query: &[(String, String)],
    ) -> Option<String> {
        if let Some(discovery) = node.get("x-discovery") {
            let scoped = discovery["scopes"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            let token_in_query = query.iter().any(|(k, _)| k == "access_token");
            return (scoped && sent.auth_scheme != Some("Bearer") && !token_in_query)
                .then(|| "an OAuth bearer token is required".to_string());
        }
        let requirements = node
            .get("security")
            .or_else(|| self.doc.get("security"))
            .and_then(Value::as_array)?;
        if requirements.is_empty() {
            return None;
        }
        let schemes = self.security_schemes();
        let met = |scheme: &Value| match scheme["type"].as_str().unwrap_or_default() {
            "oauth2" | "openIdConnect" => sent.auth_scheme == Some("Bearer"),
            "http" => sent.auth_scheme.is_some_and(|s| {
                s.eq_ignore_ascii_case(scheme["scheme"].as_str().unwrap_or_default())
            }),
            "apiKey" => {
                let name = scheme["name"].as_str().unwrap_or_default();
                match scheme["in"].as_str() {
                    Some("header") => sent
                        .header_names
                        .iter()
                        .any(|h| h.eq_ignore_ascii_case(name)),
                    Some("query") => query.iter().any(|(k, _)| k == name),
                    _ => false,
                }
            }
            _ => false,
        };
        let any_met = requirements.iter().any(|r| {
            r.as_object()
                .is_some_and(|names| names.keys().all(|n| schemes.get(n).is_some_and(met)))
        });
        (!any_met).then(|| {
            let options: Vec<String> = requirements
                .iter()
                .filter_map(Value::as_object)
                .map(|r| r.keys().cloned().collect::<Vec<_>>().join(" + "))
                .collect();
            format!(
                "none of the description's requirements met ({})",
                options.join(" or ")
            )
        })
    }
}

/// The parameters a description's text says not to combine with this one.
fn excluded_by(description: &str) -> Vec<String> {
    description
        .split_once("DO NOT USE WITH FOLLOWING PARAMS: [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list.split(',').map(|n| n.trim().to_string()).collect())
        .unwrap_or_default()
}

/// `https://host/path` as `/path`; a path as itself.
fn strip_origin(url: &str) -> &str {
    match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => url,
    }
}

/// The value of each `{name}` (one segment) or `{+name}` (one or more)
/// of `template` in `path`, which may carry a prefix before it.
fn match_template(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    (0..p.len()).find_map(|start| match_from(&t, &p[start..]))
}

fn match_from(t: &[&str], p: &[&str]) -> Option<Vec<(String, String)>> {
    let Some((first, rest)) = t.split_first() else {
        return p.is_empty().then(Vec::new);
    };
    let segment = p.first()?;
    // `{name}` or `{+name}` with a literal after it in the same segment
    // (Google's `{+parent}/dataPoints:dailyRollUp` has it in the next one).
    if let Some(inner) = first.strip_prefix('{') {
        let (var, suffix) = inner.split_once('}')?;
        if let Some(var) = var.strip_prefix('+') {
            for take in (1..=p.len()).rev() {
                let joined = p[..take].join("/");
                if let Some(value) = joined.strip_suffix(suffix) {
                    if let Some(mut more) = match_from(rest, &p[take..]) {
                        more.insert(0, (var.to_string(), value.to_string()));
                        return Some(more);
                    }
                }
            }
            return None;
        }
        let value = segment.strip_suffix(suffix)?;
        let mut more = match_from(rest, &p[1..])?;
        more.insert(0, (var.to_string(), value.to_string()));
        return Some(more);
    }
    (first == segment).then(|| match_from(rest, &p[1..]))?
}

/// A parameter's text as the JSON value its schema's type says.
fn typed(raw: &str, schema: &Value) -> Value {
    let kinds: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    for kind in kinds {
        let v = match kind {
            "integer" => raw.parse::<i64>().ok().map(Value::from),
            "number" => raw.parse::<f64>().ok().map(Value::from),
            "boolean" => raw.parse::<bool>().ok().map(Value::from),
            _ => None,
        };
        if let Some(v) = v {
            return v;
        }
    }
    Value::String(raw.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openapi() -> Spec {
        Spec {
            name: "test.json".into(),
            v30: true,
            doc: json!({
                "openapi": "3.0.1",
                "security": [{"OAuth": []}],
                "components": {"securitySchemes": {
                    "OAuth": {"type": "oauth2"},
                    "Key": {"type": "apiKey", "in": "header", "name": "x-api-key"}
                }},
                "paths": {
                    "/v2/cycle": {"get": {"parameters": [
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 25}},
                        {"name": "start", "in": "query", "required": true, "schema": {"type": "string", "format": "date-time"}}
                    ]}},
                    "/v3/hr/{date}": {"get": {"parameters": [
                        {"name": "date", "in": "path", "required": true, "schema": {"type": "string", "format": "date"}}
                    ]}},
                    "/users": {"post": {
                        "security": [{"Key": []}],
                        "requestBody": {"required": true, "content": {"application/json": {"schema": {
                            "type": "object", "required": ["member-id"],
                            "properties": {"member-id": {"type": "string"}}
                        }}}}
                    }},
                    "https://wbsapi.withings.net/v2/sleep ": {"post": {"operationId": "sleepv2-getsummary", "security": [], "parameters": [
                        {"name": "action", "in": "query", "required": true, "schema": {"type": "string"}},
                        {"name": "startdateymd", "in": "query", "required": true, "schema": {"type": "string"},
                         "description": "DO NOT USE WITH FOLLOWING PARAMS: [lastupdate]<br>Start date."},
                        {"name": "lastupdate", "in": "query", "required": true, "schema": {"type": "integer"},
                         "description": "DO NOT USE WITH FOLLOWING PARAMS: [startdateymd]<br>Timestamp."},
                        {"name": "meastypes", "in": "query", "schema": {"type": "list of integers"}}
                    ]}}
                }
            }),
        }
    }

    fn sent<'a>(path: &'a str, query: &'a str) -> Sent<'a> {
        Sent {
            path,
            query,
            content_type: "",
            body: b"",
            auth_scheme: Some("Bearer"),
            header_names: &[],
        }
    }

    fn check(op: Operation<'_>, s: &Sent<'_>) -> Vec<String> {
        openapi().check_request(op, s).unwrap()
    }

    const CYCLE: Operation = Operation::At {
        method: "get",
        path: "/v2/cycle",
    };

    #[test]
    fn a_request_the_description_allows_passes() {
        let ok = sent("/developer/v2/cycle", "start=2026-12-01T00:00:00Z&limit=25");
        assert_eq!(check(CYCLE, &ok), Vec::<String>::new());
        let hr = Operation::At {
            method: "get",
            path: "/v3/hr/{date}",
        };
        assert!(check(hr, &sent("/v3/hr/2026-12-01", "")).is_empty());
        assert_eq!(
            check(hr, &sent("/v3/hr/12-01-2026", "")),
            ["path/date: \"12-01-2026\" is not a \"date\""]
        );
    }

    #[test]
    fn each_kind_of_query_mismatch_is_named() {
        let found = check(CYCLE, &sent("/v2/cycle", "limit=50&limit=2&nextToken=x"));
        assert_eq!(
            found,
            [
                "query/limit: sent 2 times, the description takes one value",
                "query/nextToken: not in the description",
                "query/start: required, not sent",
            ]
        );
        let found = check(CYCLE, &sent("/v2/cycle", "start=yesterday&limit=50"));
        assert_eq!(
            found,
            [
                "query/limit: 50 is greater than the maximum of 25",
                "query/start: \"yesterday\" is not a \"date-time\"",
            ]
        );
        assert_eq!(
            check(CYCLE, &sent("/v2/recovery", "start=2026-12-01T00:00:00Z")),
            ["path: `/v2/recovery` is not `/v2/cycle`"]
        );
    }

    #[test]
    fn credentials_follow_the_security_schemes() {
        let anonymous = Sent {
            auth_scheme: None,
            ..sent("/v2/cycle", "start=2026-12-01T00:00:00Z")
        };
        assert_eq!(
            check(CYCLE, &anonymous),
            ["credentials: none of the description's requirements met (OAuth)"]
        );
        let users = Operation::At {
            method: "post",
            path: "/users",
        };
        let headers = ["x-api-key".to_string()];
        let json = |body: &'static [u8]| Sent {
            content_type: "application/json",
            body,
            auth_scheme: None,
            header_names: &headers,
            ..sent("/users", "")
        };
        assert!(check(users, &json(br#"{"member-id": "a"}"#)).is_empty());
        assert_eq!(
            check(users, &json(br#"{"member_id": "a"}"#)),
            [
                "body/: \"member-id\" is a required property",
                "body/: fields the description does not name: [\"member_id\"]",
            ]
        );
        let no_key = Sent {
            header_names: &[],
            ..json(br#"{"member-id": "a"}"#)
        };
        assert_eq!(
            check(users, &no_key),
            ["credentials: none of the description's requirements met (Key)"]
        );
        let form = Sent {
            content_type: "application/x-www-form-urlencoded",
            ..json(b"member-id=a")
        };
        assert_eq!(
            check(users, &form),
            ["body: sent as `application/x-www-form-urlencoded`, the description takes [\"application/json\"]"]
        );
    }

    #[test]
    fn google_discovery_methods_with_their_patterns_and_global_parameters() {
        let doc = json!({
            "discoveryVersion": "v1",
            "parameters": {"fields": {"type": "string", "location": "query"}},
            "resources": {"users": {"resources": {"dataPoints": {"methods": {"list": {
                "id": "health.users.dataPoints.list",
                "path": "v4/{+parent}/dataPoints",
                "scopes": ["https://www.googleapis.com/auth/health"],
                "parameters": {
                    "parent": {"type": "string", "location": "path", "required": true,
                               "pattern": "^users/[^/]+/dataTypes/[^/]+$"},
                    "pageSize": {"type": "integer", "format": "int32", "location": "query"}
                }
            }}}}}}
        });
        let spec = Spec {
            name: "discovery.json".into(),
            v30: false,
            doc: super::super::from_discovery(&doc),
        };
        let op = Operation::Id("health.users.dataPoints.list");
        let ok = sent(
            "/v4/users/me/dataTypes/steps/dataPoints",
            "pageSize=100&fields=x",
        );
        assert!(spec.check_request(op, &ok).unwrap().is_empty());
        let bad = sent("/v4/users/me/steps/dataPoints", "pageSize=all");
        assert_eq!(
            spec.check_request(op, &bad).unwrap(),
            [
                "path/parent: \"users/me/steps\" does not match \"^users/[^/]+/dataTypes/[^/]+$\"",
                "query/pageSize: \"all\" is not of type \"integer\"",
            ]
        );
        let anonymous = Sent {
            auth_scheme: None,
            ..ok
        };
        assert_eq!(
            spec.check_request(op, &anonymous).unwrap(),
            ["credentials: an OAuth bearer token is required"]
        );
    }

    #[test]
    fn withings_alternatives_and_form_bodies() {
        let op = Operation::Id("sleepv2-getsummary");
        let form = |body: &'static [u8]| Sent {
            content_type: "application/x-www-form-urlencoded",
            body,
            ..sent("/v2/sleep", "")
        };
        // Either alternative stands for the other; both together do not.
        assert!(check(op, &form(b"action=getsummary&startdateymd=2026-12-01")).is_empty());
        assert!(check(op, &form(b"action=getsummary&lastupdate=1764547200")).is_empty());
        assert_eq!(
            check(op, &form(b"action=getsummary&startdateymd=2026-12-01&lastupdate=1")),
            [
                "query/lastupdate: sent with `startdateymd`, which the description says not to combine it with",
                "query/startdateymd: sent with `lastupdate`, which the description says not to combine it with",
            ]
        );
        assert_eq!(
            check(op, &form(b"action=getsummary")),
            [
                "query/lastupdate: required, not sent",
                "query/startdateymd: required, not sent",
            ]
        );
        assert!(check(
            op,
            &form(b"action=getsummary&lastupdate=1&meastypes=1,4,12")
        )
        .is_empty());
        assert_eq!(
            check(op, &form(b"action=getsummary&lastupdate=1&meastypes=1,kg")),
            ["query/meastypes: /1: \"kg\" is not of type \"integer\""]
        );
    }

    #[test]
    fn templates_match_with_a_prefix_and_multi_segment_variables() {
        assert_eq!(
            match_template("/v2/cycle", "/developer/v2/cycle"),
            Some(vec![])
        );
        assert_eq!(
            match_template(
                "/v3/users/continuous-heart-rate/{date}",
                "/v3/users/continuous-heart-rate/2026-12-01"
            ),
            Some(vec![("date".into(), "2026-12-01".into())])
        );
        assert_eq!(
            match_template(
                "/v4/{+parent}/dataPoints:dailyRollUp",
                "/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp"
            ),
            Some(vec![("parent".into(), "users/me/dataTypes/steps".into())])
        );
        assert_eq!(match_template("/v2/cycle", "/v2/recovery"), None);
    }
}
