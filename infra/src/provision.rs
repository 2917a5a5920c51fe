//! Creates, in the AWS emulator, the resources template.yaml declares
//! (DynamoDB tables with their keys, indexes and TTL; SQS queues with their
//! redrive policy; the KMS key; the secrets; the EventBridge bus) and resolves the functions'
//! environment the way CloudFormation would. Idempotent: existing resources
//! are reused, so restarting against a running emulator keeps its data.

use crate::template::{Template, ValueSource};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use connector_core::aws::sdk;
use serde_yaml::Value;
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{resource}: {detail}")]
    Resource { resource: String, detail: String },
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
}

fn err(resource: &str, detail: impl std::fmt::Display) -> ProvisionError {
    ProvisionError::Resource {
        resource: resource.to_string(),
        detail: detail.to_string(),
    }
}

/// What was created: each logical id's Ref value and attributes.
#[derive(Debug, Default, Clone)]
pub struct Provisioned {
    pub refs: HashMap<String, String>,
    pub arns: HashMap<String, String>,
    /// The functions' environment (resource refs resolved; parameters at
    /// their template defaults).
    pub env: HashMap<String, String>,
    pub skipped: Vec<String>,
}

impl Provisioned {
    pub fn table(&self, logical_id: &str) -> &str {
        &self.refs[logical_id]
    }
}

fn str_prop<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v[key].as_str()
}

fn key_schema(resource: &str, v: &Value) -> Result<Vec<KeySchemaElement>, ProvisionError> {
    v.as_sequence()
        .ok_or_else(|| err(resource, "KeySchema missing"))?
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(str_prop(k, "AttributeName").unwrap_or_default())
                .key_type(KeyType::from(str_prop(k, "KeyType").unwrap_or_default()))
                .build()
                .map_err(|e| err(resource, e))
        })
        .collect()
}

pub async fn provision(
    sdk: &aws_config::SdkConfig,
    template: &Template,
    prefix: &str,
) -> Result<Provisioned, ProvisionError> {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let kms = aws_sdk_kms::Client::new(sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let mut out = Provisioned::default();
    let resources = template.resources();

    // Queues without a redrive policy first: others point at their ARNs.
    let mut ordered: Vec<_> = resources.iter().collect();
    ordered
        .sort_by_key(|(_, ty, p)| (ty == "AWS::SQS::Queue" && !p["RedrivePolicy"].is_null()) as u8);

    for (id, ty, props) in ordered {
        let name = format!("{prefix}-{id}");
        match ty.as_str() {
            "AWS::DynamoDB::Table" => {
                create_table(&dynamo, id, &name, props).await?;
                out.refs.insert(id.clone(), name.clone());
                out.arns.insert(
                    id.clone(),
                    format!("arn:aws:dynamodb:us-east-1:123456789012:table/{name}"),
                );
            }
            "AWS::SQS::Queue" => {
                let (url, arn) = create_queue(&sqs, id, &name, props, &out.arns).await?;
                out.refs.insert(id.clone(), url);
                out.arns.insert(id.clone(), arn);
            }
            "AWS::KMS::Key" => {
                let (key_id, arn) = create_key(&kms, id, &name).await?;
                out.refs.insert(id.clone(), key_id);
                out.arns.insert(id.clone(), arn);
            }
            "AWS::SecretsManager::Secret" => {
                let arn = create_secret(&secrets, id, &name).await?;
                out.refs.insert(id.clone(), arn.clone());
                out.arns.insert(id.clone(), arn);
            }
            "AWS::Events::EventBus" => {
                let arn = create_bus(&events, id, &name).await?;
                out.refs.insert(id.clone(), name.clone());
                out.arns.insert(id.clone(), arn);
            }
            other => out.skipped.push(format!("{id} ({other})")),
        }
    }

    for (var, source) in template.function_env()? {
        let value = match &source {
            ValueSource::Literal(v) => Some(v.clone()),
            ValueSource::Ref(r) if template.is_parameter(r) => template.parameter_default(r),
            ValueSource::Ref(r) => out.refs.get(r).cloned(),
            ValueSource::GetAtt(r, a) if a == "Arn" => out.arns.get(r).cloned(),
            ValueSource::GetAtt(..) => None,
        };
        match value {
            Some(v) => {
                out.env.insert(var, v);
            }
            None => return Err(err(&var, format!("cannot resolve {source:?} locally"))),
        }
    }
    Ok(out)
}

async fn create_table(
    dynamo: &aws_sdk_dynamodb::Client,
    id: &str,
    name: &str,
    p: &Value,
) -> Result<(), ProvisionError> {
    let attrs = p["AttributeDefinitions"]
        .as_sequence()
        .ok_or_else(|| err(id, "AttributeDefinitions missing"))?
        .iter()
        .map(|a| {
            AttributeDefinition::builder()
                .attribute_name(str_prop(a, "AttributeName").unwrap_or_default())
                .attribute_type(ScalarAttributeType::from(
                    str_prop(a, "AttributeType").unwrap_or_default(),
                ))
                .build()
                .map_err(|e| err(id, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut req = dynamo
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(attrs))
        .set_key_schema(Some(key_schema(id, &p["KeySchema"])?));
    for gsi in p["GlobalSecondaryIndexes"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(str_prop(gsi, "IndexName").unwrap_or_default())
                .set_key_schema(Some(key_schema(id, &gsi["KeySchema"])?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(
                            str_prop(&gsi["Projection"], "ProjectionType").unwrap_or("ALL"),
                        ))
                        .build(),
                )
                .build()
                .map_err(|e| err(id, e))?,
        );
    }
    match req.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            return Ok(())
        }
        Err(e) => return Err(err(id, sdk(e))),
    }
    if let Some(attr) = str_prop(&p["TimeToLiveSpecification"], "AttributeName") {
        dynamo
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attr)
                    .enabled(true)
                    .build()
                    .map_err(|e| err(id, e))?,
            )
            .send()
            .await
            .map_err(|e| err(id, sdk(e)))?;
    }
    Ok(())
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    id: &str,
    name: &str,
    p: &Value,
    arns: &HashMap<String, String>,
) -> Result<(String, String), ProvisionError> {
    let mut req = sqs.create_queue().queue_name(name);
    for (prop, attr) in [
        ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
        (
            "MessageRetentionPeriod",
            QueueAttributeName::MessageRetentionPeriod,
        ),
        ("DelaySeconds", QueueAttributeName::DelaySeconds),
    ] {
        if let Some(v) = p[prop].as_u64() {
            req = req.attributes(attr, v.to_string());
        }
    }
    let redrive = &p["RedrivePolicy"];
    if !redrive.is_null() {
        let target = match Template::value_source(&redrive["deadLetterTargetArn"]) {
            Some(ValueSource::GetAtt(r, a)) if a == "Arn" => arns.get(&r).cloned(),
            _ => None,
        }
        .ok_or_else(|| err(id, "RedrivePolicy target is not a queue of this template"))?;
        let max = redrive["maxReceiveCount"].as_u64().unwrap_or(5);
        req = req.attributes(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({ "deadLetterTargetArn": target, "maxReceiveCount": max })
                .to_string(),
        );
    }
    let url = req
        .send()
        .await
        .map_err(|e| err(id, sdk(e)))?
        .queue_url
        .ok_or_else(|| err(id, "CreateQueue returned no URL"))?;
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| err(id, sdk(e)))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| err(id, "queue has no ARN"))?;
    Ok((url, arn))
}

async fn create_key(
    kms: &aws_sdk_kms::Client,
    id: &str,
    name: &str,
) -> Result<(String, String), ProvisionError> {
    let alias = format!("alias/{name}");
    if let Ok(found) = kms.describe_key().key_id(&alias).send().await {
        if let Some(meta) = found.key_metadata {
            let arn = meta.arn.unwrap_or_default();
            return Ok((meta.key_id, arn));
        }
    }
    let meta = kms
        .create_key()
        .description(format!("{name} (local)"))
        .send()
        .await
        .map_err(|e| err(id, sdk(e)))?
        .key_metadata
        .ok_or_else(|| err(id, "CreateKey returned no metadata"))?;
    let (key_id, arn) = (meta.key_id, meta.arn.unwrap_or_default());
    kms.create_alias()
        .alias_name(&alias)
        .target_key_id(&key_id)
        .send()
        .await
        .map_err(|e| err(id, sdk(e)))?;
    Ok((key_id, arn))
}

async fn create_secret(
    sm: &aws_sdk_secretsmanager::Client,
    id: &str,
    name: &str,
) -> Result<String, ProvisionError> {
    if let Ok(found) = sm.describe_secret().secret_id(name).send().await {
        if let Some(arn) = found.arn {
            return Ok(arn);
        }
    }
    // Locally the secret starts empty: credentials come from the environment.
    sm.create_secret()
        .name(name)
        .secret_string("{}")
        .send()
        .await
        .map_err(|e| err(id, sdk(e)))?
        .arn
        .ok_or_else(|| err(id, "CreateSecret returned no ARN"))
}

async fn create_bus(
    events: &aws_sdk_eventbridge::Client,
    id: &str,
    name: &str,
) -> Result<String, ProvisionError> {
    if let Ok(found) = events.describe_event_bus().name(name).send().await {
        if let Some(arn) = found.arn {
            return Ok(arn);
        }
    }
    events
        .create_event_bus()
        .name(name)
        .send()
        .await
        .map_err(|e| err(id, sdk(e)))?
        .event_bus_arn
        .ok_or_else(|| err(id, "CreateEventBus returned no ARN"))
}
