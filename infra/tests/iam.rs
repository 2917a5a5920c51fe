//! The IAM grants each function gets in AWS cover every AWS operation its
//! code can call, and no more resources than it uses. The grants come from
//! SAM's own translator (`infra/sam_policies.py`), which expands the policy
//! templates of `template.yaml` and adds the managed policies of the event
//! sources, exactly as a deploy does. The emulator enforces the same roles
//! (the tests at the end show it), but only on the paths the suites take;
//! this list holds the grants to every call the code can make.

use connector_infra::stack::workspace_root;
use std::collections::BTreeMap;

const CONNECTIONS: &str = "ConnectionsTable";
const HEALTH: &str = "HealthDataTable";
const EPHEMERAL: &str = "EphemeralTable";
const EVENTS: &str = "EventsTable";
const KEY: &str = "TokenKey";
const SECRET: &str = "VendorCredentialsSecret";
const PUSH_SECRET: &str = "PushSecret";
const SYNC_QUEUE: &str = "SyncQueue";
const BACKFILL_QUEUE: &str = "BackfillQueue";
const APP_EVENTS_QUEUE: &str = "AppEventsQueue";
const APP_EVENT_BUS: &str = "AppEventBus";
const APP_WEBHOOK_SECRET: &str = "AppWebhookSecret";
/// Keeping an event (flows::events::tell): its marker and feed item, whether
/// it was queued, then queueing it for delivery.
const KEEP: &[&str] = &[
    "dynamodb:PutItem",
    "dynamodb:GetItem",
    "dynamodb:UpdateItem",
];
const QUEUE_EVENT: (&str, &[&str]) = (APP_EVENTS_QUEUE, &["sqs:SendMessage"]);

/// Reading and writing single items (claims, buckets, waiting jobs, the
/// fleet quota's schedules), and the by-owner index.
const ITEMS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
];
const ITEMS_AND_OWNER_QUERY: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
];
const SECRET_READ: &[&str] = &["secretsmanager:GetSecretValue"];
const SEAL_AND_OPEN: &[&str] = &["kms:GenerateDataKey", "kms:Decrypt"];

type Calls = &'static [(&'static str, &'static [&'static str])];

/// Every AWS operation each function's code can call, by the resource it
/// calls it on.
const CALLS: &[(&str, Calls)] = &[
    // flows::connect::providers: connections and the published supported
    // vendors; no credentials.
    (
        "providers",
        &[
            (CONNECTIONS, &["dynamodb:Query"]),
            (EPHEMERAL, &["dynamodb:GetItem"]),
        ],
    ),
    // flows::connect: start (rate bucket, pending state, sealed
    // verifier; Mock connects at once), complete (parked consent, code
    // exchange, establish, backfill), disconnect (open, refresh, revoke).
    (
        "connect",
        &[
            (
                CONNECTIONS,
                &[
                    "dynamodb:GetItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
            ),
            (EPHEMERAL, ITEMS_AND_OWNER_QUERY),
            (KEY, SEAL_AND_OPEN),
            (BACKFILL_QUEUE, &["sqs:SendMessage"]),
            (SECRET, SECRET_READ),
            (EVENTS, KEEP),
            QUEUE_EVENT,
        ],
    ),
    // flows::connect::callback: takes the state, parks the sealed consent.
    (
        "oauth-callback",
        &[
            (EPHEMERAL, &["dynamodb:DeleteItem", "dynamodb:PutItem"]),
            (KEY, &["kms:GenerateDataKey"]),
        ],
    ),
    // flows::webhook: an unsigned vendor's users looked up (the
    // by-vendor-user index), notices queued (SendMessageBatch is granted
    // by sqs:SendMessage in IAM), the vendor's secret for signatures.
    (
        "webhook",
        &[
            (CONNECTIONS, &["dynamodb:Query"]),
            (SYNC_QUEUE, &["sqs:SendMessage"]),
            (SECRET, SECRET_READ),
        ],
    ),
    // flows::sync: the SQS event sources, retry times (visibility),
    // absorbed days queued again, tokens refreshed, data written;
    // flows::webhook::act_on: a notice's user looked up (by-vendor-user),
    // its event id claimed, its sync queued or the connection revoked
    // (an unsigned vendor's confirmed with the vendor first);
    // flows::erasure: pages of a deleted user's items, the next step queued.
    (
        "sync-worker",
        &[
            (
                CONNECTIONS,
                &["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"],
            ),
            (
                HEALTH,
                &[
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:BatchWriteItem",
                ],
            ),
            (EPHEMERAL, ITEMS_AND_OWNER_QUERY),
            (KEY, SEAL_AND_OPEN),
            (
                SYNC_QUEUE,
                &[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ChangeMessageVisibility",
                    "sqs:SendMessage",
                ],
            ),
            (
                BACKFILL_QUEUE,
                &[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ChangeMessageVisibility",
                    // A job held by a quota hands its days on.
                    "sqs:SendMessage",
                ],
            ),
            (SECRET, SECRET_READ),
            (
                EVENTS,
                &[
                    "dynamodb:PutItem",
                    "dynamodb:GetItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:Query",
                    "dynamodb:BatchWriteItem",
                ],
            ),
            QUEUE_EVENT,
        ],
    ),
    // flows::tick: due refreshes, polls and the watchdog, vendor upkeep
    // claims, the once-a-day scan for unscheduled connections.
    (
        "token-refresher",
        &[
            (
                CONNECTIONS,
                &[
                    "dynamodb:Query",
                    "dynamodb:Scan",
                    "dynamodb:GetItem",
                    "dynamodb:UpdateItem",
                ],
            ),
            (EPHEMERAL, ITEMS),
            (KEY, SEAL_AND_OPEN),
            (SYNC_QUEUE, &["sqs:SendMessage"]),
            (SECRET, SECRET_READ),
            (EVENTS, KEEP),
            QUEUE_EVENT,
        ],
    ),
    // flows::data: a manual sync (rate bucket, waiting job), reports, metrics.
    (
        "data",
        &[
            (CONNECTIONS, &["dynamodb:GetItem"]),
            (HEALTH, &["dynamodb:Query"]),
            (
                EPHEMERAL,
                &[
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
            ),
            (SYNC_QUEUE, &["sqs:SendMessage"]),
            (EVENTS, &["dynamodb:Query"]),
        ],
    ),
    // flows::push: replay keys, the rate bucket, the day's records.
    (
        "health-push",
        &[
            (
                HEALTH,
                &[
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                ],
            ),
            (
                EPHEMERAL,
                &[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                ],
            ),
            (PUSH_SECRET, SECRET_READ),
        ],
    ),
    // flows::account: revoke each connection (refreshing first), then
    // erase the user page by page, handing the rest to the sync worker;
    // flows::erasure::status reads the erasure record.
    (
        "account",
        &[
            (
                CONNECTIONS,
                &[
                    "dynamodb:Query",
                    "dynamodb:GetItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
            ),
            (HEALTH, &["dynamodb:Query", "dynamodb:BatchWriteItem"]),
            (
                EPHEMERAL,
                &[
                    "dynamodb:Query",
                    "dynamodb:DeleteItem",
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                ],
            ),
            (KEY, SEAL_AND_OPEN),
            (SYNC_QUEUE, &["sqs:SendMessage"]),
            (SECRET, SECRET_READ),
            (
                EVENTS,
                &[
                    "dynamodb:PutItem",
                    "dynamodb:GetItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:Query",
                    "dynamodb:BatchWriteItem",
                ],
            ),
            QUEUE_EVENT,
        ],
    ),
    // flows::deliver: the AppEvents queue's event source, retry times, the
    // bus, the webhook signing secret.
    (
        "app-events",
        &[
            (
                APP_EVENTS_QUEUE,
                &[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ChangeMessageVisibility",
                ],
            ),
            (APP_EVENT_BUS, &["events:PutEvents"]),
            (APP_WEBHOOK_SECRET, SECRET_READ),
        ],
    ),
    // Serves the description and the docs compiled into it: no AWS call.
    ("api-docs", &[]),
    // Serves the pages' files compiled into it: no AWS call.
    ("pages", &[]),
    // flows::status: one control-plane read of each table, queue and the
    // key; no item.
    (
        "status",
        &[
            (CONNECTIONS, &["dynamodb:DescribeTable"]),
            (HEALTH, &["dynamodb:DescribeTable"]),
            (EPHEMERAL, &["dynamodb:DescribeTable"]),
            (EVENTS, &["dynamodb:DescribeTable"]),
            (SYNC_QUEUE, &["sqs:GetQueueAttributes"]),
            (BACKFILL_QUEUE, &["sqs:GetQueueAttributes"]),
            (APP_EVENTS_QUEUE, &["sqs:GetQueueAttributes"]),
            (KEY, &["kms:DescribeKey"]),
        ],
    ),
];

#[derive(serde::Deserialize)]
struct Statement {
    actions: Vec<String>,
    resources: Vec<String>,
    managed: bool,
}

fn grants() -> BTreeMap<String, Vec<Statement>> {
    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "the SAM translator lives in .venv: run `make test` (it installs it)"
    );
    let out = std::process::Command::new(python)
        .arg(root.join("infra/sam_policies.py"))
        .arg(root.join("template.yaml"))
        .output()
        .expect("the SAM translator runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the translator's grants")
}

/// IAM's action match: exact, or a trailing `*` (SAM's `sqs:SendMessage*`).
fn action_matches(granted: &str, wanted: &str) -> bool {
    match granted.strip_suffix('*') {
        Some(prefix) => wanted.starts_with(prefix),
        None => granted == wanted,
    }
}

#[test]
fn every_function_is_granted_what_its_code_calls_and_nothing_more() {
    let grants = grants();
    let calls: BTreeMap<&str, Calls> = CALLS.iter().copied().collect();
    assert_eq!(
        grants.keys().map(String::as_str).collect::<Vec<_>>(),
        calls.keys().copied().collect::<Vec<_>>(),
        "a function without its list of calls here (or the other way round)"
    );
    let mut missing = Vec::new();
    for (binary, needs) in &calls {
        let statements = &grants[*binary];
        for (resource, actions) in needs.iter() {
            for action in actions.iter() {
                let granted = statements.iter().any(|s| {
                    s.actions.iter().any(|a| action_matches(a, action))
                        && s.resources.iter().any(|r| r == resource || r == "*")
                });
                if !granted {
                    missing.push(format!("{binary}: {action} on {resource}"));
                }
            }
        }
        // Least privilege: what the template adds is scoped to resources
        // the function uses, by named actions.
        for s in statements.iter().filter(|s| !s.managed) {
            for r in &s.resources {
                assert!(
                    needs.iter().any(|(needed, _)| needed == r),
                    "{binary} is granted {:?} on {r}, which its code never calls",
                    s.actions
                );
            }
            for a in &s.actions {
                assert!(
                    !a.ends_with(":*") && a != "*",
                    "{binary}: wildcard action {a}"
                );
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not granted in AWS:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_check_sees_a_grant_that_is_missing() {
    let grants = grants();
    // The account function seals refreshed tokens: without kms:GenerateDataKey
    // the check must say so (this is how the grant was found missing).
    let account = &grants["account"];
    let has = |action: &str, resource: &str| {
        account.iter().any(|s| {
            s.actions.iter().any(|a| action_matches(a, action))
                && s.resources.iter().any(|r| r == resource)
        })
    };
    assert!(has("kms:Decrypt", KEY));
    assert!(!has("kms:Sign", KEY));
    assert!(action_matches("sqs:SendMessage*", "sqs:SendMessage"));
    assert!(!action_matches("sqs:SendMessage", "sqs:SendMessageBatch"));
}

mod common;

/// template.yaml with `cut` taken out (exactly once), in a file of its own.
fn template_without(cut: &str, put_back: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    assert_eq!(text.matches(cut).count(), 1, "the cut must name one place");
    let path = std::env::temp_dir().join(format!("template-{}.yaml", uuid::Uuid::new_v4()));
    std::fs::write(&path, text.replace(cut, put_back)).unwrap();
    path
}

fn access_denied(err: &str, action: &str) -> bool {
    err.contains("AccessDenied") && err.contains(action)
}

#[tokio::test]
async fn a_call_the_role_does_not_grant_is_refused_by_the_emulator() {
    // The data function without its one SQS grant: a manual sync cannot be
    // queued, while the stack otherwise works.
    let mut opts = common::options("iam-deny");
    opts.template = template_without(
        "        - SQSSendMessagePolicy:\n            QueueName: !GetAtt SyncQueue.QueueName\n\n  HealthPushFunction:",
        "\n  HealthPushFunction:",
    );
    let template = opts.template.clone();
    let stack = connector_infra::stack::start(opts).await;
    std::fs::remove_file(template).unwrap();
    let stack = stack.unwrap();
    let c = common::Client::new(&stack);
    let (status, body) = c.post("/v1/connections/mock", "alice", "").await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = c.post("/v1/sync", "alice", r#"{"vendor":"mock"}"#).await;
    assert_eq!(status, 503, "{body}");
    let today = chrono::Utc::now().date_naive();
    let job = connector_core::domain::job::SyncJob::new(
        "alice",
        connector_core::domain::vendor::Vendor::Mock,
        today,
        today,
        connector_core::domain::job::JobReason::Manual,
    )
    .unwrap();
    let refused = stack.function("data").queue.send(&job).await.unwrap_err();
    assert!(
        access_denied(&format!("{refused:?}"), "sqs:SendMessage"),
        "{refused:?}"
    );
    // The webhook function's role still grants it.
    stack.function("webhook").queue.send(&job).await.unwrap();
}

#[tokio::test]
async fn the_emulator_checks_who_signs_and_which_resource_a_grant_names() {
    let stack = common::stack("iam-scope").await;
    let get = |sdk: &aws_config::SdkConfig, table: &str| {
        aws_sdk_dynamodb::Client::new(sdk)
            .describe_table()
            .table_name(table)
            .send()
    };
    let tables = &stack.provisioned;
    let providers = stack.function_sdk("providers");
    // Granted (DynamoDBReadPolicy): the connections table.
    get(providers, tables.table(CONNECTIONS)).await.unwrap();
    // The same action on a table its role does not name.
    let refused = get(providers, tables.table(HEALTH)).await.unwrap_err();
    let refused = connector_core::aws::sdk(refused);
    assert!(
        access_denied(&refused, "dynamodb:DescribeTable"),
        "{refused}"
    );
    // A transaction is checked item by item: the push function's role
    // writes health data, not connections.
    use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};
    let check = ConditionCheck::builder()
        .table_name(tables.table(CONNECTIONS))
        .key("pk", AttributeValue::S("nobody".into()))
        .condition_expression("attribute_exists(pk)")
        .build()
        .unwrap();
    let refused = aws_sdk_dynamodb::Client::new(stack.function_sdk("health-push"))
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().condition_check(check).build())
        .send()
        .await
        .unwrap_err();
    let refused = connector_core::aws::sdk(refused);
    assert!(
        access_denied(&refused, "dynamodb:ConditionCheckItem"),
        "{refused}"
    );
    // A bus: app-events puts on the stack's bus, not on another, and a
    // function whose role names no bus puts on none.
    let put = |binary: &str, bus: &str| {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(bus)
            .source("wearable-connector")
            .detail_type("connection.connected")
            .detail("{}")
            .build();
        aws_sdk_eventbridge::Client::new(stack.function_sdk(binary))
            .put_events()
            .entries(entry)
            .send()
    };
    let bus = &stack.provisioned.refs[APP_EVENT_BUS];
    put("app-events", bus).await.unwrap();
    for (binary, bus) in [("app-events", "default"), ("sync-worker", bus.as_str())] {
        let refused = connector_core::aws::sdk(put(binary, bus).await.unwrap_err());
        assert!(
            access_denied(&refused, "events:PutEvents"),
            "{binary} on {bus}: {refused}"
        );
    }
    // Credentials the emulator does not know.
    let stranger = stack
        .sdk
        .to_builder()
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new(
                "AKIASTRANGER0000000",
                "guess",
                None,
                None,
                "test",
            ),
        ))
        .build();
    let refused =
        connector_core::aws::sdk(get(&stranger, tables.table(CONNECTIONS)).await.unwrap_err());
    assert!(
        refused.contains("403") || refused.contains("InvalidClientTokenId"),
        "{refused}"
    );
    // The local admin may read anything.
    get(&stack.sdk, tables.table(HEALTH)).await.unwrap();
}
