//! Reads template.yaml: the resources to create locally, the functions'
//! environment, and the HTTP routes with their auth — so the local stack is
//! whatever the template says, not a second copy of it.

use serde_yaml::Value;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("template.yaml: {0}")]
    Shape(String),
}

pub struct Template {
    doc: Value,
}

/// Where an environment value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    Literal(String),
    Ref(String),
    GetAtt(String, String),
}

/// One HTTP route of the HttpApi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    pub path: String,
    /// The cargo binary (function) that serves it.
    pub binary: String,
    /// No JWT authorizer (Auth.Authorizer: NONE).
    pub public: bool,
}

impl Route {
    /// Path parameters when `path` matches this route's template.
    pub fn matches(&self, method: &str, path: &str) -> Option<Vec<(String, String)>> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let want: Vec<&str> = self.path.trim_matches('/').split('/').collect();
        let got: Vec<&str> = path.trim_matches('/').split('/').collect();
        if want.len() != got.len() {
            return None;
        }
        let mut params = Vec::new();
        for (w, g) in want.iter().zip(&got) {
            if let Some(name) = w.strip_prefix('{').and_then(|w| w.strip_suffix('}')) {
                if g.is_empty() {
                    return None;
                }
                params.push((name.to_string(), g.to_string()));
            } else if w != g {
                return None;
            }
        }
        Some(params)
    }

    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

fn tag_name(t: &serde_yaml::value::TaggedValue) -> String {
    t.tag.to_string().trim_start_matches('!').to_string()
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let doc: Value = serde_yaml::from_str(text)?;
        if !doc["Resources"].is_mapping() {
            return Err(TemplateError::Shape("no Resources".into()));
        }
        Ok(Self { doc })
    }

    /// (logical id, type, properties) of every resource, in template order.
    pub fn resources(&self) -> Vec<(String, String, Value)> {
        self.doc["Resources"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                Some((
                    k.as_str()?.to_string(),
                    v["Type"].as_str()?.to_string(),
                    v["Properties"].clone(),
                ))
            })
            .collect()
    }

    pub fn parameter_default(&self, name: &str) -> Option<String> {
        scalar(&self.doc["Parameters"][name]["Default"])
    }

    pub fn is_parameter(&self, name: &str) -> bool {
        self.doc["Parameters"].get(name).is_some()
    }

    /// Globals.Function.Environment.Variables.
    pub fn function_env(&self) -> Result<Vec<(String, ValueSource)>, TemplateError> {
        let vars = &self.doc["Globals"]["Function"]["Environment"]["Variables"];
        let Some(map) = vars.as_mapping() else {
            return Ok(Vec::new());
        };
        map.iter()
            .map(|(k, v)| {
                let name = k
                    .as_str()
                    .ok_or_else(|| TemplateError::Shape("env name".into()))?
                    .to_string();
                Ok((
                    name.clone(),
                    Self::value_source(v)
                        .ok_or_else(|| TemplateError::Shape(format!("env {name}")))?,
                ))
            })
            .collect()
    }

    pub fn value_source(v: &Value) -> Option<ValueSource> {
        match v {
            Value::Tagged(t) => match tag_name(t).as_str() {
                "Ref" => t.value.as_str().map(|s| ValueSource::Ref(s.to_string())),
                "GetAtt" => {
                    let s = t.value.as_str()?;
                    let (res, att) = s.split_once('.')?;
                    Some(ValueSource::GetAtt(res.to_string(), att.to_string()))
                }
                _ => None,
            },
            Value::Mapping(m) => {
                if let Some(r) = m.get("Ref").and_then(Value::as_str) {
                    return Some(ValueSource::Ref(r.to_string()));
                }
                None
            }
            other => scalar(other).map(ValueSource::Literal),
        }
    }

    /// Every HttpApi route of every function, with its binary and auth.
    pub fn routes(&self) -> Vec<Route> {
        let mut out = Vec::new();
        for (_, ty, props) in self.resources() {
            if ty != "AWS::Serverless::Function" {
                continue;
            }
            let Some(events) = props["Events"].as_mapping() else {
                continue;
            };
            let binary = self.binary_of(&props);
            for (_, ev) in events {
                if ev["Type"].as_str() != Some("HttpApi") {
                    continue;
                }
                let p = &ev["Properties"];
                let (Some(method), Some(path)) = (p["Method"].as_str(), p["Path"].as_str()) else {
                    continue;
                };
                out.push(Route {
                    method: method.to_uppercase(),
                    path: path.to_string(),
                    binary: binary.clone().unwrap_or_default(),
                    public: p["Auth"]["Authorizer"].as_str() == Some("NONE"),
                });
            }
        }
        out
    }

    fn binary_of(&self, props: &Value) -> Option<String> {
        // Metadata sits beside Properties; find the function whose Properties these are.
        self.doc["Resources"]
            .as_mapping()?
            .values()
            .find(|r| &r["Properties"] == props)
            .and_then(|r| r["Metadata"]["BuildProperties"]["Binary"].as_str())
            .map(String::from)
    }

    /// The queues (logical ids) `binary` may send to (SQSSendMessagePolicy)
    /// and those it consumes (SQS events), each sorted.
    pub fn queues_of(&self, binary: &str) -> (Vec<String>, Vec<String>) {
        let resource = |v: &Value| match Self::value_source(v) {
            Some(ValueSource::GetAtt(res, _)) => Some(res),
            _ => None,
        };
        let (mut sends, mut consumes) = (Vec::new(), Vec::new());
        for (_, ty, props) in self.resources() {
            if ty != "AWS::Serverless::Function"
                || self.binary_of(&props).as_deref() != Some(binary)
            {
                continue;
            }
            for policy in props["Policies"].as_sequence().into_iter().flatten() {
                sends.extend(resource(&policy["SQSSendMessagePolicy"]["QueueName"]));
            }
            for event in props["Events"]
                .as_mapping()
                .into_iter()
                .flatten()
                .map(|(_, e)| e)
            {
                if event["Type"].as_str() == Some("SQS") {
                    consumes.extend(resource(&event["Properties"]["Queue"]));
                }
            }
        }
        sends.sort();
        consumes.sort();
        (sends, consumes)
    }

    /// The `Timeout` Lambda gives the function built from `binary`: its own,
    /// or the template's `Globals`.
    pub fn timeout_of(&self, binary: &str) -> Result<Duration, TemplateError> {
        self.function_property(binary, "Timeout")
            .map(Duration::from_secs)
    }

    /// The `MemorySize` (MB) Lambda gives the function built from
    /// `binary`: its own, or the template's `Globals`.
    pub fn memory_of(&self, binary: &str) -> Result<u64, TemplateError> {
        self.function_property(binary, "MemorySize")
    }

    /// A whole-number property of the function built from `binary`: its
    /// own, or the template's `Globals`.
    fn function_property(&self, binary: &str, name: &str) -> Result<u64, TemplateError> {
        let (id, _) = self
            .functions()
            .into_iter()
            .find(|(_, b)| b == binary)
            .ok_or_else(|| TemplateError::Shape(format!("no function builds {binary}")))?;
        self.doc["Resources"][id.as_str()]["Properties"][name]
            .as_u64()
            .or_else(|| self.doc["Globals"]["Function"][name].as_u64())
            .ok_or_else(|| TemplateError::Shape(format!("{id} has no {name}")))
    }

    /// (logical id, binary) of every function.
    pub fn functions(&self) -> Vec<(String, String)> {
        self.doc["Resources"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
            .filter_map(|(k, r)| {
                Some((
                    k.as_str()?.to_string(),
                    r["Metadata"]["BuildProperties"]["Binary"]
                        .as_str()?
                        .to_string(),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_matching_extracts_parameters() {
        let r = Route {
            method: "POST".into(),
            path: "/v1/connections/{vendor}".into(),
            binary: "connect".into(),
            public: false,
        };
        assert_eq!(
            r.matches("POST", "/v1/connections/mock"),
            Some(vec![("vendor".into(), "mock".into())])
        );
        assert_eq!(r.matches("GET", "/v1/connections/mock"), None);
        assert_eq!(r.matches("POST", "/v1/connections/mock/x"), None);
        assert_eq!(r.matches("POST", "/v1/connections/"), None);
    }

    #[test]
    fn a_functions_timeout_and_memory_are_its_own_or_the_globals() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let t = Template::load(&path).unwrap();
        assert_eq!(
            t.timeout_of("sync-worker").unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(t.timeout_of("connect").unwrap(), Duration::from_secs(10));
        assert!(t.timeout_of("no-such-binary").is_err());
        assert_eq!(t.memory_of("app-events").unwrap(), 128);
        assert_eq!(t.memory_of("connect").unwrap(), 256);
    }

    /// What a stack update or delete must not destroy: the tokens, the
    /// health data, the key that opens them and the vendors' credentials.
    #[test]
    fn what_cannot_be_rebuilt_is_retained() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let t = Template::load(&path).unwrap();
        for id in [
            "ConnectionsTable",
            "HealthDataTable",
            "TokenKey",
            "VendorCredentialsSecret",
            "PushSecret",
        ] {
            let r = &t.doc["Resources"][id];
            for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
                assert_eq!(r[policy].as_str(), Some("Retain"), "{id} {policy}");
            }
        }
    }

    /// Logs name users (user ids), so every function's log group is declared
    /// with a retention instead of Lambda's default of keeping them forever.
    #[test]
    fn every_function_logs_to_a_group_with_a_retention() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let t = Template::load(&path).unwrap();
        let retention: u32 = t
            .parameter_default("LogRetentionDays")
            .expect("a LogRetentionDays parameter")
            .parse()
            .unwrap();
        assert!((1..=90).contains(&retention), "{retention}");
        let groups: Vec<Value> = t
            .resources()
            .into_iter()
            .filter(|(_, kind, _)| kind == "AWS::Logs::LogGroup")
            .map(|(_, _, props)| props)
            .collect();
        for (id, _) in t.functions() {
            let name = format!("/aws/lambda/${{{id}}}");
            let group = groups
                .iter()
                .find(|g| format!("{:?}", g["LogGroupName"]).contains(&name))
                .unwrap_or_else(|| panic!("{id} has no log group named {name}"));
            assert!(
                format!("{:?}", group["RetentionInDays"]).contains("LogRetentionDays"),
                "{id}: {group:?}"
            );
        }
    }

    /// Each function may send to exactly the queues its code sends jobs to:
    /// the enforcing emulator refuses a missing one too, but only on a path
    /// some test takes.
    #[test]
    fn functions_may_send_jobs_exactly_where_their_code_does() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let t = Template::load(&path).unwrap();
        let v = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // flows::connect::establish queues the backfill (on completion);
        // every writer of events to the app queues them for delivery.
        assert_eq!(
            t.queues_of("connect"),
            (v(&["AppEventsQueue", "BackfillQueue"]), v(&[]))
        );
        // Webhook notices (the worker acts on them and tells the app);
        // poll and watchdog jobs (token-refresher); manual syncs (data),
        // which tell the app nothing.
        assert_eq!(t.queues_of("webhook"), (v(&["SyncQueue"]), v(&[])));
        assert_eq!(
            t.queues_of("token-refresher"),
            (v(&["AppEventsQueue", "SyncQueue"]), v(&[]))
        );
        assert_eq!(t.queues_of("data"), (v(&["SyncQueue"]), v(&[])));
        // A failed live job queues the days it had absorbed again; a job
        // held by a quota hands its days on in its own queue.
        assert_eq!(
            t.queues_of("sync-worker"),
            (
                v(&["AppEventsQueue", "BackfillQueue", "SyncQueue"]),
                v(&["BackfillQueue", "SyncQueue"])
            )
        );
        // What a heavy user's erasure leaves goes to the sync worker.
        assert_eq!(
            t.queues_of("account"),
            (v(&["AppEventsQueue", "SyncQueue"]), v(&[]))
        );
        // Delivery only retries its own messages; it sends none.
        assert_eq!(t.queues_of("app-events"), (v(&[]), v(&["AppEventsQueue"])));
        for binary in [
            "providers",
            "health-push",
            "oauth-callback",
            "api-docs",
            "pages",
            "status",
        ] {
            assert_eq!(t.queues_of(binary), (v(&[]), v(&[])), "{binary}");
        }
        assert_eq!(
            t.functions().len(),
            13,
            "a new function needs its line here"
        );
    }

    /// A flood at one vendor's webhook route cannot use up another's: each
    /// vendor that sends webhooks has its own POST route with its own
    /// throttle, and the public functions have reserved concurrency, so a
    /// flood at them cannot take the concurrency every other function needs.
    #[test]
    fn each_vendor_has_its_own_throttled_webhook_route() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let t = Template::load(&path).unwrap();
        let routes = t.routes();
        let settings = &t.doc["Resources"]["HttpApi"]["Properties"]["RouteSettings"];
        for vendor in connector_core::Vendor::ALL {
            let key = format!("POST /v1/webhooks/{}", vendor.as_str());
            let routed = routes
                .iter()
                .any(|r| r.route_key() == key && r.binary == "webhook" && r.public);
            if vendor == connector_core::Vendor::Dexcom {
                assert!(!routed, "Dexcom sends no webhooks: {key} needs no route");
                continue;
            }
            assert!(routed, "{key} is not a route of its own");
            for limit in ["ThrottlingBurstLimit", "ThrottlingRateLimit"] {
                assert!(
                    !settings[key.as_str()][limit].is_null(),
                    "{key} has no {limit} of its own"
                );
            }
        }
        assert!(
            !routes
                .iter()
                .any(|r| r.method == "POST" && r.path == "/v1/webhooks/{vendor}"),
            "a POST route shared by every vendor shares one throttle"
        );
        let mut public = Vec::new();
        for (id, binary) in t.functions() {
            let served: Vec<_> = routes.iter().filter(|r| r.binary == binary).collect();
            if served.is_empty() || !served.iter().all(|r| r.public) {
                continue;
            }
            let reserved =
                &t.doc["Resources"][id.as_str()]["Properties"]["ReservedConcurrentExecutions"];
            assert!(
                format!("{reserved:?}").contains("PublicFunctionConcurrency"),
                "{id}: {reserved:?}"
            );
            public.push(binary);
        }
        public.sort();
        assert_eq!(
            public,
            ["api-docs", "oauth-callback", "pages", "status", "webhook"]
        );
    }
}
