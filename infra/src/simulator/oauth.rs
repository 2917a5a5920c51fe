//! The OAuth half of a simulated vendor: an authorize endpoint that consents
//! at once, and a token endpoint that enforces what the vendor documents —
//! its client-authentication style, single-use codes bound to the redirect
//! URI, PKCE S256, and refresh tokens that rotate and work once.

use super::{json_response, VendorSim};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use connector_core::vendors::spec::ClientAuth;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
pub enum Pkce {
    Required,
    Optional,
    /// The vendor does not support PKCE: a challenge is ignored, never checked.
    Unsupported,
}

/// What a vendor's OAuth server insists on.
#[derive(Clone, Debug)]
pub struct OAuthPolicy {
    pub client_auth: ClientAuth,
    pub pkce: Pkce,
    pub min_state_len: usize,
    pub code_ttl_secs: i64,
    pub access_ttl_secs: i64,
    /// A refresh token is issued only when this scope was granted (WHOOP `offline`).
    pub refresh_needs_scope: Option<&'static str>,
    /// Refresh tokens are replaced on every refresh and die when used.
    pub rotate_refresh: bool,
}

struct PendingCode {
    user: String,
    redirect_uri: String,
    challenge: Option<String>,
    scope: String,
    expires: DateTime<Utc>,
}

/// Everything the simulated vendor issued.
#[derive(Default)]
pub struct OAuthBook {
    codes: HashMap<String, PendingCode>,
    access: HashMap<String, (String, DateTime<Utc>)>,
    refresh: HashMap<String, (String, String)>,
    spent_refresh: HashSet<String>,
}

impl OAuthBook {
    /// The user an unexpired access token belongs to.
    pub fn user_of(&self, access_token: &str, now: DateTime<Utc>) -> Option<String> {
        self.access
            .get(access_token)
            .filter(|(_, exp)| *exp > now)
            .map(|(u, _)| u.clone())
    }

    /// The user an access or refresh token (live or not) was issued to.
    pub fn owner_of(&self, token: &str) -> Option<String> {
        self.access
            .get(token)
            .map(|(u, _)| u.clone())
            .or_else(|| self.refresh.get(token).map(|(u, _)| u.clone()))
    }

    /// Forgets every token of `user` (revocation / deregistration).
    pub fn revoke_user(&mut self, user: &str) -> usize {
        let before = self.access.len() + self.refresh.len();
        self.access.retain(|_, (u, _)| u != user);
        self.refresh.retain(|_, (u, _)| u != user);
        before - self.access.len() - self.refresh.len()
    }

    /// How many live tokens `user` holds.
    pub fn live_tokens(&self, user: &str) -> usize {
        let now = Utc::now();
        self.access
            .values()
            .filter(|(u, e)| u == user && *e > now)
            .count()
            + self.refresh.values().filter(|(u, _)| u == user).count()
    }

    /// Makes every access token of `user` expire now (tests of refresh-on-401).
    pub fn expire_access(&mut self, user: &str) {
        let past = Utc::now() - Duration::seconds(1);
        for (u, exp) in self.access.values_mut() {
            if u == user {
                *exp = past;
            }
        }
    }
}

fn random_token(prefix: &str) -> String {
    let t = format!(
        "{prefix}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    super::secrets::record(&t);
    t
}

fn oauth_error(status: StatusCode, code: &str) -> Response {
    json_response(status, json!({ "error": code }))
}

/// `GET <auth_url>`: checks the request and consents at once, redirecting
/// to the client's redirect URI with a code. `?login=<vendor user id>`
/// picks the simulated account (a new one otherwise).
pub async fn authorize(
    State(sim): State<Arc<VendorSim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let policy = &sim.oauth_policy;
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != sim.app.client_id {
        return (StatusCode::BAD_REQUEST, "unknown client_id").into_response();
    }
    if get("response_type") != "code" {
        return (StatusCode::BAD_REQUEST, "response_type must be code").into_response();
    }
    let Ok(redirect) = url::Url::parse(get("redirect_uri")) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not a URL").into_response();
    };
    let state = get("state");
    if state.len() < policy.min_state_len {
        return (
            StatusCode::BAD_REQUEST,
            format!("state must be at least {} characters", policy.min_state_len),
        )
            .into_response();
    }
    let challenge = match (q.get("code_challenge"), get("code_challenge_method")) {
        _ if matches!(policy.pkce, Pkce::Unsupported) => None,
        (Some(c), "S256") => Some(c.clone()),
        (Some(_), _) => {
            return (StatusCode::BAD_REQUEST, "only S256 challenges").into_response();
        }
        (None, _) if matches!(policy.pkce, Pkce::Required) => {
            return (StatusCode::BAD_REQUEST, "code_challenge is required").into_response();
        }
        (None, _) => None,
    };
    if sim.consent_page.load(std::sync::atomic::Ordering::Relaxed) {
        match get("decision") {
            "allow" => {}
            "deny" => {
                let mut to = redirect;
                to.query_pairs_mut()
                    .append_pair("error", "access_denied")
                    .append_pair("state", state);
                return (StatusCode::FOUND, [("location", to.to_string())]).into_response();
            }
            _ => {
                // The account the person is signed in to at the vendor.
                let login = q
                    .get("login")
                    .cloned()
                    .unwrap_or_else(|| (sim.new_user_id)(&sim));
                return consent_page(sim.vendor, &login, &q);
            }
        }
    }
    let user = q
        .get("login")
        .cloned()
        .unwrap_or_else(|| (sim.new_user_id)(&sim));
    sim.ensure_user(&user);
    let code = random_token("code_");
    sim.oauth.lock().unwrap().codes.insert(
        code.clone(),
        PendingCode {
            user,
            redirect_uri: redirect.to_string(),
            challenge,
            scope: get("scope").to_string(),
            expires: Utc::now() + Duration::seconds(policy.code_ttl_secs),
        },
    );
    let mut to = redirect;
    to.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state);
    (StatusCode::FOUND, [("location", to.to_string())]).into_response()
}

/// The page a person consents on: the request's parameters again, and
/// Allow or Deny (`decision`).
fn consent_page(
    vendor: connector_core::Vendor,
    login: &str,
    q: &HashMap<String, String>,
) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let hidden: String = q
        .iter()
        .filter(|(k, _)| k.as_str() != "decision" && k.as_str() != "login")
        .chain(std::iter::once((&"login".to_string(), &login.to_string())))
        .map(|(k, v)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                escape(k),
                escape(v)
            )
        })
        .collect();
    let name = escape(vendor.env_name());
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{name} (simulated): allow access?</title></head>
<body><main><h1>{name} (simulated)</h1>
<p>Signed in as <span id="account">{account}</span>.</p>
<p>An app asks to read your {name} data ({scope}).</p>
<form method="get">{hidden}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></main></body></html>"#,
        scope = escape(q.get("scope").map(String::as_str).unwrap_or("no scope")),
        account = escape(login),
    );
    (
        StatusCode::OK,
        [("content-type", "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

/// The client credentials of a token request, as the vendor expects them.
fn client_credentials(
    policy: &OAuthPolicy,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    match policy.client_auth {
        ClientAuth::Body => Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        )),
        ClientAuth::Basic => {
            let h = headers.get("authorization")?.to_str().ok()?;
            let decoded = STANDARD.decode(h.strip_prefix("Basic ")?).ok()?;
            let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
            let unescape = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((unescape(id)?, unescape(secret)?))
        }
    }
}

/// What a successful token request issued.
pub struct Issued {
    pub user: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: i64,
    pub scope: String,
    /// Issued for a refresh-token grant (not a code exchange).
    pub refreshed: bool,
}

/// `POST <token_url>`: the authorization-code and refresh-token grants.
/// `respond` shapes the vendor's success body.
pub fn token(
    sim: &VendorSim,
    headers: &HeaderMap,
    body: &str,
    respond: fn(&VendorSim, &Issued) -> Value,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let policy = &sim.oauth_policy;
    match client_credentials(policy, headers, &form) {
        Some((id, secret)) if id == sim.app.client_id && secret == sim.app.client_secret => {}
        _ => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client"),
    }
    let now = Utc::now();
    let mut book = sim.oauth.lock().unwrap();
    let refreshed = form.get("grant_type").map(String::as_str) == Some("refresh_token");
    let (user, scope) = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(pending) = form.get("code").and_then(|c| book.codes.remove(c)) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            if pending.expires < now || form.get("redirect_uri") != Some(&pending.redirect_uri) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            if let Some(challenge) = &pending.challenge {
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != *challenge {
                    sim.stats.pkce_failures.fetch_add(1, SeqCst);
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
                }
            }
            (pending.user, pending.scope)
        }
        Some("refresh_token") => {
            sim.stats.refresh_requests.fetch_add(1, SeqCst);
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            let found = if policy.rotate_refresh {
                book.refresh.remove(&rt)
            } else {
                book.refresh.get(&rt).cloned()
            };
            let Some((user, scope)) = found else {
                if book.spent_refresh.contains(&rt) {
                    sim.stats.refresh_reuse.fetch_add(1, SeqCst);
                }
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            if policy.rotate_refresh {
                book.spent_refresh.insert(rt);
            }
            (user, scope)
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    let access = random_token("at_");
    book.access.insert(
        access.clone(),
        (
            user.clone(),
            now + Duration::seconds(policy.access_ttl_secs),
        ),
    );
    let wants_refresh = policy
        .refresh_needs_scope
        .is_none_or(|s| scope.split([' ', ',']).any(|x| x == s));
    let refresh = if !wants_refresh {
        None
    } else if !policy.rotate_refresh {
        // A non-rotating vendor keeps the refresh token it issued first.
        let existing = book
            .refresh
            .iter()
            .find(|(_, (u, _))| *u == user)
            .map(|(t, _)| t.clone());
        Some(existing.unwrap_or_else(|| {
            let t = random_token("rt_");
            book.refresh
                .insert(t.clone(), (user.clone(), scope.clone()));
            t
        }))
    } else {
        let t = random_token("rt_");
        book.refresh
            .insert(t.clone(), (user.clone(), scope.clone()));
        Some(t)
    };
    drop(book);
    sim.stats.tokens_issued.fetch_add(1, SeqCst);
    if refreshed {
        if let Some(hook) = sim.after_refresh.lock().unwrap().as_ref() {
            hook();
        }
    }
    let issued = Issued {
        user,
        access_token: access,
        refresh_token: refresh,
        expires_in: policy.access_ttl_secs,
        scope,
        refreshed,
    };
    json_response(StatusCode::OK, respond(sim, &issued))
}

/// The authorize and token routes at `paths`, answering token requests
/// with `respond`'s body shape.
pub fn routes(
    paths: (&'static str, &'static str),
    respond: fn(&VendorSim, &Issued) -> Value,
) -> axum::Router<Arc<VendorSim>> {
    axum::Router::new()
        .route(paths.0, axum::routing::get(authorize))
        .route(
            paths.1,
            axum::routing::post(
                move |State(s): State<Arc<VendorSim>>, h: HeaderMap, body: String| async move {
                    token(&s, &h, &body, respond)
                },
            ),
        )
}

/// RFC 6749 §5.1, as most vendors answer.
pub fn standard_response(_sim: &VendorSim, i: &Issued) -> Value {
    let mut v = json!({
        "access_token": i.access_token,
        "token_type": "bearer",
        "expires_in": i.expires_in,
        "scope": i.scope,
    });
    if let Some(r) = &i.refresh_token {
        v["refresh_token"] = json!(r);
    }
    v
}

use std::sync::atomic::Ordering::SeqCst;
