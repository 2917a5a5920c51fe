//! Each function's IAM role, created in the emulator as SAM creates it in
//! AWS, and the credentials a function runs with. The policies come from
//! SAM's own translator (`infra/sam_policies.py --roles`): its policy
//! templates expanded, the managed policies its event sources attach (the
//! emulator loads their published documents). Only the trust policy differs:
//! locally the local admin stands in for the Lambda service and assumes the
//! role, as Lambda does before it starts a function.

use crate::provision::Provisioned;
use crate::stack::workspace_root;
use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::SharedCredentialsProvider;
use connector_core::aws::sdk;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error(
        "SAM's translator could not expand the template ({0}); `make run` and `make test` install it into .venv"
    )]
    Translator(String),
    #[error("{role}: {detail}")]
    Iam { role: String, detail: String },
    #[error("{0} in a role policy cannot be resolved locally")]
    Unresolved(String),
}

/// One function's role as the translator made it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RoleSpec {
    pub logical_id: String,
    pub policies: Vec<InlinePolicy>,
    /// ARNs of AWS managed policies.
    pub managed: Vec<String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct InlinePolicy {
    pub name: String,
    pub document: Value,
}

/// Each function's role by binary.
pub type Roles = Arc<HashMap<String, RoleSpec>>;

/// Each function's role by binary, from the translator; translated once
/// per template text in a process.
pub fn translate(template: &Path) -> Result<Roles, RoleError> {
    static CACHE: OnceLock<Mutex<HashMap<String, Roles>>> = OnceLock::new();
    let text = std::fs::read_to_string(template)
        .map_err(|e| RoleError::Translator(format!("{}: {e}", template.display())))?;
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().expect("role cache").get(&text) {
        return Ok(hit.clone());
    }
    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    let out = std::process::Command::new(&python)
        .arg(root.join("infra/sam_policies.py"))
        .arg("--roles")
        .arg(template)
        .output()
        .map_err(|e| RoleError::Translator(format!("{}: {e}", python.display())))?;
    if !out.status.success() {
        return Err(RoleError::Translator(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let roles: HashMap<String, RoleSpec> = serde_json::from_slice(&out.stdout)
        .map_err(|e| RoleError::Translator(format!("its output: {e}")))?;
    let roles = Arc::new(roles);
    cache
        .lock()
        .expect("role cache")
        .insert(text, roles.clone());
    Ok(roles)
}

/// What CloudFormation would substitute into a policy: the stack's
/// resources and the pseudo parameters.
struct Resolver<'a> {
    provisioned: &'a Provisioned,
    region: String,
    account: String,
}

impl Resolver<'_> {
    fn reference(&self, name: &str) -> Result<String, RoleError> {
        match name {
            "AWS::Partition" => Ok("aws".into()),
            "AWS::Region" => Ok(self.region.clone()),
            "AWS::AccountId" => Ok(self.account.clone()),
            id => self
                .provisioned
                .refs
                .get(id)
                .cloned()
                .ok_or_else(|| RoleError::Unresolved(format!("Ref {id}"))),
        }
    }

    fn attribute(&self, id: &str, attr: &str) -> Result<String, RoleError> {
        let arn = self.provisioned.arns.get(id);
        match (attr, arn) {
            ("Arn", Some(arn)) => Ok(arn.clone()),
            // An SQS queue's name is the last part of its ARN.
            ("QueueName", Some(arn)) => Ok(arn.rsplit(':').next().unwrap_or_default().into()),
            _ => Err(RoleError::Unresolved(format!("Fn::GetAtt {id}.{attr}"))),
        }
    }

    fn substitute(&self, text: &str, vars: &HashMap<String, String>) -> Result<String, RoleError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| RoleError::Unresolved(format!("Fn::Sub {text}")))?;
            let name = &rest[start + 2..start + end];
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None => match name.split_once('.') {
                    Some((id, attr)) => out.push_str(&self.attribute(id, attr)?),
                    None => out.push_str(&self.reference(name)?),
                },
            }
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn resolve(&self, v: &Value) -> Result<Value, RoleError> {
        let Some(map) = v.as_object() else {
            return match v {
                Value::Array(items) => items.iter().map(|i| self.resolve(i)).collect(),
                other => Ok(other.clone()),
            };
        };
        if let (1, Some(Value::String(id))) = (map.len(), map.get("Ref")) {
            return Ok(Value::String(self.reference(id)?));
        }
        if let (1, Some(att)) = (map.len(), map.get("Fn::GetAtt")) {
            let parts: Vec<String> = match att {
                Value::String(s) => s.splitn(2, '.').map(String::from).collect(),
                Value::Array(a) => a
                    .iter()
                    .filter_map(|p| p.as_str().map(String::from))
                    .collect(),
                _ => Vec::new(),
            };
            return match parts.as_slice() {
                [id, attr] => Ok(Value::String(self.attribute(id, attr)?)),
                _ => Err(RoleError::Unresolved(format!("Fn::GetAtt {att}"))),
            };
        }
        if let (1, Some(sub)) = (map.len(), map.get("Fn::Sub")) {
            let (text, vars) = match sub {
                Value::String(s) => (s.as_str(), serde_json::Map::new()),
                Value::Array(a) => match (a.first(), a.get(1)) {
                    (Some(Value::String(s)), Some(Value::Object(m))) => (s.as_str(), m.clone()),
                    _ => return Err(RoleError::Unresolved(format!("Fn::Sub {sub}"))),
                },
                _ => return Err(RoleError::Unresolved(format!("Fn::Sub {sub}"))),
            };
            let mut resolved = HashMap::new();
            for (k, v) in vars {
                match self.resolve(&v)? {
                    Value::String(s) => resolved.insert(k, s),
                    other => {
                        return Err(RoleError::Unresolved(format!("Fn::Sub variable {other}")))
                    }
                };
            }
            return Ok(Value::String(self.substitute(text, &resolved)?));
        }
        if let Some(key) = map.keys().find(|k| k.starts_with("Fn::")) {
            return Err(RoleError::Unresolved(key.clone()));
        }
        map.iter()
            .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
            .collect::<Result<serde_json::Map<_, _>, _>>()
            .map(Value::Object)
    }
}

/// Creates (or updates) each function's role with its policies and returns
/// the role ARN by binary. `admin` signs as the local admin.
pub async fn create_roles(
    admin: &SdkConfig,
    template: &Path,
    provisioned: &Provisioned,
    prefix: &str,
) -> Result<HashMap<String, String>, RoleError> {
    let roles = translate(template)?;
    let iam = aws_sdk_iam::Client::new(admin);
    let caller = aws_sdk_sts::Client::new(admin)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| RoleError::Iam {
            role: "local admin".into(),
            detail: sdk(e),
        })?;
    let admin_arn = caller.arn().unwrap_or_default().to_string();
    let resolver = Resolver {
        provisioned,
        region: admin
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into()),
        account: caller.account().unwrap_or_default().to_string(),
    };
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "AWS": admin_arn },
            "Action": "sts:AssumeRole",
        }],
    })
    .to_string();
    let mut arns = HashMap::new();
    for (binary, spec) in roles.iter() {
        let name = format!("{prefix}-{binary}");
        let fail = |detail: String| RoleError::Iam {
            role: format!("{name} ({})", spec.logical_id),
            detail,
        };
        let arn = match iam
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(&trust)
            .send()
            .await
        {
            Ok(out) => out.role().map(|r| r.arn().to_string()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_already_exists_exception()) =>
            {
                iam.get_role()
                    .role_name(&name)
                    .send()
                    .await
                    .map_err(|e| fail(sdk(e)))?
                    .role()
                    .map(|r| r.arn().to_string())
            }
            Err(e) => return Err(fail(sdk(e))),
        }
        .ok_or_else(|| fail("IAM returned no role".into()))?;
        for policy in &spec.policies {
            let mut document = resolver.resolve(&policy.document)?;
            // SAM writes its policy templates without a Version, which IAM
            // reads as 2008-10-17; the emulator insists on one.
            if let Some(doc) = document.as_object_mut() {
                doc.entry("Version").or_insert("2012-10-17".into());
            }
            iam.put_role_policy()
                .role_name(&name)
                .policy_name(&policy.name)
                .policy_document(document.to_string())
                .send()
                .await
                .map_err(|e| fail(sdk(e)))?;
        }
        for managed in &spec.managed {
            iam.attach_role_policy()
                .role_name(&name)
                .policy_arn(managed)
                .send()
                .await
                .map_err(|e| fail(sdk(e)))?;
        }
        arns.insert(binary.clone(), arn);
    }
    Ok(arns)
}

/// The SDK configuration a function runs with: the emulator's endpoint,
/// signed with a session of its role (refreshed before it expires).
pub async fn function_sdk(admin: &SdkConfig, role_arn: &str, binary: &str) -> SdkConfig {
    let provider = AssumeRoleProvider::builder(role_arn)
        .session_name(binary)
        .configure(admin)
        .build()
        .await;
    admin
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(provider))
        .build()
}
