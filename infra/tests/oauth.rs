//! The OAuth authorization-code flow end to end through the local gateway,
//! against a small local token endpoint that checks PKCE and rotates
//! single-use refresh tokens the way WHOOP documents it.

mod common;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::*;
use connector_core::vendors::VendorError;
use connector_core::{oauth, tokens, Vendor};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct FakeVendor {
    /// code → (PKCE challenge, redirect_uri)
    codes: Mutex<HashMap<String, (String, String)>>,
    refresh_tokens: Mutex<HashSet<String>>,
    issued: Mutex<u32>,
}

const CLIENT_ID: &str = "fake-whoop-client";
const CLIENT_SECRET: &str = "fake-whoop-client-secret";

fn json(status: StatusCode, v: serde_json::Value) -> axum::response::Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

fn oauth_error(code: &str) -> axum::response::Response {
    json(
        StatusCode::BAD_REQUEST,
        serde_json::json!({ "error": code }),
    )
}

async fn token_endpoint(
    State(v): State<Arc<FakeVendor>>,
    body: String,
) -> axum::response::Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return oauth_error("invalid_client");
    }
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some((challenge, redirect)) = form
                .get("code")
                .and_then(|c| v.codes.lock().unwrap().remove(c))
            else {
                return oauth_error("invalid_grant");
            };
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            if B64.encode(Sha256::digest(verifier.as_bytes())) != challenge {
                return oauth_error("invalid_grant");
            }
            if form.get("redirect_uri") != Some(&redirect) {
                return oauth_error("invalid_grant");
            }
        }
        Some("refresh_token") => {
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            if !v.refresh_tokens.lock().unwrap().remove(&rt) {
                return oauth_error("invalid_grant");
            }
        }
        _ => return oauth_error("unsupported_grant_type"),
    }
    let n = {
        let mut i = v.issued.lock().unwrap();
        *i += 1;
        *i
    };
    let refresh = format!("fake-rt-{n}-{}", uuid::Uuid::new_v4());
    v.refresh_tokens.lock().unwrap().insert(refresh.clone());
    json(
        StatusCode::OK,
        serde_json::json!({
        "access_token": format!("fake-at-{n}-{}", uuid::Uuid::new_v4()),
        "refresh_token": refresh,
        "expires_in": 3600,
        "token_type": "bearer",
        "scope": "read:recovery offline",
        }),
    )
}

async fn fake_vendor() -> (Arc<FakeVendor>, String) {
    let state = Arc::new(FakeVendor::default());
    let app = axum::Router::new()
        .route("/oauth/oauth2/token", axum::routing::post(token_endpoint))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (state, base)
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

async fn begin(c: &Client, user: &str) -> HashMap<String, String> {
    let (status, body) = c.post("/v1/connections/whoop", user, "").await;
    assert_eq!(status, 200, "{body}");
    let url = body["redirect_url"].as_str().unwrap();
    assert!(
        url.starts_with("http://fake-whoop.invalid/oauth/oauth2/auth?"),
        "{url}"
    );
    query(url)
}

async fn callback(c: &Client, qs: &str) -> (u16, HashMap<String, String>) {
    let resp = c
        .http
        .get(format!("{}/v1/oauth/whoop/callback?{qs}", c.base))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    (status, location.map(|l| query(&l)).unwrap_or_default())
}

#[tokio::test]
async fn authorization_code_flow_with_pkce_state_and_rotation() {
    let (vendor, base) = fake_vendor().await;
    let mut opts = options("oauth");
    for (k, v) in [
        ("CONNECTOR_WHOOP_CLIENT_ID", CLIENT_ID.to_string()),
        ("CONNECTOR_WHOOP_CLIENT_SECRET", CLIENT_SECRET.to_string()),
        (
            "CONNECTOR_WHOOP_AUTH_URL",
            "http://fake-whoop.invalid/oauth/oauth2/auth".to_string(),
        ),
        (
            "CONNECTOR_WHOOP_TOKEN_URL",
            format!("{base}/oauth/oauth2/token"),
        ),
    ] {
        opts.extra_env.insert(k.into(), v);
    }
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let c = Client::new(&stack);

    let params = begin(&c, "alice").await;
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], CLIENT_ID);
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

    // The user consents; the vendor issues a code bound to the challenge.
    vendor.codes.lock().unwrap().insert(
        "fake-code-1".into(),
        (
            params["code_challenge"].clone(),
            params["redirect_uri"].clone(),
        ),
    );
    let qs = format!("code=fake-code-1&state={}", params["state"]);
    let (status, back) = callback(&c, &qs).await;
    assert_eq!(status, 302);
    assert_eq!(back["status"], "connected", "{back:?}");
    assert_eq!(back["vendor"], "whoop");

    let conn = stack
        .app
        .connections
        .get("alice", Vendor::Whoop)
        .await
        .unwrap()
        .unwrap();
    assert!(conn.sealed_access_token.starts_with("v1."));
    let t = tokens::open(&stack.app.envelope, &conn).await.unwrap();
    assert!(t.access_token.expose().starts_with("fake-at-1-"));
    assert!(t.expires_at.is_some());

    // The state worked once.
    let (status, _) = c
        .call("GET", &format!("/v1/oauth/whoop/callback?{qs}"), None, None)
        .await;
    assert_eq!(status, 400);

    // Refresh through the oauth2 crate rotates; the old refresh token is dead.
    let creds = stack.app.credentials.vendor(Vendor::Whoop).await.unwrap();
    let old = t.refresh_token.clone().unwrap();
    let fresh = oauth::refresh(&stack.app.http, &creds, old.expose())
        .await
        .unwrap();
    assert_ne!(fresh.refresh_token.as_ref().unwrap().expose(), old.expose());
    let again = oauth::refresh(&stack.app.http, &creds, old.expose()).await;
    assert!(matches!(again, Err(VendorError::RefreshRejected)));

    // The queued backfill has no WHOOP data driver yet: recorded, not retried.
    assert_eq!(drain(&stack).await, (1, 0));
    let (_, providers) = c.get("/v1/providers", "alice").await;
    let whoop = providers["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "whoop")
        .unwrap()
        .clone();
    assert_eq!(whoop["supported"], true);
    assert!(
        whoop["error"].as_str().unwrap().contains("no data driver"),
        "{whoop}"
    );
}

#[tokio::test]
async fn wrong_verifier_vendor_errors_and_foreign_states_fail_safely() {
    let (vendor, base) = fake_vendor().await;
    let mut opts = options("oauth-bad");
    for (k, v) in [
        ("CONNECTOR_WHOOP_CLIENT_ID", CLIENT_ID.to_string()),
        ("CONNECTOR_WHOOP_CLIENT_SECRET", CLIENT_SECRET.to_string()),
        (
            "CONNECTOR_WHOOP_AUTH_URL",
            "http://fake-whoop.invalid/oauth/oauth2/auth".to_string(),
        ),
        (
            "CONNECTOR_WHOOP_TOKEN_URL",
            format!("{base}/oauth/oauth2/token"),
        ),
        ("CONNECTOR_OURA_CLIENT_ID", "fake-oura".to_string()),
        (
            "CONNECTOR_OURA_CLIENT_SECRET",
            "fake-oura-secret".to_string(),
        ),
    ] {
        opts.extra_env.insert(k.into(), v);
    }
    let stack = connector_infra::stack::start(opts).await.unwrap();
    let c = Client::new(&stack);

    // A code bound to another challenge: the exchange fails, nothing stored.
    let params = begin(&c, "bob").await;
    vendor.codes.lock().unwrap().insert(
        "fake-code-2".into(),
        (
            B64.encode(Sha256::digest(b"other verifier")),
            params["redirect_uri"].clone(),
        ),
    );
    let (status, back) = callback(&c, &format!("code=fake-code-2&state={}", params["state"])).await;
    assert_eq!(status, 302);
    assert_eq!(
        (back["status"].as_str(), back["reason"].as_str()),
        ("error", "exchange_failed")
    );
    assert!(stack
        .app
        .connections
        .get("bob", Vendor::Whoop)
        .await
        .unwrap()
        .is_none());

    // The user declined at the vendor.
    let params = begin(&c, "bob").await;
    let (status, back) = callback(
        &c,
        &format!("error=access_denied&state={}", params["state"]),
    )
    .await;
    assert_eq!(status, 302);
    assert_eq!(back["reason"], "access_denied");

    // A WHOOP state presented at Oura's callback is refused.
    let params = begin(&c, "bob").await;
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
