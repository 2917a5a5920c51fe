//! The OAuth authorization-code flow end to end through the local gateway
//! and the vendor simulator (WHOOP's rules: body client credentials, PKCE,
//! state ≥ 8 characters, single-use rotating refresh tokens).

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::*;
use connector_core::domain::vendor::VendorError;
use connector_core::vendors::token;
use connector_core::Vendor;
use sha2::{Digest, Sha256};
use std::sync::atomic::Ordering::SeqCst;

#[tokio::test]
async fn authorization_code_flow_with_pkce_state_and_rotation() {
    let (sim, stack) = sim_stack("oauth").await;
    let whoop = sim.sim(Vendor::Whoop);
    let c = Client::new(&stack);

    // The simulator configures every real vendor: all ten are supported.
    let (_, providers) = c.get("/v1/providers", "alice").await;
    let list = providers["providers"].as_array().unwrap();
    assert_eq!(list.len(), Vendor::ALL.len());
    for p in list {
        assert_eq!(p["supported"], true, "{p}");
    }
    assert_eq!(
        sim.vendors.0.len(),
        Vendor::ALL.len() - 1,
        "every real vendor is simulated"
    );

    let url = c.begin_connect("whoop", "alice").await;
    assert!(url.starts_with(&format!("{}/oauth/oauth2/auth?", sim.base(Vendor::Whoop))));
    let params = query_of(&url);
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], whoop.app.client_id);
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(
        params["redirect_uri"],
        format!("{}/v1/oauth/whoop/callback", stack.url())
    );
    assert!(
        params["scope"].split(' ').any(|s| s == "offline"),
        "WHOOP needs offline for refresh tokens"
    );
    assert!(params["state"].len() >= 8);
    assert!(!params.contains_key("client_secret"));
    // Withings' description names every field of its authorize URL and
    // token request, and no PKCE: none is sent to it.
    let withings = query_of(&c.begin_connect("withings", "alice").await);
    assert_eq!(withings["response_type"], "code");
    assert!(
        !withings.contains_key("code_challenge") && !withings.contains_key("code_challenge_method"),
        "{withings:?}"
    );

    // The vendor redirects back with a code bound to the challenge; the
    // browser goes on to the app, which completes the connect as alice.
    let (status, callback) = c.visit(&url).await;
    assert_eq!(status, 302);
    let callback = callback.unwrap();
    let (status, back) = c.visit(&callback).await;
    assert_eq!(status, 302);
    let back = back.unwrap();
    // The local stand-in for the app's page says how to complete it.
    let page = c
        .http
        .get(&back)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let back = query_of(&back);
    assert_eq!(back["status"], "pending", "{back:?}");
    assert_eq!(back["vendor"], "whoop");
    assert!(
        page.contains(&format!(
            r#"{{"completion":"{}"}}' {}/v1/connections/whoop/complete"#,
            back["completion"], c.base
        )),
        "{page}"
    );
    let (status, body) = c.complete("whoop", "alice", &back["completion"]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "connected");

    let conn = connection(&stack, "alice", Vendor::Whoop).await.unwrap();
    assert!(conn.sealed_access_token.starts_with("v1."));
    assert!(
        conn.vendor_user_id.starts_with("990"),
        "{}",
        conn.vendor_user_id
    );
    let t = stack.app.envelope().open_tokens(&conn).await.unwrap();
    assert!(t.access_token.expose().starts_with("at_"));
    assert!(!conn.sealed_access_token.contains(t.access_token.expose()));
    assert!(t.expires_at.is_some());

    // The state worked once (the browser's back button, or an attacker).
    let (status, _) = c.visit(&callback).await;
    assert_eq!(status, 400);

    // Refresh through the oauth2 crate rotates; the old refresh token is dead.
    let creds = stack.app.vendor_credentials(Vendor::Whoop).await.unwrap();
    let old = t.refresh_token.clone().unwrap();
    let fresh = token::refresh(stack.app.http(), &creds, old.expose())
        .await
        .unwrap();
    assert_ne!(fresh.refresh_token.as_ref().unwrap().expose(), old.expose());
    let again = token::refresh(stack.app.http(), &creds, old.expose()).await;
    assert!(matches!(again, Err(VendorError::RefreshRejected)));
    assert_eq!(whoop.stats.refresh_reuse.load(SeqCst), 1);
}

#[tokio::test]
async fn wrong_verifier_vendor_errors_and_foreign_states_fail_safely() {
    let (sim, stack) = sim_stack_with(
        "oauth-bad",
        &[
            ("CONNECTOR_OURA_CLIENT_ID", "fake-oura"),
            ("CONNECTOR_OURA_CLIENT_SECRET", "fake-oura-secret"),
        ],
    )
    .await;
    let c = Client::new(&stack);

    // A code bound to another challenge: the exchange fails, nothing stored.
    let url = c.begin_connect("whoop", "bob").await;
    let mut tampered = url::Url::parse(&url).unwrap();
    let pairs: Vec<(String, String)> = tampered
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "code_challenge" {
                (k, B64.encode(Sha256::digest(b"other verifier")))
            } else {
                (k, v)
            }
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    let back = c.consent("bob", tampered.as_str()).await;
    assert_eq!(
        (back["status"].as_str(), back["reason"].as_str()),
        ("error", "exchange_failed")
    );
    assert_eq!(sim.sim(Vendor::Whoop).stats.pkce_failures.load(SeqCst), 1);
    assert!(connection(&stack, "bob", Vendor::Whoop).await.is_none());

    // The user declined at the vendor.
    let params = query_of(&c.begin_connect("whoop", "bob").await);
    let (status, back) = c
        .visit(&format!(
            "{}/v1/oauth/whoop/callback?error=access_denied&state={}",
            c.base, params["state"]
        ))
        .await;
    assert_eq!(status, 302);
    assert_eq!(query_of(&back.unwrap())["reason"], "access_denied");

    // A WHOOP state presented at Oura's callback is refused.
    let params = query_of(&c.begin_connect("whoop", "bob").await);
    let (status, body) = c
        .call(
            "GET",
            &format!("/v1/oauth/oura/callback?code=x&state={}", params["state"]),
            None,
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // Unknown state, missing state.
    let (status, _) = c
        .call(
            "GET",
            "/v1/oauth/whoop/callback?code=x&state=forged-state-123",
            None,
            None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = c
        .call("GET", "/v1/oauth/whoop/callback?code=x", None, None)
        .await;
    assert_eq!(status, 400);
    // Redirects only to configured return URLs.
    let (status, _) = c
        .post(
            "/v1/connections/whoop",
            "bob",
            r#"{"return_url":"https://evil.example.com/steal"}"#,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        queue_depth(&stack).await,
        0,
        "no failed flow queued a backfill"
    );
}

#[tokio::test]
async fn a_connect_link_sent_to_someone_else_links_nothing() {
    let (sim, stack) = sim_stack("oauth-link-attack").await;
    let whoop = sim.sim(Vendor::Whoop).clone();
    let c = Client::new(&stack);
    let victim_at_whoop = "99000777";

    // Mallory starts a connect for her own account and sends the link to
    // Victor, who consents at WHOOP's genuine page as himself.
    let link = c.begin_connect("whoop", "mallory").await;
    let issued = whoop.stats.tokens_issued.load(SeqCst);
    let back = c
        .return_to_app(&format!("{link}&login={victim_at_whoop}"))
        .await;
    assert_eq!(back["status"], "pending", "{back:?}");
    assert_eq!(back["vendor"], "whoop");
    let completion = back["completion"].clone();
    assert!(completion.len() >= 32, "{completion}");
    assert!(!back.contains_key("code") && !back.contains_key("state"));
    // Nothing is exchanged before the app's user is known.
    assert_eq!(whoop.stats.tokens_issued.load(SeqCst), issued);

    // Victor's app completes it with Victor's session: refused.
    let (status, body) = c.complete("whoop", "victor", &completion).await;
    assert_eq!(status, 400, "{body}");
    // The id worked once, so Mallory cannot use it after him.
    let (status, body) = c.complete("whoop", "mallory", &completion).await;
    assert_eq!(status, 400, "{body}");
    // No connection for either, no token issued, nothing of Victor stored.
    assert!(connection(&stack, "mallory", Vendor::Whoop).await.is_none());
    assert!(connection(&stack, "victor", Vendor::Whoop).await.is_none());
    assert_eq!(whoop.stats.tokens_issued.load(SeqCst), issued);
    assert_eq!(whoop.oauth.lock().unwrap().live_tokens(victim_at_whoop), 0);
    let stored: Vec<_> = all_items(&stack)
        .await
        .into_iter()
        .filter(|(_, text)| text.contains(victim_at_whoop) || text.contains("victor"))
        .collect();
    assert!(stored.is_empty(), "{stored:#?}");
    assert_eq!(queue_depth(&stack).await, 0);

    // Mallory's link finished by Mallory works, exactly once.
    let link = c.begin_connect("whoop", "mallory").await;
    let back = c.return_to_app(&link).await;
    let (status, body) = c.complete("whoop", "mallory", &back["completion"]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "connected");
    assert_eq!(body["vendor"], "whoop");
    assert!(connection(&stack, "mallory", Vendor::Whoop).await.is_some());
    let (status, _) = c.complete("whoop", "mallory", &back["completion"]).await;
    assert_eq!(status, 400);
    // At another vendor's route, or with a made-up id: refused.
    let link = c.begin_connect("whoop", "mallory").await;
    let back = c.return_to_app(&link).await;
    let (status, _) = c.complete("oura", "mallory", &back["completion"]).await;
    assert_eq!(status, 400);
    let (status, _) = c
        .complete("whoop", "mallory", "0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!(status, 400);
    let (status, _) = c
        .post(
            "/v1/connections/whoop/complete",
            "mallory",
            r#"{"completion":7}"#,
        )
        .await;
    assert_eq!(status, 400);

    // An id whose time ran out is refused, and exchanges nothing.
    let link = c.begin_connect("whoop", "mallory").await;
    let back = c.return_to_app(&link).await;
    let key = format!(
        "completion#{}",
        hex::encode(Sha256::digest(back["completion"].as_bytes()))
    );
    aws_sdk_dynamodb::Client::new(&stack.sdk)
        .update_item()
        .table_name(stack.provisioned.table("EphemeralTable"))
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(key))
        .update_expression("SET expires_at = :past")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(
            ":past",
            aws_sdk_dynamodb::types::AttributeValue::N(
                (chrono::Utc::now().timestamp() - 1).to_string(),
            ),
        )
        .send()
        .await
        .expect("the completion is parked under the digest of its id");
    let issued = whoop.stats.tokens_issued.load(SeqCst);
    let (status, _) = c.complete("whoop", "mallory", &back["completion"]).await;
    assert_eq!(status, 400);
    assert_eq!(whoop.stats.tokens_issued.load(SeqCst), issued);
}

#[tokio::test]
async fn a_terra_link_sent_to_someone_else_links_nothing() {
    let (sim, stack) = sim_stack("oauth-link-attack-terra").await;
    let terra = sim.sim(Vendor::Terra).clone();
    let c = Client::new(&stack);
    let (status, body) = c
        .post("/v1/connections/terra", "mallory", r#"{"provider":"OURA"}"#)
        .await;
    assert_eq!(status, 200, "{body}");
    let back = c
        .return_to_app(body["redirect_url"].as_str().unwrap())
        .await;
    assert_eq!(back["status"], "pending", "{back:?}");
    let calls = terra.stats.api_requests.load(SeqCst);
    let (status, body) = c.complete("terra", "victor", &back["completion"]).await;
    assert_eq!(status, 400, "{body}");
    // Terra was not asked to confirm the user, and nothing was stored.
    assert_eq!(terra.stats.api_requests.load(SeqCst), calls);
    assert!(connection(&stack, "mallory", Vendor::Terra).await.is_none());
    assert!(connection(&stack, "victor", Vendor::Terra).await.is_none());
    assert_eq!(queue_depth(&stack).await, 0);
}

#[tokio::test]
async fn one_vendor_account_joins_one_app_user() {
    let (_sim, stack) = sim_stack("oauth-one-account").await;
    let c = Client::new(&stack);
    let account = "99000555";
    let link = c.begin_connect("whoop", "alice").await;
    let back = c.consent("alice", &format!("{link}&login={account}")).await;
    assert_eq!(back["status"], "connected", "{back:?}");
    drain(&stack).await;

    // The same WHOOP account, connected from another app user: refused.
    let link = c.begin_connect("whoop", "bob").await;
    let back = c.return_to_app(&format!("{link}&login={account}")).await;
    let (status, body) = c.complete("whoop", "bob", &back["completion"]).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("another user"),
        "{body}"
    );
    assert!(connection(&stack, "bob", Vendor::Whoop).await.is_none());
    let alice = connection(&stack, "alice", Vendor::Whoop).await.unwrap();
    assert_eq!(alice.vendor_user_id, account);
    assert_eq!(queue_depth(&stack).await, 0, "no backfill for bob");

    // Alice reconnecting her own account is fine; once she disconnects,
    // bob may connect it.
    let link = c.begin_connect("whoop", "alice").await;
    let back = c.consent("alice", &format!("{link}&login={account}")).await;
    assert_eq!(back["status"], "connected", "{back:?}");
    drain(&stack).await;
    let (status, _) = c
        .call("DELETE", "/v1/connections/whoop", Some("alice"), None)
        .await;
    assert_eq!(status, 200);
    let link = c.begin_connect("whoop", "bob").await;
    let back = c.consent("bob", &format!("{link}&login={account}")).await;
    assert_eq!(back["status"], "connected", "{back:?}");
}
