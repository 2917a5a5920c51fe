//! The log-leak check every simulator suite runs when its simulator goes
//! away (issue 5 item 7) can fail: this binary (alone, since captured logs
//! are per test binary) logs a real access token on purpose.

mod common;

use common::*;
use connector_core::Vendor;
use std::panic::{catch_unwind, AssertUnwindSafe};

#[tokio::test]
async fn a_token_in_any_log_line_fails_the_suite() {
    let (sim, stack) = sim_stack("leak").await;
    let c = Client::new(&stack);
    let back = c.connect_via_sim("whoop", "alice").await;
    assert_eq!(back["status"], "connected", "{back:?}");
    let conn = connection(&stack, "alice", Vendor::Whoop).await.unwrap();
    let t = stack.app.envelope().open_tokens(&conn).await.unwrap();
    // Client secret, webhook secret, verify token of ten vendors, plus the
    // code and tokens of this connect.
    assert!(connector_infra::simulator::secrets::count() >= 30);

    tracing::info!(token = %t.access_token.expose(), "a careless line");
    let dropped = catch_unwind(AssertUnwindSafe(|| drop(sim)));
    let message = *dropped
        .expect_err("the leak is caught")
        .downcast::<String>()
        .unwrap();
    assert!(
        message.contains("1 simulator secret(s) in the logs"),
        "{message}"
    );
    assert!(
        !message.contains(t.access_token.expose()),
        "the report masks it"
    );
}
