//! Development JWTs: HS256 tokens checked the way the HttpApi JWT authorizer
//! checks them in AWS (issuer, audience, expiry, algorithm).

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;
use std::collections::HashMap;

pub const ISSUER: &str = "connector-local";
pub const AUDIENCE: &str = "connector";
/// The documented default for local use only; set CONNECTOR_DEV_JWT_SECRET
/// to use another. Never used in AWS, where the HttpApi validates real JWTs.
pub const DEFAULT_SECRET: &str = "connector-local-dev-jwt-secret";

pub fn secret_from_env() -> String {
    std::env::var("CONNECTOR_DEV_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SECRET.to_string())
}

/// A token for `sub` valid for `ttl_secs`.
pub fn mint(secret: &str, sub: &str, ttl_secs: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "sub": sub,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + ttl_secs,
    });
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 encoding cannot fail")
}

/// The claims of a valid token, as API Gateway passes them (strings).
pub fn verify(secret: &str, token: &str) -> Option<HashMap<String, String>> {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v.leeway = 0;
    let data =
        decode::<HashMap<String, Value>>(token, &DecodingKey::from_secret(secret.as_bytes()), &v)
            .ok()?;
    let claims: HashMap<String, String> = data
        .claims
        .into_iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, s)
        })
        .collect();
    claims.get("sub").filter(|s| !s.is_empty())?;
    Some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;

    #[test]
    fn accepts_own_tokens_and_rejects_forgeries() {
        let t = mint("s", "alice", 60);
        assert_eq!(verify("s", &t).unwrap()["sub"], "alice");
        assert!(verify("other", &t).is_none(), "wrong secret");
        assert!(verify("s", &mint("s", "alice", -120)).is_none(), "expired");
        assert!(verify("s", "garbage").is_none());
        // alg: none with the same claims.
        let parts: Vec<&str> = t.split('.').collect();
        let none = format!(
            "{}.{}.",
            B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        );
        assert!(verify("s", &none).is_none(), "alg none");
        // Wrong issuer / audience.
        let now = chrono::Utc::now().timestamp();
        for claims in [
            serde_json::json!({"sub":"a","iss":"evil","aud":AUDIENCE,"exp":now+60}),
            serde_json::json!({"sub":"a","iss":ISSUER,"aud":"other","exp":now+60}),
            serde_json::json!({"sub":"","iss":ISSUER,"aud":AUDIENCE,"exp":now+60}),
        ] {
            let tok = encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(b"s"),
            )
            .unwrap();
            assert!(verify("s", &tok).is_none(), "{claims}");
        }
    }

    #[test]
    fn algorithm_confusion_is_refused() {
        // An HS/RS confusion token: the header claims RS256 (or another HMAC
        // size) but the signature is an HMAC over the same input with the
        // shared secret, as an attacker holding a "public key" would make it.
        let t = mint("s", "alice", 60);
        let claims = t.split('.').nth(1).unwrap().to_string();
        for alg in ["HS256", "RS256", "ES256", "HS512", "PS256"] {
            let header = B64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let input = format!("{header}.{claims}");
            let mac =
                connector_core::vendors::signature::sign_hex_sha256(b"s", &[input.as_bytes()]);
            let sig = B64.encode(hex::decode(mac).unwrap());
            let accepted = verify("s", &format!("{input}.{sig}")).is_some();
            // The same construction with the real algorithm passes: the
            // others fail on their algorithm alone.
            assert_eq!(accepted, alg == "HS256", "{alg}");
        }
    }
}
