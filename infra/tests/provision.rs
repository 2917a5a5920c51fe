//! The local stack creates what template.yaml declares, with the same keys,
//! indexes, TTLs and redrive policy, and derives the functions' environment.

mod common;

use aws_sdk_sqs::types::QueueAttributeName;
use common::*;
use connector_infra::template::Template;

#[tokio::test]
async fn resources_match_the_template() {
    let stack = stack("provision").await;
    let p = &stack.provisioned;
    let dynamo = aws_sdk_dynamodb::Client::new(&stack.sdk);

    let conn = dynamo
        .describe_table()
        .table_name(p.table("ConnectionsTable"))
        .send()
        .await
        .unwrap();
    let t = conn.table.unwrap();
    let keys: Vec<_> = t
        .key_schema()
        .iter()
        .map(|k| {
            (
                k.attribute_name().to_string(),
                k.key_type().as_str().to_string(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("user_id".to_string(), "HASH".to_string()),
            ("vendor".to_string(), "RANGE".to_string())
        ]
    );
    assert_eq!(
        t.global_secondary_indexes()[0].index_name(),
        Some("by-vendor-user")
    );

    for table in ["EphemeralTable", "HealthDataTable"] {
        let ttl = dynamo
            .describe_time_to_live()
            .table_name(p.table(table))
            .send()
            .await
            .unwrap();
        let d = ttl.time_to_live_description.unwrap();
        assert_eq!(d.attribute_name(), Some("expires_at"), "{table}");
    }

    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    for queue in ["SyncQueue", "BackfillQueue"] {
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&p.refs[queue])
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        assert_eq!(attrs[&QueueAttributeName::VisibilityTimeout], "360");
        let redrive: serde_json::Value =
            serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy]).unwrap();
        assert_eq!(
            redrive["deadLetterTargetArn"], p.arns["SyncDeadLetterQueue"],
            "{queue}"
        );
        assert_eq!(redrive["maxReceiveCount"].to_string(), "5");
    }
    // Events to the app: their queue dead-letters after 12 tries, onto
    // their own DLQ; the bus exists under the name the functions get.
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&p.refs["AppEventsQueue"])
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let redrive: serde_json::Value =
        serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy]).unwrap();
    assert_eq!(
        redrive["deadLetterTargetArn"],
        p.arns["AppEventsDeadLetterQueue"]
    );
    assert_eq!(redrive["maxReceiveCount"].to_string(), "12");
    let bus = aws_sdk_eventbridge::Client::new(&stack.sdk)
        .describe_event_bus()
        .name(&p.refs["AppEventBus"])
        .send()
        .await
        .unwrap();
    assert_eq!(bus.arn(), Some(p.arns["AppEventBus"].as_str()));
    assert_eq!(stack.env["CONNECTOR_APP_EVENT_BUS"], p.refs["AppEventBus"]);
    assert_eq!(
        stack.env["CONNECTOR_APP_EVENTS_QUEUE_URL"],
        p.refs["AppEventsQueue"]
    );

    // Every function variable of the template is resolved to what was made.
    let template =
        Template::load(&connector_infra::stack::workspace_root().join("template.yaml")).unwrap();
    for (var, _) in template.function_env().unwrap() {
        assert!(stack.env.contains_key(&var), "{var} unresolved");
    }
    assert_eq!(stack.env["CONNECTOR_SYNC_QUEUE_URL"], p.refs["SyncQueue"]);
    assert_eq!(
        stack.env["CONNECTOR_BACKFILL_QUEUE_URL"],
        p.refs["BackfillQueue"]
    );
    assert_eq!(stack.env["CONNECTOR_KMS_KEY_ID"], p.refs["TokenKey"]);
    assert!(p
        .skipped
        .iter()
        .any(|s| s.contains("AWS::Serverless::Function")));

    // Every HTTP route is served by a function the gateway knows.
    let routes = template.routes();
    // Sixteen user and handshake routes, the callback, one webhook POST for
    // each of the nine vendors that send webhooks, the three docs routes,
    // the health route and the three page routes.
    assert_eq!(routes.len(), 33);
    for r in &routes {
        assert!(
            connector_infra::gateway::HTTP_FUNCTIONS.contains(&r.binary.as_str()),
            "{r:?}"
        );
        assert_eq!(
            r.public,
            r.path.starts_with("/v1/oauth/")
                || r.path.starts_with("/v1/webhooks/")
                || r.binary == "api-docs"
                || r.binary == "pages"
                || r.binary == "status",
            "{r:?}"
        );
    }
    assert_eq!(template.functions().len(), 13);
}

#[tokio::test]
async fn provisioning_again_reuses_resources_and_keeps_data() {
    let opts = options("reprovision");
    let prefix = opts.prefix.clone();
    let first = connector_infra::stack::start(opts).await.unwrap();
    Client::new(&first)
        .post("/v1/connections/mock", "alice", "")
        .await;
    let mut again = options("reprovision");
    again.prefix = prefix;
    let second = connector_infra::stack::start(again).await.unwrap();
    assert_eq!(
        second.provisioned.refs["TokenKey"], first.provisioned.refs["TokenKey"],
        "same KMS key"
    );
    // The token sealed by the first stack still opens in the second.
    let conn = second
        .app
        .connections
        .get("alice", connector_core::Vendor::Mock)
        .await
        .unwrap()
        .unwrap();
    assert!(second.app.envelope().open_tokens(&conn).await.is_ok());
}

#[tokio::test]
async fn failing_messages_stay_queued_and_reach_the_dead_letter_queue() {
    let stack = stack("dlq").await;
    // The test's own settings are the local admin's to make.
    let sqs = &aws_sdk_sqs::Client::new(&stack.sdk);
    let url = &stack.pump.live_url().to_string();
    // Failed messages reappear at once instead of after the 360 s timeout.
    sqs.set_queue_attributes()
        .queue_url(url)
        .attributes(QueueAttributeName::VisibilityTimeout, "0")
        .send()
        .await
        .unwrap();
    sqs.send_message()
        .queue_url(url)
        .message_body("not a job")
        .send()
        .await
        .unwrap();
    let mut deliveries = 0;
    for _ in 0..10 {
        let stats = stack
            .pump
            .once(stack.function("sync-worker"), 0)
            .await
            .unwrap();
        assert_eq!(
            stats.received, stats.failed,
            "a malformed job never succeeds"
        );
        if stats.received == 0 {
            break;
        }
        deliveries += stats.received;
    }
    assert_eq!(deliveries, 5, "maxReceiveCount deliveries, then the DLQ");
    let dlq = sqs
        .receive_message()
        .queue_url(&stack.provisioned.refs["SyncDeadLetterQueue"])
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let bodies: Vec<_> = dlq.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, ["not a job"]);

    // The documented redrive moves it back onto the queue, and empties the DLQ.
    sqs.change_message_visibility()
        .queue_url(&stack.provisioned.refs["SyncDeadLetterQueue"])
        .receipt_handle(dlq.messages()[0].receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    // A dead backfill job goes back to the backfill queue, not the live one.
    let backfill_job = connector_core::domain::job::SyncJob::new(
        "alice",
        connector_core::domain::vendor::Vendor::Mock,
        chrono::Utc::now().date_naive(),
        chrono::Utc::now().date_naive(),
        connector_core::domain::job::JobReason::Backfill,
    )
    .unwrap();
    let backfill_body = serde_json::to_string(&backfill_job).unwrap();
    sqs.send_message()
        .queue_url(&stack.provisioned.refs["SyncDeadLetterQueue"])
        .message_body(&backfill_body)
        .send()
        .await
        .unwrap();
    let prefix = url
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches("-SyncQueue");
    let queues = connector_infra::redrive::local_queues(sqs, prefix)
        .await
        .unwrap();
    assert_eq!(queues.dead, stack.provisioned.refs["SyncDeadLetterQueue"]);
    assert_eq!(queues.live, *url);
    assert_eq!(connector_infra::redrive::redrive(sqs, &queues).await, Ok(2));
    let bodies_in = |queue: String| async move {
        sqs.receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages()
            .iter()
            .filter_map(|m| m.body().map(str::to_string))
            .collect::<Vec<_>>()
    };
    assert_eq!(bodies_in(queues.live.clone()).await, ["not a job"]);
    assert_eq!(bodies_in(queues.backfill.clone()).await, [backfill_body]);
    assert_eq!(connector_infra::redrive::redrive(sqs, &queues).await, Ok(0));
}
