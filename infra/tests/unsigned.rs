//! Vendors whose webhooks carry no signature (Garmin: the public client id;
//! Strava: an enumerable subscription id) cannot make the connector write,
//! pull or revoke at will: unknown users cost no write (not even a queued
//! notice: they are looked up before anything is queued), a body carries a
//! bounded number of notices, every accepted delivery gets the same answer,
//! and a deauthorization is believed only once the vendor confirms it.

mod common;

use chrono::Utc;
use common::*;
use connector_core::domain::connection::ConnectionStatus;
use connector_core::Vendor;
use connector_infra::simulator::garmin::{notify_answered, notify_with, ping};
use connector_infra::simulator::strava::{deliver_webhook, event_body};
use serde_json::{json, Value};

async fn item_count(stack: &connector_infra::stack::Stack) -> usize {
    all_items(stack).await.len()
}

fn pings_for(users: impl Iterator<Item = String>, now: i64) -> Value {
    let notices: Vec<Value> = users
        .map(|u| ping("dailies", &u, now - 60, now)["dailies"][0].clone())
        .collect();
    json!({ "dailies": notices })
}

#[tokio::test]
async fn a_forged_garmin_body_of_unknown_users_writes_nothing() {
    let (sim, stack) = sim_stack("unsigned-garmin").await;
    let garmin = sim.sim(Vendor::Garmin).clone();
    let c = Client::new(&stack);
    c.connect_via_sim("garmin", "alice").await;
    drain(&stack).await;
    let alice = connection(&stack, "alice", Vendor::Garmin).await.unwrap();
    let target = format!("{}/v1/webhooks/garmin", stack.url());
    let client_id = garmin.app.client_id.clone();
    let now = Utc::now().timestamp();
    let before = item_count(&stack).await;

    // 10,000 made-up users in one body: refused whole, before any lookup.
    let flood = pings_for((0..10_000).map(|i| format!("forged-user-{i:05}")), now);
    let (status, answer) = notify_answered(&target, Some(&client_id), &flood).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(item_count(&stack).await, before, "nothing written");
    assert_eq!(queue_depth(&stack).await, 0);

    // Within the cap: looked up, dropped without a write, answered as usual.
    let forged = pings_for((0..300).map(|i| format!("forged-user-{i:05}")), now);
    let (status, forged_answer) = notify_answered(&target, Some(&client_id), &forged).await;
    assert_eq!(status, 200, "{forged_answer}");
    assert_eq!(item_count(&stack).await, before, "nothing written");
    assert_eq!(queue_depth(&stack).await, 0);

    // A real user's ping queues one pull, and the answer says nothing more.
    let real = ping("dailies", &alice.vendor_user_id, now - 60, now);
    let (status, real_answer) = notify_answered(&target, Some(&client_id), &real).await;
    assert_eq!(status, 200);
    assert_eq!(real_answer, forged_answer, "the answer is no oracle");
    assert_eq!(queue_depth(&stack).await, 1);
    drain(&stack).await;

    // A forged deregistration of a real user: Garmin still honours the
    // user's token, so the connection stays.
    let deregistration = json!({ "deregistrations": [{ "userId": alice.vendor_user_id }] });
    assert_eq!(
        notify_with(&target, Some(&client_id), &deregistration).await,
        200
    );
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    let after = connection(&stack, "alice", Vendor::Garmin).await.unwrap();
    assert_eq!(after.status, ConnectionStatus::Connected);
    assert!(captured_logs().contains("deauthorization_not_confirmed"));

    // The user really removes the app at Garmin: now it is believed.
    garmin.user_removes_app(&alice.vendor_user_id);
    let deregistration = json!({ "deregistrations": [{ "userId": alice.vendor_user_id }] });
    assert_eq!(
        notify_with(&target, Some(&client_id), &deregistration).await,
        200
    );
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    let after = connection(&stack, "alice", Vendor::Garmin).await.unwrap();
    assert_eq!(after.status, ConnectionStatus::Revoked);
}

#[tokio::test]
async fn a_forged_strava_deauthorization_leaves_the_athlete_connected() {
    let (sim, stack) = sim_stack("unsigned-strava").await;
    let strava = sim.sim(Vendor::Strava).clone();
    let c = Client::new(&stack);
    c.connect_via_sim("strava", "bob").await;
    drain(&stack).await;
    let bob = connection(&stack, "bob", Vendor::Strava).await.unwrap();
    let athlete = bob.vendor_user_id.clone();
    let target = format!("{}/v1/webhooks/strava", stack.url());
    let now = Utc::now().timestamp();
    let before = item_count(&stack).await;

    // An athlete who is no user: nothing written, and the same answer as
    // for one who is.
    let stranger = event_body(&strava, "129999999", "create", 42, now, false);
    let (status, stranger_answer) = deliver_webhook(&target, &stranger).await;
    assert_eq!(status, 200, "{stranger_answer}");
    assert_eq!(item_count(&stack).await, before, "nothing written");
    let known = event_body(&strava, &athlete, "create", 43, now, false);
    let (status, known_answer) = deliver_webhook(&target, &known).await;
    assert_eq!(status, 200);
    assert_eq!(known_answer, stranger_answer, "the answer is no oracle");
    drain(&stack).await;

    // A deauthorization anyone could have sent: Strava still honours the
    // athlete's token, so the connection stays.
    let forged = event_body(&strava, &athlete, "deauthorize", 0, now, false);
    let (status, answer) = deliver_webhook(&target, &forged).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, stranger_answer);
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    let after = connection(&stack, "bob", Vendor::Strava).await.unwrap();
    assert_eq!(after.status, ConnectionStatus::Connected);
    assert!(captured_logs().contains("deauthorization_not_confirmed"));

    // The athlete really removes the app at Strava: now it is believed.
    strava.user_removes_app(&athlete);
    let real = event_body(&strava, &athlete, "deauthorize", 0, now + 1, false);
    let (status, _) = deliver_webhook(&target, &real).await;
    assert_eq!(status, 200);
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    let after = connection(&stack, "bob", Vendor::Strava).await.unwrap();
    assert_eq!(after.status, ConnectionStatus::Revoked);
}

/// Messages in the live queue the queue does not show yet (sent with a delay).
async fn delayed(stack: &connector_infra::stack::Stack) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed as Delayed;
    let out = stack
        .pump
        .sqs
        .get_queue_attributes()
        .queue_url(stack.pump.live_url())
        .attribute_names(Delayed)
        .send()
        .await
        .unwrap();
    out.attributes()
        .and_then(|a| a.get(&Delayed))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Waits (up to 20 s) until a delayed job shows in the queue.
async fn until_shown(stack: &connector_infra::stack::Stack) {
    for _ in 0..200 {
        if delayed(stack).await == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the delayed job never showed");
}

#[tokio::test]
async fn a_flood_of_pings_for_one_garmin_user_pulls_once_per_gap() {
    use std::sync::atomic::Ordering::SeqCst;
    let (sim, stack) = sim_stack_with(
        "unsigned-garmin-gap",
        &[("CONNECTOR_UNSIGNED_PULL_GAP_SECS", "5")],
    )
    .await;
    let garmin = sim.sim(Vendor::Garmin).clone();
    let c = Client::new(&stack);
    c.connect_via_sim("garmin", "alice").await;
    let alice = connection(&stack, "alice", Vendor::Garmin).await.unwrap();
    let target = format!("{}/v1/webhooks/garmin", stack.url());
    // The backfill, then the pull its pings asked for.
    drain(&stack).await;
    let state: &connector_infra::simulator::garmin::GarminState = garmin.extra();
    eventually("the backfill's five pings delivered", || async {
        state.backfill_pings.load(SeqCst) == 5
    })
    .await;
    drain(&stack).await;

    // Forty pings, each for another upload window of the last five days:
    // one job, shown once the gap since the last pull has passed.
    let now = Utc::now().timestamp();
    for i in 0..40 {
        let end = now - i * 3 * 3600;
        let body = ping("dailies", &alice.vendor_user_id, end - 60, end);
        let (status, _) = notify_answered(&target, Some(&garmin.app.client_id), &body).await;
        assert_eq!(status, 200);
    }
    assert_eq!(act_on_notices(&stack).await.len(), 40);
    assert_eq!(queue_depth(&stack).await, 1);
    until_shown(&stack).await;
    let before = garmin.stats.api_requests.load(SeqCst);
    assert_eq!(drain(&stack).await, (1, 0));
    let pulls = garmin.stats.api_requests.load(SeqCst) - before;
    // Every day the pings named (six, counting the day before the oldest),
    // pulled by upload time in 24 h windows, five summary types each.
    assert!(pulls >= 6 * 5, "{pulls} pulls");

    // Right after that pull, a new ping waits out the gap.
    let body = ping("sleeps", &alice.vendor_user_id, now - 30, now);
    let (status, _) = notify_answered(&target, Some(&garmin.app.client_id), &body).await;
    assert_eq!(status, 200);
    assert_eq!(act_on_notices(&stack).await.len(), 1);
    assert_eq!(queue_depth(&stack).await, 1);
    assert_eq!(delayed(&stack).await, 1, "not before the gap");
    until_shown(&stack).await;
    assert_eq!(drain(&stack).await, (1, 0));
}
