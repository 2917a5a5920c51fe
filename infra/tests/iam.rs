//! The IAM grants each function gets in AWS cover every AWS operation its
//! code can call, and no more resources than it uses. The grants come from
//! SAM's own translator (`infra/sam_policies.py`), which expands the policy
//! templates of `template.yaml` and adds the managed policies of the event
//! sources, exactly as a deploy does; the emulator checks no IAM, so this is
//! where a missing grant shows before AWS.

use connector_infra::stack::workspace_root;
use std::collections::BTreeMap;

const CONNECTIONS: &str = "ConnectionsTable";
const HEALTH: &str = "HealthDataTable";
const EPHEMERAL: &str = "EphemeralTable";
const KEY: &str = "TokenKey";
const SECRET: &str = "VendorCredentialsSecret";
const PUSH_SECRET: &str = "PushSecret";
const SYNC_QUEUE: &str = "SyncQueue";
const BACKFILL_QUEUE: &str = "BackfillQueue";

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
    // flows::webhook: user lookup, dedup, waiting jobs and pull gaps,
    // a deauthorization confirmed with the vendor (refresh first).
    (
        "webhook",
        &[
            (
                CONNECTIONS,
                &["dynamodb:Query", "dynamodb:GetItem", "dynamodb:UpdateItem"],
            ),
            (EPHEMERAL, ITEMS),
            (KEY, SEAL_AND_OPEN),
            (SYNC_QUEUE, &["sqs:SendMessage"]),
            (SECRET, SECRET_READ),
        ],
    ),
    // flows::sync: the SQS event sources, retry times (visibility),
    // absorbed days queued again, tokens refreshed, data written;
    // flows::erasure: pages of a deleted user's items, the next step queued.
    (
        "sync-worker",
        &[
            (CONNECTIONS, &["dynamodb:GetItem", "dynamodb:UpdateItem"]),
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
                ],
            ),
            (SECRET, SECRET_READ),
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
